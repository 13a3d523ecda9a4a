//! Accept loops: one task per listening socket, each connection served on its own task.
//!
//! A worker whose every app thread has been stuck in one request for a while stops accepting,
//! so new connections wait in the shared backlog for a healthy worker instead of queueing
//! behind a hung request (gunicorn's threaded worker keeps accepting them).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::exchange::{Activity, ConnInfo};
use crate::http::conn::{self, ConnConfig};
use crate::http::socket::Socket;
use crate::master::heartbeat::now_ms;
use crate::net::Listener;

/// How long all app threads must have been inside their current requests before we stop
/// taking new connections.
const STALLED_AFTER_MS: u64 = 1000;
/// How often a paused (or idle) loop looks again.
const RECHECK: Duration = Duration::from_millis(100);

/// One listening socket of either family.
trait Acceptor: Send + 'static {
    type Stream: Socket;
    fn accept(
        &self,
    ) -> impl std::future::Future<Output = io::Result<(Self::Stream, Option<SocketAddr>)>> + Send;
}

impl Acceptor for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;
    async fn accept(&self) -> io::Result<(Self::Stream, Option<SocketAddr>)> {
        let (sock, peer) = tokio::net::TcpListener::accept(self).await?;
        // responses are written whole; Nagle would only add latency
        let _ = sock.set_nodelay(true);
        Ok((sock, Some(peer)))
    }
}

impl Acceptor for tokio::net::UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<(Self::Stream, Option<SocketAddr>)> {
        let (sock, _) = tokio::net::UnixListener::accept(self).await?;
        Ok((sock, None))
    }
}

/// What each accepted connection is handed.
pub struct AcceptContext {
    pub cfg: Arc<ConnConfig>,
    pub shutdown: watch::Receiver<bool>,
    pub alive: mpsc::Sender<()>,
    pub activity: Arc<Activity>,
}

/// Starts accepting on `listener` until shutdown is signalled.
pub fn spawn(listener: Listener, ctx: AcceptContext) -> io::Result<()> {
    match listener {
        Listener::Tcp(l) => {
            let l = tokio::net::TcpListener::from_std(l)?;
            let local = l.local_addr()?;
            tokio::spawn(accept_loop(
                l,
                (local.ip().to_string(), local.port().to_string()),
                ctx,
            ));
        }
        Listener::Unix(l) => {
            let l = tokio::net::UnixListener::from_std(l)?;
            let path = l
                .local_addr()?
                .as_pathname()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            tokio::spawn(accept_loop(l, (path, String::new()), ctx));
        }
    }
    Ok(())
}

async fn accept_loop<A: Acceptor>(l: A, (name, port): (String, String), ctx: AcceptContext) {
    let mut stop = ctx.shutdown.clone();
    let serve = |sock: A::Stream, peer: Option<SocketAddr>| {
        let info = Arc::new(ConnInfo {
            peer,
            server_name: name.clone(),
            server_port: port.clone(),
            // decided once per connection, from the socket peer (`http::forwarded`)
            forwarded_trusted: ctx.cfg.edge.forwarded_allow.allows(peer.map(|p| p.ip())),
            proxy: None,
            tls: None,
            cgi_vars: Vec::new(),
        });
        let (cfg, shutdown, alive) = (ctx.cfg.clone(), ctx.shutdown.clone(), ctx.alive.clone());
        tokio::spawn(async move {
            match cfg.tls.clone() {
                None => conn::serve(sock, info, cfg, shutdown).await,
                Some(tls) => crate::http::tls::serve(sock, tls, info, cfg, shutdown).await,
            }
            drop(alive);
        });
    };
    loop {
        let stalled = stalled(&ctx.activity);
        let accepted = tokio::select! {
            r = l.accept(), if !stalled => r,
            _ = tokio::time::sleep(RECHECK) => continue,
            _ = stop.changed() => {
                // connections the kernel already completed are ours to answer
                while let Ok(Ok((sock, peer))) = tokio::time::timeout(Duration::ZERO, l.accept()).await {
                    serve(sock, peer);
                }
                return;
            }
        };
        match accepted {
            Ok((sock, peer)) => serve(sock, peer),
            Err(e) => backoff(e).await,
        }
    }
}

/// Every app thread has been inside its current request for longer than STALLED_AFTER_MS.
fn stalled(activity: &Activity) -> bool {
    let now = now_ms();
    activity.busy_since.iter().all(|b| {
        let t = b.load(std::sync::atomic::Ordering::Relaxed);
        t != 0 && now.saturating_sub(t) > STALLED_AFTER_MS
    })
}

/// Accept errors are about this process or the system (EMFILE, ENOBUFS), not the listener:
/// log, pause briefly so a full fd table can drain, and keep accepting.
async fn backoff(err: io::Error) {
    log::error!("accept() failed: {err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
