//! The arbiter: the master process that owns the listening sockets, forks workers and keeps the
//! right number of healthy ones alive. It never serves a request and never starts a thread, so
//! every fork happens from a single-threaded process (see docs/internals.md).
//!
//! Its loop, like gunicorn's: wait for a signal or a worker's wake-up (at most half a second),
//! reap exited workers, kill hung ones, retire old or bloated ones once their replacements are
//! up, then spawn or stop workers to match the wanted count.
//!
//! Server hooks run here too (see src/hooks.rs). An exception in one is logged with its
//! traceback and the master carries on, except in when_ready (and on_starting, in server.rs),
//! which gunicorn calls outside its main loop's error handling, so there it stops the server.
//! (gunicorn's main loop would also die on a raising pre_fork, on_reload or child_exit: one
//! bad hook line taking a running server down is not worth copying.)

pub mod control;
mod dirty;
pub mod heartbeat;
pub mod signals;
mod spawn;
mod supervise;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;

use crate::accesslog::AccessLog;
use crate::error::{Error, EXIT_APP_LOAD};
use crate::hooks::{ServerHooks, WorkerHooks};
use crate::metrics::prometheus::{self, MetricsServer, Snapshot};
use crate::metrics::{shm, statsd};
use crate::net::Listener;
use crate::process::PidFile;
use crate::settings::{Parsed, Settings};
use crate::worker::{self, BootOptions, MasterLink, WorkerOptions};
use heartbeat::{now_ms, state, Heartbeats};
use signals::SignalQueue;

/// How the master was told to run its workers.
pub struct MasterOptions {
    /// The command line, for USR2's re-exec.
    pub argv: Vec<String>,
    /// Shown in process titles (`--name`, else the app spec).
    pub proc_name: String,
    pub daemon: bool,
    pub app_spec: String,
    pub preloaded: Option<Py<PyAny>>,
    pub workers: usize,
    pub threads: usize,
    /// 0 = off.
    pub timeout: Duration,
    pub graceful_timeout: Duration,
    pub max_requests: u64,
    pub max_requests_jitter: u64,
    /// Bytes; 0 = off.
    pub max_worker_memory: u64,
    pub limits: crate::http::request::Limits,
    pub keepalive: Duration,
    pub asgi: crate::bridge::asgi::AsgiOptions,
    pub reload: crate::worker::ReloadOptions,
    pub health_path: Option<String>,
    pub static_files: crate::http::static_files::StaticConfig,
    pub edge: crate::http::edge::EdgeOptions,
    /// Each worker loads it when it boots (so a HUP serves renewed certificates).
    pub tls: Option<crate::net::tls::TlsSettings>,
    /// Opened before the first fork; every worker writes to it.
    pub access_log: Option<Arc<AccessLog>>,
    /// The conf file's server hooks; `None` when it defines none.
    pub hooks: Option<ServerHooks>,
    /// Every setting's value, for the control socket's `show config`.
    pub values: crate::settings::registry::Values,
    /// `--dirty-app` / `--dirty-workers`; `None` when the dirty pool is off.
    pub dirty: Option<crate::dirty::DirtyOptions>,
}

impl MasterOptions {
    pub fn from_settings(
        s: &Settings,
        argv: Vec<String>,
        preloaded: Option<Py<PyAny>>,
        access_log: Option<Arc<AccessLog>>,
        hooks: Option<ServerHooks>,
    ) -> Self {
        MasterOptions {
            access_log,
            hooks,
            argv,
            proc_name: s.proc_name.clone().unwrap_or_else(|| s.app.clone()),
            app_spec: s.app.clone(),
            preloaded,
            workers: s.workers,
            threads: s.threads,
            timeout: Duration::from_secs(s.timeout),
            graceful_timeout: Duration::from_secs(s.graceful_timeout),
            max_requests: s.max_requests,
            max_requests_jitter: s.max_requests_jitter,
            max_worker_memory: s.max_worker_memory << 20,
            daemon: s.daemon,
            limits: crate::http::request::Limits {
                request_line: s.limit_request_line,
                fields: s.limit_request_fields,
                field_size: s.limit_request_field_size,
            },
            keepalive: Duration::from_secs(s.keepalive),
            asgi: s.asgi.clone(),
            reload: s.reload.clone(),
            health_path: s.health_path.clone(),
            static_files: s.static_files.clone(),
            edge: s.edge.clone(),
            tls: s.tls.clone(),
            values: s.values.clone(),
            dirty: s.dirty.clone(),
        }
    }
}

