//! The master's side of the dirty pool (src/dirty/): open it before the first fork, fork dirty
//! workers and reap them, kill the ones whose call ran past `--dirty-timeout`, stop them
//! after the HTTP workers. Also the small functions the control socket calls
//! (`add_dirty_workers`, `remove_dirty_workers`, `dirty_status`).

use pyo3::prelude::*;

use super::*;
use crate::dirty::child::{self, ChildSpec};
use crate::dirty::link::DirtyLink;
use crate::dirty::pool::{DirtyPool, DirtyStatus, DirtyWorker};
use crate::dirty::DirtyOptions;

impl Arbiter {
    /// Binds the dirty sockets and tells every process forked later where they are (HTTP
    /// workers' clients read the environment). on_dirty_starting(arbiter) runs here.
    pub(super) fn open_dirty(&mut self, py: Python<'_>, opts: DirtyOptions) -> Result<(), Error> {
        let pool = DirtyPool::open(opts).map_err(|e| Error::Dirty(e.to_string()))?;
        let environ = py.import("os")?.getattr("environ")?;
        for (k, v) in pool.env() {
            environ.set_item(k, v)?;
        }
        log::info!(
            "Dirty pool: {} worker(s) for {}",
            pool.wanted(),
            pool.opts
                .apps
                .iter()
                .map(|a| a.path.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if let Some(h) = &self.opts.hooks {
            let _ = h.call(py, "on_dirty_starting", (h.server(py),));
        }
        self.dirty = Some(pool);
        Ok(())
    }

    /// Forks missing dirty workers and stops surplus ones.
    pub(super) fn manage_dirty(&mut self, py: Python<'_>) -> Result<(), Error> {
        let Some(pool) = self.dirty.as_mut() else {
            return Ok(());
        };
        pool.note_ready();
        for pid in pool.surplus() {
            if pool.mark_termed(pid) {
                kill(pid, libc::SIGTERM);
            }
        }
        while let Some(rank) = self.dirty.as_ref().and_then(DirtyPool::next_rank) {
            if !self.spawn_dirty(py, rank)? {
                break;
            }
        }
        if self.dirty.as_ref().is_some_and(|p| p.stash_due(now_ms())) {
            self.spawn_stash(py)?;
        }
        Ok(())
    }

    /// Forks the stash process (the shared tables of `ferricorn.dirty.stash`).
    fn spawn_stash(&mut self, py: Python<'_>) -> Result<(), Error> {
        let pid: i32 = py.import("os")?.call_method0("fork")?.extract()?;
        if pid == 0 {
            self.leave_master("dirty stash");
            let code = match self.dirty.as_ref() {
                Some(pool) => child::run_stash(py, &pool.stash_listener),
                None => 1,
            };
            return Err(Error::ChildExit(code));
        }
        if let Some(pool) = self.dirty.as_mut() {
            pool.stash_pid = Some(pid);
            pool.stash_started = now_ms();
        }
        Ok(())
    }

    /// In a forked dirty child: drop what only the master may hold.
    fn leave_master(&mut self, title: &str) {
        self.signals.detach_in_child();
        self.metrics = None;
        // the HTTP sockets are the HTTP workers'
        self.listeners.clear();
        crate::process::set_title(&format!("ferricorn: {title} [{}]", self.opts.proc_name));
    }

    /// Forks the dirty worker of `rank`; false when no slot is free.
    fn spawn_dirty(&mut self, py: Python<'_>, rank: usize) -> Result<bool, Error> {
        let Some(pool) = self.dirty.as_mut() else {
            return Ok(false);
        };
        let Some(slot) = pool.heartbeats.allocate(now_ms()) else {
            log::error!("no free dirty worker slot");
            return Ok(false);
        };
        pool.spawned += 1;
        let age = pool.spawned;
        let apps = pool.apps_for(rank);
        let proxy = match &self.opts.hooks {
            Some(h) => h
                .new_worker(py, age)
                .inspect_err(|e| {
                    crate::hooks::log_exception(py, "making the dirty worker object", e)
                })
                .ok(),
            None => None,
        };
        if let Some(w) = &proxy {
            let paths: Vec<&str> = apps
                .iter()
                .map(|&(i, _)| pool.opts.apps[i].path.as_str())
                .collect();
            let _ = w.bind(py).setattr("app_paths", paths);
        }
        let pid: i32 = py.import("os")?.call_method0("fork")?.extract()?;
        if pid == 0 {
            return Err(Error::ChildExit(self.become_dirty(py, slot, rank, proxy)));
        }
        log::info!("Booting dirty worker with pid: {pid}");
        if let Some(w) = &proxy {
            let _ = w.bind(py).setattr("pid", pid);
        }
        if let (Some(h), Some(w)) = (&self.opts.hooks, &proxy) {
            let _ = h.call(py, "dirty_post_fork", (h.server(py), w.bind(py)));
        }
        if let Some(pool) = self.dirty.as_mut() {
            pool.workers.insert(
                pid,
                DirtyWorker {
                    slot,
                    rank,
                    termed_at: None,
                    aborted_at: None,
                    killed: false,
                    proxy,
                },
            );
        }
        Ok(true)
    }

    /// In the forked child: drop the master's duties and serve dirty calls to the end.
    fn become_dirty(
        &mut self,
        py: Python<'_>,
        slot: usize,
        rank: usize,
        proxy: Option<Py<PyAny>>,
    ) -> i32 {
        self.leave_master("dirty worker");
        let Some(pool) = self.dirty.as_ref() else {
            return 1;
        };
        let hook = match (&self.opts.hooks, proxy) {
            (Some(h), Some(w)) => {
                let _ = w.bind(py).setattr("pid", std::process::id());
                h.hook_fn(py, "dirty_worker_init").map(|f| (w, f))
            }
            _ => None,
        };
        let apps = pool
            .apps_for(rank)
            .into_iter()
            .map(|(i, limit)| (&pool.listeners[i], pool.opts.apps[i].path.clone(), limit))
            .collect();
        child::run(
            py,
            ChildSpec {
                rank,
                apps,
                threads: pool.opts.threads,
                link: DirtyLink::new(pool.heartbeats.clone(), slot),
                hook,
            },
        )
    }

    /// A reaped pid that is not an HTTP worker: if it was a dirty worker, say how it ended
    /// and free its rank for a replacement. dirty_worker_exit(arbiter, worker) runs here.
    pub(super) fn reaped_dirty(
        &mut self,
        py: Python<'_>,
        pid: i32,
        status: i32,
    ) -> Result<(), Error> {
        let Some(pool) = self.dirty.as_mut() else {
            return Ok(());
        };
        if pool.stash_pid == Some(pid) {
            pool.stash_pid = None;
            if !pool.stopping {
                log::error!("The dirty stash (pid:{pid}) exited; restarting it empty");
            }
            return Ok(());
        }
        let Some(w) = pool.workers.remove(&pid) else {
            return Ok(());
        };
        let was_ready = pool.heartbeats.slot(w.slot).state() == heartbeat::state::READY;
        pool.heartbeats.release(w.slot);
        if w.active() {
            pool.restarts += 1;
        }
        if let (Some(h), Some(proxy)) = (&self.opts.hooks, &w.proxy) {
            let _ = h.call(py, "dirty_worker_exit", (h.server(py), proxy.bind(py)));
        }
        if libc::WIFEXITED(status) {
            let code = libc::WEXITSTATUS(status);
            if code == EXIT_APP_LOAD && !was_ready {
                if !pool.ever_ready {
                    log::error!("Dirty worker (pid:{pid}) failed to boot.");
                    self.halt(py, EXIT_APP_LOAD);
                    return Err(Error::Halt(EXIT_APP_LOAD));
                }
                log::error!("Dirty worker (pid:{pid}) failed to boot; not respawning until HUP");
                pool.boot_failed = true;
            } else if code != 0 {
                log::error!("Dirty worker (pid:{pid}) exited with code {code}");
            } else {
                log::info!("Dirty worker exited (pid:{pid})");
            }
        } else if libc::WIFSIGNALED(status) {
            let sig = signal_name(libc::WTERMSIG(status));
            if w.killed && w.aborted_at.is_none() {
                log::info!("Dirty worker (pid:{pid}) was sent {sig}");
            } else {
                log::error!("Dirty worker (pid:{pid}) was sent {sig}!");
            }
        }
        Ok(())
    }

    /// Sends `sig` to every dirty worker (USR1: reopen the logs).
    pub(super) fn signal_dirty(&self, sig: libc::c_int) {
        if let Some(pool) = &self.dirty {
            for &pid in pool.workers.keys() {
                kill(pid, sig);
            }
        }
    }

    /// Kills dirty workers past their call or stop deadline.
    pub(super) fn murder_dirty(&mut self) {
        if let Some(pool) = self.dirty.as_mut() {
            for (pid, sig) in pool.overdue(now_ms()) {
                kill(pid, sig);
            }
        }
    }

    /// HUP: every dirty worker is replaced (TERM: it finishes its calls; the replacement is
    /// forked at once and calls queue on the sockets meanwhile).
    pub(super) fn reload_dirty(&mut self) {
        if let Some(pool) = self.dirty.as_mut() {
            match self.opts.dirty.clone() {
                Some(opts) => pool.reconfigure(opts),
                None => log::warn!("HUP: turning the dirty pool off needs a restart; keeping it"),
            }
            pool.boot_failed = false;
            let pids: Vec<i32> = pool.workers.keys().copied().collect();
            for pid in pids {
                if pool.mark_termed(pid) {
                    kill(pid, libc::SIGTERM);
                }
            }
        }
        if self.dirty.is_none() && self.opts.dirty.is_some() {
            log::warn!("HUP: starting a dirty pool needs a restart");
        }
    }

    /// Graceful (TERM) or quick stop of the dirty workers, once the HTTP workers (their
    /// callers) are gone; waits up to --dirty-graceful-timeout, then kills what is left.
    pub(super) fn stop_dirty(&mut self, py: Python<'_>, graceful: bool) -> Result<(), Error> {
        let Some(pool) = self.dirty.as_mut() else {
            return Ok(());
        };
        let sig = if graceful {
            libc::SIGTERM
        } else {
            libc::SIGQUIT
        };
        pool.stopping = true;
        let pids: Vec<i32> = pool.workers.keys().copied().collect();
        for pid in pids {
            pool.mark_termed(pid);
            kill(pid, sig);
        }
        if let Some(pid) = pool.stash_pid {
            kill(pid, sig);
        }
        let deadline = now_ms() + pool.opts.graceful_timeout.as_millis() as u64;
        let running = |p: &DirtyPool| !p.workers.is_empty() || p.stash_pid.is_some();
        while self.dirty.as_ref().is_some_and(running) && now_ms() < deadline {
            self.signals.wait(100);
            self.reap(py)?;
        }
        Ok(())
    }

    /// SIGKILLs the dirty workers left (halt) and removes the socket directory.
    pub(super) fn halt_dirty(&mut self, py: Python<'_>) {
        let Some(pool) = self.dirty.as_mut() else {
            return;
        };
        pool.stopping = true;
        let pids: Vec<i32> = pool.workers.keys().copied().chain(pool.stash_pid).collect();
        for pid in &pids {
            kill(*pid, libc::SIGKILL);
        }
        for pid in pids {
            let mut status = 0;
            // SAFETY: blocking wait for a child we just SIGKILLed.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            let _ = self.reaped_dirty(py, pid, libc::SIGKILL);
        }
        if let Some(pool) = self.dirty.take() {
            pool.cleanup();
        }
    }

    /// `dirty add N` (control socket): N more dirty workers, forked on the next loop turn.
    /// Returns the new wanted count, `None` when there is no dirty pool.
    pub fn add_dirty_workers(&mut self, n: usize) -> Option<usize> {
        let pool = self.dirty.as_mut()?;
        let wanted = pool.add_workers(n);
        log::info!("Increasing dirty workers to {wanted}");
        Some(wanted)
    }

    /// `dirty remove N`: N fewer (never below the `:N` specs' need); the highest ranks get
    /// TERM on the next loop turn and finish their calls.
    pub fn remove_dirty_workers(&mut self, n: usize) -> Option<usize> {
        let pool = self.dirty.as_mut()?;
        let wanted = pool.remove_workers(n);
        log::info!("Decreasing dirty workers to {wanted}");
        Some(wanted)
    }

    /// `show dirty`: the pool's state, `None` when there is none.
    pub fn dirty_status(&self) -> Option<DirtyStatus> {
        self.dirty.as_ref().map(DirtyPool::status)
    }
}
