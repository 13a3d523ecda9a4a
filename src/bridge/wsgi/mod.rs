//! Runs WSGI apps: takes jobs off the queue on Python threads, calls the app, sends replies.
//!
//! Each app thread stays attached to the interpreter and takes queued jobs back to back; it
//! releases the GIL only while the queue is empty or a connection is full. That is the fast
//! path measured in shared/PERFORMANCE.md: no GIL hand-off per request under load.

pub(crate) mod environ;
mod input;
mod response;
mod start_response;
mod streams;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

pub use input::Input;
pub use start_response::StartResponse;
pub use streams::{ErrorStream, FileWrapper};

use std::sync::atomic::Ordering;

use crate::exchange::{Activity, ConnInfo, Job, Reply, RequestBody, ResponseHead};
use crate::hooks::RequestHooks;
use crate::http::request::RequestHead;
use crate::job_queue::JobQueue;
use environ::{EnvironTemplate, HeaderKeys};

/// A loaded WSGI application and what its threads share.
pub struct WsgiApp {
    app: Py<PyAny>,
    template: EnvironTemplate,
    format_exception: Py<PyAny>,
    /// pre_request / post_request; `None` (checked once per request) when neither is set.
    hooks: Option<RequestHooks>,
}

impl WsgiApp {
    pub fn new(
        py: Python<'_>,
        app: Py<PyAny>,
        threads: usize,
        hooks: Option<RequestHooks>,
    ) -> PyResult<Self> {
        Ok(WsgiApp {
            app,
            hooks,
            template: EnvironTemplate::new(py, threads > 1, false)?,
            format_exception: py
                .import("traceback")?
                .getattr("format_exception")?
                .unbind(),
        })
    }

    /// Serves jobs until the queue is closed (the I/O side has shut down). `busy` is this
    /// thread's entry in the worker's activity record (for the hung-request timeout).
    pub fn serve_jobs(
        &self,
        py: Python<'_>,
        jobs: &JobQueue,
        activity: &Activity,
        thread: usize,
        on_served: &(dyn Fn(u64) + Sync),
    ) {
        let mut keys = HeaderKeys::default();
        let busy = &activity.busy_since[thread];
        loop {
            let job = match jobs.try_pop() {
                Some(job) => job,
                None => match py.detach(|| jobs.pop_blocking()) {
                    Some(job) => job,
                    None => return,
                },
            };
            busy.store(crate::master::heartbeat::now_ms(), Ordering::Relaxed);
            self.handle(py, &mut keys, job);
            busy.store(0, Ordering::Relaxed);
            on_served(activity.served.fetch_add(1, Ordering::Relaxed) + 1);
        }
    }

    fn handle(&self, py: Python<'_>, keys: &mut HeaderKeys, job: Job) {
        let Some(hooks) = &self.hooks else {
            let Job {
                head,
                conn,
                secure,
                body,
                reply,
                ..
            } = job;
            match Py::new(py, StartResponse::new(reply)) {
                Ok(sr) => {
                    drop(self.respond(py, keys, &head, (&conn, secure), body, &sr.into_bound(py)))
                }
                Err(e) => self.log_error(py, &head.target, &e),
            }
            return;
        };
        self.handle_with_hooks(py, keys, job, hooks);
    }

    /// gunicorn's order: pre_request(worker, req), the app (skipped with a 500 if pre_request
    /// raised, as gunicorn's try block does), then post_request(worker, req, environ, resp)
    /// whatever happened, once the response has been handed to the connection.
    fn handle_with_hooks(
        &self,
        py: Python<'_>,
        keys: &mut HeaderKeys,
        job: Job,
        hooks: &RequestHooks,
    ) {
        let Job {
            head,
            conn,
            secure,
            body,
            reply,
            ..
        } = job;
        let sr = if hooks.wants_post_request() {
            StartResponse::recording(reply)
        } else {
            StartResponse::new(reply)
        };
        let sr = match Py::new(py, sr) {
            Ok(sr) => sr.into_bound(py),
            Err(e) => return self.log_error(py, &head.target, &e),
        };
        let req = match hooks.request(py, &head, secure) {
            Ok(req) => req,
            Err(e) => {
                crate::hooks::log_exception(py, "building the hooks' req", &e);
                drop(self.respond(py, keys, &head, (&conn, secure), body, &sr));
                return;
            }
        };
        let environ = match hooks.pre_request(py, &req) {
            Ok(()) => self.respond(py, keys, &head, (&conn, secure), body, &sr),
            Err(_) => {
                fail(py, &sr);
                None
            }
        };
        if hooks.wants_post_request() {
            let recorded = sr
                .borrow()
                .recorded()
                .map(|(s, h)| (s.clone_ref(py), h.clone_ref(py)));
            let status = recorded.as_ref().map(|(s, h)| (s.bind(py), h.bind(py)));
            hooks.post_request(py, &req, environ.as_ref(), status);
        }
    }

