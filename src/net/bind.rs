//! Bind addresses: parsing gunicorn's `--bind` forms and turning them into
//! listening sockets.
//!
//! Owns socket creation and its options (reuse, IPv6-only, backlog,
//! non-blocking, close-on-exec, umask) and the clean-up of stale unix socket
//! files. Sockets handed over by systemd or by an old master (USR2) are
//! adopted in `net::inherit`, re-exported here. It must not accept
//! connections or know about HTTP: workers take the `Listener`s from here
//! and own everything after `listen()`.

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

pub use super::inherit::{inherited_listeners, prepare_for_exec, systemd_listeners, INHERIT_ENV};

/// Gunicorn's port when an address names only a host.
pub const DEFAULT_PORT: u16 = 8000;

/// One `--bind` value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BindAddr {
    /// A host name or IP literal (IPv6 without brackets) and a port.
    Tcp {
        host: String,
        port: u16,
    },
    Unix(PathBuf),
    /// A listening socket inherited from the parent process.
    Fd(RawFd),
}

/// A `--bind` value that is not one of gunicorn's address forms.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("--bind {value:?}: {reason}")]
pub struct ParseBindError {
    value: String,
    reason: String,
}

impl ParseBindError {
    fn new(value: &str, reason: impl Into<String>) -> Self {
        ParseBindError {
            value: value.to_owned(),
            reason: reason.into(),
        }
    }

    /// What was wrong, without the flag and value (for callers that name
    /// them themselves, like the settings registry).
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Accepts what gunicorn's `util.parse_address` accepts: `unix:PATH`,
/// `unix://PATH`, `fd://FD`, an optional `tcp://` prefix, `HOST`,
/// `HOST:PORT`, `:PORT`, `[IPV6]` and `[IPV6]:PORT`; an empty host means
/// `0.0.0.0`. Stricter than gunicorn where it would silently misread: an
/// unbracketed IPv6 address or text after `]` is an error here.
impl FromStr for BindAddr {
    type Err = ParseBindError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| ParseBindError::new(value, reason);

        if let Some(rest) = value.strip_prefix("unix:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(err(
                    "a unix socket needs a path, e.g. unix:/run/ferricorn.sock".into(),
                ));
            }
            return Ok(BindAddr::Unix(PathBuf::from(path)));
        }

        if let Some(fd) = value.strip_prefix("fd://") {
            return match fd.parse::<RawFd>() {
                Ok(n) if n >= 0 && fd.bytes().all(|b| b.is_ascii_digit()) => Ok(BindAddr::Fd(n)),
                _ => Err(err(format!("{fd:?} is not a valid file descriptor"))),
            };
        }

        let netloc = value.strip_prefix("tcp://").unwrap_or(value);
        let (host, port) = if let Some(bracketed) = netloc.strip_prefix('[') {
            let Some((host, after)) = bracketed.split_once(']') else {
                return Err(err("missing ']' after the IPv6 address".into()));
            };
            if host.parse::<Ipv6Addr>().is_err() {
                return Err(err(format!("{host:?} is not an IPv6 address")));
            }
            let port = match after {
                "" => None,
                _ => match after.strip_prefix(':') {
                    Some(port) => Some(port),
                    None => return Err(err(format!("unexpected {after:?} after ']'"))),
                },
            };
            (host, port)
        } else if netloc.matches(':').count() > 1 {
            return Err(err("an IPv6 address needs brackets, e.g. [::1]:8000".into()));
        } else {
            match netloc.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (netloc, None),
            }
        };

        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => parse_port(p).map_err(err)?,
        };
        let host = match host {
            "" => "0.0.0.0".to_owned(),
            h => h.to_ascii_lowercase(),
        };
        Ok(BindAddr::Tcp { host, port })
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{text:?} is not a valid port number"));
    }
    text.parse::<u16>()
        .map_err(|_| format!("{text:?} is not a valid port number (the highest is 65535)"))
}

