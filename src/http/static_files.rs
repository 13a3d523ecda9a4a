//! Static files answered by the I/O thread, never by Python (`--static /url=/dir`).
//!
//! This module owns every decision about a request under a mount: which file (and which
//! precompressed sibling), which status (200, 206, 304, 404, 405, 416) and which headers. It
//! opens and stats files but never touches a socket: `http::conn` writes the `Answer` it returns
//! and sends the file body with sendfile. The protocol logic (path resolution, `Range`,
//! conditional requests, `Accept-Encoding`) is pure functions, tested from bytes.
//!
//! Containment: a request path is split into segments *before* percent-decoding, so `%2f` can
//! never create a separator; decoded segments with `/`, `\` or NUL, and `.`/`..` segments, are a
//! 404 whatever is on disk. The file is then opened relative to the mount's directory fd with
//! `openat2(RESOLVE_BENEATH)`, so a symlink that leads out of the directory fails in the kernel,
//! race-free. Kernels without openat2 (before 5.6) fall back to canonicalising the path and
//! checking it is under the root, which a concurrent symlink swap could race.
//!
//! Blocking calls: each request costs one open and one fstat on the I/O thread (plus one open
//! per acceptable precompressed encoding). On a local disk these hit the dentry and page caches
//! and take microseconds, less than the two thread hand-offs `spawn_blocking` would add to every
//! request; the price is that a slow filesystem (NFS, a cold spinning disk) stalls every
//! connection of the worker for that time. Serve such trees from a CDN or a dedicated server.
//! sendfile(2) has the same trade-off for file pages not yet in the page cache.

use std::borrow::Cow;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::request::RequestHead;
use crate::exchange::{FileBody, ResponseHead};

/// One validated `--static` mount: a URL prefix and the canonical directory it serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// `/static`: starts with `/`, no trailing `/`, never `/` alone.
    pub prefix: String,
    /// Absolute, symlinks resolved.
    pub root: PathBuf,
}

/// Why a `--static` value was refused; the settings layer adds the flag around it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MountError {
    #[error("{0:?} is not URL=DIR, e.g. /static=/srv/app/static")]
    Shape(String),
    #[error("the URL prefix {0:?} must start with / and hold no %, \\, NUL, . or .. segments")]
    Prefix(String),
    #[error("the URL prefix / would hide the whole application; mount under a path")]
    RootPrefix,
    #[error("{dir:?} (for {prefix}) is not a directory: {reason}")]
    Dir {
        prefix: String,
        dir: String,
        reason: String,
    },
    #[error("the URL prefix {0} is mapped twice")]
    Duplicate(String),
}

impl Mount {
    /// Parses `URL=DIR`. The directory must exist now; a relative one is taken from the current
    /// directory (where ferricorn was started, as `--chdir` is) and stored canonical, so a later
    /// chdir cannot change what it means and the symlink check has a fixed root.
    pub fn parse(spec: &str) -> Result<Mount, MountError> {
        let (url, dir) = spec
            .split_once('=')
            .ok_or_else(|| MountError::Shape(spec.to_owned()))?;
        let (url, dir) = (url.trim(), dir.trim());
        if dir.is_empty() {
            return Err(MountError::Shape(spec.to_owned()));
        }
        let prefix = url.trim_end_matches('/');
        if prefix.is_empty() && url.starts_with('/') {
            return Err(MountError::RootPrefix);
        }
        let clean = url.starts_with('/')
            && !prefix.bytes().any(|b| matches!(b, b'%' | b'\\' | 0))
            && prefix[1..]
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
        if !clean {
            return Err(MountError::Prefix(url.to_owned()));
        }
        let dir_error = |reason: String| MountError::Dir {
            prefix: prefix.to_owned(),
            dir: dir.to_owned(),
            reason,
        };
        let root = std::fs::canonicalize(dir).map_err(|e| dir_error(os_message(&e)))?;
        if !root.is_dir() {
            return Err(dir_error("it is a file".to_owned()));
        }
        Ok(Mount {
            prefix: prefix.to_owned(),
            root,
        })
    }

