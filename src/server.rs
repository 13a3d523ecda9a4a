//! Boot: from validated settings to a running master — chdir, sys.path, preload, bind,
//! announce, then hand over to the arbiter. Everything that can fail because of the user's
//! input fails here, before any worker is forked.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::error::Error;
use crate::http::request::Limits;
use crate::master::{Arbiter, MasterOptions};
use crate::settings::{Settings, VERSION};

pub fn run(py: Python<'_>, s: Settings) -> Result<(), Error> {
    log::info!("Starting ferricorn {VERSION}");
    if let Some(dir) = &s.chdir {
        std::env::set_current_dir(dir).map_err(|source| Error::Chdir {
            path: dir.clone(),
            source,
        })?;
    }
    let loader = py.import("ferricorn._loader")?;
    loader.call_method1("prepare_path", (PyList::new(py, &s.pythonpath)?,))?;
    let knobs = MasterKnobs::from_env();
    let preloaded = if knobs.preload {
        Some(load_app(py, &s.app)?)
    } else {
        None
    };
    // Python's own SIGINT handler would raise KeyboardInterrupt inside whatever app code the
    // main thread runs; the master and the workers' runtimes own signals instead.
    let signal = py.import("signal")?;
    for name in ["SIGINT", "SIGTERM"] {
        signal.call_method1(
            "signal",
            (signal.getattr(name)?, signal.getattr("SIG_DFL")?),
        )?;
    }

    let listeners = crate::net::bind_all(&s.bind, s.backlog)?;
    let pid = std::process::id();
    for l in &listeners {
        log::info!("Listening at: {} ({pid})", l.url());
    }
    log::info!("Using worker: ferricorn (threads: {})", s.threads);
    log::info!("Serving application {}", s.app);

    let opts = MasterOptions {
        app_spec: s.app.clone(),
        preloaded,
        workers: knobs.workers,
        threads: s.threads,
        timeout: Duration::from_secs(knobs.timeout),
        graceful_timeout: Duration::from_secs(knobs.graceful_timeout),
        max_requests: knobs.max_requests,
        max_requests_jitter: knobs.max_requests_jitter,
        max_worker_memory: knobs.max_worker_memory << 20,
        limits: Limits {
            request_line: s.limit_request_line,
            fields: s.limit_request_fields,
            field_size: s.limit_request_field_size,
        },
        keepalive: Duration::from_secs(s.keepalive),
    };
    Arbiter::new(opts, listeners)?.run(py)?;
    log::info!("Shutting down: Master");
    Ok(())
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

/// Temporary: the master's settings until they join the registry.
struct MasterKnobs {
    workers: usize,
    preload: bool,
    timeout: u64,
    graceful_timeout: u64,
    max_requests: u64,
    max_requests_jitter: u64,
    max_worker_memory: u64,
}

impl MasterKnobs {
    fn from_env() -> Self {
        let get = |k: &str, d: u64| {
            std::env::var(k)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(d)
        };
        MasterKnobs {
            workers: get("FERRICORN_WORKERS", 1) as usize,
            preload: get("FERRICORN_PRELOAD", 0) == 1,
            timeout: get("FERRICORN_TIMEOUT", 30),
            graceful_timeout: get("FERRICORN_GRACEFUL", 30),
            max_requests: get("FERRICORN_MAX_REQUESTS", 0),
            max_requests_jitter: get("FERRICORN_JITTER", 0),
            max_worker_memory: get("FERRICORN_MAX_MEM", 0),
        }
    }
}
