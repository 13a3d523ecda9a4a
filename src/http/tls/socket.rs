//! `TlsSocket`: a stream socket with a rustls server session on it, presented as a plaintext
//! `Socket` so the HTTP/1 connection code and the WebSocket session run over TLS unchanged.
//!
//! The session sits behind a `std::sync::Mutex` because `Socket` works through `&self` (the
//! connection reads the body and writes the response from two branches of one `select!`);
//! the lock is only taken for synchronous rustls calls, never across an await, and everything
//! runs on the worker's single I/O thread, so it is never contended.
//!
//! Readiness is the subtle part. `readable()` is about *plaintext*: it returns at once when
//! rustls holds decrypted bytes or undecoded ciphertext, and only otherwise waits for the
//! kernel. Likewise bytes `try_write` accepts are encrypted at once and pushed as far as the
//! kernel takes them; what it does not take stays queued in rustls, `flush()` waits it out, and
//! `try_write` reports `WouldBlock` only for bytes it did not accept.

use std::io::{self, BufRead, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use rustls::ServerConnection;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::http::socket::Socket;

/// Ciphertext read from the kernel at once.
const CIPHER_READ: usize = 32 * 1024;
/// Encrypted bytes rustls may hold unsent before `try_write` stops accepting plaintext.
const SEND_BUFFER: usize = 256 * 1024;

/// The session state shared by every path into the socket.
struct Session {
    conn: ServerConnection,
    /// Ciphertext read from the kernel and not yet handed to rustls (rustls takes it only as
    /// fast as its plaintext is read out).
    cipher_in: BytesMut,
    /// The kernel reported end of stream. With or without the peer's close_notify this ends
    /// the plaintext stream (what gunicorn's default `suppress_ragged_eofs = True` does).
    eof: bool,
    close_sent: bool,
}

pub struct TlsSocket<S> {
    io: S,
    session: Mutex<Session>,
}

/// `io::Write` into the socket without waiting: `WouldBlock` when the kernel is full.
struct TryWriter<'a, S>(&'a S);

