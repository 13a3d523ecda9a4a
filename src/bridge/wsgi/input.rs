//! `wsgi.input`: the request body as a file-like object that streams from the connection.
//!
//! Data already buffered with the head is served without leaving the thread; beyond it, the
//! first read fires the connection's demand signal (which sends `100 Continue` if asked) and
//! each later piece is awaited with the GIL released. Nothing is read ahead of the app beyond a
//! few pieces, so a 1 GB upload never sits in memory.

use bytes::{Buf, Bytes};
use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use tokio::sync::{mpsc, oneshot};

use crate::exchange::RequestBody;
use crate::http::error::RequestError;
use crate::http::request::Framing;

#[pyclass(module = "ferricorn._ferricorn")]
pub struct Input {
    /// The piece being consumed.
    cur: Bytes,
    rest: Option<mpsc::Receiver<Result<Bytes, RequestError>>>,
    demand: Option<oneshot::Sender<()>>,
    /// Body bytes not yet given to the app (including `cur`), when the length is declared.
    left: Option<u64>,
}

impl Input {
    pub fn new(body: RequestBody, framing: Framing) -> Self {
        let (cur, rest, demand) = match body {
            RequestBody::Empty => (Bytes::new(), None, None),
            RequestBody::Full(b) => (b, None, None),
            RequestBody::Stream(s) => (s.prefix.freeze(), Some(s.chunks), s.demand),
        };
        let left = match framing {
            Framing::Empty => Some(0),
            Framing::Length(n) => Some(n),
            Framing::Chunked if rest.is_none() => Some(cur.len() as u64),
            Framing::Chunked => None,
        };
        Input {
            cur,
            rest,
            demand,
            left,
        }
    }

    /// Copies exactly `out.len()` bytes of body into `out`, waiting for pieces as needed.
    fn read_exact_into(&mut self, py: Python<'_>, out: &mut [u8]) -> PyResult<()> {
        let mut filled = 0;
        while filled < out.len() {
            if !self.fill(py)? {
                return Err(PyOSError::new_err(
                    "request body ended before its declared length",
                ));
            }
            let n = (out.len() - filled).min(self.cur.len());
            out[filled..filled + n].copy_from_slice(&self.cur[..n]);
            self.consume(n);
            filled += n;
        }
        Ok(())
    }

    fn consume(&mut self, n: usize) {
        self.cur.advance(n);
        if let Some(left) = self.left.as_mut() {
            *left = left.saturating_sub(n as u64);
        }
    }

    /// Makes `cur` non-empty if more body exists. Returns false at end of body.
    fn fill(&mut self, py: Python<'_>) -> PyResult<bool> {
        while self.cur.is_empty() {
            let Some(rx) = self.rest.as_mut() else {
                return Ok(false);
            };
            if let Some(demand) = self.demand.take() {
                let _ = demand.send(());
            }
            let next = match rx.try_recv() {
                Ok(v) => Some(v),
                Err(mpsc::error::TryRecvError::Disconnected) => None,
                Err(mpsc::error::TryRecvError::Empty) => py.detach(|| rx.blocking_recv()),
            };
            match next {
                Some(Ok(piece)) => self.cur = piece,
                Some(Err(e)) => {
                    self.rest = None;
                    return Err(PyOSError::new_err(format!("request body: {e}")));
                }
                None => {
                    self.rest = None;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Up to `limit` bytes (None: all of them).
    fn read_up_to(&mut self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        let mut out = Vec::new();
        while limit.is_none_or(|l| out.len() < l) && self.fill(py)? {
            let want = limit.map_or(self.cur.len(), |l| (l - out.len()).min(self.cur.len()));
            out.extend_from_slice(&self.cur[..want]);
            self.consume(want);
        }
        Ok(out)
    }

    fn read_line(&mut self, py: Python<'_>, limit: Option<usize>) -> PyResult<Vec<u8>> {
        let mut out = Vec::new();
        while limit.is_none_or(|l| out.len() < l) && self.fill(py)? {
            let room = limit.map_or(self.cur.len(), |l| (l - out.len()).min(self.cur.len()));
            let take = match self.cur[..room].iter().position(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => room,
            };
            out.extend_from_slice(&self.cur[..take]);
            self.consume(take);
            if out.last() == Some(&b'\n') {
                break;
            }
        }
        Ok(out)
    }
}

/// Python's file API: None or a negative size means "no limit".
fn limit(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size=None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        let limit = limit(size);
        // whole body already here: one copy, straight into the bytes object
        if self.rest.is_none() && limit.is_none_or(|l| l >= self.cur.len()) {
            let out = PyBytes::new(py, &self.cur);
            let n = self.cur.len();
            self.consume(n);
            return Ok(out);
        }
        // declared length: fill a bytes object of the final size as pieces arrive (one copy)
        if let Some(left) = self.left {
            let want = usize::try_from(left).unwrap_or(usize::MAX);
            let want = limit.map_or(want, |l| l.min(want));
            return PyBytes::new_with(py, want, |out| self.read_exact_into(py, out));
        }
        let data = self.read_up_to(py, limit)?;
        Ok(PyBytes::new(py, &data))
    }

    #[pyo3(signature = (size=None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let line = self.read_line(py, limit(size))?;
        Ok(PyBytes::new(py, &line))
    }

    #[pyo3(signature = (hint=None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let hint = limit(hint).filter(|&h| h > 0);
        let mut lines = Vec::new();
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
            if line.is_empty() {
                break;
            }
            total += line.len();
            lines.push(PyBytes::new(py, &line));
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        Ok((!line.is_empty()).then(|| PyBytes::new(py, &line)))
    }
}
