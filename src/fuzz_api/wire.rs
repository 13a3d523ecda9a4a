//! Targets for what a client sends on the wire: the PROXY header, HTTP/1 heads, chunked and
//! Content-Length bodies, uwsgi packets and HTTP/2 heads.

use bytes::BytesMut;

use super::{cuts, Cursor};
use crate::exchange::ResponseHead;
use crate::http::body::{Decoder, Step};
use crate::http::error::RequestError;
use crate::http::h2::head as h2head;
use crate::http::proxy_protocol::{self, Mode, Parse};
use crate::http::request::{self, check_method, Framing, Limits, RequestHead, Version};
use crate::http::uwsgi as uwsgi_wire;

/// Limits picked by one byte: gunicorn's defaults, tight ones (so the limit paths run on
/// small inputs) or unlimited.
pub(crate) fn limits(choice: u8) -> Limits {
    match choice % 4 {
        1 => Limits {
            request_line: 40,
            fields: 4,
            field_size: 48,
        },
        2 => Limits {
            request_line: 0,
            fields: 0,
            field_size: 0,
        },
        _ => Limits::default(),
    }
}

/// What every `RequestHead` must satisfy, whichever protocol produced it: the bridges and
/// the access log rely on these without checking again.
pub(crate) fn check_head(head: &RequestHead, limits: &Limits) {
    let visible = |b: &u8| (0x21..=0x7e).contains(b);
    assert!(
        check_method(&head.method).is_ok(),
        "method {:?}",
        head.method
    );
    assert!(head.target.iter().all(visible), "target {:?}", head.target);
    assert!(head.path.iter().all(visible), "path {:?}", head.path);
    assert!(
        !head.path.is_empty() || &head.method[..] == b"CONNECT",
        "empty path for {:?}",
        head.method
    );
    assert!(
        !head.query.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
        "query {:?}",
        head.query
    );
    for (name, value) in &head.headers {
        assert!(
            !name.is_empty()
                && name
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^`|~".contains(&b)),
            "header name {name:?}"
        );
        assert!(
            !value.iter().any(|b| matches!(b, b'\r' | b'\n' | 0)),
            "header value {value:?}"
        );
    }
    assert!(
        limits.fields == 0 || head.headers.len() <= limits.fields,
        "{} fields over the limit of {}",
        head.headers.len(),
        limits.fields
    );
    assert_ne!(head.framing, Framing::Length(0), "Length(0) is Empty");
    if head.version != Version::Http11 {
        assert!(!head.expect_continue, "100-continue outside HTTP/1.1");
    }
}

/// PROXY v1/v2: consumed length within the buffer, the bytes after the header never matter,
/// every prefix of the input either asks for more or already gives the final answer (the
/// connection parses as bytes arrive), errors only once a header has started, and the
/// addresses a header names read back the same from the v1 line we would write for them.
pub fn proxy_protocol(data: &[u8]) {
    for mode in [Mode::V1, Mode::V2, Mode::Auto] {
        let whole = proxy_protocol::parse(data, mode);
        let started = proxy_protocol::is_header_start(data, mode);
        match &whole {
            Ok(Parse::Header { len, header }) => {
                assert!(started);
                assert!(*len <= data.len(), "consumed {len} of {}", data.len());
                assert_eq!(proxy_protocol::parse(&data[..*len], mode), whole);
                match (header.protocol, header.addresses) {
                    ("TCP4", Some((c, p))) => assert!(c.is_ipv4() && p.is_ipv4()),
                    ("TCP6", Some((c, p))) => assert!(c.is_ipv6() && p.is_ipv6()),
                    ("LOCAL" | "UNSPEC" | "UNKNOWN", None) => {}
                    other => panic!("protocol and addresses disagree: {other:?}"),
                }
                if let Some((client, proxy)) = header.addresses {
                    let line = format!(
                        "PROXY {} {} {} {} {}\r\n",
                        header.protocol,
                        client.ip(),
                        proxy.ip(),
                        client.port(),
                        proxy.port()
                    );
                    let again = proxy_protocol::parse(line.as_bytes(), Mode::V1);
                    let want = Parse::Header {
                        len: line.len(),
                        header: header.clone(),
                    };
                    assert_eq!(again, Ok(want), "{line:?}");
                }
            }
            Ok(Parse::NotProxy) => assert!(!started),
            Ok(Parse::NeedMore) => {}
            Err(_) => assert!(started, "an error before any header started"),
        }
        for cut in cuts(data.len()) {
            let part = proxy_protocol::parse(&data[..cut], mode);
            match &part {
                Ok(Parse::NeedMore) => {}
                Ok(Parse::NotProxy) | Ok(Parse::Header { .. }) => {
                    assert_eq!(part, whole, "cut at {cut}")
                }
                Err(_) => assert!(whole.is_err(), "cut at {cut}: {part:?} then {whole:?}"),
            }
        }
    }
}

/// HTTP/1 heads: a head is taken only when its bytes hold no NUL, bare CR or bare LF and it
/// passes `check_head`; the bytes after the head never change it; and feeding the input in
/// pieces, as the connection does, gives the same head or also refuses.
pub fn request_head(data: &[u8]) {
    let mut c = Cursor::new(data);
    let limits = limits(c.byte());
    let piece = usize::from(c.byte() % 16) + 1;
    let data = c.rest();

    let mut buf = BytesMut::from(data);
    let whole = request::parse_head(&mut buf, &limits);
    if let Ok(Some(head)) = &whole {
        let used = &data[..data.len() - buf.len()];
        assert!(used.ends_with(b"\r\n\r\n"), "head ends {used:?}");
        for (i, &b) in used.iter().enumerate() {
            match b {
                0 => panic!("NUL accepted in {used:?}"),
                b'\r' => assert_eq!(used.get(i + 1), Some(&b'\n'), "bare CR in {used:?}"),
                b'\n' => assert!(i > 0 && used[i - 1] == b'\r', "bare LF in {used:?}"),
                _ => {}
            }
        }
        check_head(head, &limits);
        if let Some(v) = head.headers.iter().find_map(|(n, v)| {
            n.eq_ignore_ascii_case(b"content-length")
                .then(|| request::parse_content_length(v))
        }) {
            let n = v.expect("an accepted Content-Length parses");
            assert!(n == 0 || head.framing == Framing::Length(n));
        }
        let alone = request::parse_head(&mut BytesMut::from(used), &limits);
        assert_eq!(
            format!("{alone:?}"),
            format!("{whole:?}"),
            "the head alone parses differently"
        );
    }

    // RFC 9112 §2.2 lets a server ignore empty lines before a request line; parse_head skips
    // one per call (gunicorn's rule), so CRLFs split across reads may be skipped more than once
    // while the same bytes in one read are refused. That difference is allowed, not checked.
    if data.starts_with(b"\r\n") {
        return;
    }
    let mut buf = BytesMut::new();
    let mut streamed = Ok(None);
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        streamed = request::parse_head(&mut buf, &limits);
        if !matches!(streamed, Ok(None)) {
            break;
        }
    }
    match (&whole, &streamed) {
        (Ok(Some(a)), Ok(Some(b))) => assert_eq!(format!("{a:?}"), format!("{b:?}")),
        (Ok(None), Ok(None)) | (Err(_), Err(_)) => {}
        _ => panic!("in {piece}-byte pieces: {streamed:?}, at once: {whole:?}"),
    }
}

/// Body decoding: decoding never yields more bytes than it was given, a Content-Length body
/// is exactly its length, and the decoded body, the outcome and where the next request starts
/// are the same whether the bytes come at once or in pieces (where the next request starts
/// is exactly what request smuggling attacks).
pub fn chunked_body(data: &[u8]) {
    let mut c = Cursor::new(data);
    let mode = c.byte();
    let framing = match mode % 4 {
        0 => Framing::Length(u64::from(c.byte()) * 3),
        _ => Framing::Chunked,
    };
    let limit = if mode & 0x10 != 0 {
        u64::from(c.byte())
    } else {
        0
    };
    let max = usize::from(c.byte() % 32) + 1;
    let piece = usize::from(c.byte() % 16) + 1;
    let data = c.rest();

    let whole = decode_all(framing, limit, max, &[data]);
    let pieces: Vec<&[u8]> = data.chunks(piece).collect();
    let streamed = decode_all(framing, limit, max, &pieces);
    match (&whole, &streamed) {
        // which rule refuses first may depend on how much was buffered; that both do is what
        // matters
        (Outcome::Refused(_), Outcome::Refused(_)) => {}
        _ => assert_eq!(whole, streamed, "at once vs in {piece}-byte pieces"),
    }
    if let Outcome::Done { body, rest } = &whole {
        assert!(body.len() + rest.len() <= data.len());
        if let Framing::Length(n) = framing {
            assert_eq!(body.len() as u64, n);
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// The body and the bytes after it.
    Done {
        body: Vec<u8>,
        rest: Vec<u8>,
    },
    /// Still incomplete when the input ran out; what was decoded so far.
    Short(Vec<u8>),
    Refused(RequestError),
}

/// Feeds `pieces` to a decoder as the connection would: decode until it needs more, then
/// append the next piece.
fn decode_all(framing: Framing, limit: u64, max: usize, pieces: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::with_limit(framing, limit);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    let mut next = pieces.iter();
    loop {
        match decoder.decode(&mut buf, max) {
            Ok(Step::Data(d)) => {
                assert!(
                    !d.is_empty() && d.len() <= max,
                    "a piece of {} bytes",
                    d.len()
                );
                body.extend_from_slice(&d);
            }
            Ok(Step::Done) => {
                let mut rest = buf.to_vec();
                for p in next {
                    rest.extend_from_slice(p);
                }
                return Outcome::Done { body, rest };
            }
            Ok(Step::NeedMore) => match next.next() {
                Some(p) => buf.extend_from_slice(p),
                None => return Outcome::Short(body),
            },
            Err(e) => return Outcome::Refused(e),
        }
    }
}

/// uwsgi packets: the packet is exactly header + vars block, the head passes `check_head`,
/// PATH_INFO survives the round trip through `head.path` (the bridges percent-decode it back),
/// and a packet split across reads parses the same.
pub fn uwsgi(data: &[u8]) {
    let mut c = Cursor::new(data);
    let limits = limits(c.byte());
    let piece = usize::from(c.byte() % 16) + 1;
    let data = c.rest();

    let mut buf = BytesMut::from(data);
    let whole = uwsgi_wire::parse(&mut buf, &limits);
    if let Ok(Some(packet)) = &whole {
        let size = usize::from(u16::from_le_bytes([data[1], data[2]]));
        assert_eq!(data.len() - buf.len(), 4 + size);
        check_head(&packet.head, &limits);
        assert!(packet.vars.iter().all(|(k, _)| !k.is_empty()));
        let path_info = last_path_info(&data[4..4 + size]).filter(|v| !v.is_empty());
        if let Some(p) = path_info {
            let back: Vec<u8> = percent_encoding::percent_decode(&packet.head.path).collect();
            assert_eq!(back, p, "PATH_INFO changed on its way to head.path");
        }
    }
    let mut buf = BytesMut::new();
    let mut streamed = Ok(None);
    for chunk in data.chunks(piece) {
        buf.extend_from_slice(chunk);
        streamed = uwsgi_wire::parse(&mut buf, &limits);
        if !matches!(streamed, Ok(None)) {
            break;
        }
    }
    assert_eq!(format!("{whole:?}"), format!("{streamed:?}"));
}

/// The last PATH_INFO var of a vars block (the one the parser keeps).
fn last_path_info(mut block: &[u8]) -> Option<Vec<u8>> {
    fn take(b: &mut &[u8]) -> Option<Vec<u8>> {
        let (len, rest) = b.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_le_bytes(*len));
        let item = rest.get(..len)?.to_vec();
        *b = &rest[len..];
        Some(item)
    }
    let mut found = None;
    while let (Some(k), Some(v)) = (take(&mut block), take(&mut block)) {
        if k == b"PATH_INFO" {
            found = Some(v);
        }
    }
    found
}

/// HTTP/2 heads: whatever request the `http` crate lets h2 hand us becomes a head that passes
/// `check_head` and has at most one Host and one Cookie field; response and trailer lines
/// never carry a connection-specific field into HTTP/2.
pub fn h2_head(data: &[u8]) {
    let mut c = Cursor::new(data);
    let flags = c.byte();
    let limits = limits(flags);
    let end_of_stream = flags & 0x10 != 0;
    let method = c.piece();
    let uri = c.piece();
    let mut builder = http::Request::builder().method(method).uri(uri);
    let fields = c.byte() % 12;
    for _ in 0..fields {
        let (name, value) = (c.piece(), c.piece());
        builder = builder.header(name, value);
    }
    let lines = c.rest();
    if let Ok(req) = builder.body(()) {
        let (parts, ()) = req.into_parts();
        if let Ok(head) = h2head::request_head(&parts, end_of_stream, &limits) {
            // :authority becomes a Host field after the limit counted the fields
            let counted = Limits {
                fields: limits.fields + usize::from(limits.fields > 0),
                ..limits
            };
            check_head(&head, &counted);
            let count = |n: &[u8]| head.headers.iter().filter(|(h, _)| &h[..] == n).count();
            assert!(count(b"host") <= 1 && count(b"cookie") <= 1);
            if end_of_stream {
                assert_eq!(head.framing, Framing::Empty);
            }
        }
    }
    let forbidden = |map: &http::HeaderMap| {
        [
            "connection",
            "keep-alive",
            "transfer-encoding",
            "upgrade",
            "te",
        ]
        .iter()
        .any(|n| map.contains_key(*n))
    };
    assert!(!forbidden(&h2head::trailers(lines)));
    let resp = h2head::response(
        &ResponseHead {
            code: u16::from(flags) * 3,
            status: bytes::Bytes::new(),
            headers: lines.to_vec(),
            content_length: None,
            close: false,
        },
        Some(u64::from(flags)),
    );
    assert!(!forbidden(resp.headers()));
}