/// A live worker as the master tracks it.
struct Worker {
    slot: usize,
    /// Spawn order (gunicorn's `worker.age`).
    age: u64,
    /// Marked for replacement; stopped once enough fresh workers are ready.
    retiring: bool,
    /// When we sent TERM (graceful stop), if we did.
    termed_at: Option<u64>,
    /// When we sent SIGABRT for a timeout, if we did.
    aborted_at: Option<u64>,
    /// We sent it a signal that ends it: its death is expected, not an error.
    killed: bool,
    /// The `worker` object hooks got for it (pre_fork), for child_exit.
    proxy: Option<Py<PyAny>>,
    /// Stopped because fewer workers are wanted (TTOU...): its exit is not a restart.
    surplus: bool,
}

pub struct Arbiter {
    opts: MasterOptions,
    pidfile: Option<PidFile>,
    /// The new master started by USR2, while it runs.
    reexec_pid: Option<i32>,
    listeners: Vec<Listener>,
    heartbeats: Arc<Heartbeats>,
    signals: SignalQueue,
    workers: BTreeMap<i32, Worker>,
    wanted: usize,
    pid: i32,
    /// A replacement failed to import the app: stop spawning until the next HUP.
    boot_failed: bool,
    spawned: u64,
    /// `--metrics-bind`: the endpoint, served from this loop.
    metrics: Option<MetricsServer>,
    /// Counts of workers that exited (their shared slots are reused).
    retired: shm::Totals,
    /// Workers that exited and were replaced, and workers killed for --timeout.
    restarts: u64,
    timeouts: u64,
    /// The worker count last sent to StatsD (`gunicorn.workers`, sent when it changes).
    workers_gauge: Option<usize>,
    /// `--control-socket`: the server, served from this loop, and its counters.
    ctl: control::Control,
    /// The dirty worker pool (src/dirty/), when configured.
    dirty: Option<crate::dirty::pool::DirtyPool>,
}

impl Arbiter {
    pub fn new(
        opts: MasterOptions,
        listeners: Vec<Listener>,
        pidfile: Option<PidFile>,
        signals: SignalQueue,
    ) -> Result<Self, Error> {
        crate::process::set_title(&format!("ferricorn: master [{}]", opts.proc_name));
        Ok(Arbiter {
            pidfile,
            reexec_pid: None,
            wanted: opts.workers.max(1),
            opts,
            listeners,
            heartbeats: Arc::new(Heartbeats::new()?),
            signals,
            workers: BTreeMap::new(),
            pid: std::process::id() as i32,
            boot_failed: false,
            spawned: 0,
            metrics: None,
            retired: shm::Totals::default(),
            restarts: 0,
            timeouts: 0,
            workers_gauge: None,
            ctl: control::Control::new(None),
            dirty: None,
        })
    }

