//! The request-body pump: reads body bytes off the socket only when the app asks for them,
//! and, for ASGI, watches an idle socket for the client hanging up.
//!
//! The app's input ends cleanly only when the decoder reached the body's end
//! ([`BodyTx::finish`]); on every other way out (a reset socket, a failed write, the connection
//! task dropped) the app reads an error, never a truncated body that looks whole.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use super::{ConnError, BODY_PIECE};
use crate::http::body::{Decoder, Step};
use crate::http::error::RequestError;
use crate::http::socket::{read_more, Socket};

type Piece = Result<Bytes, RequestError>;

/// The pump's end of the app's body channel. Dropped without [`finish`](BodyTx::finish), it
/// tells the app that the body is incomplete: a closed channel alone reads as the end of a
/// chunked body (or of an ASGI one), and an app would store a truncated upload as complete.
pub(super) struct BodyTx(Option<mpsc::Sender<Piece>>);

impl BodyTx {
    pub(super) fn new(tx: mpsc::Sender<Piece>) -> Self {
        BodyTx(Some(tx))
    }

    fn sender(&self) -> Option<&mpsc::Sender<Piece>> {
        self.0.as_ref()
    }

    /// The body ended as framed: closing the channel is the app's end of input.
    fn finish(mut self) {
        self.0 = None;
    }
}

impl Drop for BodyTx {
    fn drop(&mut self) {
        let Some(tx) = self.0.take() else { return };
        match tx.try_send(Err(RequestError::IncompleteBody)) {
            // the app has pieces still to read: the error goes after them
            Err(mpsc::error::TrySendError::Full(err)) => {
                if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    rt.spawn(async move {
                        let _ = tx.send(err).await;
                    });
                }
            }
            // sent, or nobody reads any more
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// State of one request's body while the app runs.
pub(super) enum Pump {
    /// Nothing to read (no body, or all of it was buffered).
    Off,
    /// Waiting for the app's first read; holds the sender the pump will use.
    AwaitDemand(oneshot::Receiver<()>, BodyTx),
    Active(BodyTx),
}

pub(super) enum PumpEvent {
    /// The app asked for body beyond what it was given.
    Demanded,
    Progress,
    /// Watching for a hang-up, the client closed its side.
    Hangup,
    /// Watching for a hang-up, the client sent more (its next request): it is still there.
    MoreInput,
}

/// One step of the body pump; a future that never completes when there is nothing to do.
/// Cancel-safe: a slot is reserved before decoding and the piece is sent without an await.
/// With `watch` and the body done, it reads the socket instead to notice a client hanging up.
pub(super) async fn pump_step<S: Socket>(
    sock: &S,
    rbuf: &mut BytesMut,
    decoder: &mut Decoder,
    pump: &mut Pump,
    watch: bool,
    idle: Option<Duration>,
) -> Result<PumpEvent, ConnError> {
    match pump {
        Pump::Off if watch && rbuf.is_empty() => match read_more(sock, rbuf).await {
            Ok(n) if n > 0 => Ok(PumpEvent::MoreInput),
            _ => Ok(PumpEvent::Hangup),
        },
        Pump::Off => std::future::pending().await,
        Pump::AwaitDemand(demand, _) => {
            let asked = demand.await.is_ok();
            let state = std::mem::replace(pump, Pump::Off);
            if let (true, Pump::AwaitDemand(_, tx)) = (asked, state) {
                *pump = Pump::Active(tx);
                return Ok(PumpEvent::Demanded);
            }
            Ok(PumpEvent::Progress)
        }
        Pump::Active(tx) => {
            let Some(sender) = tx.sender() else {
                return std::future::pending().await;
            };
            let Ok(permit) = sender.reserve().await else {
                // the app dropped its input: stop pumping, drain later if needed
                *pump = Pump::Off;
                return Ok(PumpEvent::Progress);
            };
            loop {
                match decoder.decode(rbuf, BODY_PIECE) {
                    Ok(Step::Data(d)) => {
                        permit.send(Ok(d));
                        return Ok(PumpEvent::Progress);
                    }
                    Ok(Step::Done) => {
                        drop(permit);
                        if let Pump::Active(tx) = std::mem::replace(pump, Pump::Off) {
                            tx.finish(); // the app's end of input
                        }
                        return Ok(PumpEvent::Progress);
                    }
                    Ok(Step::NeedMore) => {
                        if rbuf.capacity() - rbuf.len() < BODY_PIECE / 2 {
                            rbuf.reserve(BODY_PIECE);
                        }
                        // edge: --body-timeout bounds each silence while the app waits
                        let err = match crate::http::edge::read_body(sock, rbuf, idle).await {
                            Ok(read) => match read? {
                                0 => RequestError::IncompleteBody,
                                _ => continue,
                            },
                            Err(e) => e,
                        };
                        permit.send(Err(err.clone()));
                        return Err(ConnError::Refused(err));
                    }
                    Err(e) => {
                        permit.send(Err(e.clone()));
                        return Err(ConnError::Refused(e));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(data: &'static [u8]) -> Piece {
        Ok(Bytes::from_static(data))
    }

    #[test]
    fn a_body_sender_dropped_mid_body_tells_the_app_the_body_is_incomplete() {
        let (tx, mut rx) = mpsc::channel(4);
        let tx = BodyTx::new(tx);
        tx.sender().unwrap().try_send(piece(b"half")).unwrap();
        drop(tx);
        assert!(matches!(rx.try_recv(), Ok(Ok(b)) if &b[..] == b"half"));
        assert!(matches!(
            rx.try_recv(),
            Ok(Err(RequestError::IncompleteBody))
        ));
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[test]
    fn a_finished_body_sender_only_closes_the_channel() {
        let (tx, mut rx) = mpsc::channel::<Piece>(4);
        BodyTx::new(tx).finish();
        assert!(matches!(
            rx.try_recv(),
            Err(mpsc::error::TryRecvError::Disconnected)
        ));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_error_queues_behind_pieces_the_app_has_not_read_yet() {
        let (tx, mut rx) = mpsc::channel(1);
        let tx = BodyTx::new(tx);
        tx.sender().unwrap().try_send(piece(b"full")).unwrap();
        drop(tx); // the channel is full: the error is sent once the app made room
        assert!(matches!(rx.recv().await, Some(Ok(b)) if &b[..] == b"full"));
        assert!(matches!(
            rx.recv().await,
            Some(Err(RequestError::IncompleteBody))
        ));
        assert!(rx.recv().await.is_none());
    }
}
