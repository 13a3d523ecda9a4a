//! One readiness-based I/O trait over TCP and Unix streams, plus the loops built on it.
//!
//! Everything takes `&self`: while the app runs, one connection task both pumps the request body
//! and writes the response, and shared references let both branches of its `select!` use the
//! socket without splitting it (tokio's `split()` would lock, and its borrowed halves would hide
//! the fd that sendfile needs).

use std::io;
use std::os::fd::{AsRawFd, RawFd};

use bytes::BytesMut;
use tokio::io::Interest;

/// A connected, non-blocking stream socket registered with the runtime.
/// (The tokio I/O traits are for the WebSocket session, which takes the socket over.)
pub trait Socket:
    AsRawFd + tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + Sync + 'static
{
    fn readable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    fn writable(&self) -> impl std::future::Future<Output = io::Result<()>> + Send;
    fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize>;
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    fn try_io<R>(&self, interest: Interest, f: impl FnOnce() -> io::Result<R>) -> io::Result<R>;

    /// Waits until every byte `try_write` accepted is in the kernel. A plain socket hands bytes
    /// straight to the kernel; a TLS socket may still hold encrypted records (`http::tls`).
    /// `write_all` ends with it, so nothing written is ever stranded.
    fn flush(&self) -> impl std::future::Future<Output = io::Result<()>> + Send {
        async { Ok(()) }
    }

    /// Whether the fd carries the bytes as written, so sendfile(2) may bypass `try_write`.
    fn can_sendfile(&self) -> bool {
        true
    }

    /// Ends our direction of the stream (FIN), keeping the read side open to drain the
    /// client; TLS sends its close_notify first.
    fn shutdown_write(&self) -> impl std::future::Future<Output = ()> + Send {
        async {
            // SAFETY: the fd belongs to `self`, which is open for the duration of the call;
            // shutdown(2) does not invalidate it.
            unsafe {
                libc::shutdown(self.as_raw_fd(), libc::SHUT_WR);
            }
        }
    }
}

macro_rules! impl_socket {
    ($t:ty) => {
        impl Socket for $t {
            async fn readable(&self) -> io::Result<()> {
                <$t>::readable(self).await
            }
            async fn writable(&self) -> io::Result<()> {
                <$t>::writable(self).await
            }
            fn try_read_buf(&self, buf: &mut BytesMut) -> io::Result<usize> {
                <$t>::try_read_buf(self, buf)
            }
            fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
                <$t>::try_write(self, buf)
            }
            fn try_io<R>(
                &self,
                interest: Interest,
                f: impl FnOnce() -> io::Result<R>,
            ) -> io::Result<R> {
                <$t>::try_io(self, interest, f)
            }
        }
    };
}

impl_socket!(tokio::net::TcpStream);
impl_socket!(tokio::net::UnixStream);

/// Reads at least one byte into `buf`; `Ok(0)` is end of stream. Cancel-safe.
pub async fn read_more<S: Socket>(sock: &S, buf: &mut BytesMut) -> io::Result<usize> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    loop {
        let room = buf.capacity() - buf.len();
        match sock.try_read_buf(buf) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.readable().await?,
            Ok(n) if n > 0 && n < room => {
                // A short read drained the socket. Forget the readiness now, so the next read
                // waits for epoll instead of spending a syscall to learn EAGAIN (one per
                // request on a keep-alive connection). tokio only clears readiness it has not
                // seen renewed since, so data that arrived meanwhile is not missed.
                let _ = sock.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::ErrorKind::WouldBlock.into())
                });
                return Ok(n);
            }
            other => return other,
        }
    }
}

/// Writes all of `data`, trying first and waiting for readiness only when the kernel is full.
pub async fn write_all<S: Socket>(sock: &S, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match sock.try_write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.writable().await?,
            Err(e) => return Err(e),
        }
    }
    sock.flush().await
}

/// Sends `len` bytes of `file` from `offset` with sendfile(2), never through user space
/// (through `try_write` when the socket encrypts: `Socket::can_sendfile`).
#[cfg(target_os = "linux")]
pub async fn send_file<S: Socket>(
    sock: &S,
    file: &std::fs::File,
    offset: u64,
    mut len: u64,
) -> io::Result<()> {
    if !sock.can_sendfile() {
        return copy_file(sock, file, offset, len).await;
    }
    let out_fd: RawFd = sock.as_raw_fd();
    let in_fd: RawFd = file.as_raw_fd();
    let mut off = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    while len > 0 {
        let want = usize::try_from(len.min(1 << 30)).unwrap_or(1 << 30);
        let sent = sock.try_io(Interest::WRITABLE, || {
            // SAFETY: both fds are open for the duration of the call (`sock` and `file` are
            // borrowed), and `off` is a valid, exclusively borrowed off_t.
            let n = unsafe { libc::sendfile(out_fd, in_fd, &mut off, want) };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        match sent {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank")),
            Ok(n) => len -= n.min(len),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => sock.writable().await?,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset`.
#[cfg(not(target_os = "linux"))]
pub async fn send_file<S: Socket>(
    sock: &S,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> io::Result<()> {
    copy_file(sock, file, offset, len).await
}

/// Without sendfile: positional reads into a buffer, then ordinary writes.
async fn copy_file<S: Socket>(
    sock: &S,
    file: &std::fs::File,
    mut offset: u64,
    mut len: u64,
) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 64 * 1024];
    while len > 0 {
        let want = buf.len().min(usize::try_from(len).unwrap_or(usize::MAX));
        let n = file.read_at(&mut buf[..want], offset)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank"));
        }
        write_all(sock, &buf[..n]).await?;
        offset += n as u64;
        len -= n as u64;
    }
    Ok(())
}