/// The canonical spelling, which parses back to the same address.
impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            // `UNIX:80` is a host named unix; `unix:80` would read back as a socket path
            BindAddr::Tcp { host, port } if host == "unix" => write!(f, "tcp://unix:{port}"),
            BindAddr::Tcp { host, port } => write!(f, "{host}:{port}"),
            // `unix://` is stripped when read, so a path that starts with `//` needs it written
            BindAddr::Unix(path)
                if std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).starts_with(b"//") =>
            {
                write!(f, "unix://{}", path.display())
            }
            BindAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            BindAddr::Fd(fd) => write!(f, "fd://{fd}"),
        }
    }
}

/// The scheme clients use to reach a TCP listener: the one place that decides it, so every
/// URL the server prints (startup lines, docs links) agrees once TLS exists.
pub fn http_scheme(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

/// A bound, listening, non-blocking, close-on-exec socket.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// Where clients can reach this listener, from the socket itself, so a
    /// `:0` bind reports the port the kernel chose:
    /// `http://127.0.0.1:8000`, `http://[::1]:8000`, `unix:/run/app.sock`.
    #[cfg_attr(not(test), allow(dead_code))] // tests; the server calls url_for
    pub fn url(&self) -> String {
        self.url_for(false)
    }

    /// `url()` with `https://` when `tls` is set; unix sockets stay `unix:PATH` either way.
    pub fn url_for(&self, tls: bool) -> String {
        match self {
            // SocketAddr's Display already brackets IPv6.
            Listener::Tcp(l) => match l.local_addr() {
                Ok(addr) => format!("{}://{addr}", http_scheme(tls)),
                Err(_) => format!("{}://<unknown>", http_scheme(tls)),
            },
            Listener::Unix(_) => match self.unix_path() {
                Some(path) => format!("unix:{}", path.display()),
                None => "unix:<unnamed>".to_owned(),
            },
        }
    }

    /// The socket file of a unix listener, which whoever closes the listener
    /// for good should remove (gunicorn unlinks it on shutdown).
    pub fn unix_path(&self) -> Option<PathBuf> {
        match self {
            Listener::Unix(l) => l.local_addr().ok()?.as_pathname().map(Path::to_path_buf),
            Listener::Tcp(_) => None,
        }
    }

    /// A second handle on the same socket (a new, close-on-exec descriptor).
    #[allow(dead_code)] // for the master, which keeps one while workers run
    pub fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l) => Listener::Unix(l.try_clone()?),
        })
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l) => l.as_fd(),
        }
    }
}

impl AsRawFd for Listener {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

/// An address that could not be bound, with the OS's reason and, for the
/// common failures, what to check.
#[derive(Debug, thiserror::Error)]
#[error("could not {action} {target}: {}{}", os_message(.source), hint(.source, .target))]
pub struct BindError {
    action: &'static str,
    target: Target,
    source: io::Error,
}

/// What failed: a `--bind` address, or an environment variable that was
/// supposed to describe inherited sockets.
#[derive(Debug)]
enum Target {
    Addr(BindAddr),
    Env(&'static str, String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Addr(addr) => write!(f, "{addr}"),
            Target::Env(name, value) => write!(f, "{name}={value:?}"),
        }
    }
}

impl BindError {
    fn bind(addr: &BindAddr, source: io::Error) -> Self {
        BindError::new("bind", addr, source)
    }

    pub(super) fn new(action: &'static str, addr: &BindAddr, source: io::Error) -> Self {
        BindError {
            action,
            target: Target::Addr(addr.clone()),
            source,
        }
    }

    /// A malformed inherited-socket variable (`LISTEN_FDS`, `FERRICORN_FDS`).
    pub(super) fn env(name: &'static str, value: &str, reason: &str) -> Self {
        BindError {
            action: "use",
            target: Target::Env(name, value.to_owned()),
            source: io::Error::new(io::ErrorKind::InvalidInput, reason.to_owned()),
        }
    }

    /// The address that failed; `None` when an environment variable
    /// describing inherited sockets was malformed.
    #[allow(dead_code)] // for the master's startup log and retry loop
    pub fn addr(&self) -> Option<&BindAddr> {
        match &self.target {
            Target::Addr(addr) => Some(addr),
            Target::Env(..) => None,
        }
    }

