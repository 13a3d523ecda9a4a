//! A worker process: the I/O thread (a single-threaded tokio runtime that accepts and serves
//! connections) and the app threads that run Python, joined by the job queue.
//!
//! The calling thread becomes app thread 0, so `--threads 1` (the default, and the fastest for
//! CPU-bound apps) means exactly two OS threads: one for I/O, one for Python. The I/O thread
//! also beats the heartbeat the master watches.

mod accept;
mod boot;
mod reload;

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

pub(crate) use boot::ignore_master_signals;
use boot::EARLY_STOP;
pub use boot::{boot, BootOptions, ABORT_GRACE};
pub use reload::ReloadOptions;

use crate::bridge::asgi::{AsgiBridge, AsgiOptions, WorkerSide};
use crate::bridge::wsgi::WsgiApp;
use crate::exchange::Activity;
use crate::hooks::{RequestHooks, WorkerHooks};
use crate::http::conn::ConnConfig;
use crate::http::request::Limits;
use crate::job_queue::{Doorbell, JobQueue};
use crate::master::heartbeat::{now_ms, state, Heartbeats};
use crate::net::Listener;

/// What the worker needs beside the app and its sockets.
pub struct WorkerOptions {
    pub threads: usize,
    pub limits: Limits,
    pub keepalive: Duration,
    pub graceful_timeout: Duration,
    /// Requests after which to ask the master for a replacement (0 = never).
    pub max_requests: u64,
    pub access_log: Option<Arc<crate::accesslog::AccessLog>>,
    /// `--static` mounts; their directories are opened in the worker, after the fork.
    pub static_files: crate::http::static_files::StaticConfig,
    /// Server hooks and this worker's `worker` object, when the conf file has hooks.
    pub hooks: Option<Arc<WorkerHooks>>,
    pub health_path: Option<String>,
    pub edge: crate::http::edge::EdgeOptions,
    /// Loaded by `boot` (from the files as they are now) before anything is served.
    pub tls: Option<crate::net::tls::TlsSettings>,
}

/// The worker's link to its master.
#[derive(Clone)]
pub struct MasterLink {
    pub heartbeats: Arc<Heartbeats>,
    pub slot: usize,
    /// The master's wake pipe.
    pub waker: RawFd,
    pub master_pid: i32,
}

impl MasterLink {
    fn set_state(&self, s: u32) {
        self.heartbeats.slot(self.slot).set_state(s);
        crate::master::signals::wake(self.waker);
    }
}

/// The app a worker serves, as its interface decides.
pub enum App {
    Wsgi(WsgiApp),
    /// An ASGI 3 app (or an ASGI 2 one, which `_asgi.serve` wraps), with the conf file's
    /// pre_request/post_request hooks if any.
    Asgi(Py<PyAny>, AsgiOptions, Option<RequestHooks>),
}

