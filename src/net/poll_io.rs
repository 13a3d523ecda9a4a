//! Non-blocking socket steps for the small servers the master runs from its `poll()` loop (the
//! control socket, the metrics endpoint).
//!
//! The master has no async runtime and no threads (fork safety, docs/internals.md), so each of
//! those servers moves every client as far as it can per turn of the loop and never blocks:
//! accept while there is room, read what is there, write what fits. These are the shared steps;
//! what a client says and what it gets back stay with each server.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::RawFd;
use std::os::unix::net::{UnixListener, UnixStream};

/// A `pollfd` asking for `events` on `fd`.
pub fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// A listening socket whose accepted streams are made non-blocking.
pub trait Accept {
    type Stream;
    fn accept_nonblocking(&self) -> io::Result<Self::Stream>;
}

impl Accept for UnixListener {
    type Stream = UnixStream;
    fn accept_nonblocking(&self) -> io::Result<UnixStream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

impl Accept for TcpListener {
    type Stream = TcpStream;
    fn accept_nonblocking(&self) -> io::Result<TcpStream> {
        let (s, _) = self.accept()?;
        s.set_nonblocking(true)?;
        Ok(s)
    }
}

/// Accepts up to `room` clients the kernel has ready, handing each to `add`. Stops early when
/// the backlog is empty or accept fails (EMFILE and friends: the next turn tries again, and
/// the rest wait in the backlog meanwhile).
pub fn accept_ready<L: Accept>(
    listener: &L,
    room: usize,
    what: &str,
    mut add: impl FnMut(L::Stream),
) {
    for _ in 0..room {
        match listener.accept_nonblocking() {
            Ok(s) => add(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => {
                log::debug!("{what}: accept failed: {e}");
                break;
            }
        }
    }
}

/// Appends what `r` has now to `buf`, stopping when it would block or once more than `cap`
/// bytes came in this call (so a client pouring bytes in cannot keep the master here).
/// `Ok(false)` at end of stream; `Ok(true)` if the peer may send more.
pub fn read_available(r: &mut impl Read, buf: &mut Vec<u8>, cap: usize) -> io::Result<bool> {
    let mut chunk = [0u8; 16 * 1024];
    let mut taken = 0;
    while taken <= cap {
        match r.read(&mut chunk) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                taken += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Bytes waiting to be written to a non-blocking socket.
#[derive(Debug, Default)]
pub struct Outbox {
    data: Vec<u8>,
    written: usize,
}

impl Outbox {
    pub fn push(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
    }

    /// Bytes not yet written.
    pub fn pending(&self) -> usize {
        self.data.len() - self.written
    }

    pub fn is_empty(&self) -> bool {
        self.pending() == 0
    }

    /// Writes as much as fits. `Ok(true)` once everything is out (the buffer is then reset),
    /// `Ok(false)` when the socket is full; a peer that stopped taking bytes is an error.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<bool> {
        while self.written < self.data.len() {
            match w.write(&self.data[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.data.clear();
        self.written = 0;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `room` bytes, then would block.
    struct Tight {
        got: Vec<u8>,
        room: usize,
    }

    impl Write for Tight {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.room).min(3);
            self.got.extend_from_slice(&buf[..n]);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn outbox_writes_what_fits_and_resumes() {
        let mut out = Outbox::default();
        out.push(b"hello world");
        let mut sock = Tight {
            got: Vec::new(),
            room: 5,
        };
        assert!(!out.flush(&mut sock).unwrap());
        assert_eq!(out.pending(), 6);
        sock.room = 100;
        assert!(out.flush(&mut sock).unwrap());
        assert!(out.is_empty());
        assert_eq!(sock.got, b"hello world");
    }

    #[test]
    fn read_available_stops_at_eof_and_at_the_cap() {
        let mut buf = Vec::new();
        assert!(!read_available(&mut &b"abc"[..], &mut buf, 10).unwrap());
        assert_eq!(buf, b"abc");

        let (mut a, b) = UnixStream::pair().unwrap();
        b.set_nonblocking(true).unwrap();
        a.write_all(&[7u8; 100]).unwrap();
        let mut buf = Vec::new();
        assert!(read_available(&mut &b, &mut buf, 10).unwrap());
        assert_eq!(buf.len(), 100); // one read past the cap, then stop
        assert!(read_available(&mut &b, &mut buf, 10).unwrap()); // nothing more: would block
        assert_eq!(buf.len(), 100);
    }
}
