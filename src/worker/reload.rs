//! `--reload`: the worker watches the app's source files (and `--reload-extra-file`s) and, when
//! one changes, asks the master for fresh workers — the same replace-then-stop path as HUP, so
//! a change with a syntax error keeps the running workers and logs the import error.
//!
//! The watch runs in the worker, not the master: the master never starts threads (fork
//! safety), and a file watcher needs one. File system events come from the `notify` crate
//! (inotify on Linux, or polling with `--reload-engine poll`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use notify::{EventKind, RecursiveMode, Watcher};
use pyo3::prelude::*;

use super::MasterLink;
use crate::master::heartbeat::state;

/// Editors save in several steps (truncate, write, rename); let them finish before the new
/// workers import the file.
const SETTLE: Duration = Duration::from_millis(150);
/// How often `--reload-engine poll` looks at modification times.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What `--reload` watches and how.
#[derive(Clone, Debug, PartialEq)]
pub struct ReloadOptions {
    pub enabled: bool,
    /// `auto`, `inotify` or `poll`.
    pub engine: String,
    pub extra_files: Vec<PathBuf>,
}

/// Keeps the watch alive for as long as it is held.
pub struct Reloader {
    _watcher: Box<dyn Watcher + Send>,
}

/// Starts watching; `None` (with a logged reason) if the watch cannot be set up.
pub fn start(py: Python<'_>, opts: &ReloadOptions, link: MasterLink) -> Option<Reloader> {
    let mut files: HashSet<PathBuf> = match app_sources(py) {
        Ok(f) => f,
        Err(e) => {
            log::warn!("--reload: cannot list the app's modules: {e}");
            return None;
        }
    };
    files.extend(opts.extra_files.iter().map(|f| absolute(f)));
    let dirs: HashSet<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    let files = Arc::new(files);
    // what each file looked like when last reported: the several events of one save, and
    // events queued while we waited for it to settle, find nothing new and are dropped
    let seen: Mutex<HashMap<PathBuf, Option<Stamp>>> =
        Mutex::new(files.iter().map(|f| (f.clone(), stamp(f))).collect());
    let handler = {
        let files = files.clone();
        move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if !matches!(
                event.kind,
                EventKind::Modify(_) | EventKind::Create(_) | EventKind::Remove(_)
            ) {
                return;
            }
            let Some(changed) = event.paths.iter().find(|p| files.contains(*p)) else {
                return;
            };
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if seen.get(changed) == Some(&stamp(changed)) {
                return;
            }
            std::thread::sleep(SETTLE);
            seen.insert(changed.clone(), stamp(changed));
            log::info!("Worker reloading: {} modified", changed.display());
            link.set_state(state::RELOAD);
        }
    };
    let watcher: notify::Result<Box<dyn Watcher + Send>> = if opts.engine == "poll" {
        let config = notify::Config::default().with_poll_interval(POLL_INTERVAL);
        notify::PollWatcher::new(handler, config).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
    } else {
        notify::recommended_watcher(handler).map(|w| Box::new(w) as Box<dyn Watcher + Send>)
    };
    let mut watcher = match watcher {
        Ok(w) => w,
        Err(e) => {
            log::warn!("--reload: cannot watch files: {e}");
            return None;
        }
    };
    let mut watched = 0;
    for dir in &dirs {
        match watcher.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => watched += 1,
            Err(e) => log::debug!("--reload: not watching {}: {e}", dir.display()),
        }
    }
    log::debug!(
        "--reload: watching {} files in {watched} directories",
        files.len()
    );
    Some(Reloader { _watcher: watcher })
}

/// The source files of every imported module outside the standard library and installed
/// packages: the app's own code, which is what changes during development.
fn app_sources(py: Python<'_>) -> PyResult<HashSet<PathBuf>> {
    let code = c"
import sys, sysconfig, os
_skip = tuple(os.path.realpath(p) + os.sep for p in {
    sysconfig.get_path(k) for k in ('stdlib', 'platstdlib', 'purelib', 'platlib')
} if p)
_out = []
for _m in list(sys.modules.values()):
    _f = getattr(_m, '__file__', None)
    if isinstance(_f, str) and _f.endswith('.py'):
        _f = os.path.realpath(_f)
        if not _f.startswith(_skip):
            _out.append(_f)
";
    let globals = pyo3::types::PyDict::new(py);
    py.run(code, Some(&globals), None)?;
    let out: Vec<String> = globals
        .get_item("_out")?
        .map(|o| o.extract())
        .transpose()?
        .unwrap_or_default();
    Ok(out.into_iter().map(PathBuf::from).collect())
}

/// A file's modification time and size; `None` when it is gone.
type Stamp = (SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|d| d.join(path))
            .unwrap_or_else(|_| path.to_path_buf())
    })
}
