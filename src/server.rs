//! Boot: from validated settings to a serving worker — chdir, sys.path, load the app, bind,
//! announce, serve. Everything that can fail because of the user's input fails here, before
//! the first connection is accepted.

use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bridge::wsgi::WsgiApp;
use crate::error::Error;
use crate::http::request::Limits;
use crate::settings::{Settings, VERSION};
use crate::worker::{self, WorkerOptions};

pub fn run(py: Python<'_>, s: Settings) -> Result<(), Error> {
    log::info!("Starting ferricorn {VERSION}");
    if let Some(dir) = &s.chdir {
        std::env::set_current_dir(dir).map_err(|source| Error::Chdir {
            path: dir.clone(),
            source,
        })?;
    }
    let app = load_app(py, &s)?;
    // Python's own SIGINT handler would raise KeyboardInterrupt inside whatever app code the
    // main thread runs; the I/O thread owns shutdown signals instead.
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
    log::info!("Booting worker with pid: {pid}");
    log::info!("Serving application {}", s.app);

    let app = WsgiApp::new(py, app, s.threads)?;
    let opts = WorkerOptions {
        threads: s.threads,
        limits: Limits {
            request_line: s.limit_request_line,
            fields: s.limit_request_fields,
            field_size: s.limit_request_field_size,
        },
        keepalive: Duration::from_secs(s.keepalive),
        graceful_timeout: Duration::from_secs(30),
    };
    worker::run(py, app, listeners, opts)?;
    log::info!("Shutting down: Master");
    Ok(())
}

/// Imports the app with gunicorn's rules (see python/ferricorn/_loader.py).
fn load_app(py: Python<'_>, s: &Settings) -> Result<Py<PyAny>, Error> {
    let loader = py.import("ferricorn._loader")?;
    let paths = PyList::new(py, &s.pythonpath)?;
    loader.call_method1("prepare_path", (paths,))?;
    match loader.call_method1("load", (&s.app,)) {
        Ok(app) => Ok(app.unbind()),
        Err(e) => {
            let describe = loader.call_method1("describe_failure", (e.into_value(py),));
            let text = describe
                .and_then(|t| t.extract::<String>())
                .unwrap_or_else(|_| "unknown error".into());
            log::error!(
                "Failed to load application {:?}:\n{}",
                s.app,
                text.trim_end()
            );
            Err(Error::AppLoad { app: s.app.clone() })
        }
    }
}
