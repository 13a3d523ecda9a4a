//! `dump stacks`: every Python thread's stack of a live worker, without stopping it.
//!
//! At boot each worker opens `DIR/PID.stacks` (append mode) in a private directory the master
//! made, and registers `faulthandler` on a real-time signal with that file. faulthandler writes
//! from its C signal handler, walking thread states without the GIL, so it works while an app
//! thread sleeps, blocks in C, or spins holding the GIL. The master empties the file, sends the
//! signal, and reads the file back once it stops growing — over several turns of its loop,
//! never blocking in between.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use serde_json::{json, Value};

/// How long the output must stay the same size to count as complete.
const SETTLE: Duration = Duration::from_millis(100);
/// Longest we wait for a worker's dump (a stopped or dying worker never writes).
const DEADLINE: Duration = Duration::from_secs(3);
/// Most bytes of stacks read per worker.
const MAX_DUMP: u64 = 512 * 1024;

static DIR: OnceLock<PathBuf> = OnceLock::new();

/// The signal a worker dumps its stacks on: a real-time one, so nothing else (a terminal's
/// WINCH, a USR1/USR2 sent to the process group) ever triggers it.
pub fn signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

/// In the master before the first fork: a fresh directory only our uid can enter.
pub fn prepare() -> io::Result<&'static Path> {
    if let Some(d) = DIR.get() {
        return Ok(d);
    }
    let base = std::env::temp_dir();
    let pid = std::process::id();
    let mut last = None;
    for n in 0..100 {
        let dir = base.join(format!("ferricorn-{pid}-{n}.stacks"));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(DIR.get_or_init(|| dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free directory name")))
}

fn file_of(pid: i32) -> Option<PathBuf> {
    DIR.get().map(|d| d.join(format!("{pid}.stacks")))
}

/// In a worker at boot: open its file and hand it to faulthandler. The file gets its final
/// name only once the handler is in place: the master signals only workers whose file exists,
/// and the signal's default action would kill a worker that had no handler yet.
pub fn register(py: Python<'_>) -> PyResult<()> {
    let Some(path) = file_of(std::process::id() as i32) else {
        return Ok(());
    };
    let tmp = path.with_extension("tmp");
    let file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&tmp)?;
    let kwargs = pyo3::types::PyDict::new(py);
    // faulthandler keeps the descriptor, not a Python file object: leak ours to it
    kwargs.set_item("file", std::os::fd::IntoRawFd::into_raw_fd(file))?;
    kwargs.set_item("all_threads", true)?;
    kwargs.set_item("chain", false)?;
    py.import("faulthandler")?
        .call_method("register", (signal(),), Some(&kwargs))?;
    fs::rename(&tmp, &path)?;
    Ok(())
}

/// In the master, once a worker is reaped.
pub fn forget(pid: i32) {
    if let Some(path) = file_of(pid) {
        let _ = fs::remove_file(&path);
        let _ = fs::remove_file(path.with_extension("tmp"));
    }
}

/// In the master at exit.
pub fn cleanup() {
    if let Some(dir) = DIR.get() {
        let _ = fs::remove_dir_all(dir);
    }
}

/// One worker's dump being collected.
struct Target {
    pid: i32,
    path: Option<PathBuf>,
    len: u64,
    changed: Instant,
    error: Option<String>,
}

/// A `dump stacks` in progress: polled by the control server until it has an answer.
pub struct Dump {
    targets: Vec<Target>,
    deadline: Instant,
}

impl Dump {
    /// Empties each worker's file and signals it.
    pub fn start(pids: &[i32]) -> Dump {
        let now = Instant::now();
        let targets = pids
            .iter()
            .map(|&pid| {
                let mut t = Target {
                    pid,
                    path: None,
                    len: 0,
                    changed: now,
                    error: None,
                };
                match file_of(pid).filter(|p| p.exists()) {
                    None => t.error = Some("worker is still booting".into()),
                    Some(path) => match trigger(pid, &path) {
                        Ok(()) => t.path = Some(path),
                        Err(e) => t.error = Some(e.to_string()),
                    },
                }
                t
            })
            .collect();
        Dump {
            targets,
            deadline: now + DEADLINE,
        }
    }

    /// The answer once every worker's output has settled (or the deadline passed).
    pub fn poll(&mut self) -> Option<Value> {
        let now = Instant::now();
        let mut waiting = false;
        for t in &mut self.targets {
            let Some(path) = &t.path else { continue };
            let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
            if len != t.len {
                t.len = len;
                t.changed = now;
            }
            if len == 0 || now.duration_since(t.changed) < SETTLE {
                waiting = true;
            }
        }
        if waiting && now < self.deadline {
            return None;
        }
        let workers: Vec<Value> = self
            .targets
            .iter()
            .map(|t| {
                let stacks = t.path.as_deref().map(read_capped);
                let error = match (&t.error, &stacks) {
                    (Some(e), _) => Some(e.clone()),
                    (None, Some(s)) if s.is_empty() => {
                        Some("no output (worker busy or exiting)".into())
                    }
                    _ => None,
                };
                json!({"pid": t.pid, "stacks": stacks.unwrap_or_default(), "error": error})
            })
            .collect();
        Some(json!({"count": workers.len(), "workers": workers}))
    }
}

fn trigger(pid: i32, path: &Path) -> io::Result<()> {
    // the worker's descriptor appends, so after this its next write lands at offset 0
    fs::OpenOptions::new().write(true).open(path)?.set_len(0)?;
    // SAFETY: kill(2) on one of our own workers; faulthandler handles this signal there.
    if unsafe { libc::kill(pid, signal()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn read_capped(path: &Path) -> String {
    let mut buf = Vec::new();
    if let Ok(f) = fs::File::open(path) {
        let _ = f.take(MAX_DUMP).read_to_end(&mut buf);
    }
    String::from_utf8_lossy(&buf).into_owned()
}
