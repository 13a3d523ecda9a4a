//! Parses and validates one HTTP/1.x request head from the connection's read buffer.
//!
//! `httparse` does the tokenising; this module adds what a server must decide on top of it and
//! what hyper would have decided differently (see docs/internals.md): gunicorn's separate limits on
//! the request line and on header fields, 414/431/501/505 instead of a blanket 400, and refusing
//! every ambiguous framing (Content-Length with Transfer-Encoding, duplicate lengths, codings we
//! cannot decode) instead of guessing. It never touches a socket, so tests feed it bytes.

use bytes::{Bytes, BytesMut};

use super::error::RequestError;
use super::target::{is_host_port, split as split_target, Port};

/// Gunicorn's request limits (`--limit-request-*`); 0 means unlimited where gunicorn allows it.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_line: usize,
    pub fields: usize,
    pub field_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_line: 4094,
            fields: 100,
            field_size: 8190,
        }
    }
}

impl Limits {
    /// Largest head we buffer before refusing with 431: every allowed field at its largest.
    fn max_head(&self) -> usize {
        let line = if self.request_line == 0 {
            65536
        } else {
            self.request_line
        };
        let field = if self.field_size == 0 {
            65536
        } else {
            self.field_size
        };
        let fields = if self.fields == 0 { 32768 } else { self.fields };
        (line + 2)
            .saturating_add(fields.saturating_mul(field + 2))
            .saturating_add(2)
            .min(4 * 1024 * 1024)
    }

    fn max_fields(&self) -> usize {
        if self.fields == 0 {
            32768
        } else {
            self.fields
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
    /// A stream of an HTTP/2 connection (`http::h2`).
    Http2,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            // gunicorn's WSGI environ and access log say HTTP/2.0 for its (2, 0) version
            Version::Http2 => "HTTP/2.0",
        }
    }
}

/// How the request body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body at all.
    Empty,
    /// `Content-Length: n` with n > 0.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A validated request head. Every byte field is a slice of one shared buffer: no copies.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub method: Bytes,
    /// The request-target exactly as sent (gunicorn's RAW_URI).
    pub target: Bytes,
    /// Path part of the target, still percent-encoded.
    pub path: Bytes,
    pub query: Bytes,
    pub version: Version,
    /// Header fields in arrival order, names as sent; names containing `_` are already dropped.
    pub headers: Vec<(Bytes, Bytes)>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
}

impl RequestHead {
    pub fn is_head(&self) -> bool {
        &self.method[..] == b"HEAD"
    }
}

/// Tries to take one complete request head off the front of `buf`.
///
/// `Ok(None)` means "need more bytes"; on `Ok(Some)` the head's bytes have been consumed and the
/// body (if any) starts at the front of `buf`.
pub fn parse_head(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Option<RequestHead>, RequestError> {
    // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
    // One, not any number: a stream of blank lines is not a request (gunicorn agrees).
    if buf.starts_with(b"\r\n") {
        if buf.starts_with(b"\r\n\r\n") {
            return Err(RequestError::BadRequestLine);
        }
        let _ = buf.split_to(2);
    }
    if buf.is_empty() {
        return Ok(None);
    }
    // The same line must get the same verdict however the bytes were split across reads
    // (found by fuzz/, request_head): only a CR that ends the line is not part of it, and a CR
    // at the end of what arrived so far may be the first half of that CRLF.
    let line_len = match memchr(b'\n', buf) {
        Some(i) => i - usize::from(i > 0 && buf[i - 1] == b'\r'),
        None => buf.len() - usize::from(buf.ends_with(b"\r")),
    };
    if limits.request_line > 0 && line_len > limits.request_line {
        return Err(RequestError::RequestLineTooLong {
            limit: limits.request_line,
        });
    }
    let Some(head_len) = find_head_end(buf) else {
        if buf.len() > limits.max_head() {
            return Err(RequestError::HeadTooLarge {
                limit: limits.max_head(),
            });
        }
        return Ok(None);
    };
    check_line_endings(&buf[..head_len])?;
    let head = buf.split_to(head_len).freeze();
    parse_complete_head(head, limits).map(Some)
}

/// Index just past the blank line that ends the head, if the buffer holds one.
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = memchr(b'\n', &buf[from..]) {
        let nl = from + i;
        if buf[nl + 1..].starts_with(b"\r\n") {
            return Some(nl + 3);
        }
        // a bare LF blank line is malformed; let check_line_endings reject it
        if buf[nl + 1..].starts_with(b"\n") {
            return Some(nl + 2);
        }
        from = nl + 1;
    }
    None
}