/// Serves until a shutdown signal; returns the worker's exit code once every thread has
/// finished.
pub fn run(
    py: Python<'_>,
    app: App,
    listeners: Vec<Listener>,
    opts: WorkerOptions,
    tls: Option<Arc<rustls::ServerConfig>>,
    link: MasterLink,
    early: Vec<signal_hook_registry::SigId>,
) -> io::Result<i32> {
    let asgi = matches!(app, App::Asgi(..));
    // an event loop waits in epoll, not on the queue's condvar: wake it through a socket
    let jobs = Arc::new(if asgi {
        JobQueue::with_doorbell(Arc::new(Doorbell::new()?))
    } else {
        JobQueue::default()
    });
    let mut conn_cfg = ConnConfig::new(opts.limits, opts.keepalive, jobs.clone(), opts.access_log);
    conn_cfg.metrics = crate::metrics::RequestMetrics::for_worker(link.slot);
    conn_cfg.requests = crate::master::control::requests::for_worker(link.slot);
    conn_cfg.health_path = opts.health_path;
    conn_cfg.static_files = crate::http::static_files::StaticFiles::open(&opts.static_files)?;
    conn_cfg.edge = opts.edge.clone();
    conn_cfg.tls = tls;
    if let App::Asgi(_, a, _) = &app {
        conn_cfg.watch_hangup = true;
        conn_cfg.max_in_flight = a.max_in_flight;
        let secs = |s: f64| (s > 0.0).then(|| Duration::from_secs_f64(s));
        conn_cfg.websocket = Some(crate::ws::WsConfig {
            max_message_size: a.ws_max_size,
            ping_interval: secs(a.ws_ping_interval),
            ping_timeout: secs(a.ws_ping_timeout),
            per_message_deflate: a.ws_per_message_deflate,
        });
    }
    let cfg = Arc::new(conn_cfg);
    let threads = if asgi { 1 } else { opts.threads };
    let activity = Arc::new(Activity::new(threads));
    let graceful = opts.graceful_timeout;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // out of ready work: tell the app threads about the jobs queued meanwhile, at once
        .on_thread_park({
            let jobs = jobs.clone();
            move || jobs.wake()
        })
        .build()?;
    let handle = rt.handle().clone();
    let io_thread = Arc::new(std::sync::Mutex::new(None));
    let start_io = {
        let (activity, link, slot) = (activity.clone(), link.clone(), io_thread.clone());
        let hooks = opts.hooks.clone();
        move || -> io::Result<()> {
            let t = std::thread::Builder::new()
                .name("ferricorn-io".into())
                .spawn(move || {
                    io_main(rt, listeners, cfg, graceful, activity, link, early, hooks)
                })?;
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(t);
            Ok(())
        }
    };

    // max-requests: ask once for a replacement; the master stops us when it is up
    let retire_asked = Arc::new(AtomicBool::new(false));
    let max_requests = opts.max_requests;
    let on_served = move |served: u64| {
        if max_requests > 0 && served >= max_requests && !retire_asked.swap(true, Ordering::Relaxed)
        {
            log::info!("Autorestarting worker after current request.");
            link.set_state(state::RETIRE);
        }
    };
    let mut app_threads = Vec::new();
    let code = match app {
        App::Wsgi(app) => {
            start_io()?;
            let app = Arc::new(app);
            for i in 1..threads {
                let (app, jobs, activity) = (app.clone(), jobs.clone(), activity.clone());
                let on_served = on_served.clone();
                app_threads.push(
                    std::thread::Builder::new()
                        .name(format!("ferricorn-app-{i}"))
                        .spawn(move || {
                            Python::attach(|py| app.serve_jobs(py, &jobs, &activity, i, &on_served))
                        })?,
                );
            }
            app.serve_jobs(py, &jobs, &activity, 0, &on_served);
            0
        }
        App::Asgi(app, a, request_hooks) => {
            let side = WorkerSide {
                jobs: jobs.clone(),
                rt: handle,
                start_io: Box::new(start_io),
                activity: activity.clone(),
                on_served: Box::new(on_served),
            };
            let bridge = AsgiBridge::new(py, side, &a, request_hooks)?;
            match crate::bridge::asgi::serve(py, app, bridge, &a) {
                Ok(code) => code,
                Err(e) => {
                    log::error!("the ASGI event loop failed: {e}");
                    if let Some(tb) = e.traceback(py).and_then(|t| t.format().ok()) {
                        log::error!("{}", tb.trim_end());
                    }
                    1
                }
            }
        }
    };
    let io_thread = io_thread.lock().unwrap_or_else(|e| e.into_inner()).take();
    if code != 0 && io_thread.is_some() {
        // the loop died while the I/O thread still serves: nothing would answer its requests
        use std::io::Write;
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; nothing after this runs.
        unsafe { libc::_exit(code) };
    }
    py.detach(|| {
        for t in app_threads {
            let _ = t.join();
        }
        match io_thread.map(|t| t.join()) {
            None | Some(Ok(Ok(()))) => Ok(code),
            Some(Ok(Err(e))) => Err(e),
            Some(Err(_)) => Err(io::Error::other("the I/O thread panicked")),
        }
    })
}

/// USR1: reopen the error and access log files by name (after rotation).
pub fn reopen_logs(access_log: Option<&crate::accesslog::AccessLog>) {
    log::debug!("reopening log files");
    if let Err(e) = crate::errorlog::reopen() {
        log::error!("could not reopen the error log: {e}");
    }
    if let Some(Err(e)) = access_log.map(|a| a.reopen()) {
        log::error!("could not reopen the access log: {e}");
    }
}

/// The timeout SIGABRT with a worker_abort hook: print every thread's stack (what faulthandler
/// would have done), call worker_abort(worker), then die of SIGABRT as without the hook, so the
/// master reports the same thing. This needs the GIL: an app thread stuck in C code holding it
/// keeps us waiting until the master's SIGKILL (2 s later), with neither stacks nor hook.
fn on_abort(h: &WorkerHooks) {
    Python::attach(|py| {
        h.set(py, "alive", false);
        h.set(py, "aborted", true);
        let dumped = py.import("faulthandler").and_then(|f| {
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("all_threads", true)?;
            f.call_method("dump_traceback", (), Some(&kwargs))
        });
        if let Err(e) = dumped {
            crate::hooks::log_exception(py, "printing the stacks", &e);
        }
        let _ = h.call_worker(py, "worker_abort");
    });
    use std::io::Write;
    let _ = std::io::stderr().flush();
    // SAFETY: restoring the default action and raising ends the process with SIGABRT.
    unsafe {
        libc::signal(libc::SIGABRT, libc::SIG_DFL);
        libc::raise(libc::SIGABRT);
        libc::_exit(1);
    }
}

