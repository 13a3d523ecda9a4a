//! A worker's first moments after fork: detach from the master's signal handling, arrange to
//! die with the master, turn on Python's fault handler (so a hung or crashed worker leaves its
//! stacks in the error log), load the app unless it was preloaded, then serve.

use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

use pyo3::prelude::*;

use super::{run, App, MasterLink, WorkerOptions};
use crate::bridge::wsgi::WsgiApp;
use crate::error::EXIT_APP_LOAD;
use crate::master::heartbeat::now_ms;
use crate::net::Listener;

/// Everything a freshly forked worker needs.
pub struct BootOptions {
    pub app_spec: String,
    /// The app object when `--preload` imported it in the master.
    pub preloaded: Option<Py<PyAny>>,
    pub threads: usize,
    pub asgi: crate::bridge::asgi::AsgiOptions,
    pub reload: super::ReloadOptions,
    pub worker: WorkerOptions,
}

/// A stop signal (TERM/INT/QUIT) that arrived before the worker's runtime took over signals,
/// e.g. while the app was still importing; 0 if none.
pub static EARLY_STOP: AtomicI32 = AtomicI32::new(0);

/// Runs a worker to completion and returns its exit code.
pub fn boot(py: Python<'_>, listeners: Vec<Listener>, opts: BootOptions, link: MasterLink) -> i32 {
    let pid = std::process::id();
    log::info!("Booting worker with pid: {pid}");
    link.heartbeats.slot(link.slot).beat(now_ms(), 0);
    let early = catch_early_stop();
    ignore_master_signals(&[]);
    if let Err(e) = enable_fault_handler(py) {
        log::warn!("could not enable faulthandler: {e}");
    }
    if let Err(e) = crate::master::control::stacks::register(py) {
        log::warn!("`dump stacks` will not reach this worker: {e}");
    }
    let hooks = opts.worker.hooks.clone();
    if hooks
        .as_ref()
        .is_some_and(|h| h.hooks.is_set("worker_abort"))
    {
        take_abort_signal();
    }
    // this worker's TLS config, from the files as they are now: after a HUP, renewed ones
    let tls = match opts
        .worker
        .tls
        .as_ref()
        .map(crate::net::tls::TlsSettings::load)
    {
        None => None,
        Some(Ok(config)) => Some(config),
        Some(Err(e)) => {
            log::error!("cannot set up TLS: {e}");
            return EXIT_APP_LOAD;
        }
    };
    let preloaded = opts.preloaded.is_some();
    let app = match opts.preloaded {
        Some(app) => app,
        None => match crate::server::load_app(py, &opts.app_spec) {
            Ok(app) => app,
            Err(_) => return EXIT_APP_LOAD,
        },
    };
    if EARLY_STOP.load(Ordering::Relaxed) != 0 {
        log::info!("Worker exiting (pid: {pid})");
        return 0;
    }
    let interface = match py
        .import("ferricorn._asgi")
        .and_then(|m| m.call_method1("explain_interface", (&app, &opts.asgi.interface)))
        .and_then(|i| i.extract::<(String, String)>())
    {
        Ok((kind, reason)) => {
            // the first worker says it for everyone; with --preload the master already did
            let loud = link.slot == 0 && !preloaded;
            crate::announce::interface(&opts.app_spec, &kind, &reason, loud);
            kind
        }
        Err(e) => {
            log::error!("Exception in worker process: {e}");
            return 1;
        }
    };
    let request_hooks = hooks
        .as_ref()
        .and_then(|h| h.hooks.request_hooks(&h.worker, py));
    let app = if interface == "wsgi" {
        match WsgiApp::new(py, app, opts.threads, request_hooks) {
            Ok(app) => App::Wsgi(app),
            Err(e) => {
                log::error!("Exception in worker process: {e}");
                return 1;
            }
        }
    } else {
        if opts.threads > 1 {
            log::debug!("--threads is ignored by ASGI workers: one event loop serves them all");
        }
        App::Asgi(app, opts.asgi, request_hooks)
    };
    if let Some(h) = &hooks {
        // gunicorn: post_worker_init runs inside the worker's boot, so an exception fails it
        if h.call_worker(py, "post_worker_init").is_err() {
            return EXIT_APP_LOAD;
        }
        h.set(py, "booted", true);
    }
    // after the import, so the app's own modules are known; held until the worker ends
    let _reloader = if opts.reload.enabled {
        super::reload::start(py, &opts.reload, link.clone())
    } else {
        None
    };
    let result = run(py, app, listeners, opts.worker, tls, link, early);
    match result {
        Ok(code) => code,
        Err(e) => {
            log::error!("worker failed: {e}");
            1
        }
    }
}

