//! A connection's WebSocket upgrade (ASGI only): the request goes to the app, whose decision
//! comes back on the reply channel — `Reply::Accept` writes the `101` and hands the socket to
//! the session (`crate::ws`); any other reply is an ordinary HTTP answer (a 403 for a close
//! before accept, or the app's own denial response), after which the connection closes.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Conn, ConnError, InFlight, LogStart, Outcome, RequestFacts, SetOnDrop};
use crate::exchange::{Hangup, Job, Reply, RequestBody, Responder, WsJob};
use crate::http::request::RequestHead;
use crate::http::response::error_response_with;
use crate::http::socket::{read_more, write_all, Socket};
use crate::ws::{FromClient, HandshakeError, Negotiated, ToClient, UpgradeRequest};

/// Messages buffered each way between the session and the app.
const WS_CAPACITY: usize = 16;

/// An accepted upgrade, ready to run on the socket.
pub struct Session {
    negotiated: Negotiated,
    to_app: mpsc::Sender<FromClient>,
    from_app: mpsc::Receiver<ToClient>,
    /// The app's sender, without keeping it alive: how a worker shutdown closes the session.
    app_side: mpsc::WeakSender<ToClient>,
}

impl<S: Socket> Conn<S> {
    /// Runs the handshake through the app. `Some` when it accepted.
    pub(super) async fn websocket(
        &mut self,
        head: RequestHead,
        req: UpgradeRequest,
        secure: bool,
    ) -> Result<Option<Session>, ConnError> {
        let cfg = self.cfg.clone();
        let Some(_in_flight) = self.enter_or_refuse(&cfg).await? else {
            return Ok(None);
        };
        let (to_app, incoming) = mpsc::channel(WS_CAPACITY);
        let (outgoing, from_app) = mpsc::channel(WS_CAPACITY);
        let app_side = outgoing.downgrade();
        let hangup = Arc::new(Hangup::default());
        let facts = RequestFacts {
            version: head.version,
            is_head: false,
            keep_alive: false,
        };
        let log_start = cfg
            .access_log
            .as_ref()
            .map(|_| LogStart::new(&head, secure));
        let job = Job {
            head,
            conn: self.info.clone(),
            secure,
            body: RequestBody::Empty,
            reply: Responder::new(self.reply_tx.clone()),
            hangup: Some(hangup.clone()),
            websocket: Some(WsJob {
                subprotocols: req.subprotocols().to_vec(),
                incoming,
                outgoing,
            }),
        };
        cfg.jobs.push(job).map_err(|_| ConnError::AppGone)?;
        let _over = SetOnDrop(hangup);

        let mut out = Outcome::default();
        let mut watching = true;
        let session = loop {
            let reply = tokio::select! {
                reply = self.reply_rx.recv() => reply.unwrap_or(Reply::Abort),
                // a client that gives up before the app decides: nobody to answer
                n = read_more(&self.sock, &mut self.rbuf), if watching => {
                    match n {
                        Ok(n) if n > 0 => watching = false,
                        _ => return Ok(None),
                    }
                    continue;
                }
            };
            if let Reply::Accept {
                subprotocol,
                headers,
            } = reply
            {
                let ws_cfg = cfg.websocket.as_ref().ok_or(ConnError::AppGone)?;
                match crate::ws::accept_response(&req, subprotocol.as_deref(), &headers, ws_cfg) {
                    Ok((bytes, negotiated)) => {
                        write_all(&self.sock, &bytes).await?;
                        out.status = Bytes::from_static(b"101 Switching Protocols");
                        out.clean = true;
                        break Some(Session {
                            negotiated,
                            to_app,
                            from_app,
                            app_side,
                        });
                    }
                    Err(e) => {
                        log::error!("cannot accept the WebSocket: {e}");
                        self.abort_before_head(&mut out)?;
                        self.flush().await?;
                        break None;
                    }
                }
            }
            let done = self.on_reply(reply, &facts, &mut out).await?;
            self.flush().await?;
            if done {
                break None;
            }
        };
        if let (Some(log), Some(start)) = (&cfg.access_log, log_start) {
            if out.clean || out.early_error {
                log.log(&start.finish(self.info.clone(), &mut out));
            }
        }
        Ok(session)
    }

    /// An upgrade attempt that is malformed: 400, or 426 naming the version we speak.
    pub(super) async fn refuse_upgrade(&mut self, err: HandshakeError) -> ConnError {
        log::debug!("invalid WebSocket upgrade from {}: {err}", self.peer());
        let code = err.status();
        let reason = if code == 426 {
            "Upgrade Required"
        } else {
            "Bad Request"
        };
        self.wbuf.clear();
        error_response_with(
            &mut self.wbuf,
            code,
            reason,
            &err.to_string(),
            err.extra_headers(),
        );
        match write_all(&self.sock, &self.wbuf).await {
            Ok(()) => ConnError::Upgrade(err),
            Err(e) => ConnError::Io(e),
        }
    }
}

/// Runs an accepted session on the connection's socket until it closes.
pub(super) async fn run_session<S: Socket>(conn: Conn<S>, session: Session) {
    let Conn {
        sock,
        rbuf,
        cfg,
        mut shutdown,
        ..
    } = conn;
    let Some(ws_cfg) = cfg.websocket.as_ref() else {
        return;
    };
    // a session counts against --worker-connections for as long as it is open
    let _in_flight = InFlight::enter(&cfg.in_flight, 0);
    let run = crate::ws::run(
        sock,
        rbuf,
        session.negotiated,
        ws_cfg,
        session.to_app,
        session.from_app,
    );
    tokio::pin!(run);
    let stopping = async {
        if !*shutdown.borrow() {
            let _ = shutdown.changed().await;
        }
    };
    tokio::select! {
        () = &mut run => return,
        () = stopping => {}
    }
    // the worker is stopping: close as uvicorn does, 1012 (service restart), and let the
    // closing handshake finish; the app sees the disconnect
    if let Some(tx) = session.app_side.upgrade() {
        let _ = tx.try_send(ToClient::Close {
            code: 1012,
            reason: String::new(),
        });
    }
    run.await;
}
