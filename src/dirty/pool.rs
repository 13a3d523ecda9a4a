//! The master's view of the dirty pool: the listening sockets, the heartbeat slots, which
//! dirty workers live and with which rank, how many are wanted, and which must be killed.
//! No forking and no Python here (src/master/dirty.rs does that), so the counting rules are
//! unit-tested without processes.
//!
//! Each app gets one unix socket, bound by the master in a private directory before any
//! worker is forked; every dirty worker that loads the app accepts on it, as HTTP workers
//! share a listener. A call is one connection: the kernel hands it to a dirty thread that is
//! free (only free threads wait in accept), and a call queued while every worker is busy or
//! being replaced waits in the backlog instead of failing.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pyo3::prelude::*;

use super::DirtyOptions;
use crate::master::heartbeat::{now_ms, state, Heartbeats, MAX_SLOTS};

/// Grace between SIGABRT (which prints the stuck call's Python stack) and SIGKILL.
const ABORT_GRACE_MS: u64 = 2000;

/// A live dirty worker.
pub struct DirtyWorker {
    pub slot: usize,
    /// 0-based; an app limited to N workers is loaded by ranks 0..N only.
    pub rank: usize,
    pub termed_at: Option<u64>,
    pub aborted_at: Option<u64>,
    /// We sent the signal that ends it.
    pub killed: bool,
    /// The `worker` object the dirty hooks get.
    pub proxy: Option<Py<PyAny>>,
}

impl DirtyWorker {
    pub fn active(&self) -> bool {
        self.termed_at.is_none() && self.aborted_at.is_none()
    }
}

/// What `status()` reports (for the control socket's `show dirty`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirtyStatus {
    pub wanted: usize,
    pub min_workers: usize,
    pub apps: Vec<(String, Option<usize>)>,
    pub workers: Vec<DirtyWorkerStatus>,
    pub restarts: u64,
    pub timeouts: u64,
}

/// One dirty worker in `DirtyStatus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirtyWorkerStatus {
    pub pid: i32,
    pub rank: usize,
    /// Its apps are loaded and it serves calls.
    pub ready: bool,
    /// Stopping (TERM sent, or killed for --dirty-timeout).
    pub stopping: bool,
    /// How long its oldest call in progress has run (ms); 0 when idle.
    pub busy_ms: u64,
    /// The apps its rank may load (an app whose class sets `workers` may skip some).
    pub apps: Vec<String>,
}

pub struct DirtyPool {
    pub opts: DirtyOptions,
    dir: PathBuf,
    pub listeners: Vec<UnixListener>,
    /// The stash process's socket, and its pid while it runs.
    pub stash_listener: UnixListener,
    pub stash_pid: Option<i32>,
    /// When the stash was last forked (ms): a stash that keeps dying restarts once a second.
    pub stash_started: u64,
    pub heartbeats: Arc<Heartbeats>,
    pub workers: BTreeMap<i32, DirtyWorker>,
    wanted: usize,
    pub spawned: u64,
    /// A dirty worker failed to import or init its apps: no respawn until HUP.
    pub boot_failed: bool,
    pub ever_ready: bool,
    /// The server is stopping: nothing is respawned, exits are expected.
    pub stopping: bool,
    pub restarts: u64,
    pub timeouts: u64,
}

impl DirtyPool {
    /// Makes the private socket directory and binds one socket per app.
    pub fn open(opts: DirtyOptions) -> io::Result<Self> {
        let dir = make_private_dir()?;
        let bind_all = || -> io::Result<(Vec<UnixListener>, UnixListener)> {
            let apps = (0..opts.apps.len())
                .map(|i| UnixListener::bind(dir.join(format!("{i}.sock"))))
                .collect::<io::Result<Vec<_>>>()?;
            Ok((apps, UnixListener::bind(dir.join("stash.sock"))?))
        };
        let (listeners, stash_listener) = bind_all().inspect_err(|_| remove_dir(&dir))?;
        Ok(DirtyPool {
            stash_listener,
            stash_pid: None,
            stash_started: 0,
            wanted: opts.workers,
            opts,
            dir,
            listeners,
            heartbeats: Arc::new(Heartbeats::new()?),
            workers: BTreeMap::new(),
            spawned: 0,
            boot_failed: false,
            ever_ready: false,
            stopping: false,
            restarts: 0,
            timeouts: 0,
        })
    }

