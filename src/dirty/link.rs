//! `DirtyLink`: how a dirty worker's serving loop (Python) reports to the master through its
//! heartbeat slot — ready, and since when its oldest call in progress has run — so the master
//! can kill a call past `--dirty-timeout`. Nothing else crosses the process boundary.

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

use crate::master::heartbeat::{now_ms, state, Heartbeats};

/// Given to `ferricorn.dirty._worker.serve`; one per dirty worker process.
#[pyclass(module = "ferricorn._ferricorn", frozen)]
pub struct DirtyLink {
    heartbeats: Arc<Heartbeats>,
    slot: usize,
    /// Calls in progress: (token, start ms). A handful at most (one per dirty thread).
    inflight: Mutex<Vec<(u64, u64)>>,
    next: std::sync::atomic::AtomicU64,
}

impl DirtyLink {
    pub fn new(heartbeats: Arc<Heartbeats>, slot: usize) -> Self {
        DirtyLink {
            heartbeats,
            slot,
            inflight: Mutex::new(Vec::new()),
            next: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn publish(&self, inflight: &[(u64, u64)]) {
        let oldest = inflight.iter().map(|&(_, t)| t).min().unwrap_or(0);
        self.heartbeats.slot(self.slot).beat(now_ms(), oldest);
    }
}

#[pymethods]
impl DirtyLink {
    /// The apps are loaded and initialised: the worker serves calls from now on.
    fn ready(&self) {
        self.publish(&[]);
        self.heartbeats.slot(self.slot).set_state(state::READY);
    }

    /// USR1 (log rotation): reopen the error log this process inherited from the master.
    fn reopen_logs(&self) {
        crate::worker::reopen_logs(None);
    }

    /// A call starts; returns the token `end` takes.
    fn begin(&self) -> u64 {
        let token = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut list = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        list.push((token, now_ms()));
        self.publish(&list);
        token
    }

    /// The call of `token` ended (answered, failed or abandoned).
    fn end(&self, token: u64) {
        let mut list = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|&(t, _)| t != token);
        self.publish(&list);
    }
}
