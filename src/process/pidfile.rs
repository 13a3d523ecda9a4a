//! The `--pid` file: written by the master once it is running (after
//! daemonizing), renamed to `.oldbin` during a USR2 upgrade, and removed on
//! shutdown.
//!
//! It never removes itself on drop: workers are forked copies of the master
//! and must not delete the master's file when they exit. Only the process
//! that wrote the file, while the file still names it, may remove it.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A pid file this process wrote.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

/// A pid file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("--pid {}: {kind}", .path.display())]
pub struct PidFileError {
    path: PathBuf,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    AlreadyRunning(i32),
    Io(&'static str, io::Error),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::AlreadyRunning(pid) => write!(
                f,
                "already running as pid {pid} (stop that server first, or choose \
                 another --pid; delete the file if {pid} is not a ferricorn)"
            ),
            Kind::Io(action, e) => {
                write!(f, "could not {action} the pid file: {e}")?;
                if e.kind() == io::ErrorKind::NotFound && *action == "write" {
                    f.write_str(" (does its directory exist?)")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Kind {}

impl PidFileError {
    fn io(path: &Path, action: &'static str, e: io::Error) -> Self {
        PidFileError {
            path: path.to_owned(),
            kind: Kind::Io(action, e),
        }
    }

    /// True when a live process other than us holds the file.
    #[cfg(test)]
    pub fn is_already_running(&self) -> bool {
        matches!(self.kind, Kind::AlreadyRunning(_))
    }

    /// The live pid the file named, when that is why it was refused.
    #[cfg(test)]
    pub fn running_pid(&self) -> Option<i32> {
        match self.kind {
            Kind::AlreadyRunning(pid) => Some(pid),
            Kind::Io(..) => None,
        }
    }
}

impl PidFile {
    /// Writes this process's pid to `path`, replacing a stale file but
    /// refusing one that names another live process.
    ///
    /// The write is atomic (a temporary file in the same directory, renamed
    /// over `path`), so a reader never sees an empty or partial pid.
    pub fn create(path: &Path) -> Result<PidFile, PidFileError> {
        let pid = std::process::id();
        if let Some(other) = live_owner(path)? {
            if other != pid as i32 {
                return Err(PidFileError {
                    path: path.to_owned(),
                    kind: Kind::AlreadyRunning(other),
                });
            }
        }
        write_atomically(path, pid).map_err(|e| PidFileError::io(path, "write", e))?;
        Ok(PidFile {
            path: path.to_owned(),
            pid,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `new` (USR2: `app.pid` becomes `app.pid.oldbin`
    /// so the new master can write `app.pid`). The same rules as `create`
    /// apply at `new`; the old file is removed only once `new` is written.
    pub fn rename(&mut self, new: &Path) -> Result<(), PidFileError> {
        let moved = PidFile::create(new)?;
        self.remove();
        *self = moved;
        Ok(())
    }

    /// Removes the file, but only from the process that wrote it and only
    /// while it still holds that pid: a new master may already own the path.
    pub fn remove(&self) {
        if std::process::id() != self.pid {
            return;
        }
        if read_pid(&self.path).ok().flatten() == Some(self.pid as i32) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// The pid in the file, if it names a process that is alive (or that
/// exists but is not ours to signal, which gunicorn also counts as alive).
fn live_owner(path: &Path) -> Result<Option<i32>, PidFileError> {
    let pid = match read_pid(path) {
        Ok(Some(pid)) => pid,
        Ok(None) => return Ok(None),
        Err(e) => return Err(PidFileError::io(path, "read", e)),
    };
    // kill(0) and kill(-n) address process groups: never probe those.
    if pid <= 0 {
        return Ok(None);
    }
    // SAFETY: signal 0 only checks that `pid` exists and may be signalled.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    Ok(alive.then_some(pid))
}

/// `Ok(None)` when the file is missing or does not hold a number.
fn read_pid(path: &Path) -> io::Result<Option<i32>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().parse().ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        // Binary garbage is as stale as a bad number.
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Ok(None),
        Err(e) => Err(e),
    }
}

fn write_atomically(path: &Path, pid: u32) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{pid}.tmp"));
    let tmp = path.with_file_name(tmp_name);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        file.write_all(format!("{pid}\n").as_bytes())?;
        // rw-r--r-- whatever the umask, as gunicorn: monitors read it.
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::TempDir;

    /// A pid that is certainly dead: a child we have reaped.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn writes_our_pid_and_a_newline_readable_by_all() {
        let dir = TempDir::new("pid");
        let path = dir.0.join("app.pid");
        let pidfile = PidFile::create(&path).unwrap();
        assert_eq!(pidfile.path(), path);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
        // Only the pid file is left in the directory: no temp file.
        assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);
    }

    #[test]
    fn refuses_a_file_naming_another_live_process() {
        let dir = TempDir::new("pid");
        let path = dir.0.join("app.pid");
        let mut live = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        fs::write(&path, format!("{}\n", live.id())).unwrap();
        let err = PidFile::create(&path).unwrap_err();
        let _ = live.kill();
        let _ = live.wait();
        assert!(err.is_already_running());
        assert_eq!(err.running_pid(), Some(live.id() as i32));
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "--pid {}: already running as pid {}",
                path.display(),
                live.id()
            )),
            "{text}"
        );
        // The other server's file is untouched.
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", live.id())
        );
    }

    #[test]
    fn replaces_stale_garbage_and_our_own_files() {
        let dir = TempDir::new("pid");
        let path = dir.0.join("app.pid");
        let ours = format!("{}\n", std::process::id());
        for stale in [
            format!("{}\n", dead_pid()),
            "garbage".to_owned(),
            String::new(),
            "0".to_owned(),
            "-1".to_owned(),
            ours.clone(),
        ] {
            fs::write(&path, &stale).unwrap();
            PidFile::create(&path).unwrap_or_else(|e| panic!("{stale:?}: {e}"));
            assert_eq!(fs::read_to_string(&path).unwrap(), ours);
        }
    }

    #[test]
    fn a_missing_directory_is_named_with_a_hint() {
        let dir = TempDir::new("pid");
        let path = dir.0.join("missing").join("app.pid");
        let err = PidFile::create(&path).unwrap_err().to_string();
        assert!(err.starts_with(&format!("--pid {}: could not write", path.display())));
        assert!(err.ends_with("(does its directory exist?)"), "{err}");
    }

    #[test]
    fn rename_moves_the_file_for_usr2() {
        let dir = TempDir::new("pid");
        let path = dir.0.join("app.pid");
        let oldbin = dir.0.join("app.pid.oldbin");
        let mut pidfile = PidFile::create(&path).unwrap();
        pidfile.rename(&oldbin).unwrap();
        assert_eq!(pidfile.path(), oldbin);
        assert!(!path.exists());
        assert_eq!(
            fs::read_to_string(&oldbin).unwrap(),
            format!("{}\n", std::process::id())
        );
    }

    #[test]
    fn remove_leaves_a_file_that_now_names_someone_else() {
        let dir = TempDir::new("pid");
        let path = dir.0.join("app.pid");
        let pidfile = PidFile::create(&path).unwrap();
        fs::write(&path, "1\n").unwrap();
        pidfile.remove();
        assert_eq!(fs::read_to_string(&path).unwrap(), "1\n");

        let pidfile = PidFile::create(&dir.0.join("b.pid")).unwrap();
        pidfile.remove();
        assert!(!pidfile.path().exists());
        pidfile.remove(); // twice is harmless
    }
}
