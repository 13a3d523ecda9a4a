//! Heads across the HTTP/2 seam: a request's pseudo-headers and fields become the same
//! `RequestHead` HTTP/1 parsing produces (so both bridges run unchanged), and the app's
//! serialised `ResponseHead` (or trailer lines) becomes an `http::Response` for h2.
//!
//! The h2 crate already refuses what RFC 9113 forbids on the wire (connection-specific fields,
//! upper-case names, bad pseudo-headers, a Content-Length the DATA frames contradict). This
//! module applies what gunicorn adds on top, the same rules as HTTP/1: its three
//! `--limit-request-*` limits, its method rule, names with `_` dropped, one Content-Type.
//! Pure functions: tests call them without a connection.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::exchange::ResponseHead;
use crate::http::error::RequestError;
use crate::http::request::{
    check_method, parse_content_length, Framing, Limits, RequestHead, Version,
};
use crate::http::response::with_date;

/// Response fields HTTP/2 forbids (RFC 9113 §8.2.2); h2 would refuse the whole response.
const CONNECTION_SPECIFIC: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
];

/// A request head as the app will see it. `end_of_stream`: the HEADERS frame ended the stream
/// (no body will follow).
pub fn request_head(
    parts: &http::request::Parts,
    end_of_stream: bool,
    limits: &Limits,
) -> Result<RequestHead, RequestError> {
    let method = parts.method.as_str();
    check_method(method.as_bytes())?;
    // CONNECT has no :path; its target is the authority (as on HTTP/1)
    let target = match parts.uri.path_and_query() {
        Some(pq) => pq.as_str(),
        None => parts.uri.authority().map_or("", |a| a.as_str()),
    };
    // as on HTTP/1 (RFC 9112 §3.2): visible ASCII only. The http crate lets raw UTF-8 bytes
    // through in :path, which HTTP/1 answers with 400 (found by fuzz/, h2_head)
    if !target.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(RequestError::BadTarget);
    }
    // gunicorn holds :path to --limit-request-line on HTTP/2
    if limits.request_line > 0 && target.len() > limits.request_line {
        return Err(RequestError::RequestLineTooLong {
            limit: limits.request_line,
        });
    }
    let fields = parts.headers.len();
    let max_fields = if limits.fields == 0 {
        usize::MAX
    } else {
        limits.fields
    };
    if fields > max_fields {
        return Err(RequestError::TooManyHeaders {
            limit: limits.fields,
        });
    }

    // every byte field of the head is a slice of this one buffer, as on HTTP/1
    let mut buf = BytesMut::with_capacity(
        method.len()
            + target.len()
            + 64
            + parts
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 2)
                .sum::<usize>(),
    );
    let mut spans: Vec<(usize, usize, usize, usize)> = Vec::with_capacity(fields + 1);
    let method_span = put(&mut buf, method.as_bytes());
    let target_span = put(&mut buf, target.as_bytes());
    let mut content_types = 0usize;
    let mut content_length = None;
    let mut cookie: Option<usize> = None;
    let mut cookie_value = Vec::new();
    for (name, value) in &parts.headers {
        let (name, value) = (name.as_str(), value.as_bytes());
        if limits.field_size > 0 && name.len() + value.len() + 2 > limits.field_size {
            return Err(RequestError::HeaderTooLarge {
                limit: limits.field_size,
            });
        }
        match name {
            // :authority wins over Host (RFC 9113 §8.3.1); added below
            "host" => continue,
            "content-type" => content_types += 1,
            "content-length" => {
                if content_length.is_some() {
                    return Err(RequestError::BadFraming("more than one Content-Length"));
                }
                content_length = Some(parse_content_length(value)?);
            }
            // RFC 9113 §8.2.3: split cookie fields are one field again for HTTP/1 semantics
            "cookie" => {
                if !cookie_value.is_empty() {
                    cookie_value.extend_from_slice(b"; ");
                }
                cookie_value.extend_from_slice(value);
                if cookie.is_none() {
                    cookie = Some(spans.len());
                    spans.push((0, 0, 0, 0));
                }
                continue;
            }
            _ => {}
        }
        // gunicorn's header_map "drop", as on HTTP/1
        if name.contains('_') {
            continue;
        }
        let n = put(&mut buf, name.as_bytes());
        let v = put(&mut buf, value);
        spans.push((n.0, n.1, v.0, v.1));
    }
    if content_types > 1 {
        return Err(RequestError::BadHeader("more than one Content-Type"));
    }
    if let Some(i) = cookie {
        let n = put(&mut buf, b"cookie");
        let v = put(&mut buf, &cookie_value);
        spans[i] = (n.0, n.1, v.0, v.1);
    }
    if let Some(authority) = parts.uri.authority() {
        let n = put(&mut buf, b"host");
        let v = put(&mut buf, authority.as_str().as_bytes());
        spans.push((n.0, n.1, v.0, v.1));
    }
    let buf = buf.freeze();
    let slice = |(a, b): (usize, usize)| buf.slice(a..b);
    let target = slice(target_span);
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (target.slice(..q), target.slice(q + 1..)),
        None => (target.clone(), Bytes::new()),
    };
    let framing = match content_length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        // DATA frames until END_STREAM: the same "until the decoder says done" as chunked
        None if !end_of_stream => Framing::Chunked,
        None => Framing::Empty,
    };
    Ok(RequestHead {
        method: slice(method_span),
        target: target.clone(),
        path: if path.is_empty() {
            Bytes::from_static(b"/")
        } else {
            path
        },
        query,
        version: Version::Http2,
        headers: spans
            .into_iter()
            .map(|(a, b, c, d)| (buf.slice(a..b), buf.slice(c..d)))
            .collect(),
        framing: if end_of_stream {
            Framing::Empty
        } else {
            framing
        },
        keep_alive: true,
        // gunicorn does not answer 100-continue on HTTP/2: the body is simply read
        expect_continue: false,
    })
}

