//! Runs ASGI 3 apps (and ASGI 2 ones, wrapped) on an asyncio event loop in the worker's app
//! thread, fed by the same I/O thread and `exchange` seam as WSGI.
//!
//! The loop thread watches one doorbell fd (`job_queue::Doorbell`). A wake-up makes `poll`
//! run every queued completion (futures the I/O thread resolved, see `inbox.rs`) and start a
//! task for every queued request, so a burst costs one wake-up, not one per event. The Python
//! side (`python/ferricorn/_asgi.py`) owns the loop, lifespan and the per-request task body.

mod http;
mod inbox;
mod response;
pub(crate) mod scope;
mod websocket;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub use http::HttpCycle;
pub use inbox::Inbox;
pub use websocket::WebSocketCycle;

use crate::exchange::{Activity, Job};
use crate::hooks::RequestHooks;
use crate::job_queue::JobQueue;
use crate::settings::SettingError;

pyo3::create_exception!(
    _ferricorn,
    ClientDisconnected,
    pyo3::exceptions::PyOSError,
    "send() after the client went away (ASGI spec 2.4: an OSError subclass)."
);

/// The ASGI settings, read once from the registry.
#[derive(Clone, Debug, PartialEq)]
pub struct AsgiOptions {
    /// `wsgi`, `asgi` or `auto` (`-k asgi` makes it `asgi`).
    pub interface: String,
    /// `auto`, `asyncio` or `uvloop`.
    pub event_loop: String,
    /// `auto`, `on` or `off`.
    pub lifespan: String,
    pub root_path: String,
    /// Requests in the app at once before 503s; 0 = no limit.
    pub max_in_flight: usize,
    pub ws_max_size: usize,
    /// Seconds; 0 = off.
    pub ws_ping_interval: f64,
    pub ws_ping_timeout: f64,
    pub ws_per_message_deflate: bool,
}

impl AsgiOptions {
    pub fn from_values(v: &crate::settings::Values) -> Result<Self, SettingError> {
        let interface = if v.str("worker_class")? == "asgi" {
            "asgi".to_owned()
        } else {
            v.str("interface")?.to_owned()
        };
        // validators keep these non-negative
        let int = |name: &'static str| {
            v.int(name)
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        };
        Ok(AsgiOptions {
            interface,
            event_loop: v.str("asgi_loop")?.to_owned(),
            lifespan: v.str("asgi_lifespan")?.to_owned(),
            root_path: v.opt_str("root_path")?.unwrap_or("").to_owned(),
            max_in_flight: int("worker_connections")?,
            ws_max_size: int("websocket_max_message_size")?,
            ws_ping_interval: v.seconds("ws_ping_interval")?,
            ws_ping_timeout: v.seconds("ws_ping_timeout")?,
            ws_per_message_deflate: v.bool("ws_per_message_deflate")?,
        })
    }
}

/// What every request of a worker shares, once the loop is running.
pub struct Shared {
    create_future: Py<PyAny>,
    /// One future completed with None, returned by every `send` that went through at once:
    /// awaiting a done future never yields and never changes it, so it can be shared.
    sent: Py<PyAny>,
    inbox: Arc<Inbox>,
    rt: tokio::runtime::Handle,
    format_exception: Py<PyAny>,
    activity: Arc<Activity>,
    on_served: Box<dyn Fn(u64) + Send + Sync>,
    /// pre_request / post_request from the conf file; `None` (one check per request) if unset.
    hooks: Option<RequestHooks>,
}

impl Shared {
    /// A new pending future on the loop.
    fn future<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.create_future.bind(py).call0()
    }

    /// The shared done future whose result is None.
    fn sent<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        self.sent.bind(py).clone()
    }

    /// A future already completed with `value`: awaiting it does not yield to the loop.
    fn ready<'py>(&self, py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let fut = self.future(py)?;
        fut.call_method1(intern!(py, "set_result"), (value,))?;
        Ok(fut)
    }

    /// Logs an app exception with its traceback, in uvicorn's words.
    fn log_app_error(&self, py: Python<'_>, target: &[u8], exc: &Bound<'_, PyAny>) {
        let cancelled = py
            .import("asyncio")
            .and_then(|a| a.getattr("CancelledError"))
            .is_ok_and(|c| exc.is_instance(&c).unwrap_or(false));
        if cancelled {
            log::debug!(
                "ASGI task for {} cancelled",
                String::from_utf8_lossy(target)
            );
            return;
        }
        let tb = self
            .format_exception
            .bind(py)
            .call1((exc,))
            .and_then(|lines| lines.extract::<Vec<String>>())
            .map(|lines| lines.concat())
            .unwrap_or_else(|_| exc.to_string());
        log::error!(
            "Exception in ASGI application ({})\n{}",
            String::from_utf8_lossy(target),
            tb.trim_end()
        );
    }

    /// Waits on the I/O thread for the next item of `rx`; then `done` runs on the loop thread
    /// with the receiver back and what came (`None`: the channel closed).
    fn recv_later<T: Send + 'static>(
        &self,
        mut rx: tokio::sync::mpsc::Receiver<T>,
        done: impl FnOnce(Python<'_>, tokio::sync::mpsc::Receiver<T>, Option<T>) + Send + 'static,
    ) {
        let inbox = self.inbox.clone();
        self.rt.spawn(async move {
            let got = rx.recv().await;
            inbox.push(Box::new(move |py| done(py, rx, got)));
        });
    }

    fn served(&self) {
        (self.on_served)(self.activity.served.fetch_add(1, Ordering::Relaxed) + 1);
    }
}

