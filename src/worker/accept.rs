//! Accept loops: one task per listening socket, each connection served on its own task.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::exchange::ConnInfo;
use crate::http::conn::{self, ConnConfig};
use crate::net::Listener;

/// Starts accepting on `listener` until shutdown is signalled.
pub fn spawn(
    listener: Listener,
    cfg: Arc<ConnConfig>,
    shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) -> io::Result<()> {
    match listener {
        Listener::Tcp(l) => {
            let l = tokio::net::TcpListener::from_std(l)?;
            let local = l.local_addr()?;
            let (name, port) = (local.ip().to_string(), local.port().to_string());
            tokio::spawn(async move {
                let mut stop = shutdown.clone();
                loop {
                    let accepted = tokio::select! {
                        r = l.accept() => r,
                        _ = stop.changed() => {
                            // connections the kernel already completed are ours to answer
                            while let Ok(Ok((sock, peer))) = tokio::time::timeout(Duration::ZERO, l.accept()).await {
                                let _ = sock.set_nodelay(true);
                                let info = Arc::new(ConnInfo { peer: Some(peer), server_name: name.clone(), server_port: port.clone() });
                                serve(sock, info, &cfg, &shutdown, &alive);
                            }
                            return;
                        }
                    };
                    match accepted {
                        Ok((sock, peer)) => {
                            // responses are written whole; Nagle would only add latency
                            let _ = sock.set_nodelay(true);
                            let info = Arc::new(ConnInfo {
                                peer: Some(peer),
                                server_name: name.clone(),
                                server_port: port.clone(),
                            });
                            serve(sock, info, &cfg, &shutdown, &alive);
                        }
                        Err(e) => backoff(e).await,
                    }
                }
            });
        }
        Listener::Unix(l) => {
            let l = tokio::net::UnixListener::from_std(l)?;
            let path = l
                .local_addr()?
                .as_pathname()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            tokio::spawn(async move {
                let mut stop = shutdown.clone();
                loop {
                    let accepted = tokio::select! {
                        r = l.accept() => r,
                        _ = stop.changed() => {
                            while let Ok(Ok((sock, _))) = tokio::time::timeout(Duration::ZERO, l.accept()).await {
                                let info = Arc::new(ConnInfo { peer: None, server_name: path.clone(), server_port: String::new() });
                                serve(sock, info, &cfg, &shutdown, &alive);
                            }
                            return;
                        }
                    };
                    match accepted {
                        Ok((sock, _)) => {
                            let info = Arc::new(ConnInfo {
                                peer: None,
                                server_name: path.clone(),
                                server_port: String::new(),
                            });
                            serve(sock, info, &cfg, &shutdown, &alive);
                        }
                        Err(e) => backoff(e).await,
                    }
                }
            });
        }
    }
    Ok(())
}

fn serve<S: crate::http::socket::Socket>(
    sock: S,
    info: Arc<ConnInfo>,
    cfg: &Arc<ConnConfig>,
    shutdown: &watch::Receiver<bool>,
    alive: &mpsc::Sender<()>,
) {
    let (cfg, shutdown, alive) = (cfg.clone(), shutdown.clone(), alive.clone());
    tokio::spawn(async move {
        conn::serve(sock, info, cfg, shutdown).await;
        drop(alive);
    });
}

/// Accept errors are about this process or the system (EMFILE, ENOBUFS), not the listener:
/// log, pause briefly so a full fd table can drain, and keep accepting.
async fn backoff(err: io::Error) {
    log::error!("accept() failed: {err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}
