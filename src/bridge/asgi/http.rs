//! One ASGI HTTP request/response cycle: the `receive` and `send` the app gets.
//!
//! Both return an asyncio future. When the answer is already at hand (a body that came with
//! the head, a reply that fits in the connection's channel — nearly always) the future is
//! returned completed, so `await` does not go round the event loop. Otherwise a task on the
//! I/O thread waits and resolves it through the inbox (see `inbox.rs`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use tokio::sync::{mpsc, oneshot};

use super::response::{message_type, Event, ReplySender, Response};
use super::Shared;
use crate::exchange::{Hangup, Reply, RequestBody};
use crate::http::error::RequestError;

type Piece = Result<Bytes, RequestError>;

/// What is left of the request body.
enum Body {
    /// Not asked for yet: all of it (maybe empty) is here.
    Whole(Bytes),
    Stream {
        prefix: Option<BytesMut>,
        /// `None` while an I/O task is waiting on it.
        chunks: Option<mpsc::Receiver<Piece>>,
        demand: Option<oneshot::Sender<()>>,
        /// A piece that arrived for a `receive()` whose future was cancelled.
        stash: Option<Option<Piece>>,
    },
    /// `more_body: False` was delivered, or the client went away.
    Done,
}

#[pyclass(module = "ferricorn._ferricorn")]
pub struct HttpCycle {
    shared: Arc<Shared>,
    replies: ReplySender,
    body: Body,
    hangup: Option<Arc<Hangup>>,
    response: Response,
    /// A `receive()` is waiting on the I/O thread.
    receiving: bool,
    target: Bytes,
    /// The hooks' `req`, when pre_request/post_request are set.
    hook_request: Option<Py<PyAny>>,
    /// Status and headers as started, for post_request's `resp`.
    started: Option<(u16, super::response::HeaderList)>,
}

impl HttpCycle {
    pub fn new(
        shared: Arc<Shared>,
        tx: mpsc::Sender<Reply>,
        body: RequestBody,
        hangup: Option<Arc<Hangup>>,
        target: Bytes,
    ) -> Self {
        let body = match body {
            RequestBody::Empty => Body::Whole(Bytes::new()),
            RequestBody::Full(b) => Body::Whole(b),
            RequestBody::Stream(s) => Body::Stream {
                prefix: Some(s.prefix),
                chunks: Some(s.chunks),
                demand: s.demand,
                stash: None,
            },
        };
        HttpCycle {
            shared,
            replies: ReplySender::new(tx),
            body,
            hangup,
            response: Response::Init,
            receiving: false,
            target,
            hook_request: None,
            started: None,
        }
    }

    pub fn set_hook_request(&mut self, req: Py<PyAny>) {
        self.hook_request = Some(req);
    }

    /// Ends the cycle: the response is closed however the app left it (`failed`: the app or a
    /// hook raised, already logged), post_request runs, the request counts as served.
    pub fn finish(&mut self, py: Python<'_>, exc: Option<&Bound<'_, PyAny>>, failed: bool) {
        // the client left before the response was complete: whatever the app raised about it
        // (ClientDisconnected, Starlette's ClientDisconnect...) is the client's doing, so it is
        // a debug line, as gunicorn's ASGI worker logs it, not an error with a traceback
        let client_left = self.hangup.as_ref().is_some_and(|h| h.is_set());
        match exc {
            Some(e) if client_left && !self.response.is_over() => log::debug!(
                "ASGI app for {} ended after the client left: {e}",
                String::from_utf8_lossy(&self.target)
            ),
            Some(e) => self.shared.log_app_error(py, &self.target, e),
            None => {}
        }
        let end = self.response.close();
        let served_500 = matches!(&end, Some((_, true)));
        if served_500 && !failed && exc.is_none() && !client_left {
            log::error!(
                "ASGI callable returned without completing the response to {}",
                String::from_utf8_lossy(&self.target)
            );
        }
        self.replies.finish(&self.shared, end.map(|(r, _)| r));
        if let (Some(hooks), Some(req)) = (&self.shared.hooks, &self.hook_request) {
            if hooks.wants_post_request() {
                self.post_request(py, hooks, req.bind(py), served_500);
            }
        }
        self.shared.served();
    }