/// httparse tolerates bare LF line ends; RFC 9112 lets a server refuse them and request
/// smuggling through proxies that disagree on them is the reason we do. Bare CR is never valid.
fn check_line_endings(head: &[u8]) -> Result<(), RequestError> {
    for (i, &b) in head.iter().enumerate() {
        match b {
            b'\n' if i == 0 || head[i - 1] != b'\r' => {
                return Err(RequestError::BadHeader("bare LF line ending"))
            }
            b'\r' if head.get(i + 1) != Some(&b'\n') => {
                return Err(RequestError::BadHeader("bare CR"))
            }
            0 => return Err(RequestError::BadHeader("NUL byte")),
            _ => {}
        }
    }
    Ok(())
}

fn parse_complete_head(head: Bytes, limits: &Limits) -> Result<RequestHead, RequestError> {
    const STACK_HEADERS: usize = 128;
    let want = limits.max_fields() + 1;
    let mut stack = [httparse::EMPTY_HEADER; STACK_HEADERS];
    let mut heap;
    let slots: &mut [httparse::Header<'_>] = if want <= STACK_HEADERS {
        &mut stack[..want]
    } else {
        heap = vec![httparse::EMPTY_HEADER; want];
        &mut heap
    };
    let mut req = httparse::Request::new(slots);
    match req.parse(&head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(RequestError::BadRequestLine),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(RequestError::TooManyHeaders {
                limit: limits.max_fields(),
            })
        }
        Err(httparse::Error::Version) => return Err(classify_version(&head)),
        Err(httparse::Error::Token) if req.method.is_none() => return Err(RequestError::BadMethod),
        Err(httparse::Error::Token) | Err(httparse::Error::Status) => {
            return Err(RequestError::BadRequestLine)
        }
        Err(httparse::Error::HeaderName) => return Err(RequestError::BadHeader("invalid name")),
        Err(httparse::Error::HeaderValue) => return Err(RequestError::BadHeader("invalid value")),
        Err(httparse::Error::NewLine) => return Err(RequestError::BadHeader("invalid line end")),
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(RequestError::BadRequestLine);
    };
    if req.headers.len() > limits.max_fields() {
        return Err(RequestError::TooManyHeaders {
            limit: limits.max_fields(),
        });
    }
    check_method(method.as_bytes())?;
    // RFC 9112 §3.2: the target is visible ASCII; anything else was never percent-encoded
    if !target.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(RequestError::BadTarget);
    }
    let version = if minor == 1 {
        Version::Http11
    } else {
        Version::Http10
    };
    let method = head.slice_ref(method.as_bytes());
    let target = head.slice_ref(target.as_bytes());
    let form = split_target(&method, &target)?;
    let (path, query) = (form.path, form.query);

    let mut out = RequestHead {
        method,
        target,
        path,
        query,
        version,
        headers: Vec::with_capacity(req.headers.len()),
        framing: Framing::Empty,
        keep_alive: version == Version::Http11,
        expect_continue: false,
    };
    let mut hosts = 0usize;
    let mut host_at: Option<usize> = None;
    let mut content_types = 0usize;
    let mut content_length: Option<u64> = None;
    // (fields seen, the first one's value): judged after the loop, so that which error a
    // request earns never depends on the order of its fields
    let mut transfer_encoding: (usize, &[u8]) = (0, b"");
    let mut connection_close = false;
    let mut connection_keep_alive = false;
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if limits.field_size > 0 && field_line_len(&head, name, h.value) > limits.field_size {
            return Err(RequestError::HeaderTooLarge {
                limit: limits.field_size,
            });
        }
        let value = trim_ows(h.value);
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
            // RFC 9112 §3.2: a Host with an invalid value is refused like a missing one
            if !is_host_port(value, Port::Optional) {
                return Err(RequestError::BadHeader("invalid Host"));
            }
            host_at = Some(out.headers.len());
        } else if name.eq_ignore_ascii_case(b"content-type") {
            content_types += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            if content_length.is_some() {
                return Err(RequestError::BadFraming("more than one Content-Length"));
            }
            content_length = Some(parse_content_length(value)?);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            if transfer_encoding.0 == 0 {
                transfer_encoding.1 = value;
            }
            transfer_encoding.0 += 1;
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',').map(trim_ows) {
                connection_close |= token.eq_ignore_ascii_case(b"close");
                connection_keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            // RFC 9110 §10.1.1: 100-continue is the only expectation; gunicorn answers 417 to
            // any other, and so do we rather than act as if it had been met
            if !value.eq_ignore_ascii_case(b"100-continue") {
                return Err(RequestError::ExpectationFailed);
            }
            out.expect_continue = true;
        }
        // gunicorn's default header_map ("drop"): a name with '_' could collide with the '-'
        // spelling once both become HTTP_* keys, letting a client forge a proxy's header.
        if name.contains(&b'_') {
            continue;
        }
        out.headers
            .push((head.slice_ref(name), head.slice_ref(value)));
    }
    // RFC 9110 §5.3: fields with a single member cannot be merged, so a repeat is ambiguous
    if hosts > 1 {
        return Err(RequestError::BadHeader("more than one Host"));
    }
    if content_types > 1 {
        return Err(RequestError::BadHeader("more than one Content-Type"));
    }
    if hosts == 0 && version == Version::Http11 {
        return Err(RequestError::BadHeader("missing Host on HTTP/1.1"));
    }
    // RFC 9112 §3.2.2: with an absolute-form target the Host field is ignored and the target's
    // authority used instead, so the app (HTTP_HOST, the scope's host header) sees that one and
    // a proxy that routed on the target cannot disagree with the app about the host.
    // CONNECT's authority-form names where to connect, not which host is addressed.
    if let (Some(authority), false) = (form.authority, &out.method[..] == b"CONNECT") {
        match host_at {
            Some(i) => out.headers[i].1 = authority,
            None => out.headers.push((Bytes::from_static(b"Host"), authority)),
        }
    }
    out.framing = match (content_length, transfer_encoding) {
        (_, (0, _)) => match content_length {
            Some(0) | None => Framing::Empty,
            Some(n) => Framing::Length(n),
        },
        // RFC 9112 §6.1: faulty framing on HTTP/1.0, and a request-smuggling vector with CL
        _ if version == Version::Http10 => {
            return Err(RequestError::BadFraming("Transfer-Encoding on HTTP/1.0"))
        }
        (Some(_), _) => {
            return Err(RequestError::BadFraming(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (None, (1, codings)) => {
            check_transfer_encoding(codings)?;
            Framing::Chunked
        }
        (None, _) => return Err(RequestError::BadFraming("more than one Transfer-Encoding")),
    };
    out.keep_alive = match version {
        Version::Http11 | Version::Http2 => !connection_close,
        Version::Http10 => connection_keep_alive && !connection_close,
    };
    // RFC 9110 §9.3.6: after a 2xx to CONNECT the client treats the connection as a tunnel and
    // ignores the response's framing; no further request on it can be read reliably
    out.keep_alive &= &out.method[..] != b"CONNECT";
    out.expect_continue &= version == Version::Http11;
    Ok(out)
}

/// Length of a header field's whole line including its CRLF, which is what gunicorn's
/// `limit_request_field_size` counts (httparse hands us the name and the trimmed value).
fn field_line_len(head: &[u8], name: &[u8], value: &[u8]) -> usize {
    let base = head.as_ptr() as usize;
    let start = (name.as_ptr() as usize).saturating_sub(base);
    let value_end = (value.as_ptr() as usize + value.len()).saturating_sub(base);
    let line_end =
        memchr(b'\r', &head[value_end.min(head.len())..]).map_or(head.len(), |i| value_end + i);
    line_end.saturating_sub(start) + 2
}

/// httparse reports any version it does not speak; only a well-formed `HTTP/d.d` earns 505.
fn classify_version(head: &[u8]) -> RequestError {
    let line_end = memchr(b'\r', head).unwrap_or(head.len());
    let line = &head[..line_end];
    if line.iter().filter(|&&b| b == b' ').count() != 2 {
        return RequestError::BadRequestLine;
    }
    let version = line.rsplit(|&b| b == b' ').next().unwrap_or_default();
    match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            RequestError::UnsupportedVersion
        }
        _ => RequestError::BadRequestLine,
    }
}