/// How a signal asks us to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// TERM: finish the requests accepted (queued ones too), up to the graceful timeout.
    Graceful,
    /// INT or QUIT (`true`, which calls worker_int), or the master vanished: exit now.
    Quick(bool),
}

#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn io_main(
    rt: tokio::runtime::Runtime,
    listeners: Vec<Listener>,
    cfg: Arc<ConnConfig>,
    graceful: Duration,
    activity: Arc<Activity>,
    link: MasterLink,
    early: Vec<signal_hook_registry::SigId>,
    hooks: Option<Arc<WorkerHooks>>,
) -> io::Result<()> {
    let jobs = cfg.jobs.clone();
    let abort_hook = hooks.clone().filter(|h| h.hooks.is_set("worker_abort"));
    let stop_hooks = hooks.clone();
    let result = rt.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut quit = signal(SignalKind::quit())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        // worker_abort: the master's timeout SIGABRT comes here instead of killing us at once
        // (boot.rs left SIGABRT to us, see `take_abort_signal`)
        let mut abort = match &abort_hook {
            Some(_) => Some(signal(SignalKind::from_raw(libc::SIGABRT))?),
            None => None,
        };
        let access_log = cfg.access_log.clone();
        // tokio listens now; a stop that came earlier is acted on below
        for id in early {
            signal_hook_registry::unregister(id);
        }
        let early_stop = EARLY_STOP.load(Ordering::Relaxed);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // every connection holds a clone; recv() returns None once all of them are done
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        for listener in listeners {
            accept::spawn(
                listener,
                accept::AcceptContext {
                    cfg: cfg.clone(),
                    shutdown: shutdown_rx.clone(),
                    alive: alive_tx.clone(),
                    activity: activity.clone(),
                },
            )?;
        }
        drop(cfg);
        drop(alive_tx);
        let slot = link.heartbeats.slot(link.slot);
        slot.beat(now_ms(), 0);
        if slot.state() == state::BOOTING {
            link.set_state(state::READY);
        }
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let stop = loop {
            match early_stop {
                libc::SIGTERM => break Stop::Graceful,
                libc::SIGINT | libc::SIGQUIT => break Stop::Quick(true),
                _ => {}
            }
            tokio::select! {
                _ = term.recv() => break Stop::Graceful,
                _ = int.recv() => break Stop::Quick(true),
                _ = quit.recv() => break Stop::Quick(true),
                Some(()) = async { abort.as_mut()?.recv().await }, if abort.is_some() => {
                    if let Some(h) = &abort_hook {
                        on_abort(h);
                    }
                }
                _ = usr1.recv() => reopen_logs(access_log.as_deref()),
                _ = tick.tick() => {
                    slot.beat(now_ms(), activity.oldest_busy());
                    // SAFETY: getppid has no preconditions.
                    if unsafe { libc::getppid() } != link.master_pid {
                        log::warn!("Parent changed, shutting down");
                        break Stop::Quick(false);
                    }
                }
            }
        };
        let _ = shutdown_tx.send(true);
        if let Some(h) = &stop_hooks {
            Python::attach(|py| h.set(py, "alive", false));
        }
        if let Stop::Graceful = stop {
            // keep beating while draining, so a long but healthy drain is not a "timeout"
            let drain = tokio::time::timeout(graceful, alive_rx.recv());
            tokio::pin!(drain);
            loop {
                tokio::select! {
                    r = &mut drain => {
                        if r.is_err() {
                            log::warn!("graceful timeout ({}s) expired with requests in flight", graceful.as_secs());
                        }
                        break;
                    }
                    _ = tick.tick() => slot.beat(now_ms(), activity.oldest_busy()),
                }
            }
        }
        Ok::<Stop, io::Error>(stop)
    });
    // dropping the runtime cancels what is left, which drops the last job senders and lets
    // the app threads run out of work and return
    drop(rt);
    jobs.close();
    log::info!("Worker exiting (pid: {})", std::process::id());
    if let Ok(Stop::Quick(signalled)) = result {
        // A quick stop does not wait for requests still inside the app (an app thread may be
        // sleeping for minutes): end the process here, as gunicorn's SystemExit would, after
        // its worker_int (INT/QUIT only) and its `finally`'s worker_exit.
        if let Some(h) = &hooks {
            Python::attach(|py| {
                if signalled {
                    let _ = h.call_worker(py, "worker_int");
                }
                let _ = h.call_server_worker(py, "worker_exit");
            });
        }
        use std::io::Write;
        let _ = std::io::stderr().flush();
        // SAFETY: _exit ends the process at once; nothing after this runs.
        unsafe { libc::_exit(0) };
    }
    result.map(|_| ())
}