    /// The canonical `URL=DIR` form settings store and `--print-config` shows.
    pub fn spec(&self) -> String {
        format!("{}={}", self.prefix, self.root.display())
    }
}

/// Parses every `--static` value; a prefix given twice is an error rather than a silent pick.
pub fn parse_mounts(specs: &[String]) -> Result<Vec<Mount>, MountError> {
    let mut mounts: Vec<Mount> = Vec::with_capacity(specs.len());
    for spec in specs {
        let m = Mount::parse(spec)?;
        if mounts.iter().any(|other| other.prefix == m.prefix) {
            return Err(MountError::Duplicate(m.prefix));
        }
        mounts.push(m);
    }
    Ok(mounts)
}

/// The OS's words without Rust's " (os error N)" suffix.
fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

/// What the settings hand to workers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StaticConfig {
    pub mounts: Vec<Mount>,
    /// `Cache-Control: public, max-age=N`; 0 means `no-cache` (revalidate every time).
    pub max_age: u64,
}

/// The mounts of one worker, with their directories held open for `openat2`.
pub struct StaticFiles {
    roots: Vec<Root>,
    /// The whole `Cache-Control: ...\r\n` line.
    cache_control: Vec<u8>,
}

struct Root {
    /// The prefix's segments (`/a/b` → `a`, `b`).
    segments: Vec<Vec<u8>>,
    path: PathBuf,
    /// `O_PATH | O_DIRECTORY`: the anchor of every lookup under this mount.
    dir: File,
}

/// A precompressed sibling's coding, in server preference order on equal q-values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
}

impl Encoding {
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => ".br",
            Encoding::Gzip => ".gz",
        }
    }

    fn token(self) -> &'static str {
        match self {
            Encoding::Brotli => "br",
            Encoding::Gzip => "gzip",
        }
    }
}

/// A response decided here, for the connection to write.
#[derive(Debug)]
pub struct Answer {
    /// `content_length` stays `None`: the connection writes the length it is given.
    pub head: ResponseHead,
    pub body: AnswerBody,
}

#[derive(Debug)]
pub enum AnswerBody {
    /// 304: no body and no length.
    Empty,
    /// A small generated page (404, 405, 416).
    Page(Bytes),
    File(FileBody),
}

impl Answer {
    /// The body's length, for Content-Length (also on HEAD answers).
    pub fn body_len(&self) -> Option<u64> {
        match &self.body {
            AnswerBody::Empty => None,
            AnswerBody::Page(b) => Some(b.len() as u64),
            AnswerBody::File(f) => Some(f.len),
        }
    }
}

impl StaticFiles {
    /// Opens every mount's directory; `None` when there are no mounts.
    pub fn open(cfg: &StaticConfig) -> io::Result<Option<StaticFiles>> {
        if cfg.mounts.is_empty() {
            return Ok(None);
        }
        let mut roots = Vec::with_capacity(cfg.mounts.len());
        for m in &cfg.mounts {
            let dir = open_dir(&m.root)
                .map_err(|e| io::Error::new(e.kind(), format!("--static {}: {e}", m.spec())))?;
            roots.push(Root {
                segments: m.prefix[1..]
                    .split('/')
                    .map(|s| s.as_bytes().to_vec())
                    .collect(),
                path: m.root.clone(),
                dir,
            });
        }
        let cache_control = if cfg.max_age == 0 {
            b"Cache-Control: no-cache\r\n".to_vec()
        } else {
            format!("Cache-Control: public, max-age={}\r\n", cfg.max_age).into_bytes()
        };
        Ok(Some(StaticFiles {
            roots,
            cache_control,
        }))
    }

