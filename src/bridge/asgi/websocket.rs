//! One ASGI WebSocket connection: `receive` and `send` for a `websocket` scope.
//!
//! Before the app decides, its messages go to the HTTP connection as replies
//! (`websocket.accept` → `Reply::Accept`, a close → 403, `websocket.http.response.*` → the
//! app's own HTTP answer). After accepting, they travel to the session (`crate::ws`) on a
//! channel of their own. Futures complete at once when a channel has what is needed, as in
//! `http.rs`.

use std::sync::Arc;

use bytes::Bytes;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use tokio::sync::mpsc;

use super::response::{bytes_like, header_pairs, message_type, Event, ReplySender, Response};
use super::Shared;
use crate::exchange::{Reply, ResponseHead, WsJob};
use crate::ws::{FromClient, Message, ToClient};

/// Where the handshake and the session are.
#[derive(PartialEq, Eq)]
enum State {
    /// The app has not decided yet.
    Connecting,
    Accepted,
    /// Answering with an HTTP response (`websocket.http.response`).
    Denying,
    /// The app closed (or denied) it.
    Closed,
}

#[pyclass(module = "ferricorn._ferricorn")]
pub struct WebSocketCycle {
    shared: Arc<Shared>,
    replies: ReplySender,
    outgoing: ReplySender<ToClient>,
    /// `None` while an I/O task is waiting on it.
    incoming: Option<mpsc::Receiver<FromClient>>,
    /// An event that arrived for a `receive()` whose future was cancelled.
    stash: Option<Option<FromClient>>,
    state: State,
    denial: Response,
    connect_delivered: bool,
    receiving: bool,
    /// The app broke the protocol after accepting: the session closes with 1011.
    broken: bool,
    target: Bytes,
}

impl WebSocketCycle {
    pub fn new(shared: Arc<Shared>, tx: mpsc::Sender<Reply>, ws: WsJob, target: Bytes) -> Self {
        WebSocketCycle {
            shared,
            replies: ReplySender::new(tx),
            outgoing: ReplySender::new(ws.outgoing),
            incoming: Some(ws.incoming),
            stash: None,
            state: State::Connecting,
            denial: Response::Init,
            connect_delivered: false,
            receiving: false,
            broken: false,
            target,
        }
    }

    fn describe(&self) -> &'static str {
        match self.state {
            State::Connecting => "before the handshake",
            State::Accepted => "after websocket.accept",
            State::Denying => "while sending the denial response",
            State::Closed => "after the websocket was closed",
        }
    }

    fn protocol_error(&mut self, event: &str, what: &str) -> PyErr {
        let err = super::protocol_error(&self.target, event, self.describe(), what);
        self.broken = true;
        self.denial.break_off();
        err
    }
}