/// Completes `fut` with `value` unless it was cancelled meanwhile.
fn resolve(py: Python<'_>, fut: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) {
    if !fut
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        let _ = fut.call_method1(intern!(py, "set_result"), (value,));
    }
}

fn is_cancelled(fut: &Bound<'_, PyAny>) -> bool {
    fut.call_method0(intern!(fut.py(), "cancelled"))
        .and_then(|c| c.is_truthy())
        .unwrap_or(true)
}

/// The app sent an event out of order: log it naming the event and the state (`state`
/// completes "got EVENT ..."), and return the error `send` raises. The caller marks its
/// response broken, so the connection closes however the app goes on.
fn protocol_error(target: &[u8], event: &str, state: &str, what: &str) -> PyErr {
    let msg = format!(
        "ASGI protocol error in {}: {what} (got {event:?} {state})",
        String::from_utf8_lossy(target)
    );
    log::error!("{msg}");
    pyo3::exceptions::PyRuntimeError::new_err(msg)
}

/// Fails `fut` with `err` unless it was cancelled meanwhile.
fn reject(py: Python<'_>, fut: &Bound<'_, PyAny>, err: PyErr) {
    if !fut
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        let _ = fut.call_method1(intern!(py, "set_exception"), (err.into_value(py),));
    }
}

/// Set up by `configure`, once the loop exists.
struct Running {
    shared: Arc<Shared>,
    app: Py<PyAny>,
    runner: Py<PyAny>,
    create_task: Py<PyAny>,
    state: Option<Py<PyDict>>,
    /// Resolved when no more requests will come.
    done: Py<PyAny>,
}

/// Starts the worker's I/O thread (once).
pub type StartIo = Box<dyn FnOnce() -> std::io::Result<()> + Send>;

/// The loop thread's handle on the worker: what `_asgi.serve` drives.
#[pyclass(module = "ferricorn._ferricorn")]
pub struct AsgiBridge {
    jobs: Arc<JobQueue>,
    inbox: Arc<Inbox>,
    rt: tokio::runtime::Handle,
    start_io: std::sync::Mutex<Option<StartIo>>,
    activity: Arc<Activity>,
    on_served: Option<Box<dyn Fn(u64) + Send + Sync>>,
    hooks: Option<RequestHooks>,
    http_scope: scope::ScopeTemplate,
    ws_scope: scope::ScopeTemplate,
    names: scope::HeaderNames,
    running: Option<Running>,
}

/// What the bridge takes from the worker that hosts it.
pub struct WorkerSide {
    pub jobs: Arc<JobQueue>,
    /// The I/O thread's runtime, for the tasks that wait on its behalf.
    pub rt: tokio::runtime::Handle,
    pub start_io: StartIo,
    pub activity: Arc<Activity>,
    /// Called with the worker's count of finished requests (max-requests).
    pub on_served: Box<dyn Fn(u64) + Send + Sync>,
}

impl AsgiBridge {
    pub fn new(
        py: Python<'_>,
        worker: WorkerSide,
        opts: &AsgiOptions,
        hooks: Option<RequestHooks>,
    ) -> PyResult<Self> {
        let WorkerSide {
            jobs,
            rt,
            start_io,
            activity,
            on_served,
        } = worker;
        let doorbell = jobs.doorbell().cloned().ok_or_else(|| {
            pyo3::exceptions::PyRuntimeError::new_err("job queue has no doorbell")
        })?;
        Ok(AsgiBridge {
            jobs,
            inbox: Arc::new(Inbox::new(doorbell)),
            rt,
            start_io: std::sync::Mutex::new(Some(start_io)),
            activity,
            on_served: Some(on_served),
            hooks,
            http_scope: scope::ScopeTemplate::new(py, "http", &opts.root_path)?,
            ws_scope: scope::ScopeTemplate::new(py, "websocket", &opts.root_path)?,
            names: scope::HeaderNames::default(),
            running: None,
        })
    }

