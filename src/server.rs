//! Boot: from validated settings to a running master — chdir, sys.path, preload, bind,
//! announce, then hand over to the arbiter. Everything that can fail because of the user's
//! input fails here, before any worker is forked.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::accesslog::AccessLog;
use crate::announce::SocketSource;
use crate::error::Error;
use crate::hooks::ServerHooks;
use crate::master::{Arbiter, MasterOptions};
use crate::metrics::prometheus::MetricsServer;
use crate::net::{BindOptions, Listener};
use crate::process::PidFile;
use crate::settings::{Settings, VERSION};

pub fn run(py: Python<'_>, argv: Vec<String>, s: Settings) -> Result<(), Error> {
    // before daemonizing, so a relative path means what it meant on the command line
    let access_log = match &s.accesslog {
        Some(path) => Some(Arc::new(
            AccessLog::open(path, &s.access_log_format, s.access_log_json).map_err(|source| {
                Error::AccessLog {
                    path: path.clone(),
                    source,
                }
            })?,
        )),
        None => None,
    };
    if s.daemon {
        crate::process::daemon::daemonize_with(py, s.enable_stdio_inheritance)?;
    }
    // after daemonizing, which points stdio at /dev/null
    if s.capture_output {
        crate::errorlog::capture_output()?;
    }
    log::info!("Starting ferricorn {VERSION}");
    enter_app_dir(py, &s)?;
    // Python's own SIGINT handler would raise KeyboardInterrupt inside whatever app code the
    // main thread runs; the master and the workers' runtimes own signals instead.
    let signal = py.import("signal")?;
    for name in ["SIGINT", "SIGTERM"] {
        signal.call_method1(
            "signal",
            (signal.getattr(name)?, signal.getattr("SIG_DFL")?),
        )?;
    }

    // the pid file first: a second server started by mistake stops before touching sockets
    let pidfile = match &s.pidfile {
        Some(path) => Some(PidFile::create(path).map_err(|e| Error::PidFile(e.to_string()))?),
        None => None,
    };
    let hooks = match start_hooks(py, &s) {
        Ok(h) => h,
        Err(e) => {
            if let Some(p) = &pidfile {
                p.remove();
            }
            return Err(e);
        }
    };
    // the TLS files are read once here only to fail before binding (each worker reads them
    // again when it boots)
    if let Some(tls) = &s.tls {
        if let Err(e) = tls.load() {
            if let Some(p) = &pidfile {
                p.remove();
            }
            return Err(e.into());
        }
    }
    crate::announce::settings(&s);
    let (listeners, socket_source) = match listen(&s) {
        Ok(l) => l,
        Err(e) => {
            if let Some(p) = &pidfile {
                p.remove();
            }
            return Err(e);
        }
    };
    // metrics sinks exist before the first fork, so every worker inherits them
    let metrics = match start_metrics(&s) {
        Ok(m) => m,
        Err(e) => {
            cleanup(&listeners, pidfile.as_ref());
            return Err(e);
        }
    };
    // from here on a signal is queued for the master loop, never lost or fatal: the readiness
    // line below is a promise that the server can be signalled
    let signals = crate::master::signals::SignalQueue::install()?;
    crate::announce::listening(&s, &listeners, socket_source);
    // privileges go after bind (ports below 1024) and before any app code runs
    crate::process::privileges::drop_privileges(s.user, s.group)
        .map_err(|e| Error::Privileges(e.to_string()))?;
    crate::announce::worker_and_app(&s);
    let preloaded = if s.preload_app {
        match load_app(py, &s.app) {
            Ok(app) => {
                announce_preloaded(py, &s, &app);
                Some(app)
            }
            Err(e) => {
                cleanup(&listeners, pidfile.as_ref());
                return Err(e);
            }
        }
    } else {
        None
    };

    let opts = MasterOptions::from_settings(&s, argv, preloaded, access_log, hooks);
    Arbiter::new(opts, listeners, pidfile, signals)?
        .with_metrics(metrics)
        .with_control(control_options(&s))
        .run(py)?;
    log::info!("Shutting down: Master");
    Ok(())
}

/// `--control-socket` (relative to the working directory, as gunicorn resolves it when the
/// master starts it), or `None` with `--no-control-socket`.
fn control_options(s: &Settings) -> Option<crate::master::control::ControlOptions> {
    if s.values.bool("control_socket_disable").unwrap_or(false) {
        return None;
    }
    let path = std::path::PathBuf::from(s.values.opt_str("control_socket").ok()??);
    let path = match std::env::current_dir() {
        Ok(cwd) if path.is_relative() => cwd.join(path),
        _ => path,
    };
    let mode = s.values.int("control_socket_mode").unwrap_or(0o600);
    Some(crate::master::control::ControlOptions {
        path,
        mode: u32::try_from(mode).unwrap_or(0o600),
    })
}

/// Connects the StatsD socket (`--statsd-host`) and, for `--metrics-bind`, maps the shared
/// counters and binds the master's endpoint. Settings re-read on HUP do not change these, as
/// they do not change the listening sockets.
fn start_metrics(s: &Settings) -> Result<Option<MetricsServer>, Error> {
    if let Some(addr) = &s.statsd_host {
        crate::metrics::statsd::install(addr, &s.statsd_prefix, &s.dogstatsd_tags);
    }
    let Some(addr) = &s.metrics_bind else {
        return Ok(None);
    };
    let bind_error = |source| Error::MetricsBind {
        addr: addr.clone(),
        source,
    };
    crate::metrics::shm::install().map_err(bind_error)?;
    let server = MetricsServer::bind(addr).map_err(bind_error)?;
    if let Ok(local) = server.local_addr() {
        log::info!("Metrics at: http://{local}/metrics");
    }
    Ok(Some(server))
}

