//! Calling gunicorn's server hooks from a conf file, with the `server`, `worker`, `req` and
//! `resp` proxies of python/ferricorn/_hooks.py.
//!
//! This module owns how a hook is called and how its exception is reported (the traceback goes
//! to the error log). Where each hook is called, and whether a failure stops anything, belongs
//! to the callers (server.rs, master/, worker/, bridge/wsgi/). When the conf file defines no
//! hook, `ServerHooks::new` returns `None` and nothing here is ever touched; the request path
//! only sees `RequestHooks` when `pre_request` or `post_request` is set.

use std::sync::Arc;

use pyo3::call::PyCallArgs;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::http::request::RequestHead;
use crate::settings::hooks::HookFn;
use crate::settings::{Hooks, Settings, Value};

/// The conf file's hooks and the `server` object they receive; cheap to clone.
#[derive(Clone)]
pub struct ServerHooks {
    hooks: Hooks,
    server: Arc<Py<PyAny>>,
    module: Arc<Py<PyModule>>,
}

impl ServerHooks {
    /// `None` when the conf file defines no hook.
    pub fn new(py: Python<'_>, s: &Settings) -> PyResult<Option<Self>> {
        if s.hooks.is_empty() {
            return Ok(None);
        }
        let module = py.import("ferricorn._hooks")?;
        let server = module.getattr("Server")?.call1((
            cfg_dict(py, s)?,
            proc_name(s),
            s.app.as_str(),
            s.workers,
        ))?;
        Ok(Some(ServerHooks {
            hooks: s.hooks.clone(),
            server: Arc::new(server.unbind()),
            module: Arc::new(module.unbind()),
        }))
    }

    /// HUP re-read the conf file: its hooks and values replace the old ones (the `server`
    /// object stays the same, as gunicorn's Arbiter does).
    pub fn reload(&mut self, py: Python<'_>, s: &Settings) {
        self.hooks = s.hooks.clone();
        let server = self.server.bind(py);
        let updated = cfg_dict(py, s)
            .and_then(|values| self.module.bind(py).getattr("Config")?.call1((values,)))
            .and_then(|cfg| server.setattr("cfg", cfg))
            .and_then(|()| server.setattr("proc_name", proc_name(s)))
            .and_then(|()| server.setattr("app_uri", s.app.as_str()));
        if let Err(e) = updated {
            log_exception(py, "updating server.cfg after HUP", &e);
        }
    }

    pub fn server<'py>(&self, py: Python<'py>) -> &Bound<'py, PyAny> {
        self.server.bind(py)
    }

    /// The callable set for hook `name`, to call from Python (the dirty worker's loop).
    pub fn hook_fn(&self, py: Python<'_>, name: &str) -> Option<Py<PyAny>> {
        self.hooks.get(name).map(|f| f.func().clone_ref(py))
    }

    pub fn is_set(&self, name: &str) -> bool {
        self.hooks.get(name).is_some()
    }

    /// `server.num_workers`, kept current for hooks that read it.
    pub fn set_num_workers(&self, py: Python<'_>, n: usize) {
        let _ = self.server.bind(py).setattr("num_workers", n);
    }

    /// The `worker` object for the worker about to be forked; `age` is its spawn number.
    pub fn new_worker(&self, py: Python<'_>, age: u64) -> PyResult<Py<PyAny>> {
        let server = self.server.bind(py);
        let worker = self.module.bind(py).getattr("Worker")?.call1((
            age,
            server.getattr("pid")?,
            server.getattr("cfg")?,
        ))?;
        Ok(worker.unbind())
    }

    /// Calls hook `name` if the conf file set it. An exception is logged with its traceback,
    /// then returned for the few call sites where gunicorn lets it stop something.
    pub fn call<'py, A: PyCallArgs<'py>>(
        &self,
        py: Python<'py>,
        name: &str,
        args: A,
    ) -> PyResult<()> {
        match self.hooks.get(name) {
            Some(f) => call_hook(py, f, name, args),
            None => Ok(()),
        }
    }

    /// What the app threads need, if any request hook is set.
    pub fn request_hooks(&self, worker: &Py<PyAny>, py: Python<'_>) -> Option<RequestHooks> {
        let pre = self.hooks.get("pre_request").cloned();
        let post = self.hooks.get("post_request").cloned();
        if pre.is_none() && post.is_none() {
            return None;
        }
        let module = self.module.bind(py);
        let classes = module
            .getattr("Request")
            .and_then(|req| Ok((req, module.getattr("make_response")?)));
        match classes {
            Ok((req, resp)) => Some(RequestHooks {
                worker: worker.clone_ref(py),
                pre,
                post,
                request: req.unbind(),
                response: resp.unbind(),
            }),
            Err(e) => {
                log_exception(py, "setting up request hooks", &e);
                None
            }
        }
    }
}

/// A worker's side: the hooks, and the `worker` object the master made before the fork.
pub struct WorkerHooks {
    pub hooks: ServerHooks,
    pub worker: Py<PyAny>,
}

impl WorkerHooks {
    /// Calls a hook that takes `(worker)`.
    pub fn call_worker(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.hooks.call(py, name, (self.worker.bind(py),))
    }

