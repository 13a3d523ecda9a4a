//! Where access log lines go: stdout (`-`) or a file opened for appending.
//!
//! Each line is written with one `write` call so lines from several worker processes sharing
//! the file (O_APPEND) or stdout never interleave mid-line. `reopen` closes and reopens the
//! file by name, for log rotation (USR1). Writes are blocking: they happen on the I/O
//! thread, as gunicorn's happen on its worker thread; a failed write is dropped, never fatal.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Mutex;

pub enum Writer {
    Stdout,
    File { path: PathBuf, file: Mutex<File> },
}

impl Writer {
    /// `-` means stdout; anything else is a file path, created if missing.
    pub fn open(target: &str) -> io::Result<Writer> {
        if target == "-" {
            return Ok(Writer::Stdout);
        }
        let path = PathBuf::from(target);
        let file = open_append(&path)?;
        Ok(Writer::File {
            path,
            file: Mutex::new(file),
        })
    }

    /// Writes one complete line (newline included).
    pub fn write_line(&self, line: &[u8]) {
        match self {
            Writer::Stdout => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(line).and_then(|()| out.flush());
            }
            Writer::File { file, .. } => {
                let file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                let _ = (&*file).write_all(line);
            }
        }
    }

    /// Reopens the file by its path (after rotation); stdout needs nothing.
    pub fn reopen(&self) -> io::Result<()> {
        if let Writer::File { path, file } = self {
            let fresh = open_append(path)?;
            *file.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        }
        Ok(())
    }
}

fn open_append(path: &PathBuf) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_lines_are_appended_and_survive_reopen_after_rotation() {
        let tmp = crate::test_support::TempDir::new("acc");
        let dir = &tmp.0;
        let path = dir.join("access.log");
        std::fs::write(&path, "old\n").unwrap();
        let w = Writer::open(path.to_str().unwrap()).unwrap();
        w.write_line(b"one\n");
        std::fs::rename(&path, dir.join("access.log.1")).unwrap();
        w.reopen().unwrap();
        w.write_line(b"two\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("access.log.1")).unwrap(),
            "old\none\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
    }

    #[test]
    fn a_missing_directory_is_an_open_error() {
        assert!(Writer::open("/nonexistent-dir-for-ferricorn/access.log").is_err());
    }
}
