//! The master's signal queue: handlers only write the signal number to a self-pipe; the master
//! loop reads the pipe and dispatches (gunicorn's arbiter does the same). Workers write a byte
//! to the same pipe to wake the master when their state changes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use signal_hook_registry::SigId;

/// Signals the master handles.
pub const HANDLED: [libc::c_int; 10] = [
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCHLD,
];

/// Byte a worker writes to wake the master (not a signal number).
pub const WAKE: u8 = 0;

pub struct SignalQueue {
    read: OwnedFd,
    write: OwnedFd,
    ids: Vec<SigId>,
}

impl SignalQueue {
    pub fn install() -> io::Result<Self> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two-element array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe2 succeeded, so both fds are open and now owned only by us.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let wfd = write.as_raw_fd();
        let mut ids = Vec::new();
        for sig in HANDLED {
            // SAFETY: the action only calls write(2) on a pipe, which is async-signal-safe; a
            // full pipe just drops the byte (O_NONBLOCK), which is fine: the loop is awake.
            let id = unsafe {
                signal_hook_registry::register(sig, move || {
                    let b = sig as u8;
                    libc::write(wfd, (&b as *const u8).cast(), 1);
                })
            }
            .map_err(io::Error::other)?;
            ids.push(id);
        }
        Ok(SignalQueue { read, write, ids })
    }

    /// The write end, for workers to wake the master.
    pub fn waker(&self) -> RawFd {
        self.write.as_raw_fd()
    }

    /// In a freshly forked worker: stop writing signals into the master's pipe, so the
    /// worker's own handlers (tokio's, in the same registry) take over.
    pub fn detach_in_child(&mut self) {
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }

    /// Waits up to `timeout_ms` for signals or wake-ups; returns the signal numbers read
    /// (WAKE bytes are dropped; they only end the wait).
    pub fn wait(&self, timeout_ms: i32) -> Vec<libc::c_int> {
        self.wait_also(timeout_ms, &mut Vec::new())
    }

    /// `wait`, also ending the wait when one of `extra` is ready (the metrics endpoint's
    /// sockets); the caller finds out which by trying them, all non-blocking.
    pub fn wait_also(&self, timeout_ms: i32, extra: &mut Vec<libc::pollfd>) -> Vec<libc::c_int> {
        extra.push(libc::pollfd {
            fd: self.read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        // SAFETY: `extra` is a live Vec of initialised pollfds and we pass its exact length;
        // EINTR (a signal arrived) simply returns early.
        unsafe { libc::poll(extra.as_mut_ptr(), extra.len() as libc::nfds_t, timeout_ms) };
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reading into our own buffer from our own non-blocking pipe.
            let n =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            out.extend(
                buf[..n as usize]
                    .iter()
                    .filter(|&&b| b != WAKE)
                    .map(|&b| b as libc::c_int),
            );
        }
        out
    }
}

/// Wakes the master from a worker (async-signal-safe, never blocks).
pub fn wake(fd: RawFd) {
    let b = WAKE;
    // SAFETY: writing one byte from a local to a pipe fd inherited from the master; a full or
    // closed pipe just fails, which is harmless.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

pub fn name(sig: libc::c_int) -> &'static str {
    match sig {
        libc::SIGHUP => "hup",
        libc::SIGQUIT => "quit",
        libc::SIGINT => "int",
        libc::SIGTERM => "term",
        libc::SIGTTIN => "ttin",
        libc::SIGTTOU => "ttou",
        libc::SIGUSR1 => "usr1",
        libc::SIGUSR2 => "usr2",
        libc::SIGWINCH => "winch",
        libc::SIGCHLD => "chld",
        libc::SIGKILL => "SIGKILL",
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        _ => "signal",
    }
}
