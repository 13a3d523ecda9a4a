//! The `start_response` callable and its `write()`: PEP 3333's rules on status, headers,
//! `exc_info` and header timing, checked as the app calls them.
//!
//! Headers are validated and serialised to wire bytes right here, while the values are at hand
//! as Python strings, so the I/O thread receives finished bytes and never needs the GIL.

use pyo3::exceptions::{PyAssertionError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::bridge::head::HeadBuilder;
use crate::exchange::{ClientGone, Reply, Responder, ResponseHead, TrySend};

#[pyclass(module = "ferricorn._ferricorn")]
pub struct StartResponse {
    responder: Responder,
    /// Set by start_response, not yet on the wire.
    pending: Option<ResponseHead>,
    head_sent: bool,
    /// A `Complete` went out: the response is over for the connection, which reads the next
    /// reply as the next request's, so nothing more may follow it (`send` drops it).
    complete: bool,
    /// With a post_request hook: the last status and headers given, as the app gave them.
    recorded: Option<Recorded>,
}

/// `(status, headers)` as passed to start_response, kept for post_request's `resp`.
pub type Recorded = Option<(Py<PyAny>, Py<PyAny>)>;

impl StartResponse {
    pub fn new(responder: Responder) -> Self {
        StartResponse {
            responder,
            pending: None,
            head_sent: false,
            complete: false,
            recorded: None,
        }
    }

    /// Also keeps what start_response is given, for a post_request hook.
    pub fn recording(responder: Responder) -> Self {
        StartResponse {
            recorded: Some(None),
            ..StartResponse::new(responder)
        }
    }

    /// The status and headers last given (or set by `record`), if recording.
    pub fn recorded(&self) -> Option<&(Py<PyAny>, Py<PyAny>)> {
        self.recorded.as_ref().and_then(Option::as_ref)
    }

    /// Notes a response the server made itself (the 500 after an app error).
    pub fn record(&mut self, status: Py<PyAny>, headers: Py<PyAny>) {
        if let Some(r) = self.recorded.as_mut() {
            *r = Some((status, headers));
        }
    }

    pub fn head_sent(&self) -> bool {
        self.head_sent
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    pub fn pending_mut(&mut self) -> Option<&mut ResponseHead> {
        self.pending.as_mut()
    }

    pub fn take_pending(&mut self) -> Option<ResponseHead> {
        self.pending.take()
    }

    /// Sends the pending head if it has not gone out yet.
    pub fn send_head(&mut self, py: Python<'_>) -> PyResult<Result<(), ClientGone>> {
        if self.head_sent {
            return Ok(Ok(()));
        }
        let Some(head) = self.pending.take() else {
            return Err(PyAssertionError::new_err(
                "the application returned a body before calling start_response()",
            ));
        };
        self.head_sent = true;
        Ok(self.send(py, Reply::Head(head)))
    }

    /// Marks the head as gone out with `reply` (a `Complete`).
    pub fn send_complete(&mut self, py: Python<'_>, reply: Reply) -> Result<(), ClientGone> {
        self.head_sent = true;
        let sent = self.send(py, reply);
        self.complete = true;
        sent
    }

    /// Hands a reply to the connection, waiting for room with the GIL released.
    pub fn send(&mut self, py: Python<'_>, reply: Reply) -> Result<(), ClientGone> {
        if self.complete {
            return Ok(());
        }
        match self.responder.try_send(reply) {
            Ok(()) => Ok(()),
            Err(TrySend::Gone) => Err(ClientGone),
            Err(TrySend::Full(reply)) => {
                let responder = &mut self.responder;
                py.detach(|| responder.blocking_send(reply))
            }
        }
    }

    pub fn client_gone(&self) -> bool {
        self.responder.is_closed()
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, headers, exc_info=None))]
    fn __call__<'py>(
        slf: Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        {
            let this = slf.borrow();
            match exc_info {
                Some(info) if this.head_sent => {
                    // PEP 3333: too late to change the response, re-raise the app's error
                    let info = info.cast::<PyTuple>()?;
                    return Err(PyErr::from_value(info.get_item(1)?));
                }
                Some(_) => {}
                None if this.head_sent || this.pending.is_some() => {
                    return Err(PyAssertionError::new_err(
                        "start_response() called a second time without exc_info",
                    ));
                }
                None => {}
            }
        }
        let head = build_head(status, headers)?;
        let mut this = slf.borrow_mut();
        this.pending = Some(head);
        if let Some(r) = this.recorded.as_mut() {
            *r = Some((status.clone().unbind(), headers.clone().unbind()));
        }
        drop(this);
        slf.getattr("write")
    }

    /// PEP 3333's imperative `write(data)`: sends the head first if needed.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!(
                "write() argument must be bytes, not {}",
                data.get_type()
                    .name()
                    .map_or_else(|_| "?".into(), |n| n.to_string())
            ))
        })?;
        let gone = self.send_head(py)?.is_err()
            || self
                .send(py, Reply::Chunk(crate::bridge::body::bytes_of(bytes)))
                .is_err();
        if gone {
            return Err(pyo3::exceptions::PyConnectionResetError::new_err(
                "client disconnected",
            ));
        }
        Ok(())
    }
}