    /// True when another socket holds the address, the one failure worth
    /// retrying (gunicorn retries it while an old master shuts down).
    #[allow(dead_code)] // for the master's retry loop, not written yet
    pub fn is_addr_in_use(&self) -> bool {
        self.source.kind() == io::ErrorKind::AddrInUse
    }
}

/// The OS's words without Rust's " (os error N)" suffix.
fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

fn hint(err: &io::Error, target: &Target) -> &'static str {
    let Target::Addr(addr) = target else {
        return "";
    };
    match (err.kind(), addr) {
        (io::ErrorKind::AddrInUse, _) => " (is another server running?)",
        (io::ErrorKind::AddrNotAvailable, _) => " (is that address assigned to this machine?)",
        (io::ErrorKind::PermissionDenied, BindAddr::Tcp { port, .. }) if *port < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
        }
        (io::ErrorKind::PermissionDenied, BindAddr::Unix(_)) => {
            " (can this user write to the socket's directory?)"
        }
        (_, BindAddr::Fd(_)) if err.raw_os_error() == Some(libc::EBADF) => {
            " (was the descriptor passed to ferricorn, without close-on-exec?)"
        }
        _ => "",
    }
}

/// How listening sockets are created: the `backlog`, `reuse_port` and
/// `umask` settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindOptions {
    pub backlog: i32,
    /// SO_REUSEPORT on TCP sockets, so several servers can share a port.
    pub reuse_port: bool,
    /// The umask unix socket files are created under (their mode is
    /// 0777 & !umask); the process umask is restored after each bind.
    pub umask: u32,
}

impl Default for BindOptions {
    /// Gunicorn's defaults: backlog 2048, no SO_REUSEPORT, umask 0.
    fn default() -> Self {
        BindOptions {
            backlog: 2048,
            reuse_port: false,
            umask: 0,
        }
    }
}

/// Binds every address with the default options except `backlog`.
#[cfg(test)]
pub fn bind_all(addrs: &[BindAddr], backlog: i32) -> Result<Vec<Listener>, BindError> {
    bind_with(
        addrs,
        &BindOptions {
            backlog,
            ..BindOptions::default()
        },
    )
}

/// Binds every address, in order, and starts listening.
///
/// All or nothing: if one address fails, the sockets already bound are
/// closed (and their unix socket files removed) before the error returns,
/// so a retry starts clean.
pub fn bind_with(addrs: &[BindAddr], opts: &BindOptions) -> Result<Vec<Listener>, BindError> {
    let backlog = opts.backlog;
    let mut fds = HashSet::new();
    for addr in addrs {
        if let BindAddr::Fd(fd) = addr {
            if !fds.insert(*fd) {
                // Two owners of one descriptor would close it twice.
                let dup = io::Error::new(io::ErrorKind::InvalidInput, "listed more than once");
                return Err(BindError::new("adopt", addr, dup));
            }
        }
    }

    let mut listeners = Vec::with_capacity(addrs.len());
    for addr in addrs {
        let bound = match addr {
            BindAddr::Tcp { host, port } => {
                let tcp = TcpOptions {
                    backlog,
                    only_v6: needs_only_v6(addr, addrs),
                    reuse_port: opts.reuse_port,
                };
                bind_tcp(addr, host, *port, tcp)
            }
            BindAddr::Unix(path) => bind_unix(path, backlog, opts.umask)
                .map(Listener::Unix)
                .map_err(|e| BindError::bind(addr, e)),
            BindAddr::Fd(fd) => {
                adopt_fd(*fd, Some(backlog)).map_err(|e| BindError::new("adopt", addr, e))
            }
        };
        match bound {
            Ok(listener) => listeners.push(listener),
            Err(err) => {
                for listener in &listeners {
                    if let Some(path) = listener.unix_path() {
                        let _ = std::fs::remove_file(path);
                    }
                }
                return Err(err);
            }
        }
    }
    Ok(listeners)
}

