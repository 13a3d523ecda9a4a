//! A process's resident memory, for `--max-worker-memory`.
//!
//! Reads `/proc/<pid>/statm` only; deciding what to do about a large worker
//! is the master's job.

/// Resident set size of `pid` in bytes, or `None` when it cannot be read
/// (the process is gone, or there is no procfs).
pub fn rss_bytes(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages = parse_statm_resident(&statm)?;
    Some(pages.saturating_mul(page_size()?))
}

/// statm is "size resident shared text lib data dt", all in pages.
fn parse_statm_resident(statm: &str) -> Option<u64> {
    statm.split_ascii_whitespace().nth(1)?.parse().ok()
}

fn page_size() -> Option<u64> {
    // SAFETY: sysconf only reads a system constant.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_resident_field() {
        assert_eq!(parse_statm_resident("2000 345 100 1 0 300 0\n"), Some(345));
        assert_eq!(parse_statm_resident("2000"), None);
        assert_eq!(parse_statm_resident(""), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn our_own_rss_is_plausible() {
        let rss = rss_bytes(std::process::id() as i32).unwrap();
        assert!(rss > 100 * 1024, "{rss}");
        assert!(rss < 64 * 1024 * 1024 * 1024, "{rss}");
    }

    #[test]
    fn a_missing_process_has_no_rss() {
        assert_eq!(rss_bytes(0), None);
        assert_eq!(rss_bytes(-5), None);
        assert_eq!(rss_bytes(i32::MAX), None);
    }
}