    /// What HTTP workers' clients read from the environment: where the sockets are, which
    /// app is which socket, and the timeout.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let apps: Vec<&str> = self.opts.apps.iter().map(|a| a.path.as_str()).collect();
        vec![
            (
                "FERRICORN_DIRTY_DIR",
                self.dir.to_string_lossy().into_owned(),
            ),
            ("FERRICORN_DIRTY_APPS", apps.join(",")),
            (
                "FERRICORN_DIRTY_TIMEOUT",
                self.opts.timeout.as_secs().to_string(),
            ),
        ]
    }

    /// HUP re-read the settings: new counts and timeouts apply (threads to workers forked
    /// from now on, which HUP also does); the apps cannot change, their sockets are bound.
    pub fn reconfigure(&mut self, opts: DirtyOptions) {
        if opts.apps != self.opts.apps {
            log::warn!(
                "HUP: a change of --dirty-app needs a restart (its sockets are bound at boot); \
                 keeping the running dirty apps"
            );
            return;
        }
        let workers = opts.workers;
        self.opts = opts;
        self.set_wanted(workers);
    }

    /// The stash process is missing and may be forked now.
    pub fn stash_due(&self, now: u64) -> bool {
        self.stash_pid.is_none() && !self.stopping && now.saturating_sub(self.stash_started) >= 1000
    }

    pub fn wanted(&self) -> usize {
        self.wanted
    }

    /// A new wanted count, never below what the `:N` specs need; returns the count applied.
    pub fn set_wanted(&mut self, n: usize) -> usize {
        self.wanted = n.clamp(self.opts.min_workers(), MAX_SLOTS);
        self.wanted
    }

    /// `dirty add N` / TTIN: N more dirty workers. Returns the new wanted count.
    pub fn add_workers(&mut self, n: usize) -> usize {
        self.set_wanted(self.wanted.saturating_add(n))
    }

    /// `dirty remove N` / TTOU: N fewer, but never below the specs' minimum (gunicorn refuses
    /// too). Returns the new wanted count.
    pub fn remove_workers(&mut self, n: usize) -> usize {
        let want = self.wanted.saturating_sub(n);
        if want < self.opts.min_workers() {
            log::warn!(
                "Cannot decrease dirty workers below {} (required by the dirty app specs)",
                self.opts.min_workers()
            );
        }
        self.set_wanted(want)
    }

    fn active_ranks(&self) -> Vec<usize> {
        self.workers
            .values()
            .filter(|w| w.active())
            .map(|w| w.rank)
            .collect()
    }

    /// The rank of the next dirty worker to fork, if one is missing: the lowest free rank,
    /// so a worker replacing a dead one loads the same apps.
    pub fn next_rank(&self) -> Option<usize> {
        let ranks = self.active_ranks();
        if ranks.len() >= self.wanted || self.boot_failed || self.stopping {
            return None;
        }
        (0..).find(|r| !ranks.contains(r))
    }

    /// Active workers beyond the wanted count, highest ranks first (ranks below a limit hold
    /// the limited apps, so they stay).
    pub fn surplus(&self) -> Vec<i32> {
        let mut active: Vec<(usize, i32)> = self
            .workers
            .iter()
            .filter(|(_, w)| w.active())
            .map(|(&pid, w)| (w.rank, pid))
            .collect();
        active.sort_unstable();
        let extra = active.len().saturating_sub(self.wanted);
        active
            .iter()
            .rev()
            .take(extra)
            .map(|&(_, pid)| pid)
            .collect()
    }

    /// The apps rank `rank` loads; a `None` limit may still be narrowed by the class's
    /// `workers` attribute, which the dirty worker reads.
    pub fn apps_for(&self, rank: usize) -> Vec<(usize, Option<usize>)> {
        self.opts
            .apps
            .iter()
            .enumerate()
            .filter(|(_, a)| a.limit.is_none_or(|n| rank < n))
            .map(|(i, a)| (i, a.limit))
            .collect()
    }

    /// Workers to signal now: past --dirty-timeout in a call (SIGABRT, then SIGKILL after a
    /// grace), or past --dirty-graceful-timeout after TERM (SIGKILL).
    pub fn overdue(&mut self, now: u64) -> Vec<(i32, libc::c_int)> {
        let timeout = self.opts.timeout.as_millis() as u64;
        let graceful = self.opts.graceful_timeout.as_millis() as u64;
        let mut out = Vec::new();
        for (&pid, w) in self.workers.iter_mut() {
            if let Some(t) = w.aborted_at {
                if now.saturating_sub(t) > ABORT_GRACE_MS {
                    out.push((pid, libc::SIGKILL));
                }
                continue;
            }
            if let Some(t) = w.termed_at {
                if now.saturating_sub(t) > graceful {
                    out.push((pid, libc::SIGKILL));
                }
                continue;
            }
            let busy = self.heartbeats.slot(w.slot).busy_since();
            if timeout > 0 && busy != 0 && now.saturating_sub(busy) > timeout {
                log::error!("DIRTY WORKER TIMEOUT (pid:{pid})");
                self.timeouts += 1;
                w.aborted_at = Some(now);
                w.killed = true;
                out.push((pid, libc::SIGABRT));
            }
        }
        out
    }

    /// Marks `pid` as sent TERM; false if it was already stopping.
    pub fn mark_termed(&mut self, pid: i32) -> bool {
        match self.workers.get_mut(&pid) {
            Some(w) if w.termed_at.is_none() => {
                w.termed_at = Some(now_ms());
                w.killed = true;
                true
            }
            _ => false,
        }
    }

    /// Notes READY slots (a dirty worker booted once: later boot failures do not halt).
    pub fn note_ready(&mut self) {
        for w in self.workers.values() {
            if self.heartbeats.slot(w.slot).state() == state::READY {
                self.ever_ready = true;
            }
        }
    }

    pub fn status(&self) -> DirtyStatus {
        let now = now_ms();
        DirtyStatus {
            wanted: self.wanted,
            min_workers: self.opts.min_workers(),
            apps: self
                .opts
                .apps
                .iter()
                .map(|a| (a.path.clone(), a.limit))
                .collect(),
            workers: self
                .workers
                .iter()
                .map(|(&pid, w)| {
                    let slot = self.heartbeats.slot(w.slot);
                    let busy = slot.busy_since();
                    DirtyWorkerStatus {
                        pid,
                        rank: w.rank,
                        ready: slot.state() == state::READY,
                        stopping: !w.active(),
                        busy_ms: if busy == 0 {
                            0
                        } else {
                            now.saturating_sub(busy)
                        },
                        apps: self
                            .apps_for(w.rank)
                            .into_iter()
                            .map(|(i, _)| self.opts.apps[i].path.clone())
                            .collect(),
                    }
                })
                .collect(),
            restarts: self.restarts,
            timeouts: self.timeouts,
        }
    }

    /// Removes the sockets and their directory (the master's exit).
    pub fn cleanup(&self) {
        remove_dir(&self.dir);
    }
}

