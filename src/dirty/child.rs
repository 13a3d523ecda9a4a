//! A forked dirty worker: process setup in Rust (signals, parent-death signal, title), then
//! the serving loop in Python (`ferricorn.dirty._worker.serve`), which imports the apps, calls
//! their `init()` once, and answers calls on the inherited sockets until TERM.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::link::DirtyLink;
use crate::error::EXIT_APP_LOAD;

/// What the master hands a dirty child.
pub struct ChildSpec<'a> {
    pub rank: usize,
    /// (socket, app path, `:N` limit) for each app this rank may load.
    pub apps: Vec<(&'a UnixListener, String, Option<usize>)>,
    pub threads: usize,
    pub link: DirtyLink,
    /// The `worker` object for dirty_worker_init, and the hook (if set).
    pub hook: Option<(Py<PyAny>, Py<PyAny>)>,
}

/// Runs the dirty worker to its end; returns the process exit code.
pub fn run(py: Python<'_>, spec: ChildSpec<'_>) -> i32 {
    reset_signals();
    match serve(py, spec) {
        Ok(code) => code,
        Err(e) => {
            crate::hooks::log_exception(py, "in the dirty worker", &e);
            EXIT_APP_LOAD
        }
    }
}

fn serve(py: Python<'_>, spec: ChildSpec<'_>) -> PyResult<i32> {
    let module = py.import("ferricorn.dirty._worker")?;
    let apps: Vec<(i32, String, Option<usize>)> = spec
        .apps
        .iter()
        .map(|(l, path, limit)| (l.as_raw_fd(), path.clone(), *limit))
        .collect();
    let kwargs = PyDict::new(py);
    kwargs.set_item("rank", spec.rank)?;
    kwargs.set_item("apps", apps)?;
    kwargs.set_item("threads", spec.threads)?;
    kwargs.set_item("link", Py::new(py, spec.link)?)?;
    if let Some((worker, hook)) = &spec.hook {
        kwargs.set_item("worker", worker.bind(py))?;
        kwargs.set_item("init_hook", hook.bind(py))?;
    }
    module.call_method("serve", (), Some(&kwargs))?.extract()
}

/// The master's signal actions were detached after the fork; Python's handlers (installed by
/// the serving loop) take TERM/INT/QUIT, and USR1 to reopen the logs (ignored until then).
fn reset_signals() {
    crate::worker::ignore_master_signals(&[libc::SIGUSR1]);
}

/// Runs the stash process to its end; returns the exit code.
pub fn run_stash(py: Python<'_>, listener: &UnixListener) -> i32 {
    reset_signals();
    let served = py.import("ferricorn.dirty._stash_server").and_then(|m| {
        let kwargs = PyDict::new(py);
        kwargs.set_item("fd", listener.as_raw_fd())?;
        m.call_method("serve", (), Some(&kwargs))?.extract::<i32>()
    });
    served.unwrap_or_else(|e| {
        crate::hooks::log_exception(py, "in the dirty stash", &e);
        1
    })
}