#[pymethods]
impl WebSocketCycle {
    fn receive<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        if this.receiving {
            return Err(PyRuntimeError::new_err(
                "receive() called while another receive() is waiting",
            ));
        }
        let shared = this.shared.clone();
        if !this.connect_delivered {
            this.connect_delivered = true;
            let d = PyDict::new(py);
            d.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?;
            return shared.ready(py, d.into_any());
        }
        let got = match (this.stash.take(), this.incoming.as_mut()) {
            (Some(got), _) => Some(got),
            (None, Some(rx)) => match rx.try_recv() {
                Ok(ev) => Some(Some(ev)),
                Err(mpsc::error::TryRecvError::Disconnected) => Some(None),
                Err(mpsc::error::TryRecvError::Empty) => None,
            },
            (None, None) => Some(None),
        };
        if let Some(got) = got {
            return shared.ready(py, event_message(py, got)?.into_any());
        }
        let Some(rx) = this.incoming.take() else {
            return Err(PyRuntimeError::new_err("websocket channel missing"));
        };
        let fut = shared.future(py)?;
        let (cycle, waiter) = (slf.clone().unbind(), fut.clone().unbind());
        this.receiving = true;
        shared.recv_later(rx, move |py, rx, got| {
            let Ok(mut c) = cycle.bind(py).try_borrow_mut() else {
                return;
            };
            c.receiving = false;
            c.incoming = Some(rx);
            if super::is_cancelled(waiter.bind(py)) {
                c.stash = Some(got);
                return;
            }
            match event_message(py, got) {
                Ok(msg) => super::resolve(py, waiter.bind(py), msg.as_any()),
                Err(e) => super::reject(py, waiter.bind(py), e),
            }
        });
        Ok(fut)
    }

    fn send<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (message, kind) = message_type(message)?;
        let mut this = slf.borrow_mut();
        let this = &mut *this;
        match (kind.as_str(), &this.state) {
            ("websocket.accept", State::Connecting) => {
                let subprotocol = match message.get_item(intern!(py, "subprotocol"))? {
                    Some(p) if !p.is_none() => Some(p.extract::<String>()?),
                    _ => None,
                };
                let headers = match message.get_item(intern!(py, "headers"))? {
                    Some(h) => header_pairs(&h)?,
                    None => Vec::new(),
                };
                this.state = State::Accepted;
                this.replies.send(
                    py,
                    &this.shared,
                    vec![Reply::Accept {
                        subprotocol,
                        headers,
                    }],
                )
            }
            ("websocket.send", State::Accepted) => {
                let msg = data_message(&message)?;
                if this.outgoing.is_closed() {
                    return Err(super::ClientDisconnected::new_err(
                        "the WebSocket connection is closed",
                    ));
                }
                this.outgoing
                    .send(py, &this.shared, vec![ToClient::Message(msg)])
            }
            ("websocket.close", State::Connecting) => {
                this.state = State::Closed;
                this.replies.send(py, &this.shared, vec![forbidden()])
            }
            ("websocket.close", State::Accepted) => {
                let code = match message.get_item(intern!(py, "code"))? {
                    Some(c) if !c.is_none() => c.extract::<u16>()?,
                    _ => 1000,
                };
                let reason = match message.get_item(intern!(py, "reason"))? {
                    Some(r) if !r.is_none() => r.extract::<String>()?,
                    _ => String::new(),
                };
                this.state = State::Closed;
                let fut =
                    this.outgoing
                        .send(py, &this.shared, vec![ToClient::Close { code, reason }]);
                this.outgoing.close();
                fut
            }
            (
                "websocket.http.response.start" | "websocket.http.response.body",
                State::Connecting | State::Denying,
            ) => {
                let event = if kind.ends_with("start") {
                    Event::Start
                } else {
                    Event::Body
                };
                this.state = State::Denying;
                match this.denial.event(event, &message) {
                    Ok(replies) => {
                        let replies = replies?;
                        this.replies.send(py, &this.shared, replies)
                    }
                    Err(what) => Err(this.protocol_error(&kind, what)),
                }
            }
            ("websocket.send" | "websocket.close", State::Closed) => Err(
                super::ClientDisconnected::new_err("the WebSocket connection is closed"),
            ),
            _ => Err(this.protocol_error(&kind, "unexpected message for a websocket scope")),
        }
    }

    /// Called once by the task runner when the app returns (`exc` None) or raises.
    #[pyo3(signature = (exc=None))]
    fn finish(&mut self, py: Python<'_>, exc: Option<Bound<'_, PyAny>>) {
        if let Some(e) = &exc {
            self.shared.log_app_error(py, &self.target, e);
        }
        let failed = exc.is_some() || self.broken;
        match self.state {
            State::Connecting => {
                if exc.is_none() {
                    log::error!(
                        "ASGI callable returned without sending the WebSocket handshake for {}",
                        String::from_utf8_lossy(&self.target)
                    );
                }
                let reply = if failed {
                    super::response::internal_error()
                } else {
                    forbidden()
                };
                self.replies.finish(&self.shared, Some(reply));
            }
            State::Denying => {
                let end = self.denial.close().map(|(r, _)| r);
                self.replies.finish(&self.shared, end);
            }
            State::Accepted => {
                let last = failed.then_some(ToClient::Failed);
                self.outgoing.finish(&self.shared, last);
            }
            State::Closed => {}
        }
        self.replies.close();
        self.outgoing.close();
        self.shared.served();
    }
}

/// The app's `websocket.send` payload: exactly one of `bytes` and `text`.
fn data_message(message: &Bound<'_, PyDict>) -> PyResult<Message> {
    let py = message.py();
    let text = message
        .get_item(intern!(py, "text"))?
        .filter(|t| !t.is_none());
    let data = message
        .get_item(intern!(py, "bytes"))?
        .filter(|b| !b.is_none());
    match (text, data) {
        (Some(t), None) => Ok(Message::Text(
            t.cast::<PyString>()
                .map_err(|_| PyTypeError::new_err("'text' must be a str"))?
                .to_str()?
                .to_owned(),
        )),
        (None, Some(b)) => Ok(Message::Binary(bytes_like(&b, "bytes")?)),
        _ => Err(PyTypeError::new_err(
            "websocket.send needs exactly one of 'bytes' and 'text'",
        )),
    }
}

/// `websocket.receive` / `websocket.disconnect` for an event from the session (`None`: the
/// connection is gone without a word).
fn event_message(py: Python<'_>, got: Option<FromClient>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    match got {
        Some(FromClient::Message(Message::Text(t))) => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
            d.set_item(intern!(py, "text"), t)?;
        }
        Some(FromClient::Message(Message::Binary(b))) => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
            d.set_item(intern!(py, "bytes"), PyBytes::new(py, &b))?;
        }
        Some(FromClient::Closed { code, reason }) => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
            d.set_item(intern!(py, "code"), code)?;
            d.set_item(intern!(py, "reason"), reason)?;
        }
        None => {
            d.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
            d.set_item(intern!(py, "code"), 1006)?;
            d.set_item(intern!(py, "reason"), "")?;
        }
    }
    Ok(d)
}

/// The answer to a close before accept (as uvicorn: 403).
fn forbidden() -> Reply {
    let head = ResponseHead {
        code: 403,
        status: Bytes::from_static(b"403 Forbidden"),
        headers: b"Content-Type: text/plain; charset=utf-8\r\n".to_vec(),
        content_length: None,
        close: true,
    };
    Reply::Complete(head, Bytes::from_static(b"Forbidden"))
}
