//! Where a request path leads under a mount, and opening it there without escaping: the
//! segment rules and the kernel-checked (or, before Linux 5.6, realpath-checked) open.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use super::Root;

/// Which mount (index into `prefixes`, each a list of segments) `path` falls under, longest
/// first, and the relative file path below it — `None` inside when the rest of the path cannot
/// name a file in the directory (a directory, `..`, an encoded separator, NUL): that is a 404.
/// The outer `None`: not under any mount.
///
/// Every request of a worker with mounts passes here, so segments without `%` are borrowed,
/// not copied.
pub fn route<'p>(
    prefixes: impl IntoIterator<Item = &'p [Vec<u8>]>,
    path: &[u8],
) -> Option<(usize, Option<PathBuf>)> {
    let rest = path.strip_prefix(b"/")?;
    // split first, then decode: `%2f` stays inside its segment, where it is refused below
    let segments: Vec<Cow<'_, [u8]>> = rest
        .split(|&b| b == b'/')
        .map(|s| percent_encoding::percent_decode(s).into())
        .collect();
    let (index, prefix) = prefixes
        .into_iter()
        .enumerate()
        .filter(|(_, p)| {
            p.len() <= segments.len() && p.iter().zip(&segments).all(|(a, b)| a[..] == b[..])
        })
        .max_by_key(|(_, p)| p.len())?;
    let mut rel = PathBuf::new();
    for seg in &segments[prefix.len()..] {
        let seg: &[u8] = seg;
        if seg.is_empty() {
            continue; // `//` or a trailing `/`
        }
        let bad = seg == b"." || seg == b".." || seg.iter().any(|b| matches!(b, b'/' | b'\\' | 0));
        if bad {
            return Some((index, None));
        }
        rel.push(OsString::from_vec(seg.to_vec()));
    }
    // a trailing `/` asks for a directory, and there are no listings or index files
    if rel.as_os_str().is_empty() || path.ends_with(b"/") {
        return Some((index, None));
    }
    Some((index, Some(rel)))
}

/// `O_PATH` directory handle: it can anchor lookups but not read anything itself.
pub(super) fn open_dir(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | opath())
        .open(path)
}

#[cfg(target_os = "linux")]
fn opath() -> libc::c_int {
    libc::O_PATH
}

#[cfg(not(target_os = "linux"))]
fn opath() -> libc::c_int {
    0
}

/// Opens `rel` under the root when it is a regular file; `Ok(None)` for anything that should be
/// a 404 (missing, a directory, a device, outside the root, not permitted).
pub(super) fn open_regular(
    root: &Root,
    rel: &Path,
) -> io::Result<Option<(File, std::fs::Metadata)>> {
    let file = match open_beneath(root, rel) {
        Ok(f) => f,
        Err(e) if is_not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    Ok(meta.is_file().then_some((file, meta)))
}

fn is_not_found(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ENOENT
                | libc::ENOTDIR
                | libc::EXDEV
                | libc::ELOOP
                | libc::EACCES
                | libc::EPERM
                | libc::ENAMETOOLONG
                | libc::ENXIO
                | libc::EISDIR
        )
    ) || e.kind() == io::ErrorKind::NotFound
        || e.kind() == io::ErrorKind::PermissionDenied
}

/// Flags of every file open: O_NONBLOCK so a FIFO planted in the tree cannot block the I/O
/// thread in open(2) (regular files ignore it), O_NOCTTY for device nodes.
const OPEN_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY;

