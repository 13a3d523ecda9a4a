//! The control socket (`--control-socket`): gunicorn's `gunicornc` protocol, served by the
//! master from its own poll loop.
//!
//! gunicorn runs this server on an asyncio thread; the master here never starts a thread (fork
//! safety, docs/internals.md), so, like the metrics endpoint, it is a listening socket and a few
//! non-blocking client sockets polled next to the signal pipe. Each turn of the loop moves every
//! client as far as it can without blocking: read, decode frames (`protocol`), run commands
//! (`commands`), write replies. A slow or silent client only holds its own buffer; a malformed
//! or oversized frame gets an error reply and the connection closes. Peers of another uid
//! (except root) are refused on top of the socket file's mode.

pub mod commands;
pub mod protocol;
pub mod requests;
pub mod stacks;

use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::net::poll_io::{accept_ready, pollfd, read_available, Outbox};
use protocol::{Request, MAX_FRAME};

/// Clients served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 16;
/// gunicorn closes a control connection idle this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// How often the loop looks at a pending stack dump.
const PENDING_POLL_MS: i32 = 20;

/// `--control-socket` as resolved at boot; absent with `--no-control-socket`.
#[derive(Clone, Debug)]
pub struct ControlOptions {
    pub path: PathBuf,
    pub mode: u32,
}

/// What a command produced: a reply now, or a stack dump to collect over the next turns.
pub enum Answer {
    Done(Result<Value, String>),
    Later(stacks::Dump),
}

/// The master's control state: the options, the server once bound, and the counters
/// `show stats` reports that the arbiter does not otherwise keep.
pub struct Control {
    pub options: Option<ControlOptions>,
    pub server: Option<ControlServer>,
    pub started: SystemTime,
    pub reloads: u64,
    pub killed: u64,
}

impl Control {
    pub fn new(options: Option<ControlOptions>) -> Self {
        Control {
            options,
            server: None,
            started: SystemTime::now(),
            reloads: 0,
            killed: 0,
        }
    }

    /// Before the first fork: what workers inherit (the request table, the stacks directory).
    pub fn prepare(&self) {
        if self.options.is_none() {
            return;
        }
        if let Err(e) = requests::install() {
            log::warn!("control socket: no request table ({e}); `show requests` is empty");
        }
        if let Err(e) = stacks::prepare() {
            log::warn!("control socket: no stacks directory ({e}); `dump stacks` fails");
        }
    }

    /// Binds the socket; as in gunicorn a failure is a warning and the server runs without.
    pub fn start(&mut self) {
        let Some(o) = &self.options else {
            log::debug!("Control socket disabled");
            return;
        };
        match ControlServer::bind(&o.path, o.mode) {
            Ok(s) => {
                log::info!("Control socket listening at {}", o.path.display());
                self.server = Some(s);
            }
            Err(e) => log::warn!(
                "Failed to start control socket at {}: {e} (--control-socket / control_socket \
                 picks another path, --no-control-socket turns it off)",
                o.path.display()
            ),
        }
    }

    /// At exit: the socket file (if still ours) and the stacks directory.
    pub fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.remove_file();
        }
        if self.options.is_some() {
            stacks::cleanup();
        }
    }

    /// In a freshly forked worker: close the master's sockets, leave the file alone.
    pub fn drop_in_child(&mut self) {
        self.server = None;
    }
}

/// A worker was reaped: nothing of it is in flight, and its stacks file goes.
pub fn forget_worker(pid: i32, slot: usize) {
    if let Some(t) = requests::table() {
        t.slot(slot).clear();
    }
    stacks::forget(pid);
}

struct Client {
    stream: UnixStream,
    inbuf: Vec<u8>,
    out: Outbox,
    /// The request id and stack dump waiting for an answer.
    pending: Option<(Value, stacks::Dump)>,
    /// Close once `out` is written (after a protocol error, a refusal or the peer's EOF).
    closing: bool,
    idle_since: Instant,
}