/// The conf file's hooks, and gunicorn's first two calls, before the sockets are bound:
/// nworkers_changed(server, workers, None) (gunicorn's Arbiter.setup sets num_workers) and
/// on_starting(server). gunicorn calls on_starting outside its main loop's error handling, so
/// an exception there stops the server; so it does here.
fn start_hooks(py: Python<'_>, s: &Settings) -> Result<Option<ServerHooks>, Error> {
    let Some(hooks) = ServerHooks::new(py, s)? else {
        return Ok(None);
    };
    let server = hooks.server(py);
    let _ = hooks.call(py, "nworkers_changed", (server, s.workers, py.None()));
    hooks
        .call(py, "on_starting", (server,))
        .map_err(|_| Error::Hook {
            name: "on_starting",
        })?;
    Ok(Some(hooks))
}

/// --env into os.environ (as gunicorn's Arbiter.setup does), --chdir, then
/// the working directory and --pythonpath onto sys.path, as the app's import
/// needs them. os.environ rather than std::env: it keeps Python's mapping in
/// step and calls putenv while only this thread runs.
fn enter_app_dir(py: Python<'_>, s: &Settings) -> Result<(), Error> {
    if !s.raw_env.is_empty() {
        let environ = py.import("os")?.getattr("environ")?;
        for (key, value) in &s.raw_env {
            environ.set_item(key, value)?;
        }
    }
    if let Some(dir) = &s.chdir {
        std::env::set_current_dir(dir).map_err(|source| Error::Chdir {
            path: dir.clone(),
            source,
        })?;
    }
    let loader = py.import("ferricorn._loader")?;
    loader.call_method1("prepare_path", (PyList::new(py, &s.pythonpath)?,))?;
    configure_logging(py, s)
}

/// logconfig_dict / logconfig_json / logconfig, applied to Python's logging in the master,
/// before the app is imported and before anything is bound.
fn configure_logging(py: Python<'_>, s: &Settings) -> Result<(), Error> {
    let dict_repr = s
        .values
        .get("logconfig_dict")
        .map(|v| v.to_string())
        .unwrap_or_default();
    let json = s.values.opt_str("logconfig_json").ok().flatten();
    let ini = s.values.opt_str("logconfig").ok().flatten();
    if (dict_repr.is_empty() || dict_repr == "{}") && json.is_none() && ini.is_none() {
        return Ok(());
    }
    let failed: Option<String> = py
        .import("ferricorn._logging")?
        .call_method1("configure", (dict_repr, json, ini))?
        .extract()?;
    match failed {
        Some(reason) => Err(Error::LogConfig(reason)),
        None => Ok(()),
    }
}

/// --check-config: the app imports with these settings (and the TLS files load). Nothing is
/// bound.
pub fn check_app(py: Python<'_>, s: &Settings) -> Result<(), Error> {
    enter_app_dir(py, s)?;
    if let Some(tls) = &s.tls {
        tls.load()?;
    }
    load_app(py, &s.app).map(drop)
}

/// The listening sockets: handed over by a previous master (USR2), by systemd socket
/// activation, or bound here from --bind.
fn listen(s: &Settings) -> Result<(Vec<Listener>, SocketSource), Error> {
    if let Some(l) = crate::net::inherited_listeners()? {
        return Ok((l, SocketSource::Upgrade));
    }
    if let Some(l) = crate::net::systemd_listeners()? {
        SYSTEMD_SOCKETS.store(true, std::sync::atomic::Ordering::Relaxed);
        return Ok((l, SocketSource::Systemd));
    }
    let opts = BindOptions {
        backlog: s.backlog,
        reuse_port: s.reuse_port,
        umask: s.umask,
    };
    Ok((crate::net::bind_with(&s.bind, &opts)?, SocketSource::Bound))
}

/// With --preload the master has the app, so it reports the interface the workers will use.
fn announce_preloaded(py: Python<'_>, s: &Settings, app: &Py<PyAny>) {
    let explained = py
        .import("ferricorn._asgi")
        .and_then(|m| m.call_method1("explain_interface", (app, &s.asgi.interface)))
        .and_then(|i| i.extract::<(String, String)>());
    if let Ok((kind, reason)) = explained {
        crate::announce::interface(&s.app, &kind, &reason, true);
    }
}

/// Set when the sockets came from systemd: their files belong to the socket unit, which keeps
/// listening after we exit (the next start, or a queued connection, needs the path), so they
/// are not unlinked, as gunicorn does not.
static SYSTEMD_SOCKETS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Removes what the master created (unix socket files, pid file); the master calls it at exit.
pub fn cleanup(listeners: &[Listener], pidfile: Option<&PidFile>) {
    let ours = !SYSTEMD_SOCKETS.load(std::sync::atomic::Ordering::Relaxed);
    for l in listeners.iter().filter(|_| ours) {
        if let Some(path) = l.unix_path() {
            let _ = std::fs::remove_file(path);
        }
    }
    if let Some(p) = pidfile {
        p.remove();
    }
}

/// Imports the app with gunicorn's rules (see python/ferricorn/_loader.py); a failure is
/// logged with its traceback.
pub fn load_app(py: Python<'_>, spec: &str) -> Result<Py<PyAny>, Error> {
    let loader = py.import("ferricorn._loader")?;
    match loader.call_method1("load", (spec,)) {
        Ok(app) => Ok(app.unbind()),
        Err(e) => {
            let describe = loader.call_method1("describe_failure", (e.into_value(py),));
            let text = describe
                .and_then(|t| t.extract::<String>())
                .unwrap_or_else(|_| "unknown error".into());
            log::error!("Failed to load application {spec:?}:\n{}", text.trim_end());
            Err(Error::AppLoad {
                app: spec.to_owned(),
            })
        }
    }
}
