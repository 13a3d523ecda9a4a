//! One ASGI HTTP request/response cycle: the `receive` and `send` the app gets.
//!
//! Both return an asyncio future. When the answer is already at hand (a body that came with
//! the head, a reply that fits in the connection's channel — nearly always) the future is
//! returned completed, so `await` does not go round the event loop. Otherwise a task on the
//! I/O thread waits and resolves it through the inbox (see `inbox.rs`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use tokio::sync::{mpsc, oneshot};

use super::Shared;
use crate::bridge::head::HeadBuilder;
use crate::exchange::{FileBody, Hangup, Reply, RequestBody, ResponseHead};
use crate::http::error::RequestError;

/// What is left of the request body.
enum Body {
    /// Not asked for yet: all of it (maybe empty) is here.
    Whole(Bytes),
    Stream {
        prefix: Option<BytesMut>,
        /// `None` while an I/O task is waiting on it.
        chunks: Option<mpsc::Receiver<Result<Bytes, RequestError>>>,
        demand: Option<oneshot::Sender<()>>,
        /// A piece that arrived for a `receive()` whose future was cancelled.
        stash: Option<Option<Result<Bytes, RequestError>>>,
    },
    /// `more_body: False` was delivered, or the client went away.
    Done,
}

/// Where the response is.
#[derive(Debug)]
enum Response {
    Init,
    /// `http.response.start` given; the head goes out with the first body message.
    Started(ResponseHead),
    Streaming,
    Done,
    /// The app broke the protocol: `head_sent` says whether anything is on the wire.
    Broken { head_sent: bool },
}

impl Response {
    fn name(&self) -> &'static str {
        match self {
            Response::Init => "before http.response.start",
            Response::Started(_) => "after http.response.start",
            Response::Streaming => "while streaming the body",
            Response::Done => "after the response completed",
            Response::Broken { .. } => "after an earlier protocol error",
        }
    }
}

#[pyclass(module = "ferricorn._ferricorn")]
pub struct HttpCycle {
    shared: Arc<Shared>,
    tx: Option<mpsc::Sender<Reply>>,
    body: Body,
    hangup: Option<Arc<Hangup>>,
    response: Response,
    /// A `receive()` is waiting on the I/O thread.
    receiving: bool,
    /// Sends handed to I/O tasks because the channel was full; later sends queue behind them.
    sends_in_flight: usize,
    target: Bytes,
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
            tx: Some(tx),
            body,
            hangup,
            response: Response::Init,
            receiving: false,
            sends_in_flight: 0,
            target,
        }
    }

    fn response_over(&self) -> bool {
        matches!(self.response, Response::Done | Response::Broken { .. })
    }

    /// The message for a body piece taken off the channel (`None`: the body ended).
    fn body_message<'py>(
        &mut self,
        py: Python<'py>,
        got: Option<Result<Bytes, RequestError>>,
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
        let gone = self.response_over() || self.hangup.as_ref().is_none_or(|h| h.is_set());
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

    /// Sends replies in order; the future completes once the connection has taken them.
    fn send_replies<'py>(
        slf: &Bound<'py, Self>,
        replies: Vec<Reply>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let shared = this.shared.clone();
        let Some(tx) = this.tx.clone() else {
            return shared.ready(py, py.None().into_bound(py));
        };
        let mut rest = replies.into_iter();
        if this.sends_in_flight == 0 {
            loop {
                let Some(reply) = rest.next() else {
                    return shared.ready(py, py.None().into_bound(py));
                };
                match tx.try_send(reply) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(reply)) => {
                        let pending: Vec<Reply> = std::iter::once(reply).chain(rest).collect();
                        rest = pending.into_iter();
                        break;
                    }
                    // the client left: like uvicorn, sends after a disconnect are dropped
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return shared.ready(py, py.None().into_bound(py));
                    }
                }
            }
        }
        // the connection is behind: wait for room on the I/O thread
        let fut = shared.future(py)?;
        this.sends_in_flight += 1;
        let (cycle, waiter) = (slf.clone().unbind(), fut.clone().unbind());
        let inbox = shared.inbox.clone();
        shared.rt.spawn(async move {
            for reply in rest {
                if tx.send(reply).await.is_err() {
                    break;
                }
            }
            inbox.push(Box::new(move |py| {
                if let Ok(mut c) = cycle.bind(py).try_borrow_mut() {
                    c.sends_in_flight -= 1;
                }
                super::resolve(py, waiter.bind(py), py.None().bind(py));
            }));
        });
        Ok(fut)
    }

    /// The app broke the protocol: log it, remember that the response cannot end well, and
    /// hand back the error `send` raises.
    fn protocol_error(&mut self, event: &str, what: &str) -> PyErr {
        let msg = format!(
            "ASGI protocol error in {}: {what} ({event:?} {})",
            String::from_utf8_lossy(&self.target),
            self.response.name()
        );
        log::error!("{msg}");
        let head_sent = matches!(
            self.response,
            Response::Streaming | Response::Done | Response::Broken { head_sent: true }
        );
        self.response = Response::Broken { head_sent };
        PyRuntimeError::new_err(msg)
    }

    /// Ends the response whatever state the app left it in (called once, when its task ends).
    fn close_response(&mut self, py: Python<'_>, failed: bool) {
        let reply = match std::mem::replace(&mut self.response, Response::Done) {
            Response::Done => None,
            Response::Streaming | Response::Broken { head_sent: true } => Some(Reply::Abort),
            Response::Init | Response::Started(_) | Response::Broken { head_sent: false } => {
                let client_left = self.hangup.as_ref().is_some_and(|h| h.is_set());
                if !failed && !client_left {
                    log::error!(
                        "ASGI callable returned without completing the response to {}",
                        String::from_utf8_lossy(&self.target)
                    );
                }
                Some(internal_error())
            }
        };
        let Some(tx) = self.tx.take() else { return };
        let Some(reply) = reply else { return };
        if self.sends_in_flight == 0 {
            match tx.try_send(reply) {
                Err(mpsc::error::TrySendError::Full(reply)) => {
                    self.shared.rt.spawn(async move {
                        let _ = tx.send(reply).await;
                    });
                }
                _ => {}
            }
        } else {
            self.shared.rt.spawn(async move {
                let _ = tx.send(reply).await;
            });
        }
        let _ = py;
    }
}