/// The listening socket and its clients.
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// The socket file's (device, inode), so exit removes only our own file (after USR2 the
    /// new master has replaced it).
    ident: (u64, u64),
    clients: Vec<Client>,
}

impl ControlServer {
    /// As gunicorn: the parent directory is created (0700) if missing, a stale socket file is
    /// replaced, and the socket gets `mode`. Unlike gunicorn, a path that exists and is not a
    /// socket is refused rather than deleted. The umask is narrowed around bind(2) so the file
    /// is never looser than `mode`, even before the chmod.
    pub fn bind(path: &Path, mode: u32) -> io::Result<ControlServer> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
            }
        }
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => fs::remove_file(path)?,
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "the path exists and is not a socket",
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // SAFETY: umask(2) only swaps the process's mask; the master is single-threaded, so no
        // other thread creates files meanwhile.
        let old = unsafe { libc::umask((!mode & 0o777) as libc::mode_t) };
        let bound = UnixListener::bind(path);
        // SAFETY: as above, restoring the previous mask.
        unsafe { libc::umask(old) };
        let listener = bound?;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        listener.set_nonblocking(true)?;
        let meta = fs::metadata(path)?;
        Ok(ControlServer {
            listener,
            path: path.to_path_buf(),
            ident: (meta.dev(), meta.ino()),
            clients: Vec::new(),
        })
    }

    /// Removes the socket file if it is still the one we bound.
    fn remove_file(self) {
        if let Ok(m) = fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == self.ident {
                let _ = fs::remove_file(&self.path);
            }
        }
    }

    /// The descriptors the master loop should wake for.
    pub fn poll_fds(&self, out: &mut Vec<libc::pollfd>) {
        if self.clients.len() < MAX_CLIENTS {
            out.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
        }
        for c in &self.clients {
            if !c.out.is_empty() {
                out.push(pollfd(c.stream.as_raw_fd(), libc::POLLOUT));
            } else if c.pending.is_none() {
                out.push(pollfd(c.stream.as_raw_fd(), libc::POLLIN));
            }
        }
    }

    /// A shorter wait for the loop while a stack dump is being collected.
    pub fn timeout_ms(&self) -> Option<i32> {
        self.clients
            .iter()
            .any(|c| c.pending.is_some())
            .then_some(PENDING_POLL_MS)
    }

    /// Accepts, reads, runs and answers whatever is possible without blocking.
    pub fn service(&mut self, handle: &mut dyn FnMut(&Request) -> Answer) {
        let room = MAX_CLIENTS.saturating_sub(self.clients.len());
        accept_ready(&self.listener, room, "control socket", |stream| {
            let mut c = Client {
                stream,
                inbuf: Vec::new(),
                out: Outbox::default(),
                pending: None,
                closing: false,
                idle_since: Instant::now(),
            };
            if let Err(why) = peer_allowed(&c.stream) {
                log::warn!("control socket: refused a client: {why}");
                c.out
                    .push(&protocol::encode(&protocol::error(&Value::from(0), &why)));
                c.closing = true;
            }
            self.clients.push(c);
        });
        let now = Instant::now();
        self.clients
            .retain_mut(|c| now.duration_since(c.idle_since) < IDLE_TIMEOUT && advance(c, handle));
    }
}

/// Moves one client forward; false once it is finished or failed (dropping it closes it).
fn advance(c: &mut Client, handle: &mut dyn FnMut(&Request) -> Answer) -> bool {
    if let Some((id, dump)) = &mut c.pending {
        let Some(data) = dump.poll() else {
            return true;
        };
        c.out.push(&protocol::encode(&protocol::ok(id, data)));
        c.pending = None;
    }
    if !c.closing && c.pending.is_none() && c.out.is_empty() {
        // at most one frame's worth per turn
        let before = c.inbuf.len();
        match read_available(&mut c.stream, &mut c.inbuf, MAX_FRAME + 4) {
            Ok(true) => {}
            Ok(false) => c.closing = true,
            Err(_) => return false,
        }
        if c.inbuf.len() > before {
            c.idle_since = Instant::now();
        }
        run_requests(c, handle);
    }
    let before = c.out.pending();
    let flushed = c.out.flush(&mut c.stream);
    if c.out.pending() < before {
        c.idle_since = Instant::now();
    }
    match flushed {
        Ok(true) => !(c.closing && c.pending.is_none()),
        Ok(false) => true,
        Err(_) => false,
    }
}