    /// The answer for a request under a mount; `None` when the path is not under any (the
    /// request goes to the app).
    pub fn answer(&self, head: &RequestHead) -> Option<Answer> {
        let prefixes = self.roots.iter().map(|r| &r.segments[..]);
        let (index, rel) = route(prefixes, &head.path)?;
        let root = &self.roots[index];
        let method = &head.method[..];
        if method != b"GET" && method != b"HEAD" {
            return Some(page(
                405,
                "Method Not Allowed",
                b"Allow: GET, HEAD\r\n".to_vec(),
            ));
        }
        let Some(rel) = rel else {
            return Some(not_found());
        };
        Some(self.answer_file(root, &rel, head))
    }

    fn answer_file(&self, root: &Root, rel: &Path, head: &RequestHead) -> Answer {
        let (file, meta) = match open_regular(root, rel) {
            Ok(Some(found)) => found,
            Ok(None) => return not_found(),
            Err(e) => {
                log::warn!("--static: cannot open {:?}: {e}", root.path.join(rel));
                return page(500, "Internal Server Error", Vec::new());
            }
        };
        let mut chosen = (file, meta, None);
        if let Some(accept) = header_values(head, b"accept-encoding") {
            for enc in acceptable_encodings(&accept) {
                let mut name = rel.as_os_str().to_owned();
                name.push(enc.suffix());
                if let Ok(Some((f, m))) = open_regular(root, Path::new(&name)) {
                    chosen = (f, m, Some(enc));
                    break;
                }
            }
        }
        let (file, meta, encoding) = chosen;
        let len = meta.len();
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let etag = etag(len, modified, encoding);
        let mtime_secs = modified
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs();

        // a 304 carries only what lets a cache update its stored copy (RFC 9110 §15.4.5)
        let mut headers = Vec::with_capacity(256);
        headers.extend_from_slice(b"Last-Modified: ");
        headers.extend_from_slice(
            httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(mtime_secs)).as_bytes(),
        );
        headers.extend_from_slice(b"\r\nETag: ");
        headers.extend_from_slice(etag.as_bytes());
        headers.extend_from_slice(b"\r\n");
        headers.extend_from_slice(&self.cache_control);
        // Which file answers depends on Accept-Encoding, for every path: caches must key on it
        // even for a file that has no compressed sibling today.
        headers.extend_from_slice(b"Vary: Accept-Encoding\r\n");
        let inm = header_values(head, b"if-none-match");
        let ims = header_values(head, b"if-modified-since");
        if not_modified(inm.as_deref(), ims.as_deref(), &etag, mtime_secs) {
            return Answer {
                head: response_head(304, "304 Not Modified", headers),
                body: AnswerBody::Empty,
            };
        }
        headers.extend_from_slice(b"Content-Type: ");
        headers.extend_from_slice(content_type(rel).as_bytes());
        headers.extend_from_slice(b"\r\n");
        if let Some(enc) = encoding {
            headers.extend_from_slice(b"Content-Encoding: ");
            headers.extend_from_slice(enc.token().as_bytes());
            headers.extend_from_slice(b"\r\n");
        }
        headers.extend_from_slice(b"Accept-Ranges: bytes\r\n");
        // RFC 9110 §14.2: Range is defined for GET only; HEAD answers as the full GET would.
        let range = match header_values(head, b"range") {
            Some(r) if !head.is_head() => {
                let if_range = header_values(head, b"if-range");
                if if_range.is_none_or(|v| if_range_allows(&v, &etag, mtime_secs)) {
                    parse_range(&r, len)
                } else {
                    RangeReq::Full
                }
            }
            _ => RangeReq::Full,
        };
        match range {
            RangeReq::Full => Answer {
                head: response_head(200, "200 OK", headers),
                body: AnswerBody::File(FileBody {
                    file,
                    offset: 0,
                    len,
                }),
            },
            RangeReq::Part { start, end } => {
                headers.extend_from_slice(
                    format!("Content-Range: bytes {start}-{end}/{len}\r\n").as_bytes(),
                );
                Answer {
                    head: response_head(206, "206 Partial Content", headers),
                    body: AnswerBody::File(FileBody {
                        file,
                        offset: start,
                        len: end - start + 1,
                    }),
                }
            }
            RangeReq::Unsatisfiable => page(
                416,
                "Range Not Satisfiable",
                format!("Content-Range: bytes */{len}\r\n").into_bytes(),
            ),
        }
    }
}

