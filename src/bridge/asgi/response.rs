//! The HTTP response an ASGI app sends — for an `http` scope, or a websocket denial through the
//! `websocket.http.response` extension: its state machine, and the sender that hands the
//! resulting replies to the connection without blocking the event loop.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};
use tokio::sync::mpsc;

use super::Shared;
use crate::bridge::head::HeadBuilder;
use crate::exchange::{FileBody, Reply, ResponseHead};

/// Header `(name, value)` pairs as the app gave them.
pub type HeaderList = Vec<(Vec<u8>, Vec<u8>)>;

/// One response event, whatever the scope calls it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Start,
    Body,
    PathSend,
    Trailers,
}

/// Where the response is.
#[derive(Debug, Default)]
pub enum Response {
    #[default]
    Init,
    /// The start was given; the head goes out with the first body message. `true`: the app
    /// announced trailers.
    Started(ResponseHead, bool),
    Streaming(bool),
    /// The body is complete; trailer fields gathered so far (`more_trailers`).
    Trailers(Vec<u8>),
    Done,
    /// The app broke the protocol: `head_sent` says whether anything is on the wire.
    Broken {
        head_sent: bool,
    },
}

impl Response {
    pub fn describe(&self) -> &'static str {
        match self {
            Response::Init => "before the response start",
            Response::Started(..) => "after the response start",
            Response::Streaming(_) => "while streaming the body",
            Response::Trailers(_) => "after the body, awaiting trailers",
            Response::Done => "after the response completed",
            Response::Broken { .. } => "after an earlier protocol error",
        }
    }

    pub fn is_over(&self) -> bool {
        matches!(self, Response::Done | Response::Broken { .. })
    }

    /// Applies one event: the replies it produces, or why it is out of order (the caller
    /// reports it through `broken`).
    pub fn event(
        &mut self,
        event: Event,
        message: &Bound<'_, PyDict>,
    ) -> Result<PyResult<Vec<Reply>>, &'static str> {
        let py = message.py();
        match (event, &*self) {
            (Event::Start, Response::Init) => {
                let trailers = match flag(message, intern!(py, "trailers")) {
                    Ok(t) => t,
                    Err(e) => return Ok(Err(e)),
                };
                Ok(response_head(message).map(|head| {
                    *self = Response::Started(head, trailers);
                    Vec::new()
                }))
            }
            (Event::Body, Response::Started(..) | Response::Streaming(_)) => {
                let parsed = body_bytes(message)
                    .and_then(|b| Ok((b, flag(message, intern!(py, "more_body"))?)));
                let (body, more) = match parsed {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let trailers =
                    matches!(self, Response::Started(_, true) | Response::Streaming(true));
                let next = match (more, trailers) {
                    (true, _) => Response::Streaming(trailers),
                    (false, true) => Response::Trailers(Vec::new()),
                    (false, false) => Response::Done,
                };
                let end = !more && !trailers;
                let mut replies = Vec::with_capacity(2);
                match std::mem::replace(self, next) {
                    Response::Started(head, _) if end => {
                        return Ok(Ok(vec![Reply::Complete(head, body)]))
                    }
                    Response::Started(head, _) => replies.push(Reply::Head(head)),
                    _ => {}
                }
                if !body.is_empty() {
                    replies.push(Reply::Chunk(body));
                }
                if end {
                    replies.push(Reply::End);
                }
                Ok(Ok(replies))
            }
            (Event::PathSend, Response::Started(_, false)) => {
                let file = match path_file(message) {
                    Ok(f) => f,
                    Err(e) => return Ok(Err(e)),
                };
                let Response::Started(mut head, _) = std::mem::replace(self, Response::Done) else {
                    return Err("pathsend must follow the start");
                };
                if head.content_length.is_none() {
                    // as if the app had sent it: the head carries the header line too
                    head.headers.extend_from_slice(b"content-length: ");
                    head.headers
                        .extend_from_slice(itoa::Buffer::new().format(file.len).as_bytes());
                    head.headers.extend_from_slice(b"\r\n");
                    head.content_length = Some(file.len);
                }
                Ok(Ok(vec![Reply::Head(head), Reply::File(file), Reply::End]))
            }
            (Event::Trailers, Response::Trailers(_)) => {
                let fields = match trailer_fields(message) {
                    Ok(f) => f,
                    Err(e) => return Ok(Err(e)),
                };
                let more = match flag(message, intern!(py, "more_trailers")) {
                    Ok(m) => m,
                    Err(e) => return Ok(Err(e)),
                };
                let Response::Trailers(mut gathered) = std::mem::replace(self, Response::Done)
                else {
                    return Err("trailers must follow the body");
                };
                gathered.extend_from_slice(&fields);
                if more {
                    *self = Response::Trailers(gathered);
                    return Ok(Ok(Vec::new()));
                }
                Ok(Ok(vec![Reply::Trailers(gathered)]))
            }
            (_, Response::Init) => Err("expected the response start first"),
            (Event::Start, _) => Err("the response start was already sent"),
            (Event::PathSend, _) => Err("pathsend must follow the start (without trailers)"),
            (Event::Trailers, Response::Started(_, true) | Response::Streaming(true)) => {
                Err("trailers must follow the end of the body")
            }
            (Event::Trailers, _) => Err("trailers were not announced in the response start"),
            _ => Err("the response is already complete"),
        }
    }

    /// Marks the response as broken by a protocol error.
    pub fn break_off(&mut self) {
        let head_sent = matches!(
            self,
            Response::Streaming(_)
                | Response::Trailers(_)
                | Response::Done
                | Response::Broken { head_sent: true }
        );
        *self = Response::Broken { head_sent };
    }

    /// The reply that ends the response however the app left it; `None` if it ended well.
    /// `Some(true)` in the second field: nothing went out, so the client gets a 500.
    pub fn close(&mut self) -> Option<(Reply, bool)> {
        match std::mem::replace(self, Response::Done) {
            Response::Done => None,
            // announced trailers that never came: the body itself is complete (as gunicorn)
            Response::Trailers(_) => Some((Reply::End, false)),
            Response::Streaming(_) | Response::Broken { head_sent: true } => {
                Some((Reply::Abort, false))
            }
            Response::Init | Response::Started(..) | Response::Broken { head_sent: false } => {
                Some((internal_error(), true))
            }
        }
    }
}