    /// Serves `--metrics-bind` from the master loop.
    pub fn with_metrics(mut self, metrics: Option<MetricsServer>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Serves `--control-socket` from the master loop (`None`: `--no-control-socket`).
    pub fn with_control(mut self, opts: Option<control::ControlOptions>) -> Self {
        self.ctl = control::Control::new(opts);
        self
    }

    /// Waits like `SignalQueue::wait`, also waking for metrics scrapes and control clients.
    fn wait(&self, mut timeout_ms: i32) -> Vec<libc::c_int> {
        let mut extra = Vec::new();
        if let Some(m) = &self.metrics {
            m.poll_fds(&mut extra);
        }
        if let Some(c) = &self.ctl.server {
            c.poll_fds(&mut extra);
            timeout_ms = timeout_ms.min(c.timeout_ms().unwrap_or(timeout_ms));
        }
        self.signals.wait_also(timeout_ms, &mut extra)
    }

    /// Runs control-socket commands as far as possible without blocking.
    fn serve_control(&mut self, py: Python<'_>) {
        let Some(mut server) = self.ctl.server.take() else {
            return;
        };
        server.service(&mut |req| self.control_command(py, req));
        self.ctl.server = Some(server);
    }

    /// Accepts, reads and answers scrapes as far as possible without blocking.
    fn serve_metrics(&mut self) {
        let Some(mut server) = self.metrics.take() else {
            return;
        };
        server.service(&mut || prometheus::render(&self.snapshot()));
        self.metrics = Some(server);
    }

    /// Retired plus live workers' counters, and the master's own.
    fn snapshot(&self) -> Snapshot {
        let totals = match shm::shared() {
            Some(t) => t.snapshot(&self.retired, self.workers.values().map(|w| w.slot)),
            None => self.retired.clone(),
        };
        Snapshot {
            totals,
            restarts: self.restarts,
            timeouts: self.timeouts,
            workers: self.workers.len(),
        }
    }

    /// The master loop. Returns when the server stops; in a forked worker it returns
    /// `Err(Error::ChildExit)` so the worker unwinds to `run()` and exits with its code.
    pub fn run(mut self, py: Python<'_>) -> Result<(), Error> {
        // the dirty pool starts before when_ready, as gunicorn's dirty arbiter does, and before
        // the first fork: HTTP workers learn where its sockets are from the environment
        if let Some(d) = self.opts.dirty.clone() {
            if let Err(e) = self.open_dirty(py, d) {
                self.halt(py, 1);
                return Err(e);
            }
        }
        // gunicorn calls when_ready at the end of Arbiter.start(): sockets bound, before the
        // first workers, and outside the main loop's error handling, so an exception there
        // stops the server (without on_exit, as in gunicorn)
        if let Some(h) = &self.opts.hooks {
            if h.call(py, "when_ready", (h.server(py),)).is_err() {
                self.opts.hooks = None;
                self.halt(py, 1);
                return Err(Error::Hook { name: "when_ready" });
            }
        }
        self.ctl.prepare();
        self.manage(py)?;
        // after the first workers, as gunicorn (they would only close its fds)
        self.ctl.start();
        loop {
            for sig in self.wait(500) {
                if sig != libc::SIGCHLD {
                    log::info!("Handling signal: {}", signals::name(sig));
                }
                match sig {
                    libc::SIGTERM => return self.stop(py, true),
                    libc::SIGINT | libc::SIGQUIT => return self.stop(py, false),
                    libc::SIGHUP => self.reload(py),
                    libc::SIGTTIN => {
                        self.set_wanted(py, (self.wanted + 1).min(heartbeat::MAX_SLOTS))
                    }
                    libc::SIGTTOU => self.set_wanted(py, self.wanted.saturating_sub(1).max(1)),
                    libc::SIGUSR1 => {
                        // the master's own logs too: workers forked later inherit its files
                        self.reopen_logs();
                        self.signal_all(libc::SIGUSR1);
                        self.signal_dirty(libc::SIGUSR1);
                    }
                    // gunicorn: WINCH stops the workers of a daemonized master (after USR2, the
                    // old master keeps its sockets while the new one serves)
                    libc::SIGWINCH if self.opts.daemon || self.reexec_pid.is_some() => {
                        self.set_wanted(py, 0);
                    }
                    libc::SIGWINCH => log::info!("SIGWINCH ignored. Not daemonized"),
                    libc::SIGUSR2 => self.reexec(py)?,
                    _ => {}
                }
            }
            self.reap(py)?;
            self.murder_hung();
            self.murder_dirty();
            self.retire_worn_out();
            self.manage(py)?;
            self.manage_dirty(py)?;
            self.serve_metrics();
            self.serve_control(py);
        }
    }

    /// HUP: every current worker is replaced by a fresh one (which imports the app anew unless
    /// preloaded); old ones stop once the new ones accept, so no request is refused.
    fn reload(&mut self, py: Python<'_>) {
        log::info!("Hang up: Master");
        self.ctl.reloads += 1;
        self.reread_settings(py);
        if let Some(h) = &self.opts.hooks {
            let _ = h.call(py, "on_reload", (h.server(py),));
        }
        self.boot_failed = false;
        for w in self.workers.values_mut() {
            w.retiring = true;
        }
        self.reload_dirty();
    }

    /// HUP re-reads the configuration as gunicorn does (command line, GUNICORN_CMD_ARGS and the
    /// config file again). Sockets and --preload stay as they are; a broken configuration is
    /// reported and the running one kept.
    fn reread_settings(&mut self, py: Python<'_>) {
        match crate::settings::parse_args(py, &self.opts.argv) {
            Parsed::Run(s) => {
                log::set_max_level(s.log_level);
                for warning in &s.warnings {
                    log::warn!("{warning}");
                }
                // the log files stay as opened at boot (USR1 reopens them)
                let argv = std::mem::take(&mut self.opts.argv);
                let preloaded = self.opts.preloaded.take();
                let access_log = self.opts.access_log.take();
                let hooks = match self.opts.hooks.take() {
                    Some(mut h) if !s.hooks.is_empty() => {
                        h.reload(py, &s);
                        Some(h)
                    }
                    _ => ServerHooks::new(py, &s).unwrap_or_else(|e| {
                        crate::hooks::log_exception(py, "setting up the hooks after HUP", &e);
                        None
                    }),
                };
                self.opts = MasterOptions::from_settings(&s, argv, preloaded, access_log, hooks);
                self.set_wanted(py, self.opts.workers.max(1));
                crate::process::set_title(&format!("ferricorn: master [{}]", self.opts.proc_name));
            }
            Parsed::Exit { output, .. }
            | Parsed::Check {
                printed: Some(output),
                ..
            } => {
                log::error!(
                    "HUP: the new configuration is invalid, keeping the running one:\n{}",
                    output.trim_end()
                );
            }
            Parsed::Check { .. } => {}
        }
    }

    /// A new wanted worker count (TTIN, TTOU, WINCH, a HUP with another `workers`), told to
    /// nworkers_changed(server, new, old) as gunicorn's num_workers setter does.
    fn set_wanted(&mut self, py: Python<'_>, n: usize) {
        let old = std::mem::replace(&mut self.wanted, n);
        if let Some(h) = &self.opts.hooks {
            if n != old {
                h.set_num_workers(py, n);
                let _ = h.call(py, "nworkers_changed", (h.server(py), n, old));
            }
        }
    }

    /// Spawns or stops workers to match the wanted count; stops retiring workers whose
    /// replacements are ready.
    fn manage(&mut self, py: Python<'_>) -> Result<(), Error> {
        let active: Vec<i32> = self
            .workers
            .iter()
            .filter(|(_, w)| !w.retiring && w.termed_at.is_none() && w.aborted_at.is_none())
            .map(|(&pid, _)| pid)
            .collect();
        if active.len() < self.wanted && !self.boot_failed {
            for _ in active.len()..self.wanted {
                self.spawn(py)?;
            }
        } else if active.len() > self.wanted {
            // the oldest go first
            for pid in active.iter().take(active.len() - self.wanted) {
                self.terminate(*pid);
                if let Some(w) = self.workers.get_mut(pid) {
                    w.surplus = true;
                }
            }
        }
        self.gauge_workers();
        let ready = self
            .workers
            .values()
            .filter(|w| !w.retiring && w.termed_at.is_none())
            .filter(|w| {
                matches!(
                    self.heartbeats.slot(w.slot).state(),
                    state::READY | state::RETIRE
                )
            })
            .count();
        if (ready >= self.wanted && self.wanted > 0) || self.boot_failed {
            let old: Vec<i32> = self
                .workers
                .iter()
                .filter(|(_, w)| w.retiring && w.termed_at.is_none())
                .map(|(&pid, _)| pid)
                .collect();
            if self.boot_failed {
                // keep serving with what we have rather than stop everything
                for pid in old {
                    if let Some(w) = self.workers.get_mut(&pid) {
                        w.retiring = false;
                    }
                }
            } else {
                for pid in old {
                    self.terminate(pid);
                }
            }
        }
        Ok(())
    }

    /// gunicorn's `gunicorn.workers` StatsD gauge: the workers not being stopped, sent when
    /// that number changes.
    fn gauge_workers(&mut self) {
        let Some(statsd) = statsd::global() else {
            return;
        };
        let n = self
            .workers
            .values()
            .filter(|w| w.termed_at.is_none())
            .count();
        if self.workers_gauge != Some(n) {
            self.workers_gauge = Some(n);
            statsd.send("gunicorn.workers", &n.to_string(), statsd::Kind::Gauge);
        }
    }

    /// USR1: the master's error log and its copy of the access log, which new workers inherit.
    fn reopen_logs(&self) {
        worker::reopen_logs(self.opts.access_log.as_deref());
    }

    fn signal_all(&self, sig: libc::c_int) {
        for &pid in self.workers.keys() {
            kill(pid, sig);
        }
    }

    /// TERM (graceful) or INT/QUIT (quick): stop the workers, wait for them within the graceful
    /// timeout, kill what is left.
    fn stop(&mut self, py: Python<'_>, graceful: bool) -> Result<(), Error> {
        // first, as gunicorn's halt does: nobody waits on a socket the loop no longer serves
        self.ctl.shutdown();
        let sig = if graceful {
            libc::SIGTERM
        } else {
            libc::SIGQUIT
        };
        for (&pid, w) in self.workers.iter_mut() {
            w.killed = true;
            kill(pid, sig);
        }
        // the sockets stay open until the workers are gone: nothing in the backlog is refused
        // while a worker may still take it
        let deadline = now_ms() + self.opts.graceful_timeout.as_millis() as u64;
        while !self.workers.is_empty() && now_ms() < deadline {
            for s in self.signals.wait(100) {
                if matches!(s, libc::SIGINT | libc::SIGQUIT) && graceful {
                    log::info!("Handling signal: {}", signals::name(s));
                    self.signal_all(libc::SIGQUIT);
                }
            }
            self.reap(py)?;
        }
        // the dirty workers go last: HTTP workers finishing requests may still call them
        self.stop_dirty(py, graceful)?;
        self.halt(py, 0);
        Ok(())
    }

    /// Kills whatever is left and cleans up what the master created.
    fn halt(&mut self, py: Python<'_>, _code: i32) {
        self.ctl.shutdown();
        for &pid in self.workers.keys() {
            kill(pid, libc::SIGKILL);
        }
        self.halt_dirty(py);
        while !self.workers.is_empty() {
            let mut status = 0;
            // SAFETY: blocking wait for our own children, which were just SIGKILLed.
            let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
            if pid <= 0 {
                break;
            }
            if let Some(w) = self.workers.remove(&pid) {
                self.child_exit(py, &w);
            }
        }
        // after USR2 the new master owns the sockets; our pid file is the renamed .oldbin
        if self.reexec_pid.is_none() {
            crate::server::cleanup(&self.listeners, self.pidfile.as_ref());
        } else if let Some(p) = &self.pidfile {
            p.remove();
        }
        if let Some(h) = &self.opts.hooks {
            let _ = h.call(py, "on_exit", (h.server(py),));
        }
    }

    /// child_exit(server, worker), in the master, once a worker has been reaped.
    fn child_exit(&self, py: Python<'_>, w: &Worker) {
        if let (Some(h), Some(proxy)) = (&self.opts.hooks, &w.proxy) {
            let _ = h.call(py, "child_exit", (h.server(py), proxy.bind(py)));
        }
    }
}

pub(crate) fn kill(pid: i32, sig: libc::c_int) {
    // SAFETY: kill(2) on a pid we forked; at worst ESRCH if it is already gone.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn signal_name(sig: libc::c_int) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        other => format!("signal {other}"),
    }
}
