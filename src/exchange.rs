//! The hand-off between the I/O thread and the app threads: one `Job` per request going in,
//! a stream of `Reply` events coming back on the connection's channel.
//!
//! Nothing here knows about Python; `bridge::wsgi` consumes these types and `http::conn` produces
//! them, so a future ASGI bridge plugs into the same seam.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use crate::http::error::RequestError;
use crate::http::request::RequestHead;

/// Where a connection came from and which listener took it (fixed for its lifetime).
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// None for unix-socket peers.
    pub peer: Option<SocketAddr>,
    /// SERVER_NAME / SERVER_PORT of the listener (for unix sockets: the path and "").
    pub server_name: String,
    pub server_port: String,
    /// The socket peer is in `--forwarded-allow-ips` (unix peers always are): its
    /// secure-scheme headers count. Decided from the socket peer, before any PROXY header.
    pub forwarded_trusted: bool,
    /// What a PROXY protocol header said besides the client (which is then `peer`).
    pub proxy: Option<crate::http::edge::ProxyInfo>,
    /// Set once a TLS handshake completed on this connection: its scheme is https.
    pub tls: Option<Arc<crate::http::tls::TlsInfo>>,
    /// `--protocol uwsgi`: the CGI vars of the request's packet that have no place in the head
    /// (DOCUMENT_ROOT, SCRIPT_NAME, REQUEST_URI, custom `uwsgi_param`s); the WSGI environ gets
    /// them as they are. Empty for HTTP.
    pub cgi_vars: Vec<(Bytes, Bytes)>,
}

/// A request ready for the application.
pub struct Job {
    pub head: RequestHead,
    pub conn: Arc<ConnInfo>,
    /// HTTPS as far as the app is concerned (`wsgi.url_scheme`, the scope's `scheme`): a
    /// trusted front end said so (`http::edge::EdgeOptions::admit`).
    pub secure: bool,
    pub body: RequestBody,
    pub reply: Responder,
    /// Set by the connection when the client hangs up while the app still runs, and when the
    /// response is over; ASGI turns it into `http.disconnect`. `None` for WSGI, which has no
    /// way to tell the app.
    pub hangup: Option<Arc<Hangup>>,
    /// A WebSocket upgrade waiting for the app's decision (ASGI only).
    pub websocket: Option<WsJob>,
}

/// The app's side of a WebSocket: the offered subprotocols, then the session's two channels.
pub struct WsJob {
    pub subprotocols: Vec<String>,
    pub incoming: mpsc::Receiver<crate::ws::FromClient>,
    pub outgoing: mpsc::Sender<crate::ws::ToClient>,
}

