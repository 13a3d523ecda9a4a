//! Listening sockets this process did not bind: systemd socket activation
//! (`LISTEN_PID`/`LISTEN_FDS`, fds from 3) and the USR2 binary upgrade, where
//! the old master execs the new binary with its listeners left open and
//! their numbers in `FERRICORN_FDS`.
//!
//! Owns reading and clearing those variables and making adopted sockets
//! non-blocking and close-on-exec again. It must not bind or decide
//! precedence: the master tries these before `--bind`, as gunicorn does.

use std::os::fd::{AsRawFd, RawFd};

use super::bind::{adopt_fd, BindAddr, BindError, Listener};

/// The variable an upgrading master sets for its successor: the listening
/// descriptors, comma-separated (gunicorn calls it `GUNICORN_FD`).
pub const INHERIT_ENV: &str = "FERRICORN_FDS";

/// systemd passes sockets from this descriptor up (`SD_LISTEN_FDS_START`).
const SD_LISTEN_FDS_START: RawFd = 3;

/// The sockets systemd passed, when it passed them to this process.
///
/// `Ok(None)` unless `LISTEN_PID` is our pid, so a child that merely
/// inherited the variables ignores them. When they are ours they are
/// removed (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`) so that nothing we
/// start adopts the same sockets again.
#[allow(dead_code)] // the master calls this; not wired yet
pub fn systemd_listeners() -> Result<Option<Vec<Listener>>, BindError> {
    let listen_pid = std::env::var("LISTEN_PID").ok();
    let listen_fds = std::env::var("LISTEN_FDS").ok();
    let n = match systemd_fd_count(
        listen_pid.as_deref(),
        listen_fds.as_deref(),
        std::process::id(),
    ) {
        Ok(None) => return Ok(None),
        other => other,
    };
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    match n? {
        Some(n) => adopt_range(SD_LISTEN_FDS_START, n).map(Some),
        None => Ok(None),
    }
}

/// How many fds systemd passed to `our_pid`, from the two variables;
/// `Ok(None)` when they are absent or meant for another process.
fn systemd_fd_count(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    our_pid: u32,
) -> Result<Option<usize>, BindError> {
    let Some(pid) = listen_pid else {
        return Ok(None);
    };
    if pid.trim().parse::<u32>().ok() != Some(our_pid) {
        return Ok(None);
    }
    let fds = listen_fds.unwrap_or("0");
    match fds.trim().parse::<usize>() {
        Ok(0) => Ok(None),
        // More than this would run into the process's own fd limit anyway.
        Ok(n) if n <= 4096 => Ok(Some(n)),
        _ => Err(BindError::env(
            "LISTEN_FDS",
            fds,
            "expected a count of sockets",
        )),
    }
}

/// Adopts `n` descriptors from `start` (systemd's contiguous range).
fn adopt_range(start: RawFd, n: usize) -> Result<Vec<Listener>, BindError> {
    let fds: Vec<RawFd> = (0..n).map(|i| start + i as RawFd).collect();
    adopt_all(&fds)
}

/// Takes each fd as it is (already listening); all or nothing, so on error
/// the ones adopted so far are closed again.
fn adopt_all(fds: &[RawFd]) -> Result<Vec<Listener>, BindError> {
    fds.iter()
        .map(|&fd| adopt_fd(fd, None).map_err(|e| BindError::new("adopt", &BindAddr::Fd(fd), e)))
        .collect()
}

/// Readies `listeners` to survive `execve` into the new binary (USR2):
/// clears close-on-exec on each and returns the value for `INHERIT_ENV`,
/// e.g. `"5,6"`. Call it in the forked child just before exec; the old
/// master's own descriptors stay close-on-exec.
#[allow(dead_code)] // the master calls this; not wired yet
pub fn prepare_for_exec(listeners: &[Listener]) -> String {
    let mut fds = Vec::with_capacity(listeners.len());
    for listener in listeners {
        let fd = listener.as_raw_fd();
        // SAFETY: F_GETFD/F_SETFD only read and write the descriptor flags
        // of a descriptor `listener` owns.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags != -1 {
                libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            }
        }
        fds.push(fd.to_string());
    }
    fds.join(",")
}

/// The listeners an upgrading master handed to this (new) binary, from
/// `INHERIT_ENV`, which is removed so workers and app subprocesses do not
/// see it. `Ok(None)` when it is not set.
#[allow(dead_code)] // the master calls this; not wired yet
pub fn inherited_listeners() -> Result<Option<Vec<Listener>>, BindError> {
    let Some(value) = std::env::var_os(INHERIT_ENV) else {
        return Ok(None);
    };
    std::env::remove_var(INHERIT_ENV);
    let value = value.to_string_lossy();
    let fds = parse_fd_list(&value)?;
    adopt_all(&fds).map(Some)
}

