//! Errors that end the server, and the exit code each one earns.

use thiserror::Error;

/// Gunicorn's exit code for a worker that failed to boot (the app did not import).
pub const EXIT_APP_LOAD: i32 = 3;

#[derive(Debug, Error)]
pub enum Error {
    #[error("--chdir / chdir = {path:?}: {source} (give an existing directory)")]
    Chdir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The traceback was logged where it happened.
    #[error("failed to load the application {app:?}")]
    AppLoad { app: String },
    #[error(transparent)]
    Bind(#[from] crate::net::BindError),
    #[error("{0}")]
    PidFile(String),
    #[error("--user / --group: could not drop privileges: {0}")]
    Privileges(String),
    #[error("--access-logfile / accesslog = {path:?}: cannot open it for appending: {source}")]
    AccessLog {
        path: String,
        source: std::io::Error,
    },
    #[error("--metrics-bind / metrics_bind = {addr:?}: cannot serve metrics there: {source}")]
    MetricsBind {
        addr: String,
        source: std::io::Error,
    },
    /// A logconfig / logconfig_dict / logconfig_json setting that Python's logging refused.
    #[error("{0} (fix the logging configuration)")]
    LogConfig(String),
    /// The certificate, key, CA file or cipher list cannot make a TLS config.
    #[error("{0}")]
    Tls(#[from] crate::net::tls::TlsError),
    #[error("could not start the worker: {0}")]
    Io(#[from] std::io::Error),
    #[error("Python error while starting: {0}")]
    Python(#[from] pyo3::PyErr),
    /// on_starting or when_ready raised (the traceback was logged); gunicorn stops there too.
    #[error("the {name} hook raised an exception (traceback above); not starting")]
    Hook { name: &'static str },
    /// The dirty pool's sockets could not be made.
    #[error("could not start the dirty worker pool (--dirty-app): {0}")]
    Dirty(String),
    /// Not a failure: this process is a forked worker that finished; unwind and exit.
    #[error("worker exited with code {0}")]
    ChildExit(i32),
    /// The master stopped the server (the reason was logged).
    #[error("server halted with code {0}")]
    Halt(i32),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::AppLoad { .. } => EXIT_APP_LOAD,
            Error::ChildExit(code) | Error::Halt(code) => *code,
            _ => 1,
        }
    }
}
