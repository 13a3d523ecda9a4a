//! The dirty worker pool (gunicorn 27's "dirty arbiters"): processes forked and supervised by
//! the master beside the HTTP workers, each loading the `--dirty-app` classes once and serving
//! calls that HTTP workers make with `ferricorn.dirty`'s client.
//!
//! This module owns the pool's configuration (`DirtyOptions`), its master-side bookkeeping
//! (`pool`), the slot a dirty worker reports through (`link`) and what a forked dirty child
//! does (`child`). The forking itself is the master's (src/master/dirty.rs); the serving loop
//! and the client are Python (python/ferricorn/dirty/). See docs/internals.md.

pub mod child;
pub mod link;
pub mod pool;
pub mod spec;

use std::time::Duration;

use crate::settings::{SettingError, Values};
use spec::AppSpec;

/// The pool as configured; `None` from `from_values` when it is off.
#[derive(Clone, Debug, PartialEq)]
pub struct DirtyOptions {
    pub apps: Vec<AppSpec>,
    pub workers: usize,
    /// At least 1.
    pub threads: usize,
    /// 0 = off.
    pub timeout: Duration,
    pub graceful_timeout: Duration,
}

impl DirtyOptions {
    /// gunicorn starts its dirty arbiter when `dirty_workers > 0` and `dirty_apps` is set.
    pub fn from_values(values: &Values) -> Result<Option<Self>, SettingError> {
        let workers = values.int("dirty_workers")?;
        let list = values.list("dirty_apps")?;
        if workers <= 0 || list.is_empty() {
            return Ok(None);
        }
        let mut apps: Vec<AppSpec> = Vec::new();
        for item in list {
            // the validator already accepted each item
            let spec = AppSpec::parse(item).map_err(|reason| {
                let setting =
                    crate::settings::registry::find("dirty_apps").expect("dirty_apps is declared");
                SettingError::invalid(setting, item.as_str(), reason)
            })?;
            // the same app twice: the last spec wins, as gunicorn's dict of specs does
            apps.retain(|a| a.path != spec.path);
            apps.push(spec);
        }
        let secs = |name| {
            values
                .int(name)
                .map(|n| Duration::from_secs(n.max(0) as u64))
        };
        Ok(Some(DirtyOptions {
            apps,
            workers: workers as usize,
            threads: values.int("dirty_threads")?.max(1) as usize,
            timeout: secs("dirty_timeout")?,
            graceful_timeout: secs("dirty_graceful_timeout")?,
        }))
    }

    /// Fewest dirty workers the specs need: the largest `:N` (gunicorn refuses TTOU below it).
    pub fn min_workers(&self) -> usize {
        self.apps.iter().filter_map(|a| a.limit).max().unwrap_or(1)
    }
}
