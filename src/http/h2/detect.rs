//! Cleartext HTTP/2 with prior knowledge (RFC 9113 §3.4): recognising the client preface among
//! a connection's first bytes, and `Rewind`, which gives the bytes already read back to the
//! HTTP/2 server in front of the socket.
//!
//! It runs once per connection, before the first request, and only when `--http2-cleartext`
//! asks for it: the HTTP/1 request path never comes here.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::http::edge::before;
use crate::http::socket::{read_more, Socket};

/// What a client speaking HTTP/2 with prior knowledge sends first.
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preface {
    /// The whole preface is there.
    Match,
    /// Not HTTP/2 (or nothing at all arrived): carry on with HTTP/1 from the buffer.
    Mismatch,
    /// The client closed, or stalled past the deadline, partway through the preface.
    Incomplete,
}

/// Classifies what is buffered: `None` while it is still a prefix of the preface.
fn classify(buf: &[u8]) -> Option<Preface> {
    if buf.len() >= PREFACE.len() {
        return Some(if buf.starts_with(PREFACE) {
            Preface::Match
        } else {
            Preface::Mismatch
        });
    }
    (!PREFACE.starts_with(buf)).then_some(Preface::Mismatch)
}

/// Reads (into `rbuf`, which keeps every byte) until the preface is recognised or ruled out,
/// waiting at most `--header-timeout` as for any request head.
pub async fn sniff<S: Socket>(
    sock: &S,
    rbuf: &mut BytesMut,
    edge: &super::super::edge::EdgeOptions,
) -> io::Result<Preface> {
    let deadline = edge.head_deadline();
    loop {
        if !rbuf.is_empty() {
            if let Some(p) = classify(rbuf) {
                return Ok(p);
            }
        }
        match before(deadline, read_more(sock, rbuf)).await {
            Some(Ok(0)) | None if rbuf.is_empty() => return Ok(Preface::Mismatch),
            Some(Ok(0)) | None => return Ok(Preface::Incomplete),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e),
        }
    }
}

/// A stream that yields `prefix` before reading `inner`; writes go straight through.
pub struct Rewind<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Rewind<S> {
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Rewind { prefix, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn preface_is_matched_ruled_out_or_awaited() {
        assert_eq!(classify(PREFACE), Some(Preface::Match));
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00"),
            Some(Preface::Match)
        );
        assert_eq!(classify(b"PRI * HT"), None);
        assert_eq!(classify(b"GET / HTTP/1.1\r\n"), Some(Preface::Mismatch));
        assert_eq!(classify(b"PO"), Some(Preface::Mismatch));
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"),
            Some(Preface::Mismatch)
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn rewind_replays_the_prefix_then_reads_on() {
        let (mut a, b) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut a, b" world")
            .await
            .unwrap();
        drop(a);
        let mut r = Rewind::new(Bytes::from_static(b"hello"), b);
        let mut out = String::new();
        r.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "hello world");
    }
}
