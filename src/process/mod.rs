//! Process-level chores of a pre-fork server that are not supervision:
//! the pid file, daemonizing, dropping privileges, the process title and
//! reading a worker's memory use.
//!
//! Each module does one job and decides nothing: the master (`master/`)
//! chooses when to call them. Nothing here forks workers or handles signals.

pub mod daemon;
pub mod pidfile;
pub mod privileges;
pub mod rss;
pub mod title;

// The master is the caller; until it lands these are unused.
#[allow(unused_imports)]
pub use self::{
    daemon::daemonize_with,
    pidfile::{PidFile, PidFileError},
    privileges::{drop_privileges, resolve_group, resolve_user},
    rss::rss_bytes,
    title::set_title,
};