#[cfg(target_os = "linux")]
fn open_beneath(root: &Root, rel: &Path) -> io::Result<File> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::sync::atomic::{AtomicBool, Ordering};
    /// Set once the kernel (or a seccomp filter) refused openat2: don't ask again.
    static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let c_rel = std::ffi::CString::new(rel.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::NotFound))?;
        // SAFETY: open_how is plain old data (three u64s) for which all-zero is valid; it is
        // #[non_exhaustive] in libc, so it cannot be built with a literal.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = OPEN_FLAGS as u64;
        how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
        // SAFETY: the dir fd is open while `root` is borrowed, `c_rel` is a NUL-terminated
        // string and `how` a valid open_how whose size we pass; the kernel reads both only
        // during the call.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.dir.as_raw_fd(),
                c_rel.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if fd >= 0 {
            let fd = i32::try_from(fd).map_err(|_| io::Error::other("fd out of range"))?;
            // SAFETY: the kernel just returned this new fd, owned by no one else.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) {
            return Err(err);
        }
        NO_OPENAT2.store(true, Ordering::Relaxed);
        log::info!("--static: openat2 is unavailable; checking paths with realpath instead");
    }
    open_checked(root, rel)
}

#[cfg(not(target_os = "linux"))]
fn open_beneath(root: &Root, rel: &Path) -> io::Result<File> {
    open_checked(root, rel)
}

/// The portable way: resolve symlinks in user space, refuse a result outside the root, open
/// it. A symlink swapped in between the check and the open could still escape.
pub(super) fn open_checked(root: &Root, rel: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let real = std::fs::canonicalize(root.path.join(rel))?;
    if !real.starts_with(&root.path) {
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_FLAGS & !libc::O_RDONLY)
        .open(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(prefix: &str) -> Vec<Vec<u8>> {
        prefix[1..]
            .split('/')
            .map(|s| s.as_bytes().to_vec())
            .collect()
    }

    fn route_in(prefixes: &[&str], path: &str) -> Option<(usize, Option<String>)> {
        let owned: Vec<Vec<Vec<u8>>> = prefixes.iter().map(|p| segs(p)).collect();
        let refs: Vec<&[Vec<u8>]> = owned.iter().map(|v| &v[..]).collect();
        route(refs, path.as_bytes())
            .map(|(i, rel)| (i, rel.map(|r| r.to_string_lossy().into_owned())))
    }

    #[test]
    fn paths_under_a_prefix_resolve_below_its_root() {
        let p = ["/static"];
        assert_eq!(
            route_in(&p, "/static/css/a.css"),
            Some((0, Some("css/a.css".into())))
        );
        assert_eq!(
            route_in(&p, "/static//a.css"),
            Some((0, Some("a.css".into())))
        );
        assert_eq!(
            route_in(&p, "/st%61tic/a%20b.txt"),
            Some((0, Some("a b.txt".into())))
        );
        assert_eq!(route_in(&p, "/staticx/a.css"), None);
        assert_eq!(route_in(&p, "/other/a.css"), None);
        assert_eq!(route_in(&p, "*"), None);
    }

    #[test]
    fn the_longest_prefix_wins() {
        let p = ["/s", "/s/img", "/s/img/big"];
        assert_eq!(
            route_in(&p, "/s/img/x.png"),
            Some((1, Some("x.png".into())))
        );
        assert_eq!(
            route_in(&p, "/s/img/big/x.png"),
            Some((2, Some("x.png".into())))
        );
        assert_eq!(route_in(&p, "/s/x.png"), Some((0, Some("x.png".into()))));
    }

    #[test]
    fn traversal_and_encoded_separators_are_not_found() {
        let p = ["/static"];
        for path in [
            "/static/../app.py",
            "/static/%2e%2e/app.py",
            "/static/.%2E/app.py",
            "/static/a/../../app.py",
            "/static/./a.css",
            "/static/..%2fapp.py",
            "/static/%2e%2e%2fapp.py",
            "/static/a%5c..%5capp.py",
            "/static/a%00.css",
            "/static/a%2Fb",
        ] {
            assert_eq!(route_in(&p, path), Some((0, None)), "{path}");
        }
    }

    #[test]
    fn directories_are_not_found() {
        let p = ["/static"];
        assert_eq!(route_in(&p, "/static"), Some((0, None)));
        assert_eq!(route_in(&p, "/static/"), Some((0, None)));
        assert_eq!(route_in(&p, "/static/css/"), Some((0, None)));
    }

    #[test]
    fn an_encoded_slash_cannot_forge_a_prefix() {
        assert_eq!(route_in(&["/a/b"], "/a%2fb/x"), None);
    }
}
