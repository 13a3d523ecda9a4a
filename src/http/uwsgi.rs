//! The uwsgi wire protocol (what nginx's `uwsgi_pass` speaks): one binary packet of CGI
//! variables per request, parsed from bytes into the same `RequestHead` an HTTP/1 head becomes.
//!
//! A packet is a 4-byte header — modifier1, the vars block's size as a little-endian u16,
//! modifier2 — then the vars block: pairs of (u16 LE length, key, u16 LE length, value). The
//! request body (CONTENT_LENGTH bytes) follows the packet; the response goes back as a plain
//! HTTP/1.x status line, headers and body, which `http::conn` writes as for HTTP/1.0 (never
//! chunked: nginx would pass the chunk markers on as body).
//!
//! This module only parses (`parse`); `http::conn::uwsgi` reads the socket and checks
//! `--uwsgi-allow-from`. Like gunicorn 27 only modifier1 0 (a WSGI request) is served. Where we
//! are stricter than gunicorn we say so: every length is checked against the block, a
//! CONTENT_LENGTH that is not a number is refused instead of read as 0, and the HTTP limits
//! (`--limit-request-line`, `-fields`, `-field_size`) apply to the URI and the `HTTP_*` vars.
//! Hand-written because the format is trivial and no maintained crate parses it.

use std::net::{IpAddr, SocketAddr};

use bytes::{Buf, Bytes, BytesMut};
use percent_encoding::{AsciiSet, CONTROLS};

use super::error::RequestError;
use super::request::{check_method, Framing, Limits, RequestHead, Version};

/// Header length: modifier1, datasize (2 bytes), modifier2.
const HEADER: usize = 4;
/// gunicorn's cap on the number of vars in one packet.
const MAX_VARS: usize = 1000;
/// What must be percent-encoded to carry a decoded PATH_INFO in `RequestHead::path` and have the
/// bridges decode it back unchanged: `%` itself, and what may not appear in a request-target.
const PATH_ESCAPES: &AsciiSet = &CONTROLS.add(b' ').add(b'%').add(b'?').add(b'#').add(b'"');
/// REQUEST_URI and QUERY_STRING are the client's raw request-target, which nginx takes with raw
/// UTF-8 bytes in it: those (and spaces, controls) are escaped to keep it visible ASCII, not
/// refused.
const URI_ESCAPES: &AsciiSet = &CONTROLS.add(b' ');

/// One request as a uwsgi packet described it.
#[derive(Debug)]
pub struct Packet {
    pub head: RequestHead,
    /// REMOTE_ADDR / REMOTE_PORT when REMOTE_ADDR is an IP address.
    pub client: Option<SocketAddr>,
    /// SERVER_NAME and SERVER_PORT, when sent.
    pub server_name: Option<String>,
    pub server_port: Option<String>,
    /// HTTPS (on/1/true), or UWSGI_SCHEME / wsgi.url_scheme / REQUEST_SCHEME = https.
    pub secure: bool,
    /// Every other var, in packet order (DOCUMENT_ROOT, SCRIPT_NAME, REQUEST_URI, custom
    /// `uwsgi_param`s…): the WSGI environ gets them as they are.
    pub vars: Vec<(Bytes, Bytes)>,
}

/// Takes one complete packet off the front of `buf`; `Ok(None)` means "need more bytes". On
/// success the body (CONTENT_LENGTH bytes, framed in `head.framing`) starts at the front of
/// `buf`.
pub fn parse(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Packet>, RequestError> {
    let Some(header) = buf.get(..HEADER) else {
        return Ok(None);
    };
    if header[0] != 0 {
        return Err(RequestError::UwsgiModifier(header[0]));
    }
    let size = usize::from(u16::from_le_bytes([header[1], header[2]]));
    if buf.len() < HEADER + size {
        return Ok(None);
    }
    buf.advance(HEADER);
    let block = buf.split_to(size).freeze();
    from_vars(&block, limits).map(Some)
}

/// Splits a vars block into its (key, value) pairs, slices of `block`.
fn split_vars(block: &Bytes) -> Result<Vec<(Bytes, Bytes)>, RequestError> {
    let mut vars = Vec::with_capacity(32);
    let mut rest = &block[..];
    let take = |rest: &mut &[u8], what: &'static str| -> Result<Bytes, RequestError> {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(RequestError::BadUwsgiPacket(what));
        };
        let len = usize::from(u16::from_le_bytes(*len));
        let Some(item) = tail.get(..len) else {
            return Err(RequestError::BadUwsgiPacket(what));
        };
        *rest = &tail[len..];
        Ok(block.slice_ref(item))
    };
    while !rest.is_empty() {
        if vars.len() == MAX_VARS {
            return Err(RequestError::BadUwsgiPacket("more than 1000 vars"));
        }
        let key = take(&mut rest, "a key overruns the vars block")?;
        let value = take(&mut rest, "a value overruns the vars block")?;
        if key.is_empty() {
            return Err(RequestError::BadUwsgiPacket("empty var name"));
        }
        vars.push((key, value));
    }
    Ok(vars)
}

