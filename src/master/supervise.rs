//! Watching the workers: reaping exits, killing hung ones, marking worn-out ones (max-requests,
//! memory, a changed app under --reload) for replacement, and stopping them.

use pyo3::prelude::*;

use super::*;

impl Arbiter {
    /// Collects exited workers and says how each ended.
    pub(super) fn reap(&mut self, py: Python<'_>) -> Result<(), Error> {
        loop {
            let mut status = 0;
            // SAFETY: waitpid with WNOHANG on any child; `status` is ours to write.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return Ok(());
            }
            if Some(pid) == self.reexec_pid {
                log::warn!("The new master (pid: {pid}) exited; this one carries on");
                self.reexec_pid = None;
                if let Some(p) = self.pidfile.as_mut() {
                    let orig = p.path().with_extension("");
                    let _ = p.rename(&orig);
                }
                continue;
            }
            let Some(w) = self.workers.remove(&pid) else {
                self.reaped_dirty(py, pid, status)?;
                continue;
            };
            if let Some(table) = shm::shared() {
                // before the slot is released and handed to a new worker
                table.retire(w.slot, &mut self.retired);
            }
            if !w.surplus {
                self.restarts += 1;
            }
            control::forget_worker(pid, w.slot);
            self.heartbeats.release(w.slot);
            self.child_exit(py, &w);
            if libc::WIFEXITED(status) {
                let code = libc::WEXITSTATUS(status);
                if code == EXIT_APP_LOAD {
                    if self.workers.values().any(|o| o.termed_at.is_none())
                        && self.spawned > self.wanted as u64
                    {
                        let retry = if self.opts.reload.enabled {
                            "the next change of the code retries"
                        } else {
                            "fix the app, then HUP"
                        };
                        log::error!("Worker (pid:{pid}) failed to boot; keeping the running workers ({retry})");
                        self.boot_failed = true;
                        continue;
                    }
                    log::error!("Worker (pid:{pid}) failed to boot.");
                    self.halt(py, EXIT_APP_LOAD);
                    return Err(Error::Halt(EXIT_APP_LOAD));
                }
                if code != 0 {
                    log::error!("Worker (pid:{pid}) exited with code {code}");
                }
            } else if libc::WIFSIGNALED(status) {
                let sig = libc::WTERMSIG(status);
                if w.aborted_at.is_some() || !w.killed {
                    let hint = if sig == libc::SIGKILL && !w.killed {
                        " Perhaps out of memory?"
                    } else {
                        ""
                    };
                    log::error!("Worker (pid:{pid}) was sent {}!{hint}", signal_name(sig));
                } else {
                    log::info!("Worker (pid:{pid}) was sent {}", signal_name(sig));
                }
            }
        }
    }

    /// Hung-worker timeout: a worker whose heartbeat stopped, or whose oldest request has been
    /// in the app longer than --timeout, gets SIGABRT (its fault handler prints every thread's
    /// Python stack), then SIGKILL after a short grace. The others keep serving throughout.
    pub(super) fn murder_hung(&mut self) {
        let now = now_ms();
        let timeout = self.opts.timeout.as_millis() as u64;
        let grace = worker::ABORT_GRACE.as_millis() as u64;
        let graceful = self.opts.graceful_timeout.as_millis() as u64;
        for (&pid, w) in self.workers.iter_mut() {
            if let Some(t) = w.aborted_at {
                if now.saturating_sub(t) > grace {
                    kill(pid, libc::SIGKILL);
                }
                continue;
            }
            if let Some(t) = w.termed_at {
                if now.saturating_sub(t) > graceful + grace {
                    kill(pid, libc::SIGKILL);
                }
                continue;
            }
            if timeout == 0 {
                continue;
            }
            let slot = self.heartbeats.slot(w.slot);
            let silent = now.saturating_sub(slot.last_beat()) > timeout;
            let busy = slot.busy_since();
            let stuck = busy != 0 && now.saturating_sub(busy) > timeout;
            if silent || stuck {
                log::error!("WORKER TIMEOUT (pid:{pid})");
                self.timeouts += 1;
                w.aborted_at = Some(now);
                w.killed = true;
                kill(pid, libc::SIGABRT);
            }
        }
    }

    /// Workers that asked to go (max-requests) or grew past --max-worker-memory are marked
    /// for replacement.
    pub(super) fn retire_worn_out(&mut self) {
        self.reload_changed_code();
        let limit = self.opts.max_worker_memory;
        for (&pid, w) in self.workers.iter_mut() {
            if w.retiring || w.termed_at.is_some() {
                continue;
            }
            if self.heartbeats.slot(w.slot).state() == state::RETIRE {
                w.retiring = true;
                continue;
            }
            if limit > 0 {
                if let Some(rss) = crate::process::rss_bytes(pid) {
                    if rss > limit {
                        log::warn!(
                            "Worker (pid:{pid}) uses {} MB, over --max-worker-memory {} MB: replacing it",
                            rss >> 20,
                            limit >> 20
                        );
                        w.retiring = true;
                    }
                }
            }
        }
    }

    /// `--reload`: a worker saw the app's code change. Replace every worker, as HUP does but
    /// without re-reading the configuration; new workers that fail to import keep the old ones
    /// serving, and the next change tries again.
    pub(super) fn reload_changed_code(&mut self) {
        let mut changed = false;
        for w in self.workers.values() {
            let slot = self.heartbeats.slot(w.slot);
            if slot.state() == state::RELOAD {
                slot.set_state(state::READY);
                // every worker reports the same save; the first report already replaced them
                changed |= !w.retiring && w.termed_at.is_none();
            }
        }
        if changed {
            log::info!("Reloading workers: the app's code changed");
            self.boot_failed = false;
            for w in self.workers.values_mut() {
                w.retiring = true;
            }
        }
    }

    pub(super) fn terminate(&mut self, pid: i32) {
        if let Some(w) = self.workers.get_mut(&pid) {
            if w.termed_at.is_none() {
                w.termed_at = Some(now_ms());
                w.killed = true;
                self.ctl.killed += 1;
                kill(pid, libc::SIGTERM);
            }
        }
    }
}