/// Hands messages (replies to the connection, or WebSocket messages to the session) over a
/// bounded channel: at once when it has room, else through a task on the I/O thread (later
/// sends queue behind it, so order is kept).
pub struct ReplySender<T = Reply> {
    tx: Option<mpsc::Sender<T>>,
    in_flight: Arc<AtomicUsize>,
}

impl<T: Send + 'static> ReplySender<T> {
    pub fn new(tx: mpsc::Sender<T>) -> Self {
        ReplySender {
            tx: Some(tx),
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Sends in order; the future completes once the connection has taken them. A send after
    /// the client left raises `ClientDisconnected` (an OSError, as ASGI 2.4 asks), which is
    /// how Starlette's streaming responses learn to stop.
    pub fn send<'py>(
        &self,
        py: Python<'py>,
        shared: &Shared,
        replies: Vec<T>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(tx) = &self.tx else {
            return Err(super::ClientDisconnected::new_err(
                "the connection is closed",
            ));
        };
        let mut rest = replies.into_iter();
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            loop {
                let Some(reply) = rest.next() else {
                    return Ok(shared.sent(py));
                };
                match tx.try_send(reply) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(reply)) => {
                        let pending: Vec<T> = std::iter::once(reply).chain(rest).collect();
                        rest = pending.into_iter();
                        break;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {
                        return Err(super::ClientDisconnected::new_err("the client went away"));
                    }
                }
            }
        }
        // the connection is behind (a slow client): wait for room on the I/O thread
        let fut = shared.future(py)?;
        let waiter = fut.clone().unbind();
        let (tx, in_flight, inbox) = (tx.clone(), self.in_flight.clone(), shared.inbox.clone());
        in_flight.fetch_add(1, Ordering::Relaxed);
        shared.rt.spawn(async move {
            let mut gone = false;
            for reply in rest {
                if tx.send(reply).await.is_err() {
                    gone = true;
                    break;
                }
            }
            inbox.push(Box::new(move |py| {
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if gone {
                    let err = super::ClientDisconnected::new_err("the client went away");
                    super::reject(py, waiter.bind(py), err);
                } else {
                    super::resolve(py, waiter.bind(py), py.None().bind(py));
                }
            }));
        });
        Ok(fut)
    }

    /// Sends the response's last reply without a future, and lets go of the channel.
    pub fn finish(&mut self, shared: &Shared, reply: Option<T>) {
        let (Some(tx), Some(mut reply)) = (self.tx.take(), reply) else {
            return;
        };
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            reply = match tx.try_send(reply) {
                Err(mpsc::error::TrySendError::Full(reply)) => reply,
                _ => return,
            };
        }
        shared.rt.spawn(async move {
            let _ = tx.send(reply).await;
        });
    }
}

pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr().map_or_else(|_| "?".into(), |r| r.to_string())
}

/// A boolean key, false when absent.
pub fn flag(message: &Bound<'_, PyDict>, key: &Bound<'_, PyString>) -> PyResult<bool> {
    match message.get_item(key)? {
        Some(v) => v.is_truthy(),
        None => Ok(false),
    }
}

/// The message's `type`, which every ASGI message must have.
pub fn message_type<'py>(message: &Bound<'py, PyAny>) -> PyResult<(Bound<'py, PyDict>, String)> {
    let py = message.py();
    let message = message.cast::<PyDict>().map_err(|_| {
        PyTypeError::new_err(format!(
            "ASGI messages must be dicts, got {}",
            type_name(message)
        ))
    })?;
    let kind = match message.get_item(intern!(py, "type"))? {
        Some(t) => t
            .cast_into::<PyString>()
            .map_err(|_| PyTypeError::new_err("the message's 'type' must be a str"))?
            .to_str()?
            .to_owned(),
        None => return Err(PyValueError::new_err("ASGI message without a 'type'")),
    };
    Ok((message.clone(), kind))
}