    fn post_request(
        &self,
        py: Python<'_>,
        hooks: &crate::hooks::RequestHooks,
        req: &Bound<'_, PyAny>,
        served_500: bool,
    ) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let (code, headers) = match (&self.started, served_500) {
            (Some((code, headers)), false) => (*code, headers.clone()),
            _ => (
                500,
                vec![(b"content-type".to_vec(), b"text/plain".to_vec())],
            ),
        };
        let status = crate::bridge::head::HeadBuilder::for_code(code, 0)
            .finish()
            .status;
        let status = pyo3::types::PyString::new(py, &text(&status));
        let list = pyo3::types::PyList::empty(py);
        for (n, v) in &headers {
            let _ = list.append((text(n), text(v)));
        }
        hooks.post_request(py, req, None, Some((status.as_any(), list.as_any())));
    }

    /// The message for a body piece taken off the channel (`None`: the body ended).
    fn body_message<'py>(
        &mut self,
        py: Python<'py>,
        got: Option<Piece>,
    ) -> PyResult<Bound<'py, PyDict>> {
        match got {
            Some(Ok(data)) => request_message(py, &data, true),
            None => {
                self.body = Body::Done;
                request_message(py, b"", false)
            }
            Some(Err(e)) => {
                // a truncated or corrupt body: the connection answers 400 and closes
                log::debug!("request body failed: {e}");
                self.body = Body::Done;
                disconnect_message(py)
            }
        }
    }

    /// The next message if it is already here.
    fn try_receive<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let gone = self.response.is_over() || self.hangup.as_ref().is_none_or(|h| h.is_set());
        let got = match &mut self.body {
            Body::Whole(data) => {
                let data = std::mem::take(data);
                self.body = Body::Done;
                return request_message(py, &data, false).map(Some);
            }
            Body::Done if gone => return disconnect_message(py).map(Some),
            Body::Done => return Ok(None),
            Body::Stream {
                prefix,
                chunks,
                demand,
                stash,
            } => {
                if let Some(d) = demand.take() {
                    // the first read: only now does the connection read on (and send 100)
                    let _ = d.send(());
                }
                if let Some(p) = prefix.take().filter(|p| !p.is_empty()) {
                    return request_message(py, &p, true).map(Some);
                }
                if let Some(got) = stash.take() {
                    got
                } else {
                    match chunks.as_mut().map(|rx| rx.try_recv()) {
                        Some(Ok(got)) => Some(got),
                        Some(Err(mpsc::error::TryRecvError::Disconnected)) => None,
                        Some(Err(mpsc::error::TryRecvError::Empty)) | None => return Ok(None),
                    }
                }
            }
        };
        self.body_message(py, got).map(Some)
    }
}

#[pymethods]
impl HttpCycle {
    fn receive<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        if this.receiving {
            return Err(PyRuntimeError::new_err(
                "receive() called while another receive() is waiting",
            ));
        }
        let shared = this.shared.clone();
        if let Some(msg) = this.try_receive(py)? {
            return shared.ready(py, msg.into_any());
        }
        // nothing yet: wait on the I/O thread
        let fut = shared.future(py)?;
        let (cycle, waiter) = (slf.clone().unbind(), fut.clone().unbind());
        this.receiving = true;
        if let Body::Stream { chunks, .. } = &mut this.body {
            let Some(rx) = chunks.take() else {
                return Err(PyRuntimeError::new_err("request body channel missing"));
            };
            shared.recv_later(rx, move |py, rx, got| {
                let Ok(mut c) = cycle.bind(py).try_borrow_mut() else {
                    return;
                };
                c.receiving = false;
                if let Body::Stream { chunks, stash, .. } = &mut c.body {
                    *chunks = Some(rx);
                    if super::is_cancelled(waiter.bind(py)) {
                        *stash = Some(got);
                        return;
                    }
                }
                match c.body_message(py, got) {
                    Ok(msg) => super::resolve(py, waiter.bind(py), msg.as_any()),
                    Err(e) => super::reject(py, waiter.bind(py), e),
                }
            });
        } else {
            let hangup = this.hangup.clone();
            let inbox = shared.inbox.clone();
            shared.rt.spawn(async move {
                if let Some(h) = hangup {
                    h.wait().await;
                }
                inbox.push(Box::new(move |py| {
                    if let Ok(mut c) = cycle.bind(py).try_borrow_mut() {
                        c.receiving = false;
                    }
                    if let Ok(msg) = disconnect_message(py) {
                        super::resolve(py, waiter.bind(py), msg.as_any());
                    }
                }));
            });
        }
        Ok(fut)
    }

    fn send<'py>(
        slf: &Bound<'py, Self>,
        message: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let (message, kind) = message_type(message)?;
        let event = match kind.as_str() {
            "http.response.start" => Some(Event::Start),
            "http.response.body" => Some(Event::Body),
            "http.response.pathsend" => Some(Event::PathSend),
            "http.response.trailers" => Some(Event::Trailers),
            _ => None,
        };
        let mut this = slf.borrow_mut();
        if !this.response.is_over() && this.hangup.as_ref().is_some_and(|h| h.is_set()) {
            return Err(super::ClientDisconnected::new_err("the client went away"));
        }
        if event == Some(Event::Start) && this.hook_request.is_some() {
            this.started = super::response::started_facts(&message);
        }
        let outcome = match event {
            Some(event) => this.response.event(event, &message),
            None => Err("unknown message type for an http scope"),
        };
        match outcome {
            Ok(replies) => {
                let replies = replies?;
                this.replies.send(py, &this.shared, replies)
            }
            Err(what) => {
                let state = this.response.describe();
                this.response.break_off();
                Err(super::protocol_error(&this.target, &kind, state, what))
            }
        }
    }

    /// Called once by the task runner when the app returns (`exc` None) or raises.
    #[pyo3(name = "finish", signature = (exc=None))]
    fn py_finish(&mut self, py: Python<'_>, exc: Option<Bound<'_, PyAny>>) {
        let failed = exc.is_some();
        self.finish(py, exc.as_ref(), failed);
    }
}

fn request_message<'py>(py: Python<'py>, data: &[u8], more: bool) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "type"), intern!(py, "http.request"))?;
    d.set_item(intern!(py, "body"), PyBytes::new(py, data))?;
    d.set_item(intern!(py, "more_body"), more)?;
    Ok(d)
}

fn disconnect_message(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item(intern!(py, "type"), intern!(py, "http.disconnect"))?;
    Ok(d)
}