fn response_head(code: u16, status: &'static str, headers: Vec<u8>) -> ResponseHead {
    ResponseHead {
        code,
        status: Bytes::from_static(status.as_bytes()),
        headers,
        content_length: None,
        close: false,
    }
}

fn not_found() -> Answer {
    page(404, "Not Found", Vec::new())
}

/// A small HTML error page that keeps the connection open (the request itself was fine).
fn page(code: u16, reason: &str, mut headers: Vec<u8>) -> Answer {
    let body = format!(
        "<html><head><title>{reason}</title></head><body><h1>{reason}</h1></body></html>\n"
    );
    let mut all = b"Content-Type: text/html\r\n".to_vec();
    all.append(&mut headers);
    Answer {
        head: ResponseHead {
            code,
            status: format!("{code} {reason}").into(),
            headers: all,
            content_length: None,
            close: false,
        },
        body: AnswerBody::Page(body.into()),
    }
}

/// All values of a request header, joined with `,` as RFC 9110 §5.3 allows for list fields.
fn header_values(head: &RequestHead, name: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (n, v) in &head.headers {
        if n.eq_ignore_ascii_case(name) {
            match &mut out {
                None => out = Some(v.to_vec()),
                Some(acc) => {
                    acc.push(b',');
                    acc.extend_from_slice(v);
                }
            }
        }
    }
    out
}

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
fn open_dir(path: &Path) -> io::Result<File> {
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
fn open_regular(root: &Root, rel: &Path) -> io::Result<Option<(File, std::fs::Metadata)>> {
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
fn open_checked(root: &Root, rel: &Path) -> io::Result<File> {
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

/// By the extension of the name asked for (not of a `.gz` sibling). Text gets `charset=utf-8`,
/// the encoding of nearly every text asset; anything unknown is `application/octet-stream`.
pub fn content_type(rel: &Path) -> String {
    let mime = mime_guess::from_path(rel).first_or_octet_stream();
    let essence = mime.essence_str();
    if mime.type_() == mime_guess::mime::TEXT
        || essence == "application/javascript"
        || essence == "application/json"
    {
        format!("{essence}; charset=utf-8")
    } else {
        essence.to_owned()
    }
}

/// A strong validator from size and modification time (to the nanosecond), plus the coding so
/// two representations of one file never share a tag.
pub fn etag(len: u64, modified: SystemTime, encoding: Option<Encoding>) -> String {
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    match encoding {
        None => format!("\"{len:x}-{nanos:x}\""),
        Some(e) => format!("\"{len:x}-{nanos:x}-{}\"", e.token()),
    }
}

/// The precompressed codings the client accepts, best first: by q-value, then brotli before
/// gzip. `*` stands for any coding not named; `q=0` (or an unparsable q) refuses.
pub fn acceptable_encodings(accept: &[u8]) -> Vec<Encoding> {
    let mut named: [Option<u16>; 2] = [None, None];
    let mut star: Option<u16> = None;
    for item in accept.split(|&b| b == b',') {
        let mut parts = item.split(|&b| b == b';');
        let coding = trim(parts.next().unwrap_or_default());
        let mut q = 1000;
        for param in parts {
            let param = trim(param);
            if let Some(v) = param
                .strip_prefix(b"q=")
                .or_else(|| param.strip_prefix(b"Q="))
            {
                q = parse_qvalue(trim(v)).unwrap_or(0);
            }
        }
        if coding.eq_ignore_ascii_case(b"br") {
            named[0] = Some(q);
        } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
            named[1] = Some(q);
        } else if coding == b"*" {
            star = Some(q);
        }
    }
    let mut out: Vec<(u16, Encoding)> = [Encoding::Brotli, Encoding::Gzip]
        .into_iter()
        .zip(named)
        .filter_map(|(e, q)| q.or(star).filter(|&q| q > 0).map(|q| (q, e)))
        .collect();
    // stable: equal q-values keep brotli first
    out.sort_by_key(|&(q, _)| std::cmp::Reverse(q));
    out.into_iter().map(|(_, e)| e).collect()
}

/// RFC 9110 §12.4.2 qvalue in thousandths: `0`, `0.5`, `1`, `1.000`.
fn parse_qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|&b| b == b'.') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, &v[v.len()..]),
    };
    if int.len() != 1 || frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int[0] {
        b'0' => Some(thousandths),
        b'1' if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &v[start..end]
}