/// `[::]:P` is dual-stack by default on Linux, so it would collide with an
/// IPv4 bind on the same port (gunicorn fails there). Making it IPv6-only
/// only when such a bind is also requested keeps gunicorn's behaviour for a
/// lone `[::]` and makes `-b 0.0.0.0:P -b [::]:P` work.
fn needs_only_v6(addr: &BindAddr, all: &[BindAddr]) -> bool {
    let BindAddr::Tcp { host, port } = addr else {
        return false;
    };
    if *port == 0
        || host
            .parse::<Ipv6Addr>()
            .map_or(true, |ip| !ip.is_unspecified())
    {
        return false;
    }
    all.iter().any(|other| match other {
        BindAddr::Tcp { host: h, port: p } => p == port && h.parse::<Ipv6Addr>().is_err(),
        _ => false,
    })
}

#[derive(Clone, Copy)]
struct TcpOptions {
    backlog: i32,
    only_v6: bool,
    reuse_port: bool,
}

fn bind_tcp(
    addr: &BindAddr,
    host: &str,
    port: u16,
    opts: TcpOptions,
) -> Result<Listener, BindError> {
    let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => (host, port)
            .to_socket_addrs()
            .map_err(|e| BindError::new("resolve", addr, e))?
            .collect(),
    };
    // A name can resolve to several addresses (localhost: ::1 and
    // 127.0.0.1); the first that binds wins, and if none does the first
    // failure is the one reported, since it is for the preferred address.
    let mut first_err = None;
    for candidate in candidates {
        match tcp_socket(candidate, opts) {
            Ok(listener) => return Ok(Listener::Tcp(listener)),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let source = first_err.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address")
    });
    Err(BindError::bind(addr, source))
}

fn tcp_socket(addr: SocketAddr, opts: TcpOptions) -> io::Result<TcpListener> {
    // socket2 opens with SOCK_CLOEXEC, so a forked worker that execs (the
    // reloader, a subprocess in the app) does not leak the listener.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // Lets a restarted server rebind while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    if opts.reuse_port {
        // Several servers (or an old and a new master) bind the same port
        // and the kernel spreads connections across them.
        socket.set_reuse_port(true)?;
    }
    if opts.only_v6 {
        socket.set_only_v6(true)?;
    }
    // As gunicorn does; Linux copies it to accepted sockets, so small
    // responses are not held back by Nagle's algorithm.
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(opts.backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

fn bind_unix(path: &Path, backlog: i32, umask: u32) -> io::Result<UnixListener> {
    remove_stale_socket(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    let sockaddr = SockAddr::unix(path)?;
    // The socket file's mode is 0777 minus the umask in force at bind(),
    // which is the only way to choose it atomically. The umask is
    // process-wide, so it is set only around the call, as gunicorn does.
    // SAFETY: umask only swaps an integer in the process; it cannot fail.
    let old = unsafe { libc::umask((umask & 0o777) as libc::mode_t) };
    let bound = socket.bind(&sockaddr);
    // SAFETY: as above; restores the caller's umask.
    unsafe { libc::umask(old) };
    bound?;
    socket.listen(backlog)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Removes a socket file left by a server that died, as gunicorn does, but
/// first checks that nothing answers on it: gunicorn would unlink a live
/// server's socket and silently steal its address.
fn remove_stale_socket(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way (remove it or choose another path)",
        ));
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(io::Error::from(io::ErrorKind::AddrInUse)),
        Err(_) => std::fs::remove_file(path),
    }
}

