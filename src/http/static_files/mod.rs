//! Static files answered by the I/O thread, never by Python (`--static /url=/dir`).
//!
//! This module owns every decision about a request under a mount: which file (and which
//! precompressed sibling), which status (200, 206, 304, 404, 405, 416) and which headers. It
//! opens and stats files but never touches a socket: `http::conn` writes the `Answer` it returns
//! and sends the file body with sendfile. Path resolution and the contained open live in `path`;
//! `Range`, conditional requests and `Accept-Encoding` in `negotiate`, as pure functions tested
//! from bytes.
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

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;

use super::request::RequestHead;
use crate::exchange::{FileBody, ResponseHead};

pub(crate) mod negotiate;
pub(crate) mod path;

use negotiate::{
    acceptable_encodings, content_type, etag, if_range_allows, not_modified, parse_range, RangeReq,
};
use path::{open_dir, open_regular, route};

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
    #[error(
        "the URL prefix {0:?} must start with / and hold no %, \\, whitespace, control \
         characters, . or .. segments"
    )]
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
            // whitespace would not survive the trim of a stored `URL=DIR` spec read back, and a
            // control character only ever matches a decoded `%0a` (found by fuzz/, static_path)
            && !prefix
                .chars()
                .any(|c| matches!(c, '%' | '\\') || c.is_control() || c.is_whitespace())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TempDir;

    #[test]
    fn mount_specs_are_validated() {
        let dir = TempDir::new("static-mount");
        let d = dir.0.to_str().unwrap();
        let m = Mount::parse(&format!("/static/={d}")).unwrap();
        assert_eq!(m.prefix, "/static");
        assert_eq!(m.root, std::fs::canonicalize(d).unwrap());
        assert_eq!(Mount::parse(&format!("/={d}")), Err(MountError::RootPrefix));
        for bad in [
            "static", "/a/../b", "/a%2fb", "/a//b", "/a\\b", "/a\n/", "/a b", "/a\0",
        ] {
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
        let err = path::open_checked(root, Path::new("out")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EXDEV));
        assert!(path::open_checked(root, Path::new("in")).is_ok());
        assert!(path::open_checked(root, Path::new("nope")).is_err());
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