/// Builds the request from its vars.
fn from_vars(block: &Bytes, limits: &Limits) -> Result<Packet, RequestError> {
    let mut method = Bytes::from_static(b"GET");
    let (mut path_info, mut query, mut request_uri) = (None, None, None);
    let mut version = Version::Http11;
    let mut headers = Vec::new();
    let mut content_length: Option<u64> = None;
    let (mut remote_addr, mut remote_port) = (None, 0u16);
    let (mut server_name, mut server_port) = (None, None);
    let mut secure = false;
    let mut keep_alive = true;
    let mut vars = Vec::new();
    for (key, value) in split_vars(block)? {
        match &key[..] {
            b"REQUEST_METHOD" => {
                check_method(&value)?;
                method = value;
            }
            b"PATH_INFO" => path_info = Some(value),
            // raw like REQUEST_URI: escaped the same way, so no CR/LF reaches a log line
            b"QUERY_STRING" => query = Some(visible_ascii(value)),
            b"SERVER_PROTOCOL" => {
                if value.eq_ignore_ascii_case(b"HTTP/1.0") {
                    version = Version::Http10;
                }
            }
            b"CONTENT_LENGTH" => {
                // nginx's uwsgi_params always send it, empty without a body
                if content_length.is_some() {
                    return Err(RequestError::BadFraming("more than one CONTENT_LENGTH"));
                }
                content_length = Some(match &value[..] {
                    b"" => 0,
                    digits => parse_u64(digits)
                        .ok_or(RequestError::BadFraming("CONTENT_LENGTH is not a number"))?,
                });
                if !value.is_empty() {
                    headers.push((Bytes::from_static(b"Content-Length"), value));
                }
            }
            b"CONTENT_TYPE" => {
                check_value(&value)?;
                if !value.is_empty() {
                    headers.push((Bytes::from_static(b"Content-Type"), value));
                }
            }
            b"REMOTE_ADDR" => match parse_ip(&value) {
                Some(ip) => remote_addr = Some(ip),
                // nginx listening on a unix socket says "unix:": pass it on as is
                None => vars.push((key, value)),
            },
            b"REMOTE_PORT" => remote_port = parse_u64(&value).map_or(0, |p| p as u16),
            b"SERVER_NAME" => server_name = Some(latin1(&value)),
            b"SERVER_PORT" => server_port = Some(latin1(&value)),
            b"UWSGI_SCHEME" | b"wsgi.url_scheme" => secure |= value.eq_ignore_ascii_case(b"https"),
            b"HTTPS" | b"REQUEST_SCHEME" => {
                secure |= [&b"on"[..], b"1", b"true", b"https"]
                    .iter()
                    .any(|v| value.eq_ignore_ascii_case(v));
                vars.push((key, value));
            }
            name if name.starts_with(b"HTTP_") => {
                let header = header_name(&name[5..])?;
                check_value(&value)?;
                if limits.field_size > 0 && header.len() + value.len() + 4 > limits.field_size {
                    return Err(RequestError::HeaderTooLarge {
                        limit: limits.field_size,
                    });
                }
                if header.eq_ignore_ascii_case(b"connection") {
                    keep_alive &= !value
                        .split(|&b| b == b',')
                        .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
                }
                // framing comes from CONTENT_LENGTH alone; the CGI spellings of the two
                // content fields win over their HTTP_ doubles
                let framing_field = [
                    &b"content-length"[..],
                    b"content-type",
                    b"transfer-encoding",
                ]
                .iter()
                .any(|n| header.eq_ignore_ascii_case(n));
                if !framing_field {
                    headers.push((header, value));
                }
            }
            // keys the environ sets itself are not the front end's to override
            name if name.starts_with(b"wsgi.") || name.starts_with(b"gunicorn.") => {}
            b"RAW_URI" | b"SERVER_SOFTWARE" => {}
            b"REQUEST_URI" => {
                request_uri = Some(visible_ascii(value.clone()));
                vars.push((key, value));
            }
            _ => vars.push((key, value)),
        }
    }
    if limits.fields > 0 && headers.len() > limits.fields {
        return Err(RequestError::TooManyHeaders {
            limit: limits.fields,
        });
    }
    let uri_path = request_uri
        .as_ref()
        .map(|u| u.slice(..u.iter().position(|&b| b == b'?').unwrap_or(u.len())));
    let path = match (path_info, uri_path) {
        // PATH_INFO is decoded (nginx's $document_uri): encode it so the bridges' decoding gives
        // it back unchanged
        (Some(p), _) if !p.is_empty() => {
            Bytes::from(percent_encoding::percent_encode(&p, PATH_ESCAPES).to_string())
        }
        (_, Some(u)) if u.starts_with(b"/") => u,
        _ => Bytes::from_static(b"/"),
    };
    let query = match (query, &request_uri) {
        (Some(q), _) => q,
        (None, Some(u)) => match u.iter().position(|&b| b == b'?') {
            Some(i) => u.slice(i + 1..),
            None => Bytes::new(),
        },
        (None, None) => Bytes::new(),
    };
    let target = match request_uri {
        Some(u) if !u.is_empty() => u,
        _ if query.is_empty() => path.clone(),
        _ => Bytes::from([&path[..], b"?", &query[..]].concat()),
    };
    if !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return Err(RequestError::BadTarget);
    }
    let line = method.len() + target.len() + 10;
    if limits.request_line > 0 && line > limits.request_line {
        return Err(RequestError::RequestLineTooLong {
            limit: limits.request_line,
        });
    }
    let head = RequestHead {
        method,
        target,
        path,
        query,
        version,
        headers,
        framing: match content_length {
            None | Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        },
        keep_alive,
        // the front end answered any Expect itself
        expect_continue: false,
    };
    Ok(Packet {
        head,
        client: remote_addr.map(|ip| SocketAddr::new(ip, remote_port)),
        server_name,
        server_port,
        secure,
        vars,
    })
}