/// Records TERM/INT/QUIT until the runtime's own handlers exist (the ids are handed to `run`,
/// which removes them once tokio listens).
fn catch_early_stop() -> Vec<signal_hook_registry::SigId> {
    [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT]
        .into_iter()
        .filter_map(|sig| {
            // SAFETY: the action is one atomic store, which is async-signal-safe.
            unsafe {
                signal_hook_registry::register(sig, move || {
                    EARLY_STOP.store(sig, Ordering::Relaxed)
                })
            }
            .ok()
        })
        .collect()
}

/// The master's control signals, which mean nothing to the processes it forks.
const MASTER_SIGNALS: [libc::c_int; 5] = [
    libc::SIGHUP,
    libc::SIGWINCH,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGUSR2,
];

/// What a forked child ignores: the master's control signals, plus `also`.
fn ignored_signals(also: &[libc::c_int]) -> impl Iterator<Item = libc::c_int> + '_ {
    MASTER_SIGNALS.into_iter().chain(also.iter().copied())
}

/// A forked child (HTTP or dirty worker, the stash) ignores the master's control signals, so
/// that one sent to the whole process group does not kill it, plus the signals in `also`; and
/// it dies with the master.
///
/// TERM/INT/QUIT are the child's own. An HTTP worker passes no `also`: its USR1 (reopen logs)
/// is not ignored, because the handler the master installed stays in place (with its actions
/// detached, it swallows the signal) and tokio's registration only adds an action to it;
/// `SIG_IGN` would replace that handler for good. A dirty child ignores USR1 until its Python
/// serving loop installs its own handler for it.
pub(crate) fn ignore_master_signals(also: &[libc::c_int]) {
    for sig in ignored_signals(also) {
        // SAFETY: setting a disposition to SIG_IGN has no memory-safety preconditions.
        unsafe {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_PDEATHSIG takes a signal number; it makes the kernel send us QUIT if the
    // master dies without stopping us (the heartbeat's getppid check is the portable backstop).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT);
    }
}

/// `faulthandler` prints every thread's Python stack on SIGABRT (the master's timeout kill)
/// and on SIGSEGV/SIGBUS/SIGFPE/SIGILL, from a C handler that works even while a thread holds
/// the GIL in a tight loop.
fn enable_fault_handler(py: Python<'_>) -> PyResult<()> {
    let sys = py.import("sys")?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("file", sys.getattr("stderr")?)?;
    kwargs.set_item("all_threads", true)?;
    py.import("faulthandler")?
        .call_method("enable", (), Some(&kwargs))?;
    Ok(())
}

/// With a worker_abort hook, SIGABRT goes back to its default action here so that the I/O
/// thread's handler (registered later) is the only one: faulthandler's C handler, which would
/// otherwise run next in the chain, prints the stacks and then kills the process before the hook
/// could run. The I/O thread prints the stacks itself (worker::on_abort).
fn take_abort_signal() {
    // SAFETY: setting a disposition to SIG_DFL has no memory-safety preconditions.
    unsafe {
        libc::signal(libc::SIGABRT, libc::SIG_DFL);
    }
}

/// How long the master lets a timed-out worker print its stacks before SIGKILL.
pub const ABORT_GRACE: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_ignore_the_master_signals_and_only_the_dirty_one_also_usr1() {
        let http: Vec<_> = ignored_signals(&[]).collect();
        assert!(http.contains(&libc::SIGHUP) && http.contains(&libc::SIGUSR2));
        assert!(
            !http.contains(&libc::SIGUSR1),
            "tokio's USR1 handler must survive"
        );
        for own in [libc::SIGTERM, libc::SIGINT, libc::SIGQUIT] {
            assert!(!http.contains(&own));
        }
        let dirty: Vec<_> = ignored_signals(&[libc::SIGUSR1]).collect();
        assert_eq!(dirty.len(), http.len() + 1);
        assert!(dirty.contains(&libc::SIGUSR1));
    }
}
