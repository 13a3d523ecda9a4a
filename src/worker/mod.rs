//! A worker: the I/O thread (a single-threaded tokio runtime that accepts and serves
//! connections) and the app threads that run Python, joined by the job queue.
//!
//! The calling thread becomes app thread 0, so `--threads 1` (the default, and the fastest for
//! CPU-bound apps) means exactly two OS threads: one for I/O, one for Python.

mod accept;

use std::io;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, watch};

use crate::bridge::wsgi::WsgiApp;
use crate::http::conn::ConnConfig;
use crate::http::request::Limits;
use crate::net::Listener;

/// What the worker needs beside the app and its sockets.
pub struct WorkerOptions {
    pub threads: usize,
    pub limits: Limits,
    pub keepalive: Duration,
    pub graceful_timeout: Duration,
}

/// Serves until a shutdown signal; returns once every thread has finished.
pub fn run(
    py: Python<'_>,
    app: WsgiApp,
    listeners: Vec<Listener>,
    opts: WorkerOptions,
) -> io::Result<()> {
    let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded();
    let cfg = Arc::new(ConnConfig {
        limits: opts.limits,
        keepalive: opts.keepalive,
        jobs: jobs_tx,
    });
    let graceful = opts.graceful_timeout;
    let io_thread = std::thread::Builder::new()
        .name("ferricorn-io".into())
        .spawn(move || io_main(listeners, cfg, graceful))?;

    let app = Arc::new(app);
    let mut app_threads = Vec::new();
    for i in 1..opts.threads {
        let (app, jobs) = (app.clone(), jobs_rx.clone());
        app_threads.push(
            std::thread::Builder::new()
                .name(format!("ferricorn-app-{i}"))
                .spawn(move || Python::attach(|py| app.serve_jobs(py, &jobs)))?,
        );
    }
    app.serve_jobs(py, &jobs_rx);
    py.detach(|| {
        for t in app_threads {
            let _ = t.join();
        }
        match io_thread.join() {
            Ok(r) => r,
            Err(_) => Err(io::Error::other("the I/O thread panicked")),
        }
    })
}

/// How a signal asks us to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// TERM: finish the requests in flight (up to the graceful timeout), then exit.
    Graceful,
    /// INT, QUIT: exit now.
    Quick,
}

fn io_main(listeners: Vec<Listener>, cfg: Arc<ConnConfig>, graceful: Duration) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(async move {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut quit = signal(SignalKind::quit())?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        // every connection holds a clone; recv() returns None once all of them are done
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        for listener in listeners {
            accept::spawn(listener, cfg.clone(), shutdown_rx.clone(), alive_tx.clone())?;
        }
        drop(cfg);
        drop(alive_tx);
        let stop = tokio::select! {
            _ = term.recv() => { log::info!("Handling signal: term"); Stop::Graceful }
            _ = int.recv() => { log::info!("Handling signal: int"); Stop::Quick }
            _ = quit.recv() => { log::info!("Handling signal: quit"); Stop::Quick }
        };
        let _ = shutdown_tx.send(true);
        if let Stop::Graceful = stop {
            if tokio::time::timeout(graceful, alive_rx.recv())
                .await
                .is_err()
            {
                log::warn!(
                    "graceful timeout ({}s) expired with requests still in flight",
                    graceful.as_secs()
                );
            }
        }
        Ok::<(), io::Error>(())
    });
    // dropping the runtime cancels what is left, which drops the last job senders and lets
    // the app threads run out of work and return
    drop(rt);
    log::info!("Worker exiting (pid: {})", std::process::id());
    result
}
