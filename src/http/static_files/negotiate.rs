//! Content negotiation and validators, as pure functions of header bytes: `Range`,
//! `If-None-Match` / `If-Modified-Since` / `If-Range`, `Accept-Encoding`, the ETag and the
//! Content-Type.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Encoding;

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
}