/// Runs every complete request buffered, in order, until one must wait (a stack dump).
fn run_requests(c: &mut Client, handle: &mut dyn FnMut(&Request) -> Answer) {
    loop {
        match protocol::take_request(&mut c.inbuf) {
            Ok(None) => return,
            Ok(Some(req)) => match handle(&req) {
                Answer::Done(Ok(data)) => {
                    c.out.push(&protocol::encode(&protocol::ok(&req.id, data)))
                }
                Answer::Done(Err(msg)) => c
                    .out
                    .push(&protocol::encode(&protocol::error(&req.id, &msg))),
                Answer::Later(dump) => {
                    c.pending = Some((req.id, dump));
                    return;
                }
            },
            Err(e) => {
                log::debug!("control socket: {e}");
                c.out.push(&protocol::encode(&protocol::error(
                    &Value::from(0),
                    &e.to_string(),
                )));
                c.inbuf.clear();
                c.closing = true;
                return;
            }
        }
    }
}

/// Only our own uid, or root, may drive the master (SO_PEERCRED, checked at accept).
fn peer_allowed(stream: &UnixStream) -> Result<(), String> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the ucred we own.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(format!(
            "cannot read peer credentials: {}",
            io::Error::last_os_error()
        ));
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if cred.uid == me || cred.uid == 0 {
        Ok(())
    } else {
        Err(format!(
            "Permission denied: peer uid {} is not the server's uid {me}",
            cred.uid
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::{Read, Write};

    fn serve_until_reply(server: &mut ControlServer, client: &mut UnixStream) -> Value {
        client.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        for _ in 0..200 {
            server.service(&mut |req| {
                Answer::Done(match req.command.as_str() {
                    "echo" => Ok(json!({"args": req.args})),
                    other => Err(format!("Unknown command: {other}")),
                })
            });
            let mut buf = [0u8; 4096];
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(_) => {}
            }
            if got.len() >= 4 {
                let len = u32::from_be_bytes(got[..4].try_into().unwrap()) as usize;
                if got.len() >= 4 + len {
                    return serde_json::from_slice(&got[4..4 + len]).unwrap();
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no reply; got {got:?}");
    }

    #[test]
    fn a_socket_answers_frames_and_errors_then_goes_away() {
        let dir = std::env::temp_dir().join(format!("ferricorn-ctl-test-{}", std::process::id()));
        let path = dir.join("sub/test.ctl");
        let mut server = ControlServer::bind(&path, 0o600).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(&protocol::encode(
            &json!({"id": 4, "command": "echo", "args": [1]}),
        ))
        .unwrap();
        let v = serve_until_reply(&mut server, &mut c);
        assert_eq!(v, json!({"id": 4, "status": "ok", "data": {"args": ["1"]}}));

        let mut c = UnixStream::connect(&path).unwrap();
        c.write_all(&[0, 0, 0, 3, b'{', b'x', b'}']).unwrap();
        let v = serve_until_reply(&mut server, &mut c);
        assert_eq!(v["status"], "error");

        // a stale socket file (nobody listening) is replaced
        drop(server);
        let server = ControlServer::bind(&path, 0o660).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o660
        );
        server.remove_file();
        assert!(!path.exists());

        // a regular file is not ours to delete
        fs::write(&path, b"keep").unwrap();
        assert!(ControlServer::bind(&path, 0o600).is_err());
        assert_eq!(fs::read(&path).unwrap(), b"keep");
        fs::remove_dir_all(&dir).unwrap();
    }
}
