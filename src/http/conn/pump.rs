//! The request-body pump: reads body bytes off the socket only when the app asks for them,
//! and, for ASGI, watches an idle socket for the client hanging up.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot};

use super::{ConnError, BODY_PIECE};
use crate::http::body::{Decoder, Step};
use crate::http::error::RequestError;
use crate::http::socket::{read_more, Socket};

/// State of one request's body while the app runs.
pub(super) enum Pump {
    /// Nothing to read (no body, or all of it was buffered).
    Off,
    /// Waiting for the app's first read; holds the sender the pump will use.
    AwaitDemand(
        oneshot::Receiver<()>,
        mpsc::Sender<Result<Bytes, RequestError>>,
    ),
    Active(mpsc::Sender<Result<Bytes, RequestError>>),
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
            let Ok(permit) = tx.reserve().await else {
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
                        *pump = Pump::Off; // dropping the sender is the app's end of input
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