    /// Runs the app for one request and sends its response; returns the environ it got.
    fn respond<'py>(
        &self,
        py: Python<'py>,
        keys: &mut HeaderKeys,
        head: &RequestHead,
        (conn, secure): (&ConnInfo, bool),
        body: RequestBody,
        sr: &Bound<'py, StartResponse>,
    ) -> Option<Bound<'py, PyAny>> {
        let is_head = head.is_head();
        let mut environ = None;
        let outcome = Py::new(py, Input::new(body, head.framing))
            .and_then(|input| {
                environ::build(
                    py,
                    &self.template,
                    keys,
                    head,
                    conn,
                    secure,
                    input.into_bound(py),
                )
            })
            .and_then(|env| {
                let result = self.app.bind(py).call1((&env, sr));
                environ = Some(env.into_any());
                result
            });
        let result = match outcome {
            Ok(result) => result,
            Err(e) => {
                self.log_error(py, &head.target, &e);
                fail(py, sr);
                return environ;
            }
        };
        if let Err(e) = response::send(py, sr, &result, is_head) {
            self.log_error(py, &head.target, &e);
            fail(py, sr);
        }
        // PEP 3333: close() is called whatever happened, even when the client left
        if let Err(e) = close_iterable(&result) {
            self.log_error(py, &head.target, &e);
        }
        environ
    }

    /// Logs an app failure with its traceback, in gunicorn's words.
    fn log_error(&self, py: Python<'_>, target: &[u8], err: &PyErr) {
        let tb = self
            .format_exception
            .bind(py)
            .call1((err.clone_ref(py).into_value(py),))
            .and_then(|lines| lines.extract::<Vec<String>>())
            .map(|lines| lines.concat())
            .unwrap_or_else(|_| err.to_string());
        log::error!(
            target: crate::errorlog::EXCEPTION,
            "Error handling request {}\n{}",
            String::from_utf8_lossy(target),
            tb.trim_end()
        );
    }
}

fn close_iterable(result: &Bound<'_, PyAny>) -> PyResult<()> {
    // Plain lists and tuples (most responses) have no close(); asking would build and discard
    // an AttributeError on every request.
    if result.is_exact_instance_of::<pyo3::types::PyList>()
        || result.is_exact_instance_of::<pyo3::types::PyTuple>()
    {
        return Ok(());
    }
    let py = result.py();
    if let Some(close) = result.getattr_opt(pyo3::intern!(py, "close"))? {
        close.call0()?;
    }
    Ok(())
}

/// The app failed: a 500 if nothing went out yet, otherwise cut the response short.
fn fail(py: Python<'_>, sr: &Bound<'_, StartResponse>) {
    let mut sr = sr.borrow_mut();
    if sr.head_sent() {
        let _ = sr.send(py, Reply::Abort);
        return;
    }
    // for post_request's resp (a no-op unless recording): what the client gets
    let status = pyo3::types::PyString::new(py, "500 Internal Server Error");
    if let Ok(headers) = [("Content-Type", "text/html")].into_pyobject(py) {
        sr.record(status.into_any().unbind(), headers.into_any().unbind());
    }
    let body = b"<html><head><title>Internal Server Error</title></head><body><h1><p>Internal Server Error</p></h1></body></html>\n";
    let head = ResponseHead {
        code: 500,
        status: bytes::Bytes::from_static(b"500 Internal Server Error"),
        headers: b"Content-Type: text/html\r\n".to_vec(),
        content_length: None,
        close: true,
    };
    let _ = sr.send_complete(py, Reply::Complete(head, bytes::Bytes::from_static(body)));
}

/// Copies a body item out of Python, refusing anything but bytes (PEP 3333).
fn body_bytes(item: &Bound<'_, PyAny>) -> PyResult<bytes::Bytes> {
    match item.cast::<PyBytes>() {
        Ok(b) => Ok(crate::bridge::body::bytes_of(b)),
        Err(_) => Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "response body items must be bytes, got {} ({})",
            item.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string()),
            item.repr()
                .map_or_else(|_| "?".into(), |r| r.to_string())
                .chars()
                .take(80)
                .collect::<String>()
        ))),
    }
}