#[pymethods]
impl HttpCycle {
    fn receive<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let mut this = slf.borrow_mut();
        let shared = this.shared.clone();
        if this.receiving {
            return Err(PyRuntimeError::new_err(
                "receive() called while another receive() is waiting",
            ));
        }
        let msg = this.try_receive(py)?;
        if let Some(msg) = msg {
            return shared.ready(py, msg.into_any());
        }
        // nothing yet: wait on the I/O thread
        let fut = shared.future(py)?;
        let (cycle, waiter) = (slf.clone().unbind(), fut.clone().unbind());
        let inbox = shared.inbox.clone();
        this.receiving = true;
        if let Body::Stream { chunks, .. } = &mut this.body {
            let Some(mut rx) = chunks.take() else {
                return Err(PyRuntimeError::new_err("request body channel missing"));
            };
            shared.rt.spawn(async move {
                let got = rx.recv().await;
                inbox.push(Box::new(move |py| {
                    let cycle = cycle.bind(py);
                    let Ok(mut c) = cycle.try_borrow_mut() else { return };
                    c.receiving = false;
                    if let Body::Stream { chunks, stash, .. } = &mut c.body {
                        *chunks = Some(rx);
                        if is_cancelled(waiter.bind(py)) {
                            *stash = Some(got);
                            return;
                        }
                    }
                    match c.body_message(py, got) {
                        Ok(msg) => super::resolve(py, waiter.bind(py), msg.as_any()),
                        Err(e) => super::reject(py, waiter.bind(py), e),
                    }
                }));
            });
        } else {
            let hangup = this.hangup.clone();
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
        let message = message.cast::<PyDict>().map_err(|_| {
            PyTypeError::new_err(format!(
                "ASGI messages must be dicts, got {}",
                type_name(message)
            ))
        })?;
        let kind = match message.get_item(intern!(py, "type"))? {
            Some(t) => t.cast_into::<PyString>().map_err(|_| {
                PyTypeError::new_err("the message's 'type' must be a str")
            })?,
            None => return Err(PyValueError::new_err("ASGI message without a 'type'")),
        };
        let kind = kind.to_str()?;
        let replies = {
            let mut this = slf.borrow_mut();
            match (kind, &this.response) {
                ("http.response.start", Response::Init) => {
                    let head = response_head(message)?;
                    this.response = Response::Started(head);
                    return this.shared.ready(py, py.None().into_bound(py));
                }
                ("http.response.body", Response::Started(_) | Response::Streaming) => {
                    let body = body_bytes(message)?;
                    let more = flag(message, intern!(py, "more_body"))?;
                    let state = std::mem::replace(
                        &mut this.response,
                        if more { Response::Streaming } else { Response::Done },
                    );
                    match (state, more) {
                        (Response::Started(head), false) => vec![Reply::Complete(head, body)],
                        (Response::Started(head), true) if body.is_empty() => {
                            vec![Reply::Head(head)]
                        }
                        (Response::Started(head), true) => {
                            vec![Reply::Head(head), Reply::Chunk(body)]
                        }
                        (_, true) if body.is_empty() => return this.shared.ready(py, py.None().into_bound(py)),
                        (_, true) => vec![Reply::Chunk(body)],
                        (_, false) if body.is_empty() => vec![Reply::End],
                        (_, false) => vec![Reply::Chunk(body), Reply::End],
                    }
                }
                ("http.response.pathsend", Response::Started(_)) => {
                    let file = path_file(message)?;
                    let Response::Started(mut head) =
                        std::mem::replace(&mut this.response, Response::Done)
                    else {
                        unreachable!("matched Started above");
                    };
                    head.content_length.get_or_insert(file.len);
                    vec![Reply::Head(head), Reply::File(file), Reply::End]
                }
                (
                    "http.response.start" | "http.response.body" | "http.response.pathsend",
                    _,
                ) => {
                    let what = match (&this.response, kind) {
                        (Response::Init, _) => "expected 'http.response.start' first",
                        (Response::Started(_), _) => "'http.response.start' was already sent",
                        (_, "http.response.pathsend") => "pathsend must follow the start",
                        _ => "the response is already complete",
                    };
                    return Err(this.protocol_error(kind, what));
                }
                _ => {
                    return Err(this.protocol_error(kind, "unknown message type for http"));
                }
            }
        };
        Self::send_replies(slf, replies)
    }