/// The h2 response for the app's head. `known_len`: the whole body's length, when it is known
/// and the app gave no Content-Length.
pub fn response(head: &ResponseHead, known_len: Option<u64>) -> http::Response<()> {
    let mut resp = http::Response::new(());
    *resp.status_mut() =
        http::StatusCode::from_u16(head.code).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    headers.insert(http::header::SERVER, HeaderValue::from_static("ferricorn"));
    with_date(|d| {
        if let Ok(v) = HeaderValue::from_bytes(d) {
            headers.insert(http::header::DATE, v);
        }
    });
    append_fields(headers, &head.headers);
    let bodiless = head.code == 204 || head.code == 304 || (100..200).contains(&head.code);
    if let (None, Some(n), false) = (head.content_length, known_len, bodiless) {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    resp
}

/// Trailer fields from the app's `name: value\r\n` lines.
pub fn trailers(lines: &[u8]) -> HeaderMap {
    let mut map = HeaderMap::new();
    append_fields(&mut map, lines);
    map
}

/// Appends `name: value\r\n` lines (validated by the bridge when the app gave them), minus the
/// fields HTTP/2 forbids. A line that still does not convert is dropped rather than failing the
/// response.
fn append_fields(map: &mut HeaderMap, lines: &[u8]) {
    for line in lines.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        // HeaderName lower-cases, as HTTP/2 requires
        let Ok(name) = HeaderName::from_bytes(name) else {
            continue;
        };
        if CONNECTION_SPECIFIC.contains(&name.as_str()) {
            continue;
        }
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(name, value);
        }
    }
}

/// Appends `b` to `buf`; returns where it went.
fn put(buf: &mut BytesMut, b: &[u8]) -> (usize, usize) {
    let start = buf.len();
    buf.extend_from_slice(b);
    (start, buf.len())
}