/// Takes over an inherited listening socket (systemd socket activation, a
/// supervisor, or an old master handing over on upgrade). With a backlog it
/// also listens, which makes a bound-but-not-listening socket usable, like
/// gunicorn; without one the socket is taken as it is.
pub(super) fn adopt_fd(fd: RawFd, backlog: Option<i32>) -> io::Result<Listener> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only reads the descriptor flags; it fails with EBADF,
    // and touches nothing, when `fd` is not open.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // Inspect through a borrow first, so that a wrong number (say fd://1,
    // stdout) is reported without being closed.
    // SAFETY: `fd` is open (checked just above) and nothing in this function
    // closes it while `borrowed` is alive.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let probe = SockRef::from(&borrowed);
    if probe.r#type()? != Type::STREAM {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a stream socket",
        ));
    }
    let local = probe.local_addr()?;
    // SAFETY: the descriptor is open and a socket (checked above), it was
    // handed to this process to own, and bind_all refuses to adopt the same
    // number twice, so this is its only owner.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let socket = Socket::from(owned);
    socket.set_cloexec(true)?;
    if let Some(backlog) = backlog {
        socket.listen(backlog)?;
    }
    socket.set_nonblocking(true)?;
    if local.is_unix() {
        Ok(Listener::Unix(socket.into()))
    } else if local.is_ipv4() || local.is_ipv6() {
        Ok(Listener::Tcp(socket.into()))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a TCP or unix socket",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    fn tcp(host: &str, port: u16) -> BindAddr {
        BindAddr::Tcp {
            host: host.into(),
            port,
        }
    }

    fn parse(s: &str) -> BindAddr {
        s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn parse_err(s: &str) -> String {
        s.parse::<BindAddr>().unwrap_err().to_string()
    }

    use crate::test_support::TempDir;

    #[test]
    fn parses_gunicorns_address_forms() {
        // The cases of gunicorn's tests/test_util.py::test_parse_address.
        assert_eq!(
            parse("unix://var/run/test.sock"),
            BindAddr::Unix("var/run/test.sock".into())
        );
        assert_eq!(
            parse("unix:/var/run/test.sock"),
            BindAddr::Unix("/var/run/test.sock".into())
        );
        assert_eq!(parse("tcp://localhost"), tcp("localhost", 8000));
        assert_eq!(parse("tcp://localhost:5000"), tcp("localhost", 5000));
        assert_eq!(parse(""), tcp("0.0.0.0", 8000));
        assert_eq!(parse("[::1]:8000"), tcp("::1", 8000));
        assert_eq!(parse("[::1]:5000"), tcp("::1", 5000));
        assert_eq!(parse("[::1]"), tcp("::1", 8000));
        assert_eq!(parse("localhost:8000"), tcp("localhost", 8000));
        assert_eq!(parse("127.0.0.1:8000"), tcp("127.0.0.1", 8000));
        assert_eq!(parse("localhost"), tcp("localhost", 8000));
        assert_eq!(parse("fd://33"), BindAddr::Fd(33));
    }

    #[test]
    fn empty_host_means_all_ipv4_interfaces_and_hosts_are_lowercased() {
        assert_eq!(parse(":9000"), tcp("0.0.0.0", 9000));
        assert_eq!(parse("LocalHost:1"), tcp("localhost", 1));
        assert_eq!(parse("[::]:0"), tcp("::", 0));
    }

    #[test]
    fn bad_addresses_name_the_flag_the_value_and_the_problem() {
        assert_eq!(
            parse_err("127.0.0.1:test"),
            "--bind \"127.0.0.1:test\": \"test\" is not a valid port number"
        );
        assert_eq!(
            parse_err("fd://asd"),
            "--bind \"fd://asd\": \"asd\" is not a valid file descriptor"
        );
        assert!(parse_err("fd://-1").contains("not a valid file descriptor"));
        assert!(parse_err("host:").contains("\"\" is not a valid port number"));
        assert!(parse_err("host:65536").contains("the highest is 65535"));
        assert!(parse_err("::1").contains("needs brackets, e.g. [::1]:8000"));
        assert!(parse_err("[::1").contains("missing ']'"));
        assert!(parse_err("[::1]8000").contains("unexpected \"8000\" after ']'"));
        assert!(parse_err("[nothost]:80").contains("not an IPv6 address"));
        assert!(parse_err("unix:").contains("needs a path"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "127.0.0.1:8000",
            "[::1]:80",
            "unix:/tmp/a.sock",
            "fd://3",
            "example.com:1",
        ] {
            assert_eq!(parse(s).to_string(), s);
            assert_eq!(parse(&parse(s).to_string()), parse(s));
        }
        // found by fuzz/ (bind): the host is lower-cased, and then read as `unix:PATH`
        let double_slash = parse("unix:////s");
        assert_eq!(parse(&double_slash.to_string()), double_slash);
        let host_named_unix = parse("unIx:0");
        assert_eq!(host_named_unix.to_string(), "tcp://unix:0");
        assert_eq!(parse(&host_named_unix.to_string()), host_named_unix);
    }

    #[test]
    fn binds_loopback_port_zero_and_reports_the_real_port() {
        let listeners = bind_all(&[tcp("127.0.0.1", 0)], 16).unwrap();
        let [Listener::Tcp(l)] = listeners.as_slice() else {
            panic!("expected one TCP listener");
        };
        let port = l.local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert_eq!(listeners[0].url(), format!("http://127.0.0.1:{port}"));

        // It is listening and non-blocking: a client connects, and accept
        // returns at once.
        let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (mut server, _) = loop {
            match l.accept() {
                Ok(pair) => break pair,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        };
        client.write_all(b"x").unwrap();
        server.set_nonblocking(false).unwrap();
        let mut buf = [0u8; 1];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"x");
        assert!(l
            .accept()
            .is_err_and(|e| e.kind() == io::ErrorKind::WouldBlock));
    }

    #[test]
    fn listeners_are_close_on_exec() {
        let listeners = bind_all(&[tcp("127.0.0.1", 0)], 16).unwrap();
        // SAFETY: F_GETFD reads flags of a descriptor the listener owns.
        let flags = unsafe { libc::fcntl(listeners[0].as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }

    #[test]
    fn address_in_use_names_the_address_and_suggests_a_cause() {
        let first = bind_all(&[tcp("127.0.0.1", 0)], 16).unwrap();
        let Listener::Tcp(l) = &first[0] else {
            unreachable!()
        };
        let port = l.local_addr().unwrap().port();
        let err = bind_all(&[tcp("127.0.0.1", port)], 16).unwrap_err();
        assert!(err.is_addr_in_use());
        assert_eq!(
            err.to_string(),
            format!(
                "could not bind 127.0.0.1:{port}: Address already in use \
                 (is another server running?)"
            )
        );
    }

    #[test]
    fn binds_a_hostname_to_its_first_working_address() {
        let listeners = bind_all(&[tcp("localhost", 0)], 16).unwrap();
        let url = listeners[0].url();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("http://[::1]:"),
            "{url}"
        );
    }

    #[test]
    fn ipv6_loopback_url_is_bracketed() {
        // Some CI sandboxes have no IPv6 at all; only check the form when
        // the bind itself works.
        if let Ok(listeners) = bind_all(&[tcp("::1", 0)], 16) {
            let url = listeners[0].url();
            assert!(url.starts_with("http://[::1]:"), "{url}");
        }
    }

    #[test]
    fn ipv6_wildcard_is_v6_only_only_beside_an_ipv4_bind_on_its_port() {
        let all = [tcp("0.0.0.0", 8000), tcp("::", 8000), tcp("::", 9000)];
        assert!(needs_only_v6(&all[1], &all));
        assert!(!needs_only_v6(&all[2], &all));
        assert!(!needs_only_v6(&all[0], &all));
        let zero = [tcp("0.0.0.0", 0), tcp("::", 0)];
        assert!(!needs_only_v6(&zero[1], &zero));
    }

    #[test]
    fn binds_a_unix_socket_and_replaces_a_stale_one() {
        let dir = TempDir::new("bind");
        let path = dir.0.join("app.sock");
        let addr = BindAddr::Unix(path.clone());

        let listeners = bind_all(std::slice::from_ref(&addr), 16).unwrap();
        assert_eq!(listeners[0].url(), format!("unix:{}", path.display()));
        assert_eq!(listeners[0].unix_path().as_deref(), Some(path.as_path()));
        UnixStream::connect(&path).unwrap();

        // While it is live, a second server must not steal the path.
        let err = bind_all(std::slice::from_ref(&addr), 16).unwrap_err();
        assert!(err.is_addr_in_use(), "{err}");

        // Once the server is gone its file is stale and is replaced.
        drop(listeners);
        assert!(path.exists());
        let again = bind_all(std::slice::from_ref(&addr), 16).unwrap();
        UnixStream::connect(&path).unwrap();
        drop(again);
    }

    #[test]
    fn refuses_to_remove_a_regular_file_in_the_sockets_place() {
        let dir = TempDir::new("bind");
        let path = dir.0.join("not-a-socket");
        std::fs::write(&path, b"data").unwrap();
        let err = bind_all(&[BindAddr::Unix(path.clone())], 16).unwrap_err();
        assert!(
            err.to_string().contains("not a socket is in the way"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn a_failed_bind_releases_everything_bound_before_it() {
        let dir = TempDir::new("bind");
        let path = dir.0.join("first.sock");
        let addrs = [
            BindAddr::Unix(path.clone()),
            BindAddr::Unix(dir.0.join("missing-dir").join("second.sock")),
        ];
        assert!(bind_all(&addrs, 16).is_err());
        assert!(!path.exists(), "the first socket file was cleaned up");
    }

    #[test]
    fn adopts_an_inherited_listening_fd() {
        let original = bind_all(&[tcp("127.0.0.1", 0)], 16).unwrap();
        let Listener::Tcp(l) = &original[0] else {
            unreachable!()
        };
        let port = l.local_addr().unwrap().port();
        // Stand in for inheritance: a duplicate that the adopter owns.
        let fd = l.as_fd().try_clone_to_owned().unwrap();
        let raw = std::os::fd::IntoRawFd::into_raw_fd(fd);

        let adopted = bind_all(&[BindAddr::Fd(raw)], 16).unwrap();
        assert_eq!(adopted[0].url(), format!("http://127.0.0.1:{port}"));
        assert_eq!(adopted[0].as_raw_fd(), raw);
    }

    #[test]
    fn refuses_fds_that_are_closed_or_not_sockets_without_closing_them() {
        let err = bind_all(&[BindAddr::Fd(1_000_000)], 16).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("could not adopt fd://1000000: Bad file descriptor"));

        let dir = TempDir::new("bind");
        let file = std::fs::File::create(dir.0.join("plain")).unwrap();
        let raw = file.as_raw_fd();
        let err = bind_all(&[BindAddr::Fd(raw)], 16).unwrap_err();
        assert!(
            err.to_string().contains("Socket operation on non-socket"),
            "{err}"
        );
        // Still open: the failed adoption did not take ownership.
        // SAFETY: reads flags of a descriptor `file` still owns.
        assert_ne!(unsafe { libc::fcntl(raw, libc::F_GETFD) }, -1);

        let err = bind_all(&[BindAddr::Fd(raw), BindAddr::Fd(raw)], 16).unwrap_err();
        assert!(err.to_string().ends_with("listed more than once"), "{err}");
    }

    #[test]
    fn reuse_port_lets_two_sockets_share_a_port() {
        let opts = BindOptions {
            backlog: 16,
            reuse_port: true,
            umask: 0,
        };
        let first = bind_with(&[tcp("127.0.0.1", 0)], &opts).unwrap();
        let Listener::Tcp(l) = &first[0] else {
            unreachable!()
        };
        let port = l.local_addr().unwrap().port();
        let second = bind_with(&[tcp("127.0.0.1", port)], &opts).unwrap();
        assert_eq!(second[0].url(), first[0].url());
        // Without the option on both, the port is taken.
        let err = bind_all(&[tcp("127.0.0.1", port)], 16).unwrap_err();
        assert!(err.is_addr_in_use(), "{err}");
        assert_eq!(err.addr(), Some(&tcp("127.0.0.1", port)));
    }

    #[test]
    fn unix_sockets_are_created_under_the_umask_and_it_is_restored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("bind");
        let path = dir.0.join("private.sock");
        let opts = BindOptions {
            backlog: 16,
            reuse_port: false,
            umask: 0o077,
        };
        // SAFETY: umask swaps an integer; read it by setting and restoring.
        let before = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        };
        let listeners = bind_with(&[BindAddr::Unix(path.clone())], &opts).unwrap();
        // SAFETY: as above.
        let after = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        };
        assert_eq!(before, after);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(listeners);
    }

    #[test]
    fn try_clone_shares_the_socket_on_a_new_descriptor() {
        let listeners = bind_all(&[tcp("127.0.0.1", 0)], 16).unwrap();
        let clone = listeners[0].try_clone().unwrap();
        assert_ne!(clone.as_raw_fd(), listeners[0].as_raw_fd());
        assert_eq!(clone.url(), listeners[0].url());
        // SAFETY: reads flags of a descriptor `clone` owns.
        let flags = unsafe { libc::fcntl(clone.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
    }
}