/// RFC 9110 §13.2.2 for GET/HEAD: If-None-Match decides when present (weak comparison; `*`
/// matches any current file), otherwise If-Modified-Since against the file's whole seconds.
pub fn not_modified(
    if_none_match: Option<&[u8]>,
    if_modified_since: Option<&[u8]>,
    etag: &str,
    mtime_secs: u64,
) -> bool {
    if let Some(inm) = if_none_match {
        let ours = etag.as_bytes();
        return inm
            .split(|&b| b == b',')
            .map(trim)
            .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == ours);
    }
    if let Some(ims) = if_modified_since {
        if let Some(since) = parse_date(ims) {
            return mtime_secs <= since;
        }
    }
    false
}

/// If-Range (RFC 9110 §13.1.5): the range applies only if the client's copy is current — an
/// entity-tag compared strongly (a weak tag never matches), or a date equal to Last-Modified.
pub fn if_range_allows(value: &[u8], etag: &str, mtime_secs: u64) -> bool {
    let value = trim(value);
    if value.starts_with(b"W/") {
        return false;
    }
    if value.starts_with(b"\"") {
        return value == etag.as_bytes();
    }
    parse_date(value) == Some(mtime_secs)
}

fn parse_date(v: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(trim(v)).ok()?;
    let t = httpdate::parse_http_date(text).ok()?;
    Some(t.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReq {
    /// No usable range: send the whole representation (also for multiple ranges, which we do
    /// not serve as multipart/byteranges, and for units or syntax we do not know).
    Full,
    /// One range, `end` inclusive and within the representation.
    Part { start: u64, end: u64 },
    /// Syntactically fine but beyond the end: 416.
    Unsatisfiable,
}

/// Parses a single byte range (`a-b`, `a-`, `-n`); see `RangeReq` for everything else.
pub fn parse_range(value: &[u8], len: u64) -> RangeReq {
    let value = trim(value);
    let Some(unit_end) = value.iter().position(|&b| b == b'=') else {
        return RangeReq::Full;
    };
    if !trim(&value[..unit_end]).eq_ignore_ascii_case(b"bytes") {
        return RangeReq::Full;
    }
    let spec = trim(&value[unit_end + 1..]);
    if spec.contains(&b',') {
        return RangeReq::Full;
    }
    let Some(dash) = spec.iter().position(|&b| b == b'-') else {
        return RangeReq::Full;
    };
    let (first, last) = (trim(&spec[..dash]), trim(&spec[dash + 1..]));
    match (digits(first), digits(last)) {
        // suffix: the last n bytes
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || len == 0 {
                RangeReq::Unsatisfiable
            } else {
                RangeReq::Part {
                    start: len - n.min(len),
                    end: len - 1,
                }
            }
        }
        (Some(start), None) if last.is_empty() => open_range(start, u64::MAX, len),
        (Some(start), Some(end)) if start <= end => open_range(start, end, len),
        _ => RangeReq::Full,
    }
}

fn open_range(start: u64, end: u64, len: u64) -> RangeReq {
    if start >= len {
        return RangeReq::Unsatisfiable;
    }
    RangeReq::Part {
        start,
        end: end.min(len - 1),
    }
}

/// `1*DIGIT`, saturating: a number too large for u64 is "beyond any file", not an error.
fn digits(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(v.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

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

    #[test]
    fn mount_specs_are_validated() {
        let dir = TempDir::new("static-mount");
        let d = dir.0.to_str().unwrap();
        let m = Mount::parse(&format!("/static/={d}")).unwrap();
        assert_eq!(m.prefix, "/static");
        assert_eq!(m.root, std::fs::canonicalize(d).unwrap());
        assert_eq!(Mount::parse(&format!("/={d}")), Err(MountError::RootPrefix));
        for bad in ["static", "/a/../b", "/a%2fb", "/a//b", "/a\\b"] {
            assert!(
                matches!(
                    Mount::parse(&format!("{bad}={d}")),
                    Err(MountError::Prefix(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(Mount::parse("/x"), Err(MountError::Shape(_))));
        let missing = Mount::parse("/x=/no/such/dir/ferricorn").unwrap_err();
        assert!(missing.to_string().contains("No such file"), "{missing}");
        let file = dir.0.join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = Mount::parse(&format!("/x={}", file.display())).unwrap_err();
        assert!(err.to_string().contains("is a file"), "{err}");
        let twice = [format!("/a={d}"), format!("/a/={d}")];
        assert_eq!(
            parse_mounts(&twice),
            Err(MountError::Duplicate("/a".into()))
        );
    }

    #[test]
    fn single_ranges_are_parsed_and_clamped() {
        let part = |start, end| RangeReq::Part { start, end };
        assert_eq!(parse_range(b"bytes=0-9", 100), part(0, 9));
        assert_eq!(parse_range(b"bytes=90-", 100), part(90, 99));
        assert_eq!(parse_range(b"bytes=90-500", 100), part(90, 99));
        assert_eq!(parse_range(b"bytes=-10", 100), part(90, 99));
        assert_eq!(parse_range(b"bytes=-500", 100), part(0, 99));
        assert_eq!(parse_range(b"Bytes = 5-5", 100), part(5, 5));
        assert_eq!(
            parse_range(b"bytes=0-99999999999999999999999", 100),
            part(0, 99)
        );
    }

    #[test]
    fn ranges_past_the_end_are_unsatisfiable() {
        assert_eq!(parse_range(b"bytes=100-", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=200-300", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-0", 100), RangeReq::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=0-", 0), RangeReq::Unsatisfiable);
        assert_eq!(parse_range(b"bytes=-5", 0), RangeReq::Unsatisfiable);
        assert_eq!(
            parse_range(b"bytes=99999999999999999999999-", 100),
            RangeReq::Unsatisfiable
        );
    }

    #[test]
    fn other_ranges_are_ignored_for_the_whole_file() {
        for r in [
            &b"bytes=0-1,5-6"[..],
            b"items=0-1",
            b"bytes=5-1",
            b"bytes=a-b",
            b"bytes=-",
            b"bytes 0-1",
            b"bytes=--1",
        ] {
            assert_eq!(
                parse_range(r, 100),
                RangeReq::Full,
                "{:?}",
                String::from_utf8_lossy(r)
            );
        }
    }

    #[test]
    fn encodings_follow_q_values_then_prefer_brotli() {
        use Encoding::*;
        assert_eq!(acceptable_encodings(b"gzip, deflate, br"), [Brotli, Gzip]);
        assert_eq!(acceptable_encodings(b"gzip"), [Gzip]);
        assert_eq!(acceptable_encodings(b"br;q=0.5, gzip"), [Gzip, Brotli]);
        assert_eq!(acceptable_encodings(b"br;q=0, gzip;q=0.1"), [Gzip]);
        assert_eq!(acceptable_encodings(b"*"), [Brotli, Gzip]);
        assert_eq!(acceptable_encodings(b"*;q=0.5, gzip;q=0"), [Brotli]);
        assert_eq!(acceptable_encodings(b"identity"), []);
        assert_eq!(acceptable_encodings(b"br;q=nonsense"), []);
        assert_eq!(acceptable_encodings(b"GZIP;Q=1.000"), [Gzip]);
        assert_eq!(acceptable_encodings(b""), []);
    }

    #[test]
    fn if_none_match_decides_before_the_date() {
        let tag = "\"a-1\"";
        assert!(not_modified(Some(b"\"a-1\""), None, tag, 10));
        assert!(not_modified(Some(b"\"x\", W/\"a-1\""), None, tag, 10));
        assert!(not_modified(Some(b"*"), None, tag, 10));
        assert!(!not_modified(Some(b"\"other\""), None, tag, 10));
        // a mismatching tag wins over a date that would have matched
        let later = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(20));
        assert!(!not_modified(
            Some(b"\"other\""),
            Some(later.as_bytes()),
            tag,
            10
        ));
    }

    #[test]
    fn if_modified_since_compares_whole_seconds() {
        let at = |s: u64| httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(s));
        assert!(not_modified(None, Some(at(10).as_bytes()), "\"t\"", 10));
        assert!(not_modified(None, Some(at(11).as_bytes()), "\"t\"", 10));
        assert!(!not_modified(None, Some(at(9).as_bytes()), "\"t\"", 10));
        assert!(!not_modified(None, Some(b"yesterday"), "\"t\"", 10));
        assert!(!not_modified(None, None, "\"t\"", 10));
    }

    #[test]
    fn if_range_needs_a_strong_tag_or_the_exact_date() {
        let date = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(10));
        assert!(if_range_allows(b"\"t\"", "\"t\"", 10));
        assert!(!if_range_allows(b"W/\"t\"", "\"t\"", 10));
        assert!(!if_range_allows(b"\"u\"", "\"t\"", 10));
        assert!(if_range_allows(date.as_bytes(), "\"t\"", 10));
        assert!(!if_range_allows(date.as_bytes(), "\"t\"", 11));
    }

    #[test]
    fn content_types_come_from_the_extension() {
        assert_eq!(content_type(Path::new("a.css")), "text/css; charset=utf-8");
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("a.JS")),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }

    #[test]
    fn etags_differ_by_size_time_and_coding() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_500_000_001);
        let plain = etag(10, t, None);
        assert!(plain.starts_with('"') && plain.ends_with('"'));
        assert_ne!(plain, etag(11, t, None));
        assert_ne!(plain, etag(10, t + Duration::from_nanos(1), None));
        assert_ne!(plain, etag(10, t, Some(Encoding::Gzip)));
    }

    fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n");
        for (n, v) in headers {
            raw.push_str(&format!("{n}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        let mut buf = bytes::BytesMut::from(raw.as_bytes());
        super::super::request::parse_head(&mut buf, &Default::default())
            .unwrap()
            .unwrap()
    }

    fn files() -> (TempDir, StaticFiles) {
        let dir = TempDir::new("static-files");
        let root = dir.0.join("public");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("a.txt"), b"0123456789").unwrap();
        std::fs::write(root.join("a.txt.gz"), b"gz-bytes").unwrap();
        std::fs::write(dir.0.join("secret.txt"), b"secret").unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("out")).unwrap();
        std::os::unix::fs::symlink("a.txt", root.join("in")).unwrap();
        let cfg = StaticConfig {
            mounts: vec![Mount::parse(&format!("/s={}", root.display())).unwrap()],
            max_age: 60,
        };
        let files = StaticFiles::open(&cfg).unwrap().unwrap();
        (dir, files)
    }

    fn text(head: &ResponseHead) -> String {
        String::from_utf8_lossy(&head.headers).into_owned()
    }

    #[test]
    fn a_file_answers_200_with_its_validators() {
        let (_dir, files) = files();
        let a = files.answer(&request("GET", "/s/a.txt", &[])).unwrap();
        assert_eq!(a.head.code, 200);
        assert_eq!(a.body_len(), Some(10));
        let h = text(&a.head);
        assert!(
            h.contains("Content-Type: text/plain; charset=utf-8\r\n"),
            "{h}"
        );
        assert!(h.contains("Cache-Control: public, max-age=60\r\n"), "{h}");
        assert!(h.contains("ETag: \"a-"), "{h}");
        assert!(h.contains("Last-Modified: "), "{h}");
        assert!(h.contains("Accept-Ranges: bytes\r\n"), "{h}");
        assert!(!h.contains("Content-Encoding"), "{h}");
        assert!(files.answer(&request("GET", "/app.py", &[])).is_none());
    }

    #[test]
    fn a_symlink_out_of_the_root_is_not_found_but_one_inside_works() {
        let (_dir, files) = files();
        assert_eq!(
            files
                .answer(&request("GET", "/s/out", &[]))
                .unwrap()
                .head
                .code,
            404
        );
        assert_eq!(
            files
                .answer(&request("GET", "/s/in", &[]))
                .unwrap()
                .head
                .code,
            200
        );
        assert_eq!(
            files
                .answer(&request("GET", "/s/sub", &[]))
                .unwrap()
                .head
                .code,
            404
        );
        assert_eq!(
            files
                .answer(&request("GET", "/s/nope", &[]))
                .unwrap()
                .head
                .code,
            404
        );
    }

    #[test]
    fn the_realpath_fallback_also_refuses_symlinks_out() {
        let (_dir, files) = files();
        let root = &files.roots[0];
        let err = open_checked(root, Path::new("out")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EXDEV));
        assert!(open_checked(root, Path::new("in")).is_ok());
        assert!(open_checked(root, Path::new("nope")).is_err());
    }

    #[test]
    fn other_methods_get_405_with_allow() {
        let (_dir, files) = files();
        let a = files.answer(&request("POST", "/s/a.txt", &[])).unwrap();
        assert_eq!(a.head.code, 405);
        assert!(text(&a.head).contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn the_gzip_sibling_answers_with_its_coding() {
        let (_dir, files) = files();
        let a = files
            .answer(&request(
                "GET",
                "/s/a.txt",
                &[("Accept-Encoding", "br, gzip")],
            ))
            .unwrap();
        assert_eq!(a.body_len(), Some(8));
        let h = text(&a.head);
        assert!(h.contains("Content-Encoding: gzip\r\n"), "{h}");
        assert!(h.contains("Content-Type: text/plain"), "{h}");
        assert!(h.contains("Vary: Accept-Encoding\r\n"), "{h}");
    }

    #[test]
    fn conditional_and_range_requests() {
        let (_dir, files) = files();
        let first = files.answer(&request("GET", "/s/a.txt", &[])).unwrap();
        let h = text(&first.head);
        let tag = h
            .split("ETag: ")
            .nth(1)
            .unwrap()
            .split("\r\n")
            .next()
            .unwrap()
            .to_owned();
        let again = files
            .answer(&request("GET", "/s/a.txt", &[("If-None-Match", &tag)]))
            .unwrap();
        assert_eq!(again.head.code, 304);
        assert_eq!(again.body_len(), None);
        let part = files
            .answer(&request("GET", "/s/a.txt", &[("Range", "bytes=2-4")]))
            .unwrap();
        assert_eq!(part.head.code, 206);
        assert!(text(&part.head).contains("Content-Range: bytes 2-4/10\r\n"));
        let AnswerBody::File(f) = &part.body else {
            panic!("file body")
        };
        assert_eq!((f.offset, f.len), (2, 3));
        let stale = files
            .answer(&request(
                "GET",
                "/s/a.txt",
                &[("Range", "bytes=2-4"), ("If-Range", "\"old\"")],
            ))
            .unwrap();
        assert_eq!(stale.head.code, 200);
        let past = files
            .answer(&request("GET", "/s/a.txt", &[("Range", "bytes=10-")]))
            .unwrap();
        assert_eq!(past.head.code, 416);
        assert!(text(&past.head).contains("Content-Range: bytes */10\r\n"));
        let head = files
            .answer(&request("HEAD", "/s/a.txt", &[("Range", "bytes=2-4")]))
            .unwrap();
        assert_eq!((head.head.code, head.body_len()), (200, Some(10)));
    }
}