fn trim(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::request::Builder) -> http::request::Parts {
        req.body(()).unwrap().into_parts().0
    }

    fn get(uri: &str) -> http::request::Builder {
        http::Request::builder().method("GET").uri(uri)
    }

    fn field<'a>(head: &'a RequestHead, name: &str) -> Vec<&'a [u8]> {
        head.headers
            .iter()
            .filter(|(n, _)| &n[..] == name.as_bytes())
            .map(|(_, v)| &v[..])
            .collect()
    }

    #[test]
    fn pseudo_headers_become_the_http1_head() {
        let p = parts(
            get("http://example.com:8080/a%20b/c?x=1&y=2")
                .header("accept", "text/plain")
                .header("host", "ignored.example"),
        );
        let h = request_head(&p, true, &Limits::default()).unwrap();
        assert_eq!(&h.method[..], b"GET");
        assert_eq!(&h.target[..], b"/a%20b/c?x=1&y=2");
        assert_eq!(&h.path[..], b"/a%20b/c");
        assert_eq!(&h.query[..], b"x=1&y=2");
        assert_eq!(h.version, Version::Http2);
        assert_eq!(h.framing, Framing::Empty);
        // :authority replaces any Host field
        assert_eq!(field(&h, "host"), vec![&b"example.com:8080"[..]]);
        assert_eq!(field(&h, "accept"), vec![&b"text/plain"[..]]);
    }

    #[test]
    fn a_path_with_raw_non_ascii_bytes_is_refused_as_on_http1() {
        let p = parts(get("/caf\u{e9}"));
        assert_eq!(
            request_head(&p, true, &Limits::default()).unwrap_err(),
            RequestError::BadTarget
        );
        let p = parts(get("/caf%C3%A9"));
        assert!(request_head(&p, true, &Limits::default()).is_ok());
    }

    #[test]
    fn split_cookies_are_joined_with_semicolons() {
        let p = parts(
            get("http://a/")
                .header("cookie", "a=1")
                .header("x-y", "z")
                .header("cookie", "b=2"),
        );
        let h = request_head(&p, true, &Limits::default()).unwrap();
        assert_eq!(field(&h, "cookie"), vec![&b"a=1; b=2"[..]]);
        // the joined field keeps the first cookie's place
        assert_eq!(&h.headers[0].0[..], b"cookie");
    }

    #[test]
    fn body_framing_follows_content_length_or_end_of_stream() {
        let post = || http::Request::builder().method("POST").uri("http://a/");
        let h = request_head(
            &parts(post().header("content-length", "5")),
            false,
            &Limits::default(),
        )
        .unwrap();
        assert_eq!(h.framing, Framing::Length(5));
        let h = request_head(&parts(post()), false, &Limits::default()).unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = request_head(&parts(post()), true, &Limits::default()).unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let bad = request_head(
            &parts(post().header("content-length", "x")),
            false,
            &Limits::default(),
        );
        assert!(matches!(bad, Err(RequestError::BadFraming(_))));
    }

    #[test]
    fn gunicorn_limits_earn_their_statuses() {
        let limits = Limits {
            request_line: 10,
            fields: 2,
            field_size: 20,
        };
        let long_path = request_head(&parts(get("http://a/0123456789")), true, &limits);
        assert_eq!(long_path.unwrap_err().status().0, 414);
        let many = parts(
            get("http://a/")
                .header("a", "1")
                .header("b", "2")
                .header("c", "3"),
        );
        assert_eq!(
            request_head(&many, true, &limits).unwrap_err().status().0,
            431
        );
        let big = parts(get("http://a/").header("a", "x".repeat(20)));
        assert_eq!(
            request_head(&big, true, &limits).unwrap_err().status().0,
            431
        );
    }

    #[test]
    fn gunicorn_rules_hold_on_http2_too() {
        let lower = http::Request::builder().method("get").uri("http://a/");
        assert_eq!(
            request_head(&parts(lower), true, &Limits::default()).unwrap_err(),
            RequestError::BadMethod
        );
        let underscore = parts(get("http://a/").header("x_forwarded_for", "1.2.3.4"));
        let h = request_head(&underscore, true, &Limits::default()).unwrap();
        assert!(field(&h, "x_forwarded_for").is_empty());
        let two_types = parts(
            get("http://a/")
                .header("content-type", "a/b")
                .header("content-type", "c/d"),
        );
        assert!(request_head(&two_types, true, &Limits::default()).is_err());
    }

    #[test]
    fn response_drops_connection_specific_fields_and_adds_server_and_length() {
        let head = ResponseHead {
            code: 201,
            status: Bytes::from_static(b"201 Created"),
            headers:
                b"Content-Type: text/plain\r\nConnection: keep-alive\r\nProxy-Connection: x\r\n\
Transfer-Encoding: chunked\r\nUpgrade: h2c\r\nKeep-Alive: 5\r\nX-A: 1\r\nX-A: 2\r\n"
                    .to_vec(),
            content_length: None,
            close: false,
        };
        let r = response(&head, Some(3));
        assert_eq!(r.status(), 201);
        let h = r.headers();
        for gone in [
            "connection",
            "proxy-connection",
            "transfer-encoding",
            "upgrade",
            "keep-alive",
        ] {
            assert!(h.get(gone).is_none(), "{gone}");
        }
        assert_eq!(h["content-type"], "text/plain");
        assert_eq!(h.get_all("x-a").iter().count(), 2);
        assert_eq!(h["content-length"], "3");
        assert_eq!(h["server"], "ferricorn");
        assert!(h.contains_key("date"));
        // a 204 carries no length of ours
        let empty = ResponseHead {
            code: 204,
            ..ResponseHead::default()
        };
        assert!(response(&empty, Some(0))
            .headers()
            .get("content-length")
            .is_none());
    }

    #[test]
    fn trailer_lines_become_a_header_map() {
        let t = trailers(b"Grpc-Status: 0\r\nX-Sum:  abc \r\n");
        assert_eq!(t["grpc-status"], "0");
        assert_eq!(t["x-sum"], "abc");
    }
}