/// Gunicorn's default method rule (its `permit_unconventional_http_method` off): an RFC 9110
/// token of 3 to 20 characters with no lower case and no `#`, so `get` or `GE#T` never reach
/// the app while every registered method (`M-SEARCH`, `BASELINE-CONTROL`) does.
pub(crate) fn check_method(method: &[u8]) -> Result<(), RequestError> {
    let ok_len = (3..=20).contains(&method.len());
    let ok_chars = method
        .iter()
        .all(|&b| is_token(&[b]) && !b.is_ascii_lowercase() && b != b'#');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(RequestError::BadMethod)
    }
}

/// `1*DIGIT` only: no sign, no spaces inside, no list (RFC 9110 §8.6), and it must fit.
/// Leading zeros are digits like any other (`000…05` is 5), however many there are.
pub(crate) fn parse_content_length(value: &[u8]) -> Result<u64, RequestError> {
    let significant = value.iter().position(|&b| b != b'0').unwrap_or(value.len());
    if value.is_empty() || value.len() - significant > 20 || !value.iter().all(u8::is_ascii_digit) {
        return Err(RequestError::BadFraming("invalid Content-Length"));
    }
    value
        .iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(RequestError::BadFraming("invalid Content-Length"))
}

/// Only `chunked` is decoded here, and it must be the last and only coding. RFC 9112 §6.3:
/// `chunked` anywhere but last leaves the length unknown (400, even if the other coding is one
/// we do not know); without `chunked`, a coding we cannot undo earns 501 (§6.1).
fn check_transfer_encoding(value: &[u8]) -> Result<(), RequestError> {
    let codings: Vec<&[u8]> = value.split(|&b| b == b',').map(trim_ows).collect();
    if codings.iter().any(|c| c.is_empty()) {
        return Err(RequestError::BadFraming("empty transfer coding"));
    }
    let is_chunked = |c: &[u8]| c.eq_ignore_ascii_case(b"chunked");
    let chunked = codings.iter().filter(|c| is_chunked(c)).count();
    if chunked > 1 {
        return Err(RequestError::BadFraming("chunked applied more than once"));
    }
    if chunked == 1 && !codings.last().is_some_and(|c| is_chunked(c)) {
        return Err(RequestError::BadFraming("chunked is not the final coding"));
    }
    if let Some(unknown) = codings.iter().find(|c| !is_chunked(c)) {
        if is_token(unknown) {
            return Err(RequestError::UnsupportedTransferCoding(
                String::from_utf8_lossy(unknown).into_owned(),
            ));
        }
        return Err(RequestError::BadFraming("invalid transfer coding"));
    }
    Ok(())
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

fn trim_ows(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |i| i + 1);
    &v[start..end]
}