fn build_head(status: &Bound<'_, PyAny>, headers: &Bound<'_, PyAny>) -> PyResult<ResponseHead> {
    let Ok(status) = status.cast::<PyString>() else {
        return Err(PyTypeError::new_err(format!(
            "status must be a str, got {}",
            status.repr()?
        )));
    };
    let status = status.to_str()?;
    let code = parse_status(status).ok_or_else(|| {
        PyValueError::new_err(format!(
            "invalid status {status:?}: expected e.g. \"200 OK\""
        ))
    })?;
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!(
            "response headers must be a list of (name, value) tuples, got {}",
            headers
                .get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        ))
    })?;
    let mut head = HeadBuilder::new(
        code,
        bytes::Bytes::copy_from_slice(status.as_bytes()),
        list.len(),
    );
    for item in list.iter() {
        let pair = item.cast::<PyTuple>().map_err(|_| {
            PyTypeError::new_err(format!(
                "response header must be a (name, value) tuple, got {}",
                item.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            ))
        })?;
        if pair.len() != 2 {
            return Err(PyValueError::new_err(format!(
                "response header must have 2 items: {}",
                pair.repr()?
            )));
        }
        let (name, value) = (pair.get_item(0)?, pair.get_item(1)?);
        let name = name
            .cast::<PyString>()
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "header name must be a str: {}",
                    name.repr().map_or_else(|_| "?".into(), |r| r.to_string())
                ))
            })?
            .to_str()?;
        let value_s = value.cast::<PyString>().map_err(|_| {
            PyTypeError::new_err(format!(
                "value of header {name:?} must be a str, got {}",
                value.repr().map_or_else(|_| "?".into(), |r| r.to_string())
            ))
        })?;
        let value = value_s.to_str()?;
        // PEP 3333's native strings carry latin-1; anything wider cannot go on the wire
        let Some(value_bytes) = latin1(value) else {
            return Err(PyValueError::new_err(format!(
                "invalid value for header {name:?}: {value:?}"
            )));
        };
        head.header(name.as_bytes(), &value_bytes)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
    }
    Ok(head.finish())
}

/// `"NNN"` or `"NNN reason"`, reason without control characters.
fn parse_status(status: &str) -> Option<u16> {
    let b = status.as_bytes();
    if b.len() < 3 || !b[..3].iter().all(u8::is_ascii_digit) {
        return None;
    }
    if b.len() > 3 && (b[3] != b' ' || b[4..].iter().any(|&c| c < 0x20 || c == 0x7f)) {
        return None;
    }
    let code: u16 = status[..3].parse().ok()?;
    (100..=999).contains(&code).then_some(code)
}

/// A header value as latin-1 bytes (`None` past U+00FF); `HeadBuilder` checks the bytes.
fn latin1(value: &str) -> Option<Vec<u8>> {
    value
        .chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_forms() {
        assert_eq!(parse_status("200 OK"), Some(200));
        assert_eq!(parse_status("404"), Some(404));
        assert_eq!(parse_status("abc"), None);
        assert_eq!(parse_status("200OK"), None);
        assert_eq!(parse_status("200 OK\r\nX: y"), None);
        assert_eq!(parse_status("099 x"), None);
    }

    #[test]
    fn header_values_are_latin1() {
        assert_eq!(latin1("caf\u{e9}"), Some(b"caf\xe9".to_vec()));
        assert_eq!(latin1("\u{20ac}"), None);
    }
}