impl<S: Socket> Write for TryWriter<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `io::Write` into the socket from a poll function: `Pending` becomes `WouldBlock` (with the
/// waker registered by the inner poll).
struct PollWriter<'a, 'b, S>(Pin<&'a mut S>, &'a mut Context<'b>);

impl<S: AsyncWrite> Write for PollWriter<'_, '_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.0.as_mut().poll_write(self.1, buf) {
            Poll::Ready(r) => r,
            Poll::Pending => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Session {
    /// Hands up to `room` decrypted bytes to `sink`. `Some(n)`, n > 0: bytes handed over;
    /// `Some(0)`: the peer closed the session (close_notify); `None`: no plaintext now.
    fn take_plain(
        &mut self,
        room: usize,
        sink: &mut dyn FnMut(&[u8]),
    ) -> io::Result<Option<usize>> {
        let mut moved = 0;
        while moved < room {
            match self.conn.reader().fill_buf() {
                Ok([]) => return Ok(Some(moved)),
                Ok(chunk) => {
                    let n = chunk.len().min(room - moved);
                    sink(&chunk[..n]);
                    self.conn.reader().consume(n);
                    moved += n;
                }
                // rustls is never told of the TCP EOF (`eof` tracks it), so UnexpectedEof
                // cannot come; WouldBlock: nothing more decrypted
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e),
            }
        }
        Ok((moved > 0 || room == 0).then_some(moved))
    }

    /// Hands buffered ciphertext to rustls and decrypts it. A protocol error queues rustls's
    /// alert (sent by the caller's next push) and fails the stream.
    fn decode(&mut self) -> io::Result<()> {
        let mut slice: &[u8] = &self.cipher_in;
        let n = self.conn.read_tls(&mut slice)?;
        if n == 0 {
            // rustls reads nothing after the peer's close_notify: the rest is not ours to read
            self.cipher_in.clear();
            self.eof = true;
            return Ok(());
        }
        self.cipher_in.advance(n);
        if let Err(e) = self.conn.process_new_packets() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        Ok(())
    }

    /// Whether a read would make progress without the kernel.
    fn has_input(&mut self) -> bool {
        self.eof
            || !self.cipher_in.is_empty()
            || !matches!(self.conn.reader().fill_buf(), Err(ref e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Sends queued TLS records until done or the writer would block.
    fn push(&mut self, w: &mut dyn Write) -> io::Result<()> {
        while self.conn.wants_write() {
            match self.conn.write_tls(w) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// `push`, where a full kernel buffer is not an error.
    fn push_some(&mut self, w: &mut dyn Write) -> io::Result<()> {
        match self.push(w) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }

    /// Encrypts as much of `data` as the send buffer allows; 0 when it is full.
    fn accept_plain(&mut self, data: &[u8]) -> io::Result<usize> {
        self.conn.writer().write(data)
    }
}

impl<S: Socket> TlsSocket<S> {
    /// Wraps a socket and a fresh server session; `handshake` must run before anything else.
    /// `early` is ciphertext already read off the socket (behind a PROXY header).
    pub fn new(io: S, mut conn: ServerConnection, early: BytesMut) -> Self {
        conn.set_buffer_limit(Some(SEND_BUFFER));
        TlsSocket {
            io,
            session: Mutex::new(Session {
                conn,
                cipher_in: early,
                eof: false,
                close_sent: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Session> {
        // a panic while holding it would have ended the connection's task: nothing to recover
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs the TLS handshake to completion (the caller bounds it with a timeout).
    pub async fn handshake(&self) -> io::Result<()> {
        loop {
            let handshaking = {
                let mut s = self.lock();
                s.push_some(&mut TryWriter(&self.io))?;
                s.conn.is_handshaking()
            };
            if !handshaking {
                return self.flush_tls().await;
            }
            if self.lock().conn.wants_write() {
                self.io.writable().await?;
                continue;
            }
            // more of the client's flight is needed
            let progress = {
                let mut s = self.lock();
                if s.eof {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                if s.cipher_in.is_empty() {
                    s.cipher_in.reserve(CIPHER_READ);
                    match self.io.try_read_buf(&mut s.cipher_in) {
                        Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => return Err(e),
                    }
                }
                if s.cipher_in.is_empty() {
                    false
                } else {
                    let r = s.decode();
                    if r.is_err() {
                        // tell the client why (an alert) before the caller closes
                        let _ = s.push_some(&mut TryWriter(&self.io));
                    }
                    r?;
                    true
                }
            };
            if !progress {
                self.io.readable().await?;
            }
        }
    }

    /// Sends every queued TLS record, waiting for the kernel as needed.
    async fn flush_tls(&self) -> io::Result<()> {
        loop {
            let pending = {
                let mut s = self.lock();
                s.push_some(&mut TryWriter(&self.io))?;
                s.conn.wants_write()
            };
            if !pending {
                return Ok(());
            }
            self.io.writable().await?;
        }
    }

    /// The negotiated session's facts (after the handshake).
    pub fn with_connection<R>(&self, f: impl FnOnce(&ServerConnection) -> R) -> R {
        f(&self.lock().conn)
    }
}

impl<S: Socket> AsRawFd for TlsSocket<S> {
    fn as_raw_fd(&self) -> RawFd {
        self.io.as_raw_fd()
    }
}

impl<S: Socket> Socket for TlsSocket<S> {
    async fn readable(&self) -> io::Result<()> {
        if self.lock().has_input() {
            return Ok(());
        }
        self.io.readable().await
    }

    async fn writable(&self) -> io::Result<()> {
        if self.lock().conn.wants_write() {
            self.io.writable().await
        } else {
            Ok(())
        }
    }

    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
        if buf.capacity() == buf.len() {
            buf.reserve(4096);
        }
        let room = buf.capacity() - buf.len();
        let mut s = self.lock();
        let mut total = 0;
        loop {
            match s.take_plain(room - total, &mut |b| buf.extend_from_slice(b))? {
                Some(0) => return Ok(total),
                Some(n) => {
                    total += n;
                    if total == room {
                        return Ok(total);
                    }
                }
                None => {}
            }
            if !s.cipher_in.is_empty() {
                let r = s.decode();
                // post-handshake messages (TLS 1.3 key updates) and alerts want sending
                let _ = s.push_some(&mut TryWriter(&self.io));
                r?;
                continue;
            }
            if total > 0 {
                return Ok(total);
            }
            if s.eof {
                return Ok(0);
            }
            s.cipher_in.reserve(CIPHER_READ);
            let room = s.cipher_in.capacity() - s.cipher_in.len();
            match self.io.try_read_buf(&mut s.cipher_in)? {
                0 => s.eof = true,
                n if n < room => {
                    // a short read drained the kernel: forget its readiness now (as
                    // `read_more` does for plain sockets), so the next read waits for epoll
                    // instead of spending a syscall to learn EAGAIN
                    let _ = self.io.try_io(Interest::READABLE, || {
                        Err::<(), _>(io::ErrorKind::WouldBlock.into())
                    });
                }
                _ => {}
            }
        }
    }

    fn try_write(&self, data: &[u8]) -> io::Result<usize> {
        let mut s = self.lock();
        s.push_some(&mut TryWriter(&self.io))?;
        let n = s.accept_plain(data)?;
        s.push_some(&mut TryWriter(&self.io))?;
        if n == 0 && !data.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    /// Runs `f` without touching the TCP socket's readiness: `readable()` here means plaintext,
    /// which the kernel cannot vouch for, so clearing its readiness could strand ciphertext
    /// that is already waiting. (`send_file`, the other user, never runs on TLS sockets.)
    fn try_io<R>(&self, _interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R> {
        f()
    }

    async fn flush(&self) -> io::Result<()> {
        self.flush_tls().await
    }

    fn can_sendfile(&self) -> bool {
        false
    }

    async fn shutdown_write(&self) {
        {
            let mut s = self.lock();
            if !s.close_sent {
                s.close_sent = true;
                s.conn.send_close_notify();
            }
        }
        // best effort: a client that stopped reading must not hold the close up
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), self.flush_tls()).await;
        self.io.shutdown_write().await;
    }
}

impl<S: Socket> AsyncRead for TlsSocket<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let s = this.session.get_mut().unwrap_or_else(|e| e.into_inner());
        loop {
            let room = out.remaining();
            if s.take_plain(room, &mut |b| out.put_slice(b))?.is_some() {
                return Poll::Ready(Ok(()));
            }
            if !s.cipher_in.is_empty() {
                let r = s.decode();
                let mut w = PollWriter(Pin::new(&mut this.io), cx);
                let _ = s.push_some(&mut w);
                r?;
                continue;
            }
            if s.eof {
                return Poll::Ready(Ok(()));
            }
            let mut scratch = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => s.eof = true,
                Poll::Ready(Ok(())) => s.cipher_in.extend_from_slice(rb.filled()),
            }
        }
    }
}

impl<S: Socket> AsyncWrite for TlsSocket<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let s = this.session.get_mut().unwrap_or_else(|e| e.into_inner());
        let mut w = PollWriter(Pin::new(&mut this.io), cx);
        s.push_some(&mut w)?;
        let n = s.accept_plain(data)?;
        s.push_some(&mut w)?;
        if n == 0 && !data.is_empty() {
            // the send buffer is full and the kernel said Pending: its waker is registered
            return Poll::Pending;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let s = this.session.get_mut().unwrap_or_else(|e| e.into_inner());
        match s.push(&mut PollWriter(Pin::new(&mut this.io), cx)) {
            Ok(()) => Pin::new(&mut this.io).poll_flush(cx),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let s = this.session.get_mut().unwrap_or_else(|e| e.into_inner());
        if !s.close_sent {
            s.close_sent = true;
            s.conn.send_close_notify();
        }
        match s.push(&mut PollWriter(Pin::new(&mut this.io), cx)) {
            Ok(()) => Pin::new(&mut this.io).poll_shutdown(cx),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}