    /// Called once by the task runner when the app returns (`exc` None) or raises.
    #[pyo3(signature = (exc=None))]
    fn finish(&mut self, py: Python<'_>, exc: Option<Bound<'_, PyAny>>) {
        if let Some(e) = &exc {
            self.shared.log_app_error(py, &self.target, e);
        }
        self.close_response(py, exc.is_some());
        self.shared.served();
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

fn is_cancelled(fut: &Bound<'_, PyAny>) -> bool {
    fut.call_method0(intern!(fut.py(), "cancelled"))
        .and_then(|c| c.is_truthy())
        .unwrap_or(true)
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

/// A boolean key, false when absent.
fn flag(message: &Bound<'_, PyDict>, key: &Bound<'_, PyString>) -> PyResult<bool> {
    match message.get_item(key)? {
        Some(v) => v.is_truthy(),
        None => Ok(false),
    }
}

fn body_bytes(message: &Bound<'_, PyDict>) -> PyResult<Bytes> {
    match message.get_item(intern!(message.py(), "body"))? {
        None => Ok(Bytes::new()),
        Some(b) => match b.cast::<PyBytes>() {
            Ok(b) => Ok(Bytes::copy_from_slice(b.as_bytes())),
            Err(_) => match b.extract::<Vec<u8>>() {
                // bytearray and memoryview are bytes-like enough
                Ok(v) if !b.is_instance_of::<PyString>() => Ok(Bytes::from(v)),
                _ => Err(PyTypeError::new_err(format!(
                    "'body' must be bytes, got {}",
                    type_name(&b)
                ))),
            },
        },
    }
}

/// `http.response.start` → a serialised head.
pub fn response_head(message: &Bound<'_, PyDict>) -> PyResult<ResponseHead> {
    let py = message.py();
    let status = message
        .get_item(intern!(py, "status"))?
        .ok_or_else(|| PyValueError::new_err("'http.response.start' without a 'status'"))?;
    let code: u16 = status
        .extract::<u16>()
        .ok()
        .filter(|c| (100..=999).contains(c))
        .ok_or_else(|| {
            PyValueError::new_err(format!("invalid status {}", status.repr().map_or_else(|_| "?".into(), |r| r.to_string())))
        })?;
    let mut head = HeadBuilder::for_code(code, 8);
    if let Some(headers) = message.get_item(intern!(py, "headers"))? {
        for item in headers.try_iter()? {
            let item = item?;
            let pair = header_pair(&item);
            let Some((name, value)) = pair else {
                return Err(PyTypeError::new_err(format!(
                    "each header must be a [name, value] pair of bytes, got {}",
                    item.repr().map_or_else(|_| "?".into(), |r| r.to_string())
                )));
            };
            head.header(name.as_bytes(), value.as_bytes())
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
    }
    Ok(head.finish())
}

/// A `(name, value)` tuple or `[name, value]` list of two bytes objects.
fn header_pair<'py>(item: &Bound<'py, PyAny>) -> Option<(Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
    let (name, value) = if let Ok(t) = item.cast::<pyo3::types::PyTuple>() {
        if t.len() != 2 {
            return None;
        }
        (t.get_item(0).ok()?, t.get_item(1).ok()?)
    } else if let Ok(l) = item.cast::<pyo3::types::PyList>() {
        if l.len() != 2 {
            return None;
        }
        (l.get_item(0).ok()?, l.get_item(1).ok()?)
    } else {
        return None;
    };
    Some((name.cast_into().ok()?, value.cast_into().ok()?))
}

fn path_file(message: &Bound<'_, PyDict>) -> PyResult<FileBody> {
    let path: String = message
        .get_item(intern!(message.py(), "path"))?
        .ok_or_else(|| PyValueError::new_err("'http.response.pathsend' without a 'path'"))?
        .extract()?;
    let file = std::fs::File::open(&path)
        .map_err(|e| PyErr::from(e))?;
    let len = file.metadata()?.len();
    Ok(FileBody {
        file,
        offset: 0,
        len,
    })
}

/// What the client gets when the app fails before its response started.
pub fn internal_error() -> Reply {
    let head = ResponseHead {
        code: 500,
        status: Bytes::from_static(b"500 Internal Server Error"),
        headers: b"Content-Type: text/plain; charset=utf-8\r\n".to_vec(),
        content_length: None,
        close: true,
    };
    Reply::Complete(head, Bytes::from_static(b"Internal Server Error"))
}
