//! `--daemon`: detaching from the terminal the way gunicorn's
//! `util.daemonize` does (fork, setsid, fork, umask 022, stdio to
//! /dev/null).
//!
//! The forks go through Python's `os.fork()` so that Python's at-fork hooks
//! (`os.register_at_fork`, the import lock, threading) run as they do under
//! gunicorn. This must run before any thread is started (tokio, workers,
//! the log writer): a fork copies only the calling thread.

use std::io;

use pyo3::prelude::*;

use crate::net::bind::INHERIT_ENV;

/// `enable_stdio_inheritance` is gunicorn's `-R/--enable-stdio-inheritance`:
/// stdin still goes to /dev/null, but stdout and stderr are kept unless
/// they are a terminal, so `ferricorn -D ... >log 2>&1` keeps logging to
/// `log`.
///
/// A master started by a USR2 upgrade (`FERRICORN_FDS` set) is already
/// detached and is left as it is, as gunicorn does when `GUNICORN_FD` is set.
pub fn daemonize_with(py: Python<'_>, enable_stdio_inheritance: bool) -> PyResult<()> {
    if std::env::var_os(INHERIT_ENV).is_some() {
        return Ok(());
    }
    let os = py.import("os")?;
    // The parent returns to the shell at once; the child is not a process
    // group leader, so setsid can make it one of a new session.
    if os.call_method0("fork")?.extract::<i32>()? != 0 {
        os.call_method1("_exit", (0,))?;
    }
    os.call_method0("setsid")?;
    // The session leader exits, so the daemon can never reacquire a
    // controlling terminal by opening one.
    if os.call_method0("fork")?.extract::<i32>()? != 0 {
        os.call_method1("_exit", (0,))?;
    }
    os.call_method1("umask", (0o22,))?;
    redirect_stdio(enable_stdio_inheritance)?;
    Ok(())
}

fn redirect_stdio(enable_stdio_inheritance: bool) -> io::Result<()> {
    let devnull = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    let null = std::os::fd::AsRawFd::as_raw_fd(&devnull);
    for fd in [0, 1, 2] {
        // Without inheritance everything goes; with it, only stdin and the
        // streams that are a terminal, which the daemon must not hold.
        // SAFETY: isatty only inspects the descriptor.
        let keep = enable_stdio_inheritance && fd != 0 && unsafe { libc::isatty(fd) } == 0;
        if keep {
            continue;
        }
        // SAFETY: dup2 atomically replaces `fd` with a copy of `null`, which
        // is open for the whole loop; the copy is inheritable (no CLOEXEC),
        // as stdio must be.
        if unsafe { libc::dup2(null, fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    // `devnull` closes here; fds 0-2 keep their copies.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    const CHILD_ENV: &str = "FERRICORN_DAEMON_TEST_REPORT";

    /// Runs in a child copy of the test binary: daemonizes, then writes
    /// what the daemon looks like to the report file.
    #[test]
    fn daemon_child_helper() {
        let Some(report) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        Python::initialize();
        let inherit = std::env::var_os("FERRICORN_DAEMON_TEST_INHERIT").is_some();
        Python::attach(|py| daemonize_with(py, inherit)).unwrap();
        // SAFETY: these calls only read process attributes.
        let (pid, sid, ppid_was_parent, mask) = unsafe {
            let mask = libc::umask(0o22);
            (libc::getpid(), libc::getsid(0), libc::getppid(), mask)
        };
        let fds: Vec<String> = (0..3)
            .map(|fd| {
                std::fs::read_link(format!("/proc/self/fd/{fd}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        let text = format!(
            "pid={pid} sid={sid} ppid={ppid_was_parent} umask={mask:o} fds={}\n",
            fds.join(",")
        );
        let tmp = std::path::PathBuf::from(&report).with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, &report).unwrap();
        // SAFETY: ends the daemon without running the test harness's exit.
        unsafe { libc::_exit(0) };
    }

    /// Daemonizes a child copy of the test binary whose stderr is a file;
    /// returns the launcher's status, the daemon's report and that file.
    fn run_daemon(inherit: bool) -> (std::process::ExitStatus, String, String) {
        let base =
            std::env::temp_dir().join(format!("ferricorn-daemon-{}-{inherit}", std::process::id()));
        let report = base.with_extension("txt");
        let stderr_path = base.with_extension("err");
        let _ = std::fs::remove_file(&report);
        let stderr = std::fs::File::create(&stderr_path).unwrap();
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "process::daemon::tests::daemon_child_helper",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &report)
        .env_remove(INHERIT_ENV)
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
        if inherit {
            cmd.env("FERRICORN_DAEMON_TEST_INHERIT", "1");
        }
        let status = cmd.status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let text = loop {
            if let Ok(text) = std::fs::read_to_string(&report) {
                break text;
            }
            assert!(Instant::now() < deadline, "the daemon never reported");
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&report);
        let _ = std::fs::remove_file(&stderr_path);
        (status, text, stderr_path.display().to_string())
    }

    fn field<'a>(text: &'a str, name: &str) -> &'a str {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    }

    #[test]
    fn daemon_detaches_into_its_own_session_with_stdio_on_dev_null() {
        let (status, text, _) = run_daemon(false);
        // The launcher's own process returned at once, successfully.
        assert!(status.success(), "{text}");
        let pid: i32 = field(&text, "pid").parse().unwrap();
        let sid: i32 = field(&text, "sid").parse().unwrap();
        // Forked twice: in a new session but not its leader.
        assert_ne!(sid, pid, "{text}");
        assert_ne!(pid as u32, std::process::id());
        assert_eq!(field(&text, "umask"), "22");
        assert_eq!(field(&text, "fds"), "/dev/null,/dev/null,/dev/null");
    }

    #[test]
    fn stdio_inheritance_keeps_redirected_stdout_and_stderr() {
        let (status, text, stderr_path) = run_daemon(true);
        assert!(status.success(), "{text}");
        // stdout was /dev/null already; stderr, a file, is kept.
        assert_eq!(
            field(&text, "fds"),
            format!("/dev/null,/dev/null,{stderr_path}")
        );
    }
}
