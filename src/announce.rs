//! The startup lines a person reads and tools grep: gunicorn's shapes (`Listening at: URL
//! (pid)`, `Using worker: ...`) plus what gunicorn leaves out (worker count, the app's
//! interface), and with `--log-level debug` why each choice was made: where every given
//! setting came from, which sockets were inherited, which worker class and why.
//!
//! It only composes and logs text; every decision it reports is made elsewhere.

use crate::net::Listener;
use crate::settings::{Env, Settings};

/// Where the listening sockets came from (`server::listen` decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketSource {
    /// A previous master handed them over on USR2 (`FERRICORN_FDS`).
    Upgrade,
    /// systemd socket activation (`LISTEN_FDS`).
    Systemd,
    /// Bound by this process from `--bind`.
    Bound,
}

/// Debug lines before anything is bound: the conf file and every non-default setting with its
/// source.
pub fn settings(s: &Settings) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    match &s.origins.conf_file {
        Some(file) => log::debug!("Config file: {file}"),
        None => log::debug!(
            "Config file: none (no -c given and no ./gunicorn.conf.py or ./ferricorn.conf.py)"
        ),
    }
    let explained = s.origins.explain(&s.values, Env::process());
    if explained.is_empty() {
        log::debug!("Settings: every setting is at its default");
    }
    for line in explained {
        log::debug!("Setting {line}");
    }
}

/// `Listening at: URL (pid)` for each socket (the readiness line tests and tools wait for),
/// after a debug line saying whether the sockets were inherited or bound here.
pub fn listening(s: &Settings, listeners: &[Listener], source: SocketSource) {
    let bind = s
        .bind
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    match source {
        SocketSource::Upgrade => log::debug!(
            "Sockets: {} inherited from the previous master (USR2 upgrade, FERRICORN_FDS); \
             --bind is not re-read",
            listeners.len()
        ),
        SocketSource::Systemd => log::debug!(
            "Sockets: {} inherited from systemd socket activation (LISTEN_FDS); \
             --bind {bind} is not used",
            listeners.len()
        ),
        SocketSource::Bound => log::debug!("Sockets: bound here from --bind {bind}"),
    }
    let pid = std::process::id();
    for l in listeners {
        // TLS is not implemented yet: every TCP listener speaks plain HTTP
        log::info!("Listening at: {} ({pid})", l.url_for(s.tls.is_some()));
    }
}

/// `Using worker: CLASS (...)` with the worker count, then the application line; the debug
/// line says why this worker class.
pub fn worker_and_app(s: &Settings) {
    let workers = match s.workers {
        1 => "1 worker".to_owned(),
        n => format!("{n} workers"),
    };
    let class = s.values.str("worker_class").unwrap_or("sync");
    if s.asgi.interface == "asgi" {
        log::info!(
            "Using worker: asgi ({workers}, one event loop each; event loop: {})",
            s.asgi.event_loop
        );
        let why = if class == "asgi" {
            "--worker-class names an ASGI worker"
        } else {
            "--interface asgi"
        };
        log::debug!("Worker class asgi because {why}: each worker runs the app on one event loop");
    } else {
        let threads = match s.threads {
            1 => "1 thread".to_owned(),
            n => format!("{n} threads"),
        };
        log::info!("Using worker: {class} ({workers}, {threads} each)");
        log::debug!(
            "Worker class {class}: sync and gthread are the same threaded worker here, with \
             --threads app threads per process; with --interface {} an app whose call is a \
             coroutine function is served on an event loop instead",
            s.asgi.interface
        );
    }
    if s.preload_app {
        log::info!("Serving application {} (preloaded in the master)", s.app);
    } else {
        log::info!(
            "Serving application {} (interface {}: each worker reports what it found when it \
             imports the app)",
            s.app,
            s.asgi.interface
        );
    }
}

/// The app's detected interface and the reason, once it is imported. `loud` makes it an
/// info line (the first worker, or the master with --preload); other workers say it at debug.
pub fn interface(app: &str, kind: &str, reason: &str, loud: bool) {
    let name = match kind {
        "asgi3" => "ASGI 3",
        "asgi2" => "ASGI 2",
        _ => "WSGI",
    };
    let served = if kind == "wsgi" {
        "called on app threads"
    } else {
        "served on an asyncio event loop"
    };
    if loud {
        log::info!("Application {app} is {name} ({reason}): {served}");
    } else {
        log::debug!("Application {app} is {name} ({reason}): {served}");
    }
}