pub(crate) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Option<RequestHead>, RequestError> {
        let mut buf = BytesMut::from(raw.as_bytes());
        parse_head(&mut buf, &Limits::default())
    }

    fn status(raw: &str) -> u16 {
        parse(raw).expect_err("should be refused").status().0
    }

    #[test]
    fn parses_a_simple_get_and_leaves_the_body() {
        let mut buf =
            BytesMut::from(&b"GET /a%20b?x=1#frag HTTP/1.1\r\nHost: h\r\nX-A: 1\r\n\r\nrest"[..]);
        let head = parse_head(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(&head.method[..], b"GET");
        assert_eq!(&head.path[..], b"/a%20b");
        assert_eq!(&head.query[..], b"x=1");
        assert_eq!(&head.target[..], b"/a%20b?x=1#frag");
        assert_eq!(head.version, Version::Http11);
        assert!(head.keep_alive);
        assert_eq!(head.framing, Framing::Empty);
        assert_eq!(head.headers.len(), 2);
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert!(parse("GET / HTTP/1.1\r\nHost: x\r\n").unwrap().is_none());
        assert!(parse("GE").unwrap().is_none());
    }

    #[test]
    fn absolute_form_keeps_only_the_path() {
        let head = parse("GET http://example.com/p?q HTTP/1.1\r\nHost: e\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(&head.path[..], b"/p");
        assert_eq!(&head.query[..], b"q");
    }

    #[test]
    fn framing_and_keep_alive_are_decided() {
        let h = parse("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        let h = parse("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = parse("GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let h = parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
        let h = parse("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
    }

    #[test]
    fn underscore_headers_are_dropped() {
        let h = parse("GET / HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.headers.len(), 1);
    }

    #[test]
    fn malformed_requests_get_their_status() {
        assert_eq!(status("GET  / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("get / HTTP/1.1\r\nHost: x\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost : x\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n"),
            400
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n"),
            501
        );
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
            400
        );
        assert_eq!(status("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505);
        assert_eq!(status("GET / HTPT/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\nHost: a\n\n"), 400);
        assert_eq!(status("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
        assert_eq!(status("GET x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("GET /\u{e0} HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(status("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: a\r\nContent-Type: a\r\nContent-Type: b\r\n\r\n"),
            400
        );
    }

    #[test]
    fn methods_follow_gunicorns_default_rule() {
        for ok in [
            "GET",
            "M-SEARCH",
            "BASELINE-CONTROL",
            "M3THOD",
            "ABCDEFGHIJKLMNOPQRST",
        ] {
            assert!(check_method(ok.as_bytes()).is_ok(), "{ok}");
        }
        for bad in [
            "get",
            "Get",
            "GE#T",
            "GO",
            "ABCDEFGHIJKLMNOPQRSTU",
            "G(T",
            "G\u{e9}T",
        ] {
            assert!(check_method(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_request_line_limit_does_not_depend_on_how_the_line_arrives() {
        let limits = Limits {
            request_line: 14,
            ..Limits::default()
        };
        // exactly at the limit, its CRLF split across two reads
        let mut buf = BytesMut::from(&b"GET / HTTP/1.1\r"[..]);
        assert!(parse_head(&mut buf, &limits).unwrap().is_none());
        buf.extend_from_slice(b"\nHost: a\r\n\r\n");
        assert!(parse_head(&mut buf, &limits).unwrap().is_some());
        // one byte over, ended by a bare LF: 414 whether or not the LF came with it
        for raw in [&b"GET /x HTTP/1.1"[..], b"GET /x HTTP/1.1\n"] {
            let err = parse_head(&mut BytesMut::from(raw), &limits).unwrap_err();
            assert_eq!(err.status().0, 414, "{raw:?}");
        }
    }

    #[test]
    fn expectations_other_than_100_continue_get_417() {
        let h = parse("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.expect_continue);
        assert_eq!(
            status("POST / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n"),
            417
        );
        assert_eq!(status("GET / HTTP/1.0\r\nExpect: x\r\n\r\n"), 417);
    }

    #[test]
    fn leading_zeros_never_make_a_length_too_long() {
        assert_eq!(parse_content_length(b"000000000000000000000000005"), Ok(5));
        assert_eq!(parse_content_length(b"18446744073709551615"), Ok(u64::MAX));
        assert!(parse_content_length(b"18446744073709551616").is_err());
        assert!(parse_content_length(b"0018446744073709551616").is_err());
    }

    #[test]
    fn chunked_must_be_the_final_coding_else_400() {
        for te in [
            "chunked, gzip",
            "chunked, foo",
            "chunked, identity",
            "chunked,chunked",
        ] {
            let raw = format!("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(status(&raw), 400, "{te}");
        }
        let raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n";
        assert_eq!(status(raw), 501);
    }

    #[test]
    fn absolute_form_authority_replaces_the_host_field() {
        let h = parse("GET http://a.example/p HTTP/1.1\r\nHost: b.example\r\nX: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            h.headers[0],
            (Bytes::from("Host"), Bytes::from("a.example"))
        );
        assert_eq!(h.headers.len(), 2);
        let h = parse("GET http://a.example:81/p HTTP/1.0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            h.headers,
            vec![(Bytes::from("Host"), Bytes::from("a.example:81"))]
        );
        // still required on HTTP/1.1, and still checked
        assert_eq!(status("GET http://a.example/ HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(
            status("GET http://a.example/ HTTP/1.1\r\nHost: a b\r\n\r\n"),
            400
        );
    }

    #[test]
    fn invalid_host_values_get_400_and_an_empty_one_is_allowed() {
        for host in ["a b", "a,b", "a/b", "u@a", "a:8x", "[::1"] {
            let raw = format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
            assert_eq!(status(&raw), 400, "{host}");
        }
        assert!(parse("GET / HTTP/1.1\r\nHost:\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn connect_closes_the_connection_after_its_response() {
        let h = parse("CONNECT e.com:443 HTTP/1.1\r\nHost: e.com:443\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive);
        assert_eq!(h.headers[0].1, Bytes::from("e.com:443"));
        assert_eq!(status("CONNECT / HTTP/1.1\r\nHost: e.com\r\n\r\n"), 400);
    }

    #[test]
    fn limits_answer_414_and_431() {
        let long = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(5000));
        assert_eq!(status(&long), 414);
        // refused before the head is even complete
        let partial = format!("GET /{}", "a".repeat(5000));
        assert_eq!(status(&partial), 414);
        let many: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(
            status(&format!("GET / HTTP/1.1\r\nHost: a\r\n{many}\r\n")),
            431
        );
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\n\r\n",
            "v".repeat(9000)
        );
        assert_eq!(status(&big), 431);
    }
}