    fn dispatch(&mut self, py: Python<'_>, job: Job) -> PyResult<()> {
        let Some(run) = &self.running else {
            return Ok(());
        };
        let Job {
            head,
            conn,
            secure,
            body,
            reply,
            hangup,
            websocket,
        } = job;
        let (template, protocols) = match &websocket {
            Some(ws) => (&self.ws_scope, Some(&ws.subprotocols[..])),
            None => (&self.http_scope, None),
        };
        let scope = scope::build(
            py,
            template,
            &mut self.names,
            &head,
            (&conn, secure),
            run.state.as_ref(),
            protocols,
        )?;
        let target = head.target.clone();
        // gunicorn's ASGI worker: pre_request(worker, req) before the app; if it raises, the
        // app is skipped and the client gets a 500 (through the cycle's finish)
        let mut hook_req = None;
        if let Some(hooks) = &run.shared.hooks {
            let req = hooks.request(py, &head, secure)?;
            let refused = hooks.pre_request(py, &req).is_err();
            hook_req = Some((req.unbind(), refused));
        }
        let cycle = match websocket {
            Some(ws) => Py::new(
                py,
                WebSocketCycle::new(run.shared.clone(), reply.into_sender(), ws, target),
            )?
            .into_any(),
            None => {
                let mut cycle = HttpCycle::new(
                    run.shared.clone(),
                    reply.into_sender(),
                    body,
                    hangup,
                    target,
                );
                if let Some((req, refused)) = hook_req {
                    cycle.set_hook_request(req);
                    if refused {
                        // pre_request raised (logged): a 500 without the app, then post_request
                        cycle.finish(py, None, true);
                        return Ok(());
                    }
                }
                Py::new(py, cycle)?.into_any()
            }
        };
        let coro = run.runner.bind(py).call1((&run.app, scope, cycle))?;
        run.create_task.bind(py).call1((coro,))?;
        Ok(())
    }
}

#[pymethods]
impl AsgiBridge {
    /// The fd to watch for readability (`loop.add_reader(fd, bridge.poll)`).
    fn fileno(&self) -> i32 {
        self.inbox_fd()
    }

    /// Called once the loop runs: `runner(app, scope, cycle)` makes each request's coroutine;
    /// `state` is the lifespan state (None without lifespan); `done` is resolved when the
    /// worker stops taking requests.
    fn configure(
        &mut self,
        py: Python<'_>,
        event_loop: &Bound<'_, PyAny>,
        app: Py<PyAny>,
        runner: Py<PyAny>,
        state: Option<Py<PyDict>>,
        done: Py<PyAny>,
    ) -> PyResult<()> {
        let on_served = self
            .on_served
            .take()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("configured twice"))?;
        let create_future = event_loop.getattr("create_future")?;
        let sent = create_future.call0()?;
        sent.call_method1(intern!(py, "set_result"), (py.None(),))?;
        let shared = Shared {
            create_future: create_future.unbind(),
            sent: sent.unbind(),
            inbox: self.inbox.clone(),
            rt: self.rt.clone(),
            format_exception: py
                .import("traceback")?
                .getattr("format_exception")?
                .unbind(),
            activity: self.activity.clone(),
            on_served,
            hooks: self.hooks.take(),
        };
        self.running = Some(Running {
            shared: Arc::new(shared),
            app,
            runner,
            create_task: event_loop.getattr("create_task")?.unbind(),
            state,
            done,
        });
        Ok(())
    }

    /// Starts the I/O thread: the worker accepts connections from now on.
    fn start(&mut self) -> PyResult<()> {
        let start = self
            .start_io
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("started twice"))?;
        start().map_err(PyErr::from)
    }

    /// The doorbell rang: run completions, start new requests.
    fn poll(&mut self, py: Python<'_>) {
        self.inbox_drain();
        for completion in self.inbox.take() {
            completion(py);
        }
        while let Some(job) = self.jobs.try_pop() {
            let target = job.head.target.clone();
            if let Err(e) = self.dispatch(py, job) {
                log::error!(
                    "could not start the ASGI task for {}: {e}",
                    String::from_utf8_lossy(&target)
                );
            }
        }
        if self.jobs.is_closed() {
            if let Some(run) = &self.running {
                resolve(py, run.done.bind(py), py.None().bind(py));
            }
        }
    }

    /// The loop is alive: the heartbeat's hung-worker check reads this.
    fn tick(&self) {
        self.activity.busy_since[0].store(crate::master::heartbeat::now_ms(), Ordering::Relaxed);
    }
}

impl AsgiBridge {
    fn inbox_fd(&self) -> i32 {
        self.jobs.doorbell().map_or(-1, |d| d.fd())
    }

    fn inbox_drain(&self) {
        if let Some(d) = self.jobs.doorbell() {
            d.drain();
        }
    }
}

/// Runs the event loop until the worker stops; returns the worker's exit code.
pub fn serve(
    py: Python<'_>,
    app: Py<PyAny>,
    bridge: AsgiBridge,
    opts: &AsgiOptions,
) -> PyResult<i32> {
    let module = py.import("ferricorn._asgi")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("lifespan", &opts.lifespan)?;
    kwargs.set_item("loop", &opts.event_loop)?;
    module
        .call_method("serve", (Py::new(py, bridge)?, app), Some(&kwargs))?
        .extract()
}