fn parse_fd_list(value: &str) -> Result<Vec<RawFd>, BindError> {
    let bad = || {
        BindError::env(
            INHERIT_ENV,
            value,
            "expected descriptor numbers separated by commas",
        )
    };
    let fds = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<RawFd>()
                .ok()
                .filter(|&fd| fd >= 0)
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::HashSet::new();
    if fds.iter().any(|fd| !seen.insert(*fd)) {
        return Err(bad());
    }
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::bind::{bind_all, BindOptions};
    use std::io::{BufRead, BufReader};
    use std::os::fd::IntoRawFd;
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::process::{Command, Stdio};

    const CHILD_ENV: &str = "FERRICORN_INHERIT_TEST_CHILD";

    fn tcp0() -> BindAddr {
        BindAddr::Tcp {
            host: "127.0.0.1".into(),
            port: 0,
        }
    }

    fn unix_addr(name: &str) -> (BindAddr, PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "ferricorn-inherit-{}-{name}.sock",
            std::process::id()
        ));
        (BindAddr::Unix(path.clone()), path)
    }

    #[test]
    fn systemd_count_applies_only_to_our_pid() {
        assert_eq!(systemd_fd_count(None, Some("2"), 42).unwrap(), None);
        assert_eq!(systemd_fd_count(Some("41"), Some("2"), 42).unwrap(), None);
        assert_eq!(systemd_fd_count(Some("x"), Some("2"), 42).unwrap(), None);
        assert_eq!(
            systemd_fd_count(Some("42"), Some("2"), 42).unwrap(),
            Some(2)
        );
        assert_eq!(systemd_fd_count(Some("42"), Some("0"), 42).unwrap(), None);
        assert_eq!(systemd_fd_count(Some("42"), None, 42).unwrap(), None);
        let err = systemd_fd_count(Some("42"), Some("lots"), 42).unwrap_err();
        assert_eq!(
            err.to_string(),
            "could not use LISTEN_FDS=\"lots\": expected a count of sockets"
        );
        assert_eq!(err.addr(), None);
    }

    #[test]
    fn fd_lists_parse_and_reject_garbage() {
        assert_eq!(parse_fd_list("3,4, 7").unwrap(), [3, 4, 7]);
        assert_eq!(parse_fd_list("").unwrap(), Vec::<RawFd>::new());
        for bad in ["3,x", "-1", "3,3"] {
            let err = parse_fd_list(bad).unwrap_err().to_string();
            assert!(err.starts_with("could not use FERRICORN_FDS="), "{err}");
        }
    }

    #[test]
    fn adopts_a_range_of_listening_sockets_of_both_kinds() {
        let (unix, path) = unix_addr("range");
        let originals = bind_all(&[tcp0(), unix], 16).unwrap();
        // A contiguous pair of fresh numbers standing in for systemd's 3, 4.
        let start = 900 + (std::process::id() % 50) as RawFd * 2;
        for (i, l) in originals.iter().enumerate() {
            // SAFETY: dup2 onto numbers far above anything this test
            // binary opens, which the adopted listeners then own.
            assert_ne!(unsafe { libc::dup2(l.as_raw_fd(), start + i as RawFd) }, -1);
        }
        let adopted = adopt_range(start, 2).unwrap();
        assert!(matches!(adopted[0], Listener::Tcp(_)));
        assert!(matches!(adopted[1], Listener::Unix(_)));
        assert_eq!(adopted[0].url(), originals[0].url());
        assert_eq!(adopted[1].unix_path().as_deref(), Some(path.as_path()));
        for l in &adopted {
            // SAFETY: reads flags of descriptors the listeners own.
            let (fd_flags, fl_flags) = unsafe {
                (
                    libc::fcntl(l.as_raw_fd(), libc::F_GETFD),
                    libc::fcntl(l.as_raw_fd(), libc::F_GETFL),
                )
            };
            assert_eq!(fd_flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
            assert_eq!(fl_flags & libc::O_NONBLOCK, libc::O_NONBLOCK);
        }
        drop(adopted);
        drop(originals);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn a_bad_fd_fails_the_whole_adoption_naming_it() {
        let listener = bind_all(&[tcp0()], 16).unwrap().remove(0);
        let raw = match listener.try_clone().unwrap() {
            Listener::Tcp(l) => l.into_raw_fd(),
            Listener::Unix(l) => l.into_raw_fd(),
        };
        // `raw` is adopted, then 1000000 (never open) fails, and `raw` is
        // closed again on the way out.
        let err = adopt_all(&[raw, 1_000_000]).unwrap_err().to_string();
        assert!(
            err.starts_with("could not adopt fd://1000000: Bad file descriptor"),
            "{err}"
        );
    }

    #[test]
    fn prepare_for_exec_clears_cloexec_and_lists_the_fds() {
        let listeners = bind_all(&[tcp0(), tcp0()], 16).unwrap();
        let value = prepare_for_exec(&listeners);
        assert_eq!(
            value,
            format!("{},{}", listeners[0].as_raw_fd(), listeners[1].as_raw_fd())
        );
        for l in &listeners {
            // SAFETY: reads flags of a descriptor the listener owns.
            let flags = unsafe { libc::fcntl(l.as_raw_fd(), libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, 0);
        }
    }

    /// Runs in a child copy of the test binary, as the process that
    /// received sockets: "systemd" or "usr2" mode, reporting what it adopted.
    #[test]
    fn inherit_child_helper() {
        let Some(mode) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        let adopted = if mode == "systemd" {
            // Only now is our pid known, as it is to systemd after fork.
            std::env::set_var("LISTEN_PID", std::process::id().to_string());
            systemd_listeners()
        } else {
            inherited_listeners()
        };
        let listeners = adopted.unwrap().unwrap();
        let urls: Vec<String> = listeners.iter().map(Listener::url).collect();
        let leftover: Vec<&str> = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", INHERIT_ENV]
            .into_iter()
            .filter(|v| std::env::var_os(v).is_some())
            .collect();
        println!("ADOPTED {} LEFT {}", urls.join(" "), leftover.join(","));
    }

    fn run_child(mode: &str, envs: &[(&str, String)], pre: Option<[RawFd; 2]>) -> String {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "net::inherit::tests::inherit_child_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove(INHERIT_ENV)
        .stdout(Stdio::piped());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        if let Some([a, b]) = pre {
            // SAFETY: runs in the forked child before exec and only calls
            // fcntl, dup2 and close, which are async-signal-safe. The first
            // step moves both sockets above 3 and 4 so that the second step
            // cannot overwrite one with the other.
            unsafe {
                cmd.pre_exec(move || {
                    let hi_a = libc::fcntl(a, libc::F_DUPFD_CLOEXEC, 100);
                    let hi_b = libc::fcntl(b, libc::F_DUPFD_CLOEXEC, 100);
                    if hi_a == -1
                        || hi_b == -1
                        || libc::dup2(hi_a, 3) == -1
                        || libc::dup2(hi_b, 4) == -1
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        // Read to the end: closing the pipe early would fail the child.
        let lines: Vec<String> = out.lines().map_while(Result::ok).collect();
        // libtest may print "test name ... " on the same line first.
        let line = lines
            .iter()
            .find_map(|l| l.find("ADOPTED ").map(|at| l[at..].to_owned()));
        assert!(child.wait().unwrap().success());
        line.expect("the child reported")
    }

    #[test]
    fn systemd_socket_activation_adopts_fds_3_and_up_and_clears_the_env() {
        let (unix, path) = unix_addr("systemd");
        let listeners = bind_all(&[tcp0(), unix], 16).unwrap();
        let line = run_child(
            "systemd",
            &[
                ("LISTEN_FDS", "2".into()),
                ("LISTEN_FDNAMES", "http:admin".into()),
            ],
            Some([listeners[0].as_raw_fd(), listeners[1].as_raw_fd()]),
        );
        assert_eq!(
            line,
            format!(
                "ADOPTED {} unix:{} LEFT ",
                listeners[0].url(),
                path.display()
            )
        );
        drop(listeners);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn usr2_hands_listeners_across_exec() {
        let (unix, path) = unix_addr("usr2");
        let opts = BindOptions {
            backlog: 16,
            ..BindOptions::default()
        };
        let listeners = crate::net::bind::bind_with(&[unix, tcp0()], &opts).unwrap();
        let value = prepare_for_exec(&listeners);
        let line = run_child("usr2", &[(INHERIT_ENV, value)], None);
        assert_eq!(
            line,
            format!(
                "ADOPTED unix:{} {} LEFT ",
                path.display(),
                listeners[1].url()
            )
        );
        drop(listeners);
        let _ = std::fs::remove_file(path);
    }
}
