//! Users and groups: turning `--user` / `--group` values into ids, and
//! dropping a worker's privileges to them.
//!
//! Owns the passwd/group look-ups (re-entrant `*_r` calls, since workers and
//! the master may have threads) and the order of the id changes. It must not
//! decide *when* to drop: the master calls `drop_privileges` in a freshly
//! forked worker, after binding, as gunicorn does.

use std::ffi::{CStr, CString};
use std::io;

/// A uid from a number or a user name, as gunicorn's `validate_user`.
///
/// The error is a fragment ("no such user ...") for the settings registry
/// to wrap with the flag and the value.
pub fn resolve_user(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if let Some(id) = numeric_id(s, "uid")? {
        return Ok(id);
    }
    match lookup_user(s) {
        Ok(Some(user)) => Ok(user.uid),
        Ok(None) => {
            Err("no such user (expected a user name known to this system or a numeric uid)".into())
        }
        Err(e) => Err(format!("could not look up the user ({e})")),
    }
}

/// A gid from a number or a group name, as gunicorn's `validate_group`.
pub fn resolve_group(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if let Some(id) = numeric_id(s, "gid")? {
        return Ok(id);
    }
    match lookup_group(s) {
        Ok(Some(gid)) => Ok(gid),
        Ok(None) => Err(
            "no such group (expected a group name known to this system or a numeric gid)".into(),
        ),
        Err(e) => Err(format!("could not look up the group ({e})")),
    }
}

/// `Some(id)` for an all-digit string, `None` for a name to look up.
fn numeric_id(s: &str, what: &str) -> Result<Option<u32>, String> {
    if s.is_empty() {
        return Err(format!(
            "expected a name or a numeric {what}, not an empty string"
        ));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    // (uid_t)-1 means "leave unchanged" to the set*id calls, so it is not an id.
    match s.parse::<u32>() {
        Ok(id) if id != u32::MAX => Ok(Some(id)),
        _ => Err(format!(
            "{s} is not a valid {what} (the highest is {})",
            u32::MAX - 1
        )),
    }
}

/// Switches to `gid` then `uid`; `None` leaves that id alone, and an id the
/// process already has is not set again, so an unprivileged server with
/// `--user` set to itself keeps working.
///
/// When the user changes, the supplementary groups become that user's (via
/// initgroups), so a worker started by root does not keep root's groups. A
/// uid with no passwd entry gets only the target group. The group changes
/// first because after setuid the process may no longer be allowed to.
pub fn drop_privileges(uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    let (cur_uid, cur_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let new_uid = uid.filter(|&u| u != cur_uid);
    let new_gid = gid.filter(|&g| g != cur_gid);

    if let Some(uid) = new_uid {
        let user = lookup_uid(uid)?;
        let base_gid = gid.or(user.as_ref().map(|u| u.gid)).unwrap_or(cur_gid);
        match user {
            Some(user) => {
                // SAFETY: `user.name` is a valid NUL-terminated string that
                // outlives the call.
                if unsafe { libc::initgroups(user.name.as_ptr(), base_gid as _) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            None => {
                let groups = [base_gid as libc::gid_t];
                // SAFETY: `groups` is a live array of exactly 1 gid.
                if unsafe { libc::setgroups(1, groups.as_ptr()) } != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
    }
    if let Some(gid) = new_gid {
        // SAFETY: setgid takes a plain integer.
        if unsafe { libc::setgid(gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if let Some(uid) = new_uid {
        // SAFETY: setuid takes a plain integer.
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

struct User {
    name: CString,
    uid: u32,
    gid: u32,
}

fn lookup_user(name: &str) -> io::Result<Option<User>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    reentrant_lookup(
        |pwd, buf, result| {
            // SAFETY: every pointer is to live storage of the stated size, and
            // `cname` is NUL-terminated.
            unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
        },
        user_of,
    )
}

fn lookup_uid(uid: u32) -> io::Result<Option<User>> {
    reentrant_lookup(
        |pwd, buf, result| {
            // SAFETY: every pointer is to live storage of the stated size.
            unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
        },
        user_of,
    )
}

fn lookup_group(name: &str) -> io::Result<Option<u32>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    reentrant_lookup(
        |grp: *mut libc::group, buf, result| {
            // SAFETY: every pointer is to live storage of the stated size, and
            // `cname` is NUL-terminated.
            unsafe { libc::getgrnam_r(cname.as_ptr(), grp, buf.as_mut_ptr(), buf.len(), result) }
        },
        |grp| grp.gr_gid,
    )
}

/// Reads what we need of a filled `passwd` record (called while its buffer is alive).
fn user_of(pwd: &libc::passwd) -> User {
    // SAFETY: on success pw_name points into the lookup's buffer, NUL-terminated, and
    // `reentrant_lookup` calls this before that buffer is dropped.
    let name = unsafe { CStr::from_ptr(pwd.pw_name) }.to_owned();
    User {
        name,
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    }
}

/// Runs a `getpw*_r` / `getgr*_r` call, growing the string buffer on ERANGE, and reads the
/// record with `read` while the buffer its strings point into is still alive.
/// `T` is only ever `libc::passwd` or `libc::group`.
fn reentrant_lookup<T, R>(
    call: impl Fn(*mut T, &mut [libc::c_char], *mut *mut T) -> libc::c_int,
    read: impl FnOnce(&T) -> R,
) -> io::Result<Option<R>> {
    let mut size = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: T is a libc passwd or group record: plain old data for which all-zero is a
        // valid value, and which the call overwrites.
        let mut record: T = unsafe { std::mem::zeroed() };
        let mut result: *mut T = std::ptr::null_mut();
        let rc = call(&mut record, &mut buf, &mut result);
        if rc == libc::ERANGE && size < 1 << 20 {
            size *= 4;
            continue;
        }
        if result.is_null() {
            // Not found is rc 0 (or ENOENT and friends on some libcs).
            return match rc {
                0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Ok(None),
                e => Err(io::Error::from_raw_os_error(e)),
            };
        }
        return Ok(Some(read(&record)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_root_by_name_and_number() {
        assert_eq!(resolve_user("root"), Ok(0));
        assert_eq!(resolve_user("0"), Ok(0));
        assert_eq!(resolve_user(" 1000 "), Ok(1000));
        assert_eq!(resolve_group("0"), Ok(0));
        // Debian and Alpine call gid 0 "root"; the BSDs call it "wheel".
        #[cfg(target_os = "linux")]
        assert_eq!(resolve_group("root"), Ok(0));
    }

    #[test]
    fn unknown_names_and_bad_numbers_are_refused() {
        let err = resolve_user("no-such-user-ferricorn").unwrap_err();
        assert!(err.starts_with("no such user"), "{err}");
        let err = resolve_group("no-such-group-ferricorn").unwrap_err();
        assert!(err.starts_with("no such group"), "{err}");
        assert!(resolve_user("").is_err());
        assert!(resolve_user("4294967295").is_err());
        assert!(resolve_user("99999999999").is_err());
        assert!(resolve_user("a\0b").is_err());
    }

    #[test]
    fn dropping_to_the_current_ids_is_a_no_op() {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        drop_privileges(Some(uid), Some(gid)).unwrap();
        drop_privileges(None, None).unwrap();
        // SAFETY: as above.
        assert_eq!(unsafe { (libc::getuid(), libc::getgid()) }, (uid, gid));
    }

    #[test]
    fn looks_up_a_uid_s_name() {
        let root = lookup_uid(0).unwrap().unwrap();
        assert_eq!(root.name.to_str(), Ok("root"));
        assert_eq!(root.uid, 0);
    }
}