/// A raw URI part as visible ASCII: spaces, controls and non-ASCII bytes percent-encoded.
fn visible_ascii(value: Bytes) -> Bytes {
    if value.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return value;
    }
    Bytes::from(percent_encoding::percent_encode(&value, URI_ESCAPES).to_string())
}

/// `X_FORWARDED_FOR` → `X-FORWARDED-FOR`, refusing what no HTTP field name could be.
fn header_name(cgi: &[u8]) -> Result<Bytes, RequestError> {
    let ok = !cgi.is_empty()
        && cgi
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !ok {
        return Err(RequestError::BadHeader("invalid HTTP_ var name"));
    }
    Ok(cgi
        .iter()
        .map(|&b| if b == b'_' { b'-' } else { b })
        .collect::<Vec<u8>>()
        .into())
}

/// A field value may not smuggle a line break (or NUL) into whatever re-serialises it.
fn check_value(value: &[u8]) -> Result<(), RequestError> {
    if value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(RequestError::BadHeader("CR, LF or NUL in a var value"));
    }
    Ok(())
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn parse_ip(value: &[u8]) -> Option<IpAddr> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn latin1(value: &[u8]) -> String {
    value.iter().map(|&b| char::from(b)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet with these vars, as nginx would frame it.
    fn packet(vars: &[(&str, &str)]) -> Vec<u8> {
        let mut block = Vec::new();
        for (k, v) in vars {
            block.extend_from_slice(&(k.len() as u16).to_le_bytes());
            block.extend_from_slice(k.as_bytes());
            block.extend_from_slice(&(v.len() as u16).to_le_bytes());
            block.extend_from_slice(v.as_bytes());
        }
        let mut out = vec![0];
        out.extend_from_slice(&(block.len() as u16).to_le_bytes());
        out.push(0);
        out.extend_from_slice(&block);
        out
    }

    fn parse_all(bytes: &[u8]) -> Result<Option<Packet>, RequestError> {
        parse(&mut BytesMut::from(bytes), &Limits::default())
    }

    fn nginx_get() -> Vec<(&'static str, &'static str)> {
        vec![
            ("QUERY_STRING", "a=1&b=%20"),
            ("REQUEST_METHOD", "GET"),
            ("CONTENT_TYPE", ""),
            ("CONTENT_LENGTH", ""),
            ("REQUEST_URI", "/p%20q/r?a=1&b=%20"),
            ("PATH_INFO", "/p q/r"),
            ("DOCUMENT_ROOT", "/usr/share/nginx/html"),
            ("SERVER_PROTOCOL", "HTTP/1.1"),
            ("REQUEST_SCHEME", "http"),
            ("REMOTE_ADDR", "10.1.2.3"),
            ("REMOTE_PORT", "50123"),
            ("SERVER_PORT", "8080"),
            ("SERVER_NAME", "example.org"),
            ("HTTP_HOST", "example.org:8080"),
            ("HTTP_X_FORWARDED_FOR", "1.2.3.4"),
            ("APP_ENV", "prod"),
        ]
    }

    #[test]
    fn an_nginx_get_becomes_a_request_head() {
        let p = parse_all(&packet(&nginx_get())).unwrap().unwrap();
        assert_eq!(&p.head.method[..], b"GET");
        assert_eq!(&p.head.target[..], b"/p%20q/r?a=1&b=%20");
        assert_eq!(&p.head.path[..], b"/p%20q/r");
        assert_eq!(&p.head.query[..], b"a=1&b=%20");
        assert_eq!(p.head.version, Version::Http11);
        assert_eq!(p.head.framing, Framing::Empty);
        assert!(p.head.keep_alive);
        let names: Vec<&[u8]> = p.head.headers.iter().map(|(n, _)| &n[..]).collect();
        assert_eq!(names, [&b"HOST"[..], b"X-FORWARDED-FOR"]);
        assert_eq!(p.client, Some("10.1.2.3:50123".parse().unwrap()));
        assert_eq!(p.server_name.as_deref(), Some("example.org"));
        assert_eq!(p.server_port.as_deref(), Some("8080"));
        assert!(!p.secure);
        let vars: Vec<&[u8]> = p.vars.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(
            vars,
            [
                &b"REQUEST_URI"[..],
                b"DOCUMENT_ROOT",
                b"REQUEST_SCHEME",
                b"APP_ENV"
            ]
        );
    }

    #[test]
    fn the_body_follows_the_packet() {
        let mut bytes = packet(&[
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/upload"),
            ("CONTENT_LENGTH", "5"),
            ("CONTENT_TYPE", "text/plain"),
        ]);
        bytes.extend_from_slice(b"hello");
        let mut buf = BytesMut::from(&bytes[..]);
        let p = parse(&mut buf, &Limits::default()).unwrap().unwrap();
        assert_eq!(p.head.framing, Framing::Length(5));
        assert_eq!(&buf[..], b"hello");
        assert!(p
            .head
            .headers
            .iter()
            .any(|(n, v)| &n[..] == b"Content-Type" && &v[..] == b"text/plain"));
    }

    #[test]
    fn a_packet_arriving_in_pieces_waits_for_the_rest() {
        let bytes = packet(&nginx_get());
        for cut in [0, 1, 3, 4, 10, bytes.len() - 1] {
            assert!(parse_all(&bytes[..cut]).unwrap().is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn scheme_comes_from_https_or_the_scheme_vars() {
        for (k, v) in [
            ("HTTPS", "on"),
            ("HTTPS", "1"),
            ("UWSGI_SCHEME", "https"),
            ("wsgi.url_scheme", "https"),
            ("REQUEST_SCHEME", "https"),
        ] {
            let p = parse_all(&packet(&[(k, v)])).unwrap().unwrap();
            assert!(p.secure, "{k}={v}");
        }
        let p = parse_all(&packet(&[("HTTPS", "off")])).unwrap().unwrap();
        assert!(!p.secure);
    }

    #[test]
    fn without_request_uri_the_target_is_path_info_and_query() {
        let p = parse_all(&packet(&[("PATH_INFO", "/a%b"), ("QUERY_STRING", "x=1")]))
            .unwrap()
            .unwrap();
        assert_eq!(&p.head.path[..], b"/a%25b");
        assert_eq!(&p.head.target[..], b"/a%25b?x=1");
        let p = parse_all(&packet(&[])).unwrap().unwrap();
        assert_eq!(&p.head.target[..], b"/");
        assert_eq!(&p.head.method[..], b"GET");
    }

    #[test]
    fn http_1_0_and_connection_close_end_keep_alive_as_told() {
        let p = parse_all(&packet(&[("SERVER_PROTOCOL", "HTTP/1.0")]))
            .unwrap()
            .unwrap();
        assert_eq!(p.head.version, Version::Http10);
        let p = parse_all(&packet(&[("HTTP_CONNECTION", "close")]))
            .unwrap()
            .unwrap();
        assert!(!p.head.keep_alive);
    }

    #[test]
    fn a_raw_utf8_request_uri_is_escaped_not_refused() {
        let p = parse_all(&packet(&[("REQUEST_URI", "/caf\u{e9} x?q=\u{e9}")]))
            .unwrap()
            .unwrap();
        assert_eq!(&p.head.target[..], b"/caf%C3%A9%20x?q=%C3%A9");
        assert_eq!(&p.head.path[..], b"/caf%C3%A9%20x");
        // the environ's REQUEST_URI stays as the front end sent it
        assert_eq!(&p.vars[0].1[..], "/caf\u{e9} x?q=\u{e9}".as_bytes());
    }

    #[test]
    fn a_raw_query_string_is_escaped_like_the_request_uri() {
        // found by fuzz/ (uwsgi): QUERY_STRING went to the environ and the access log as sent,
        // control characters and all
        let p = parse_all(&packet(&[
            ("REQUEST_URI", "/p?a=1"),
            ("QUERY_STRING", "a=\r\n\u{e9} 1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(&p.head.query[..], b"a=%0D%0A%C3%A9%201");
        assert_eq!(&p.head.target[..], b"/p?a=1");
    }

    #[test]
    fn a_non_ip_remote_addr_is_passed_on_as_a_var() {
        let p = parse_all(&packet(&[("REMOTE_ADDR", "unix:")]))
            .unwrap()
            .unwrap();
        assert_eq!(p.client, None);
        assert_eq!(&p.vars[0].1[..], b"unix:");
    }

    #[test]
    fn a_modifier_other_than_zero_is_unsupported() {
        let mut bytes = packet(&[]);
        bytes[0] = 30;
        assert_eq!(
            parse_all(&bytes).unwrap_err(),
            RequestError::UwsgiModifier(30)
        );
        assert_eq!(RequestError::UwsgiModifier(30).status().0, 501);
    }

    #[test]
    fn lengths_overrunning_the_block_are_refused() {
        // a key length past the end of the block
        let mut block = vec![200, 0];
        block.extend_from_slice(b"KEY");
        let mut bytes = vec![0, block.len() as u8, 0, 0];
        bytes.extend_from_slice(&block);
        assert!(matches!(
            parse_all(&bytes),
            Err(RequestError::BadUwsgiPacket(_))
        ));
        // a value length past the end, and a lone length byte
        let mut bytes = packet(&[("K", "value")]);
        bytes[8] = 9;
        assert!(matches!(
            parse_all(&bytes),
            Err(RequestError::BadUwsgiPacket(_))
        ));
        assert!(matches!(
            parse_all(&[0, 1, 0, 0, 5]),
            Err(RequestError::BadUwsgiPacket(_))
        ));
        assert_eq!(RequestError::BadUwsgiPacket("x").status().0, 400);
    }

    #[test]
    fn malformed_values_are_refused() {
        let bad = [
            ("CONTENT_LENGTH", "12a"),
            ("CONTENT_LENGTH", "-1"),
            ("REQUEST_METHOD", "get me"),
            ("HTTP_X_A", "a\r\nb"),
            ("HTTP_", "x"),
            ("HTTP_A B", "x"),
        ];
        for (k, v) in bad {
            assert!(parse_all(&packet(&[(k, v)])).is_err(), "{k}={v:?}");
        }
        let twice = packet(&[("CONTENT_LENGTH", "1"), ("CONTENT_LENGTH", "2")]);
        assert!(parse_all(&twice).is_err());
        let empty_key = packet(&[("", "x")]);
        assert!(parse_all(&empty_key).is_err());
    }

    #[test]
    fn http_limits_apply_to_the_uri_and_the_header_vars() {
        let limits = Limits {
            request_line: 20,
            fields: 2,
            field_size: 16,
        };
        let long_uri = "/".repeat(30);
        let cases: [&[(&str, &str)]; 3] = [
            &[("REQUEST_URI", &long_uri)],
            &[("HTTP_A", "1"), ("HTTP_B", "2"), ("HTTP_C", "3")],
            &[("HTTP_A", "0123456789abcdef")],
        ];
        let want = [414, 431, 431];
        for (vars, code) in cases.iter().zip(want) {
            let err = parse(&mut BytesMut::from(&packet(vars)[..]), &limits).unwrap_err();
            assert_eq!(err.status().0, code, "{vars:?}");
        }
    }

    #[test]
    fn framing_doubles_of_the_cgi_vars_are_dropped() {
        let p = parse_all(&packet(&[
            ("HTTP_TRANSFER_ENCODING", "chunked"),
            ("HTTP_CONTENT_LENGTH", "9"),
            ("CONTENT_LENGTH", "3"),
            ("wsgi.input", "x"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(p.head.framing, Framing::Length(3));
        assert_eq!(p.head.headers.len(), 1);
        assert!(p.vars.is_empty());
    }
}