    /// Calls a hook that takes `(server, worker)`.
    pub fn call_server_worker(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.hooks
            .call(py, name, (self.hooks.server(py), self.worker.bind(py)))
    }

    pub fn set<'py, V: IntoPyObject<'py>>(&self, py: Python<'py>, attr: &str, value: V) {
        // only plain values (pid, flags): a failure here has nothing to tell the user
        let _ = self.worker.bind(py).setattr(attr, value);
    }
}

/// pre_request / post_request, as an app thread needs them.
pub struct RequestHooks {
    worker: Py<PyAny>,
    pre: Option<HookFn>,
    post: Option<HookFn>,
    request: Py<PyAny>,
    response: Py<PyAny>,
}

impl RequestHooks {
    /// The `req` object for a request head (and the scheme the environ gets).
    pub fn request<'py>(
        &self,
        py: Python<'py>,
        head: &RequestHead,
        secure: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let headers = PyList::empty(py);
        for (name, value) in &head.headers {
            headers.append((text(name).to_ascii_uppercase(), text(value)))?;
        }
        let version = match head.version {
            crate::http::request::Version::Http10 => (1, 0),
            crate::http::request::Version::Http2 => (2, 0),
            _ => (1, 1),
        };
        self.request.bind(py).call1((
            text(&head.method),
            text(&head.target),
            text(&head.path),
            text(&head.query),
            version,
            headers,
            if secure { "https" } else { "http" },
        ))
    }

    /// pre_request(worker, req). gunicorn calls it inside the request's try: an exception
    /// fails the request with a 500, so the caller gets it back.
    pub fn pre_request(&self, py: Python<'_>, req: &Bound<'_, PyAny>) -> PyResult<()> {
        match &self.pre {
            Some(f) => call_hook(py, f, "pre_request", (self.worker.bind(py), req)),
            None => Ok(()),
        }
    }

    pub fn wants_post_request(&self) -> bool {
        self.post.is_some()
    }

    /// post_request(worker, req, environ, resp), with as many arguments as the hook takes
    /// (gunicorn allows 2 to 4). An exception is logged and the worker carries on.
    pub fn post_request(
        &self,
        py: Python<'_>,
        req: &Bound<'_, PyAny>,
        environ: Option<&Bound<'_, PyAny>>,
        status: Option<(&Bound<'_, PyAny>, &Bound<'_, PyAny>)>,
    ) {
        let Some(f) = &self.post else { return };
        let environ = environ
            .cloned()
            .unwrap_or_else(|| PyDict::new(py).into_any());
        let resp = match status {
            Some((status, headers)) => match self.response.bind(py).call1((status, headers)) {
                Ok(r) => r,
                Err(e) => return log_exception(py, "building post_request's resp", &e),
            },
            None => py.None().into_bound(py),
        };
        let worker = self.worker.bind(py);
        let _ = match f.arity() {
            2 => call_hook(py, f, "post_request", (worker, req)),
            3 => call_hook(py, f, "post_request", (worker, req, environ)),
            _ => call_hook(py, f, "post_request", (worker, req, environ, resp)),
        };
    }
}

fn call_hook<'py, A: PyCallArgs<'py>>(
    py: Python<'py>,
    f: &HookFn,
    name: &str,
    args: A,
) -> PyResult<()> {
    match f.func().bind(py).call1(args) {
        Ok(_) => Ok(()),
        Err(e) => {
            log_exception(py, &format!("the {name} hook"), &e);
            Err(e)
        }
    }
}

/// Logs a Python exception with its traceback, as gunicorn's `log.exception` would.
pub fn log_exception(py: Python<'_>, what: &str, err: &PyErr) {
    let tb = py
        .import("traceback")
        .and_then(|t| t.call_method1("format_exception", (err.value(py),)))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|lines| lines.concat())
        .unwrap_or_else(|_| err.to_string());
    ::log::error!("Exception in {what}:\n{}", tb.trim_end());
}

fn proc_name(s: &Settings) -> &str {
    s.proc_name.as_deref().unwrap_or(&s.app)
}

/// `server.cfg`'s values: every setting by name, as Python values.
fn cfg_dict<'py>(py: Python<'py>, s: &Settings) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, value) in s.values.iter() {
        match value {
            Value::None => d.set_item(name, py.None())?,
            Value::Bool(b) => d.set_item(name, b)?,
            Value::Int(i) => d.set_item(name, i)?,
            Value::Str(v) | Value::Object(v) => d.set_item(name, v)?,
            Value::List(items) => d.set_item(name, items)?,
        }
    }
    // gunicorn's cfg.workers is the number asked for; ours is already clamped to at least 1
    d.set_item("workers", s.workers)?;
    Ok(d)
}

/// `_ferricorn.log(level, msg)`: lets hooks (`server.log.info(...)`) write to the error log.
/// Levels are Python logging's numbers; CRITICAL is logged as an error.
#[pyfunction]
#[pyo3(name = "log")]
pub fn py_log(level: i32, msg: &str) {
    let level = match level {
        ..=10 => ::log::Level::Debug,
        11..=20 => ::log::Level::Info,
        21..=30 => ::log::Level::Warn,
        _ => ::log::Level::Error,
    };
    ::log::log!(level, "{msg}");
}
