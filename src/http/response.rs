//! Serialises response heads and body framing onto the connection's write buffer.
//!
//! The app side hands over status and header lines already validated; this module adds what the
//! server owns: the status line's version, `Server`, `Date`, the framing header it chose and
//! `Connection`. The Date string is cached per second since every response carries one.

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::request::Version;
use crate::exchange::ResponseHead;

/// How the body of a response is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// HEAD, 1xx, 204, 304: no body bytes may follow.
    None,
    Length(u64),
    Chunked,
    /// HTTP/1.0 without a length: the end of the body is the end of the connection.
    UntilClose,
}

/// Picks the framing for a response: the app's Content-Length when it gave one, otherwise
/// `known_len` (we hold the whole body), otherwise chunked on 1.1 and close-delimited on 1.0.
pub fn choose_framing(
    head: &ResponseHead,
    version: Version,
    is_head_request: bool,
    known_len: Option<u64>,
) -> BodyFraming {
    let bodiless =
        is_head_request || (100..200).contains(&head.code) || head.code == 204 || head.code == 304;
    if bodiless {
        return BodyFraming::None;
    }
    match (head.content_length.or(known_len), version) {
        (Some(n), _) => BodyFraming::Length(n),
        (None, Version::Http11 | Version::Http2) => BodyFraming::Chunked,
        (None, Version::Http10) => BodyFraming::UntilClose,
    }
}

/// Appends the complete head. `length_header` is written only when the app gave none.
pub fn encode_head(
    out: &mut Vec<u8>,
    version: Version,
    head: &ResponseHead,
    framing: BodyFraming,
    known_len: Option<u64>,
    keep_alive: bool,
) {
    out.extend_from_slice(version.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(&head.status);
    out.extend_from_slice(b"\r\nServer: ferricorn\r\nDate: ");
    with_date(|d| out.extend_from_slice(d));
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&head.headers);
    match framing {
        BodyFraming::Chunked => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        BodyFraming::Length(n) if head.content_length.is_none() => write_length(out, n),
        // a HEAD answer carries the length the GET would have had, when we know it
        BodyFraming::None
            if head.content_length.is_none() && head.code != 204 && head.code != 304 =>
        {
            if let Some(n) = known_len {
                write_length(out, n);
            }
        }
        _ => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if version == Version::Http10 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn write_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"Content-Length: ");
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// `size\r\n` before a chunk of `len` bytes.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    use std::io::Write;
    let _ = write!(out, "{len:X}\r\n");
}

/// A complete response for a request refused before it reached the app; always closes.
pub fn error_response(out: &mut Vec<u8>, code: u16, reason: &str, detail: &str) {
    error_response_with(out, code, reason, detail, b"");
}

/// `error_response` with extra `name: value\r\n` header lines.
pub fn error_response_with(
    out: &mut Vec<u8>,
    code: u16,
    reason: &str,
    detail: &str,
    extra_headers: &[u8],
) {
    let body = format!("<html><head><title>{reason}</title></head><body><h1>{reason}</h1><p>{detail}</p></body></html>\n");
    let mut headers = b"Content-Type: text/html\r\n".to_vec();
    headers.extend_from_slice(extra_headers);
    let head = ResponseHead {
        code,
        status: format!("{code} {reason}").into(),
        headers,
        content_length: None,
        close: true,
    };
    let len = body.len() as u64;
    encode_head(
        out,
        Version::Http11,
        &head,
        BodyFraming::Length(len),
        Some(len),
        false,
    );
    out.extend_from_slice(body.as_bytes());
}

thread_local! {
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

/// Calls `f` with the current IMF-fixdate, formatted at most once per second per thread.
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = now.as_secs();
    DATE.with(|cell| {
        let mut cache = cell.borrow_mut();
        if cache.0 != secs {
            let s = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
            cache.1.copy_from_slice(&s.as_bytes()[..29]);
            cache.0 = secs;
        }
        f(&cache.1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(code: u16, cl: Option<u64>) -> ResponseHead {
        ResponseHead {
            code,
            status: format!("{code} X").into(),
            headers: b"X-A: 1\r\n".to_vec(),
            content_length: cl,
            close: false,
        }
    }

    #[test]
    fn framing_follows_version_and_status() {
        let h = head(200, None);
        assert_eq!(
            choose_framing(&h, Version::Http11, false, None),
            BodyFraming::Chunked
        );
        assert_eq!(
            choose_framing(&h, Version::Http10, false, None),
            BodyFraming::UntilClose
        );
        assert_eq!(
            choose_framing(&h, Version::Http11, false, Some(3)),
            BodyFraming::Length(3)
        );
        assert_eq!(
            choose_framing(&h, Version::Http11, true, Some(3)),
            BodyFraming::None
        );
        assert_eq!(
            choose_framing(&head(204, None), Version::Http11, false, None),
            BodyFraming::None
        );
        assert_eq!(
            choose_framing(&head(200, Some(9)), Version::Http11, false, Some(3)),
            BodyFraming::Length(9)
        );
    }

    #[test]
    fn head_has_server_date_and_framing() {
        let mut out = Vec::new();
        encode_head(
            &mut out,
            Version::Http11,
            &head(200, None),
            BodyFraming::Length(5),
            Some(5),
            true,
        );
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 X\r\nServer: ferricorn\r\nDate: "));
        assert!(s.contains(" GMT\r\nX-A: 1\r\nContent-Length: 5\r\n\r\n"));
        let mut out = Vec::new();
        encode_head(
            &mut out,
            Version::Http10,
            &head(200, None),
            BodyFraming::UntilClose,
            None,
            false,
        );
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("X-A: 1\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn error_response_closes() {
        let mut out = Vec::new();
        error_response(&mut out, 400, "Bad Request", "invalid header");
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert!(s.contains("Connection: close\r\n"));
    }
}