/// "This request's client is no longer listening": it hung up, or its response is finished.
#[derive(Default)]
pub struct Hangup {
    set: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Hangup {
    pub fn set(&self) {
        self.set.store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_waiters();
    }

    pub fn is_set(&self) -> bool {
        self.set.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves once `set` has been called (at once if it already was).
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // registered before the check, so a `set` between the two is not missed
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }
}

/// The request body as the app will see it.
pub enum RequestBody {
    Empty,
    /// The whole body was already buffered with the head (the common small POST).
    Full(Bytes),
    Stream(BodyStream),
}

/// A body still arriving: what was buffered, then pieces pumped by the connection on demand.
pub struct BodyStream {
    pub prefix: BytesMut,
    pub chunks: mpsc::Receiver<Result<Bytes, RequestError>>,
    /// Fired on the app's first read past `prefix`: only then does the connection read the
    /// socket (and send `100 Continue` when the client asked for it).
    pub demand: Option<oneshot::Sender<()>>,
}

/// Status line and headers produced by the app, already validated and serialised.
#[derive(Debug, Default)]
pub struct ResponseHead {
    pub code: u16,
    /// `"200 OK"`, as the app gave it.
    pub status: Bytes,
    /// `name: value\r\n` lines, hop-by-hop headers removed.
    pub headers: Vec<u8>,
    pub content_length: Option<u64>,
    /// The app asked for `Connection: close`.
    pub close: bool,
}

/// A file body for sendfile: `len` bytes from `offset`.
#[derive(Debug)]
pub struct FileBody {
    pub file: std::fs::File,
    pub offset: u64,
    pub len: u64,
}

/// Events of one response, in order: `Complete`, or `Head` then `Chunk`/`File`s then `End`,
/// or `Abort` at any point after `Head`.
#[derive(Debug)]
pub enum Reply {
    Complete(ResponseHead, Bytes),
    Head(ResponseHead),
    Chunk(Bytes),
    File(FileBody),
    End,
    /// End of a chunked body with trailer fields (`name: value\r\n` lines, validated); a body
    /// framed otherwise just ends, without them.
    Trailers(Vec<u8>),
    /// The app failed after the head went out: close without a clean end of body.
    Abort,
    /// Accept a WebSocket upgrade (instead of any HTTP response): the `101` goes out with this
    /// subprotocol and these extra headers, and the session starts.
    Accept {
        subprotocol: Option<String>,
        headers: Vec<(Vec<u8>, Vec<u8>)>,
    },
}

impl Reply {
    /// Whether this is the last event of its response.
    pub fn ends_response(&self) -> bool {
        matches!(
            self,
            Reply::Complete(..)
                | Reply::End
                | Reply::Trailers(_)
                | Reply::Abort
                | Reply::Accept { .. }
        )
    }
}

/// The app side's handle on a connection's reply channel. Dropping it before the response
/// finished aborts the response, so a lost job can never leave a connection waiting forever.
pub struct Responder {
    tx: mpsc::Sender<Reply>,
    finished: bool,
}

/// The connection went away; the app should stop producing output.
#[derive(Debug, Clone, Copy)]
pub struct ClientGone;

impl Responder {
    pub fn new(tx: mpsc::Sender<Reply>) -> Self {
        Responder {
            tx,
            finished: false,
        }
    }

    /// Sends without blocking when there is room; otherwise returns the reply back so the
    /// caller can wait for room without holding the GIL.
    pub fn try_send(&mut self, reply: Reply) -> Result<(), TrySend> {
        let ends = reply.ends_response();
        match self.tx.try_send(reply) {
            Ok(()) => {
                self.finished |= ends;
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(r)) => Err(TrySend::Full(r)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(TrySend::Gone),
        }
    }

    /// Blocks this (non-runtime) thread until the connection takes the reply.
    pub fn blocking_send(&mut self, reply: Reply) -> Result<(), ClientGone> {
        let ends = reply.ends_response();
        self.tx.blocking_send(reply).map_err(|_| ClientGone)?;
        self.finished |= ends;
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// The raw channel, for a caller that guarantees the response's end itself without
    /// blocking (the ASGI bridge runs on an event loop, where `Drop`'s blocking send must
    /// never happen).
    pub fn into_sender(mut self) -> mpsc::Sender<Reply> {
        self.finished = true;
        self.tx.clone()
    }
}

pub enum TrySend {
    Full(Reply),
    Gone,
}

impl Drop for Responder {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The channel can only be full if this app thread already sent events, so we are on an
        // app thread (never the runtime's) and may block until the connection drains it.
        if let Err(mpsc::error::TrySendError::Full(abort)) = self.tx.try_send(Reply::Abort) {
            let _ = self.tx.blocking_send(abort);
        }
    }
}

/// What the app threads report about themselves, read by the I/O thread's heartbeat.
pub struct Activity {
    /// Per app thread: CLOCK_MONOTONIC ms when its current request entered the app, 0 if idle.
    pub busy_since: Box<[std::sync::atomic::AtomicU64]>,
    /// Requests finished by this worker.
    pub served: std::sync::atomic::AtomicU64,
}

impl Activity {
    pub fn new(threads: usize) -> Self {
        Activity {
            busy_since: (0..threads)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
            served: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// When the oldest request still in the app started, or 0 if none is.
    pub fn oldest_busy(&self) -> u64 {
        self.busy_since
            .iter()
            .map(|b| b.load(std::sync::atomic::Ordering::Relaxed))
            .filter(|&t| t != 0)
            .min()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn hangup_wakes_waiters_and_later_waits_return_at_once() {
        let h = Arc::new(Hangup::default());
        let waiter = tokio::spawn({
            let h = h.clone();
            async move { h.wait().await }
        });
        tokio::task::yield_now().await;
        assert!(!h.is_set());
        h.set();
        waiter.await.unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), h.wait())
            .await
            .unwrap();
    }
}