fn body_bytes(message: &Bound<'_, PyDict>) -> PyResult<Bytes> {
    match message.get_item(intern!(message.py(), "body"))? {
        None => Ok(Bytes::new()),
        Some(b) => bytes_like(&b, "body"),
    }
}

/// bytes, bytearray or memoryview; never str.
pub fn bytes_like(b: &Bound<'_, PyAny>, what: &str) -> PyResult<Bytes> {
    if let Ok(b) = b.cast::<PyBytes>() {
        return Ok(crate::bridge::body::bytes_of(b));
    }
    match b.extract::<Vec<u8>>() {
        Ok(v) if !b.is_instance_of::<PyString>() => Ok(Bytes::from(v)),
        _ => Err(PyTypeError::new_err(format!(
            "'{what}' must be bytes, got {}",
            type_name(b)
        ))),
    }
}

/// An ASGI header list: `(name, value)` tuples or `[name, value]` lists of bytes.
pub fn header_pairs(headers: &Bound<'_, PyAny>) -> PyResult<HeaderList> {
    let mut out = Vec::new();
    for item in headers.try_iter()? {
        let item = item?;
        let pair = header_pair(&item).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "each header must be a [name, value] pair of bytes, got {}",
                repr(&item)
            ))
        })?;
        out.push(pair);
    }
    Ok(out)
}

fn header_pair(item: &Bound<'_, PyAny>) -> Option<(Vec<u8>, Vec<u8>)> {
    let (name, value) = if let Ok(t) = item.cast::<PyTuple>() {
        (t.len() == 2).then_some(())?;
        (t.get_item(0).ok()?, t.get_item(1).ok()?)
    } else if let Ok(l) = item.cast::<PyList>() {
        (l.len() == 2).then_some(())?;
        (l.get_item(0).ok()?, l.get_item(1).ok()?)
    } else {
        return None;
    };
    let name = name.cast_into::<PyBytes>().ok()?;
    let value = value.cast_into::<PyBytes>().ok()?;
    Some((name.as_bytes().to_vec(), value.as_bytes().to_vec()))
}

/// Status and headers of a start message, as given (for post_request), if well-formed.
pub fn started_facts(message: &Bound<'_, PyDict>) -> Option<(u16, HeaderList)> {
    let py = message.py();
    let code = message
        .get_item(intern!(py, "status"))
        .ok()??
        .extract()
        .ok()?;
    let headers = match message.get_item(intern!(py, "headers")).ok()? {
        Some(h) => header_pairs(&h).ok()?,
        None => Vec::new(),
    };
    Some((code, headers))
}

/// A start message → a serialised head.
fn response_head(message: &Bound<'_, PyDict>) -> PyResult<ResponseHead> {
    let py = message.py();
    let status = message
        .get_item(intern!(py, "status"))?
        .ok_or_else(|| PyValueError::new_err("the response start has no 'status'"))?;
    let code: u16 = status
        .extract::<u16>()
        .ok()
        .filter(|c| (100..=999).contains(c))
        .ok_or_else(|| PyValueError::new_err(format!("invalid status {}", repr(&status))))?;
    let headers = match message.get_item(intern!(py, "headers"))? {
        Some(h) => header_pairs(&h)?,
        None => Vec::new(),
    };
    let mut head = HeadBuilder::for_code(code, headers.len());
    for (name, value) in &headers {
        head.header(name, value)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    Ok(head.finish())
}

/// `http.response.trailers` headers as `name: value\r\n` lines, checked like any header.
fn trailer_fields(message: &Bound<'_, PyDict>) -> PyResult<Vec<u8>> {
    let headers = match message.get_item(intern!(message.py(), "headers"))? {
        Some(h) => header_pairs(&h)?,
        None => Vec::new(),
    };
    let mut head = HeadBuilder::for_code(200, headers.len());
    for (name, value) in &headers {
        head.header(name, value)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    Ok(head.finish().headers)
}

fn path_file(message: &Bound<'_, PyDict>) -> PyResult<FileBody> {
    let path: String = message
        .get_item(intern!(message.py(), "path"))?
        .ok_or_else(|| PyValueError::new_err("'http.response.pathsend' without a 'path'"))?
        .extract()?;
    let file = std::fs::File::open(&path)?;
    let len = file.metadata()?.len();
    Ok(FileBody {
        file,
        offset: 0,
        len,
    })
}

impl<T> ReplySender<T> {
    /// The channel is gone (the peer ended) or was let go.
    pub fn is_closed(&self) -> bool {
        self.tx.as_ref().is_none_or(|t| t.is_closed())
    }

    /// Lets go of the channel without a last message.
    pub fn close(&mut self) {
        self.tx = None;
    }
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