/// A fresh directory only we can enter, for the sockets (mkdtemp: no name a local user
/// could have planted).
fn make_private_dir() -> io::Result<PathBuf> {
    let template = std::env::temp_dir().join("ferricorn-dirty-XXXXXX");
    let mut bytes = template.into_os_string().into_encoded_bytes();
    bytes.push(0);
    // SAFETY: `bytes` is a NUL-terminated, writable template that mkdtemp fills in place.
    let p = unsafe { libc::mkdtemp(bytes.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(io::Error::last_os_error());
    }
    bytes.pop();
    // SAFETY: the bytes came from an OsString and mkdtemp only replaced the X's with ASCII.
    let os = unsafe { std::ffi::OsString::from_encoded_bytes_unchecked(bytes) };
    Ok(PathBuf::from(os))
}

fn remove_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dirty::spec::AppSpec;
    use std::time::Duration;

    fn pool(specs: &[&str], workers: usize) -> DirtyPool {
        let opts = DirtyOptions {
            apps: specs.iter().map(|s| AppSpec::parse(s).unwrap()).collect(),
            workers,
            threads: 1,
            timeout: Duration::from_secs(1),
            graceful_timeout: Duration::from_secs(1),
        };
        DirtyPool::open(opts).unwrap()
    }

    fn fake_worker(p: &mut DirtyPool, pid: i32, rank: usize) {
        let slot = p.heartbeats.allocate(now_ms()).unwrap();
        p.workers.insert(
            pid,
            DirtyWorker {
                slot,
                rank,
                termed_at: None,
                aborted_at: None,
                killed: false,
                proxy: None,
            },
        );
    }

    #[test]
    fn binds_one_socket_per_app_and_cleans_up() {
        let p = pool(&["a:A", "b:B:1"], 2);
        let dir = PathBuf::from(&p.env()[0].1);
        assert!(dir.join("0.sock").exists() && dir.join("1.sock").exists());
        assert_eq!(p.env()[1].1, "a:A,b:B");
        p.cleanup();
        assert!(!dir.exists());
    }

    #[test]
    fn add_and_remove_change_the_wanted_count_within_the_minimum() {
        let mut p = pool(&["a:A", "b:B:2"], 3);
        assert_eq!(p.wanted(), 3);
        assert_eq!(p.add_workers(2), 5);
        assert_eq!(p.remove_workers(1), 4);
        // b:B:2 needs two workers: removal stops there
        assert_eq!(p.remove_workers(10), 2);
        p.cleanup();
    }

    #[test]
    fn missing_ranks_are_refilled_lowest_first_and_surplus_goes_highest_first() {
        let mut p = pool(&["a:A"], 3);
        assert_eq!(p.next_rank(), Some(0));
        fake_worker(&mut p, 100, 0);
        fake_worker(&mut p, 102, 2);
        assert_eq!(p.next_rank(), Some(1));
        fake_worker(&mut p, 101, 1);
        assert_eq!(p.next_rank(), None);
        p.remove_workers(2);
        assert_eq!(p.surplus(), vec![102, 101]);
        p.cleanup();
    }

    #[test]
    fn hup_applies_new_counts_but_not_new_apps() {
        let mut p = pool(&["a:A"], 2);
        let mut opts = p.opts.clone();
        opts.workers = 4;
        opts.timeout = Duration::from_secs(9);
        p.reconfigure(opts.clone());
        assert_eq!((p.wanted(), p.opts.timeout.as_secs()), (4, 9));
        opts.apps.push(AppSpec::parse("b:B").unwrap());
        opts.workers = 1;
        p.reconfigure(opts);
        assert_eq!((p.wanted(), p.opts.apps.len()), (4, 1));
        p.cleanup();
    }

    #[test]
    fn a_dying_stash_restarts_at_most_once_a_second() {
        let mut p = pool(&["a:A"], 1);
        let now = now_ms();
        assert!(p.stash_due(now));
        p.stash_started = now;
        assert!(!p.stash_due(now + 500));
        assert!(p.stash_due(now + 1000));
        p.stopping = true;
        assert!(!p.stash_due(now + 5000));
        p.cleanup();
    }

    #[test]
    fn limited_apps_go_to_the_low_ranks_only() {
        let p = pool(&["a:A", "b:B:1"], 2);
        assert_eq!(p.apps_for(0), vec![(0, None), (1, Some(1))]);
        assert_eq!(p.apps_for(1), vec![(0, None)]);
        p.cleanup();
    }

    #[test]
    fn status_reports_workers_and_their_apps() {
        let mut p = pool(&["a:A", "b:B:1"], 2);
        fake_worker(&mut p, 100, 0);
        fake_worker(&mut p, 101, 1);
        let slot = p.workers[&100].slot;
        p.heartbeats.slot(slot).set_state(state::READY);
        let st = p.status();
        assert_eq!((st.wanted, st.min_workers), (2, 1));
        assert_eq!(st.workers.len(), 2);
        assert!(st.workers[0].ready && !st.workers[1].ready);
        assert_eq!(st.workers[0].apps, vec!["a:A", "b:B"]);
        assert_eq!(st.workers[1].apps, vec!["a:A"]);
        assert!(p.mark_termed(101));
        assert!(p.status().workers[1].stopping);
        p.cleanup();
    }

    #[test]
    fn a_call_past_the_timeout_gets_abort_then_kill() {
        let mut p = pool(&["a:A"], 1);
        fake_worker(&mut p, 100, 0);
        let slot = p.workers[&100].slot;
        let now = now_ms();
        p.heartbeats.slot(slot).beat(now, now);
        assert!(p.overdue(now + 500).is_empty());
        assert_eq!(p.overdue(now + 1500), vec![(100, libc::SIGABRT)]);
        assert!(p.overdue(now + 1600).is_empty());
        assert_eq!(p.overdue(now + 1500 + 2100), vec![(100, libc::SIGKILL)]);
        assert_eq!(p.status().timeouts, 1);
        p.cleanup();
    }
}
