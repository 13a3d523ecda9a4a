//! The process title `ps` and `top` show (`master [app:app]`, `worker
//! [app:app]`), what gunicorn gets from the setproctitle package.
//!
//! On Linux both names are set: the short `comm` (15 bytes, `ps -o comm`,
//! `top`) and the command line (`ps -f`, `/proc/<pid>/cmdline`), the latter
//! by overwriting the original argv strings in place. This must never crash
//! the server: anything that cannot be verified is skipped silently. The
//! environment block after argv is never touched, so the title is cut to the
//! length of the original command line.

/// Sets the title as far as this platform allows; never fails.
pub fn set_title(title: &str) {
    #[cfg(target_os = "linux")]
    linux::set_title(title);
    #[cfg(not(target_os = "linux"))]
    let _ = title;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CString;

    pub fn set_title(title: &str) {
        // C strings end at the first NUL; so does the title.
        let title = title.split('\0').next().unwrap_or_default();
        set_comm(title);
        if let Some((start, end)) = argv_area() {
            // SAFETY: argv_area only returns a range inside a private,
            // writable mapping of this process (checked against
            // /proc/self/maps); the argv strings there are no longer read
            // by anything but the kernel and std::env::args, which is not
            // used after startup.
            unsafe { overwrite(start, end, title.as_bytes()) };
        }
    }

    /// `comm` belongs to a thread, and `ps` shows the main thread's. From
    /// the main thread prctl is enough; from another (the master may call
    /// this from anywhere) write the main thread's comm file, which Linux
    /// allows within one thread group.
    fn set_comm(title: &str) {
        // SAFETY: getpid and gettid cannot fail.
        let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
        let short: Vec<u8> = title.bytes().take(15).collect();
        if pid == tid {
            if let Ok(name) = CString::new(short) {
                // SAFETY: PR_SET_NAME reads a NUL-terminated string of at
                // most 16 bytes from the pointer; `name` is one.
                unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0) };
            }
        } else {
            let _ = std::fs::write(format!("/proc/self/task/{pid}/comm"), short);
        }
    }

    /// arg_start and arg_end (fields 48 and 49 of /proc/self/stat), if the
    /// whole range lies in one writable mapping.
    fn argv_area() -> Option<(usize, usize)> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let (start, end) = parse_arg_range(&stat)?;
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        writable_mapping_contains(&maps, start, end).then_some((start, end))
    }

    /// The comm field (2) is parenthesised and may contain spaces and ')',
    /// so fields are counted from the last ')': field 3 comes right after.
    pub(super) fn parse_arg_range(stat: &str) -> Option<(usize, usize)> {
        let after_comm = &stat[stat.rfind(')')? + 1..];
        let mut fields = after_comm.split_ascii_whitespace().skip(48 - 3);
        let start: usize = fields.next()?.parse().ok()?;
        let end: usize = fields.next()?.parse().ok()?;
        // Never more than the kernel's own cap on a command line (ARG_MAX
        // is far below this); a wild range means we misread the file.
        (start > 0 && end > start && end - start <= 1 << 24).then_some((start, end))
    }

    pub(super) fn writable_mapping_contains(maps: &str, start: usize, end: usize) -> bool {
        maps.lines().any(|line| {
            let mut parts = line.split_ascii_whitespace();
            let (Some(range), Some(perms)) = (parts.next(), parts.next()) else {
                return false;
            };
            let Some((lo, hi)) = range.split_once('-') else {
                return false;
            };
            let (Ok(lo), Ok(hi)) = (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            else {
                return false;
            };
            perms.starts_with("rw") && lo <= start && end <= hi
        })
    }

    /// Writes `title` at `start`, cut so at least one NUL remains, and
    /// NUL-fills up to `end`. A last byte of NUL tells the kernel the area is
    /// a plain argv, so /proc/<pid>/cmdline reads it as such.
    ///
    /// # Safety
    /// `start..end` must be writable memory of this process that nothing
    /// else accesses concurrently.
    unsafe fn overwrite(start: usize, end: usize, title: &[u8]) {
        let len = end - start;
        let n = title.len().min(len - 1);
        let area = start as *mut u8;
        // SAFETY: the caller guarantees start..end is writable; n < len and
        // the fill covers n..len exactly.
        unsafe {
            std::ptr::copy_nonoverlapping(title.as_ptr(), area, n);
            std::ptr::write_bytes(area.add(n), 0, len - n);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::linux::{parse_arg_range, writable_mapping_contains};
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    const CHILD_ENV: &str = "FERRICORN_TITLE_TEST_CHILD";
    const TITLE: &str = "master [myapp.wsgi:application]";

    #[test]
    fn parses_arg_start_and_end_even_with_odd_comm() {
        let mut fields: Vec<String> = (3..=52).map(|i| i.to_string()).collect();
        fields[48 - 3] = "1000".into();
        fields[49 - 3] = "1200".into();
        let stat = format!("42 (a) b (c)) {}", fields.join(" "));
        assert_eq!(parse_arg_range(&stat), Some((1000, 1200)));
        assert_eq!(parse_arg_range("42 (x) S 1 2"), None);
        fields[49 - 3] = "900".into();
        let stat = format!("42 (x) {}", fields.join(" "));
        assert_eq!(parse_arg_range(&stat), None);
    }

    #[test]
    fn only_writable_mappings_qualify() {
        let maps = "00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/x\n\
                    7ffc0000-7ffd0000 rw-p 00000000 00:00 0 [stack]\n";
        assert!(writable_mapping_contains(maps, 0x7ffc_1000, 0x7ffc_2000));
        assert!(!writable_mapping_contains(maps, 0x0040_1000, 0x0040_2000));
        assert!(!writable_mapping_contains(maps, 0x7ffc_f000, 0x7ffd_1000));
        assert!(!writable_mapping_contains("garbage\n", 1, 2));
    }

    /// Runs in a child copy of the test binary: sets the title from the
    /// environment, says so, and waits until the parent has looked.
    #[test]
    fn title_child_helper() {
        let Some(title) = std::env::var_os(CHILD_ENV) else {
            return;
        };
        set_title(title.to_str().unwrap());
        println!("TITLE-SET");
        std::io::stdout().flush().unwrap();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
    }

    /// Starts a child that sets `title`; returns what /proc shows for it:
    /// the command line without its NUL padding, and comm.
    fn title_seen_by_ps(title: &str) -> (String, String) {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "process::title::tests::title_child_helper",
                "--nocapture",
                "--test-threads=1",
                // Padding, so the original command line is longer than TITLE.
                "--skip",
                "nothing-is-named-like-this-so-nothing-is-skipped",
            ])
            .env(CHILD_ENV, title)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && !line.contains("TITLE-SET") {
            line.clear();
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        drop(child.stdin.take());
        assert!(child.wait().unwrap().success());
        assert!(line.contains("TITLE-SET"), "child never set its title");
        let shown = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        assert!(
            cmdline[shown.len()..].iter().all(|&b| b == 0),
            "the rest of argv is NUL padding: {cmdline:?}"
        );
        (
            String::from_utf8_lossy(shown).into_owned(),
            comm.trim_end().to_owned(),
        )
    }

    #[test]
    fn ps_sees_the_new_title_in_cmdline_and_comm() {
        let (cmdline, comm) = title_seen_by_ps(TITLE);
        assert_eq!(cmdline, TITLE);
        assert_eq!(comm, &TITLE[..15]);
    }

    #[test]
    fn a_title_longer_than_argv_is_cut_to_fit() {
        let long = format!("worker [{}]", "x".repeat(4000));
        let (cmdline, comm) = title_seen_by_ps(&long);
        assert!(cmdline.len() > 100, "{cmdline}");
        assert!(cmdline.len() < long.len());
        assert!(long.starts_with(&cmdline));
        assert_eq!(comm, "worker [xxxxxxx");
    }
}
