//! Forking workers: a slot, the pre_fork/post_fork hooks, the child's turn into a worker, and
//! USR2's re-exec of a new master on the same sockets.

use pyo3::prelude::*;

use super::*;

impl Arbiter {
    pub(super) fn spawn(&mut self, py: Python<'_>) -> Result<(), Error> {
        let Some(slot) = self.heartbeats.allocate(now_ms()) else {
            log::error!(
                "no free worker slot (at most {} workers)",
                heartbeat::MAX_SLOTS
            );
            return Ok(());
        };
        self.spawned += 1;
        // pre_fork(server, worker) just before the fork, as gunicorn; the same `worker` object
        // goes to the child (post_fork...) and stays here for child_exit
        let proxy = match &self.opts.hooks {
            Some(h) => match h.new_worker(py, self.spawned) {
                Ok(w) => {
                    let _ = h.call(py, "pre_fork", (h.server(py), w.bind(py)));
                    Some(w)
                }
                Err(e) => {
                    crate::hooks::log_exception(py, "making the worker object for hooks", &e);
                    None
                }
            },
            None => None,
        };
        let pid: i32 = py.import("os")?.call_method0("fork")?.extract()?;
        if pid == 0 {
            return Err(Error::ChildExit(self.become_worker(py, slot, proxy)));
        }
        if let Some(w) = &proxy {
            let _ = w.bind(py).setattr("pid", pid);
        }
        self.workers.insert(
            pid,
            Worker {
                slot,
                age: self.spawned,
                retiring: false,
                termed_at: None,
                aborted_at: None,
                killed: false,
                proxy,
                surplus: false,
            },
        );
        Ok(())
    }

    /// USR2: start a new master from the same command line on the same sockets (binary
    /// upgrade). This one keeps running until it gets TERM (or WINCH to stop its workers).
    pub(super) fn reexec(&mut self, py: Python<'_>) -> Result<(), Error> {
        if self.reexec_pid.is_some() {
            log::warn!("USR2 ignored: a new master is already running");
            return Ok(());
        }
        if let Some(p) = self.pidfile.as_mut() {
            let old = p.path().with_extension(match p.path().extension() {
                Some(e) => format!("{}.oldbin", e.to_string_lossy()),
                None => "oldbin".into(),
            });
            if let Err(e) = p.rename(&old) {
                log::error!("USR2: {e}");
                return Ok(());
            }
        }
        let fds = crate::net::prepare_for_exec(&self.listeners);
        let os = py.import("os")?;
        let pid: i32 = os.call_method0("fork")?.extract()?;
        if pid != 0 {
            log::info!("Started a new master (pid: {pid}) on the same sockets");
            self.reexec_pid = Some(pid);
            return Ok(());
        }
        // the child: become the new master program
        self.signals.detach_in_child();
        if let Some(h) = &self.opts.hooks {
            let _ = h.call(py, "pre_exec", (h.server(py),));
        }
        let environ = os.getattr("environ")?;
        environ.set_item(crate::net::INHERIT_ENV, fds)?;
        let exe: String = py.import("sys")?.getattr("executable")?.extract()?;
        let mut args = vec![exe.clone(), "-m".to_owned(), "ferricorn".to_owned()];
        args.extend(self.opts.argv.iter().skip(1).cloned());
        let err = os.call_method1("execv", (exe, args)).err();
        log::error!("USR2: exec failed: {err:?}");
        Err(Error::ChildExit(1))
    }

    /// In the forked child: drop the master's duties and run a worker to its end.
    pub(super) fn become_worker(
        &mut self,
        py: Python<'_>,
        slot: usize,
        proxy: Option<Py<PyAny>>,
    ) -> i32 {
        self.signals.detach_in_child();
        // the metrics endpoint is the master's; the child closes its copy
        self.metrics = None;
        self.ctl.drop_in_child();
        let hooks = match (&self.opts.hooks, proxy) {
            (Some(h), Some(worker)) => Some(Arc::new(WorkerHooks {
                hooks: h.clone(),
                worker,
            })),
            _ => None,
        };
        crate::process::set_title(&format!("ferricorn: worker [{}]", self.opts.proc_name));
        let listeners = std::mem::take(&mut self.listeners);
        let link = MasterLink {
            heartbeats: self.heartbeats.clone(),
            slot,
            waker: self.signals.waker(),
            master_pid: self.pid,
        };
        let worker_opts = WorkerOptions {
            threads: self.opts.threads,
            limits: self.opts.limits,
            keepalive: self.opts.keepalive,
            graceful_timeout: self.opts.graceful_timeout,
            max_requests: self.max_requests_for(slot),
            access_log: self.opts.access_log.clone(),
            static_files: self.opts.static_files.clone(),
            hooks: hooks.clone(),
            health_path: self.opts.health_path.clone(),
            edge: self.opts.edge.clone(),
            tls: self.opts.tls.clone(),
        };
        let boot = BootOptions {
            app_spec: self.opts.app_spec.clone(),
            preloaded: self.opts.preloaded.as_ref().map(|a| a.clone_ref(py)),
            threads: self.opts.threads,
            asgi: self.opts.asgi.clone(),
            reload: self.opts.reload.clone(),
            worker: worker_opts,
        };
        if let Some(h) = &hooks {
            h.set(py, "pid", std::process::id());
            // gunicorn: an exception in post_fork fails the worker's boot
            if h.call_server_worker(py, "post_fork").is_err() {
                let _ = h.call_server_worker(py, "worker_exit");
                return EXIT_APP_LOAD;
            }
        }
        let code = worker::boot(py, listeners, boot, link);
        // gunicorn calls worker_exit in a `finally` as the worker ends (a quick stop, which
        // ends the process from the I/O thread, calls it there)
        if let Some(h) = &hooks {
            let _ = h.call_server_worker(py, "worker_exit");
        }
        code
    }

    /// gunicorn's jitter: each worker gets max_requests + a random 0..=jitter, so workers
    /// started together do not all restart together.
    pub(super) fn max_requests_for(&self, slot: usize) -> u64 {
        if self.opts.max_requests == 0 {
            return 0;
        }
        let jitter = self.opts.max_requests_jitter;
        let noise = if jitter == 0 {
            0
        } else {
            // no need for a crypto RNG: mix time, pid and slot
            let seed = now_ms()
                ^ (u64::from(std::process::id()) << 16)
                ^ (slot as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % (jitter + 1)
        };
        self.opts.max_requests + noise
    }
}
