//! HTTP/2 (RFC 9113) through the `h2` crate: one connection task drives the framing, flow
//! control and HPACK, and each stream runs as its own task that turns the request into a `Job`
//! on the queue HTTP/1 uses (`stream.rs`), so WSGI and ASGI apps run unchanged.
//!
//! `serve` is generic over the byte stream: cleartext prior knowledge hands it a TCP or Unix
//! socket behind `detect::Rewind`; TLS with ALPN "h2" can hand it the TLS stream. It never
//! touches Python. WebSocket over HTTP/2 (RFC 8441 extended CONNECT) is not offered.

pub mod detect;
pub mod head;
pub mod options;
mod stream;

use std::sync::Arc;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

pub use options::{Http2Options, Sniff};

use crate::exchange::ConnInfo;
use crate::http::conn::ConnConfig;

/// Serves one HTTP/2 connection until the client leaves, an error ends it, or a graceful stop
/// (GOAWAY, then the streams already open run to their end) completes.
pub async fn serve<IO>(
    io: IO,
    info: Arc<ConnInfo>,
    cfg: Arc<ConnConfig>,
    mut shutdown: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let handshake = cfg.edge.http2.builder().handshake::<_, Bytes>(io);
    // the client's preface and SETTINGS are its "request head": same deadline
    let mut conn = match crate::http::edge::before(cfg.edge.head_deadline(), handshake).await {
        Some(Ok(conn)) => conn,
        Some(Err(e)) => return log::debug!("HTTP/2 handshake failed: {e}"),
        None => return log::debug!("HTTP/2 handshake timed out"),
    };
    let mut stopping = false;
    // gunicorn: --keep-alive is how long a connection may sit with no stream open (0: forever)
    let idle = cfg.keepalive;
    let mut idle_check = tokio::time::Instant::now() + idle;
    loop {
        if !stopping && *shutdown.borrow() {
            // GOAWAY: no new streams; h2 ends the connection once the open ones are done
            stopping = true;
            conn.graceful_shutdown();
        }
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    idle_check = tokio::time::Instant::now() + idle;
                    tokio::spawn(stream::run(req, respond, info.clone(), cfg.clone(), shutdown.clone()));
                }
                Some(Err(e)) => {
                    if !e.is_io() && !e.is_go_away() {
                        log::debug!("HTTP/2 connection error: {e}");
                    }
                    return;
                }
                None => return,
            },
            () = tokio::time::sleep_until(idle_check), if !stopping && !idle.is_zero() => {
                if conn.has_streams() {
                    idle_check = tokio::time::Instant::now() + idle;
                } else {
                    stopping = true;
                    conn.graceful_shutdown();
                }
            }
            changed = shutdown.changed(), if !stopping => {
                // the worker is gone without saying stop: stop as if it had
                if changed.is_err() {
                    stopping = true;
                    conn.graceful_shutdown();
                }
            }
        }
    }
}
