//! Response heads from app-supplied status and headers, shared by both bridges: header names
//! and values checked (no header injection), hop-by-hop fields dropped, Content-Length parsed,
//! and everything serialised to wire bytes on the app thread, so the I/O thread never needs
//! Python.

use bytes::Bytes;

use crate::exchange::ResponseHead;

/// Headers the server owns (RFC 9110 §7.6.1); an app's copy is dropped, except that
/// `Connection: close` is honoured.
const HOP_BY_HOP: [&[u8]; 8] = [
    b"connection",
    b"keep-alive",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"te",
    b"trailers",
    b"transfer-encoding",
    b"upgrade",
];

/// Why the app's header was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HeaderError {
    #[error("invalid header name {0:?}")]
    Name(String),
    #[error("invalid value for header {name:?}: {value:?}")]
    Value { name: String, value: String },
    #[error("invalid Content-Length {0:?}")]
    ContentLength(String),
}

/// Builds one `ResponseHead`.
pub struct HeadBuilder {
    head: ResponseHead,
}

impl HeadBuilder {
    /// `status` is the status line's tail as it goes on the wire, e.g. `200 OK`.
    pub fn new(code: u16, status: Bytes, headers: usize) -> Self {
        HeadBuilder {
            head: ResponseHead {
                code,
                status,
                headers: Vec::with_capacity(32 * headers),
                content_length: None,
                close: false,
            },
        }
    }

    /// A status line for an ASGI status code: the code and its standard reason phrase.
    pub fn for_code(code: u16, headers: usize) -> Self {
        let reason = http::StatusCode::from_u16(code)
            .ok()
            .and_then(|c| c.canonical_reason())
            .unwrap_or("");
        let mut status = Vec::with_capacity(4 + reason.len());
        status.extend_from_slice(itoa::Buffer::new().format(code).as_bytes());
        status.push(b' ');
        status.extend_from_slice(reason.as_bytes());
        HeadBuilder::new(code, Bytes::from(status), headers)
    }

    /// Adds one header, or refuses it.
    pub fn header(&mut self, name: &[u8], value: &[u8]) -> Result<(), HeaderError> {
        if !is_token(name) {
            return Err(HeaderError::Name(
                String::from_utf8_lossy(name).into_owned(),
            ));
        }
        if !value
            .iter()
            .all(|&b| (b >= 0x20 && b != 0x7f) || b == b'\t')
        {
            return Err(HeaderError::Value {
                name: String::from_utf8_lossy(name).into_owned(),
                value: String::from_utf8_lossy(value).into_owned(),
            });
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let digits = value.trim_ascii();
            let n = std::str::from_utf8(digits)
                .ok()
                .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|d| d.parse::<u64>().ok());
            let Some(n) = n else {
                return Err(HeaderError::ContentLength(
                    String::from_utf8_lossy(value).into_owned(),
                ));
            };
            self.head.content_length = Some(n);
        } else if HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h)) {
            if name.eq_ignore_ascii_case(b"connection")
                && value
                    .split(|&b| b == b',')
                    .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"))
            {
                self.head.close = true;
            }
            return Ok(());
        }
        let h = &mut self.head.headers;
        h.extend_from_slice(name);
        h.extend_from_slice(b": ");
        h.extend_from_slice(value);
        h.extend_from_slice(b"\r\n");
        Ok(())
    }

    pub fn finish(self) -> ResponseHead {
        self.head
    }
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_injection_is_refused() {
        let mut b = HeadBuilder::for_code(200, 1);
        assert!(b.header(b"X-A", b"caf\xe9").is_ok());
        assert!(matches!(
            b.header(b"X-A", b"a\r\nb"),
            Err(HeaderError::Value { .. })
        ));
        assert!(matches!(b.header(b"X A", b"v"), Err(HeaderError::Name(_))));
        assert!(matches!(
            b.header(b"content-length", b"1x"),
            Err(HeaderError::ContentLength(_))
        ));
    }

    #[test]
    fn hop_by_hop_headers_are_dropped_and_close_kept() {
        let mut b = HeadBuilder::for_code(200, 3);
        b.header(b"Transfer-Encoding", b"chunked").unwrap();
        b.header(b"Connection", b"keep-alive, close").unwrap();
        b.header(b"content-length", b" 12 ").unwrap();
        let head = b.finish();
        assert!(head.close);
        assert_eq!(head.content_length, Some(12));
        assert_eq!(head.headers, b"content-length:  12 \r\n");
    }

    #[test]
    fn status_lines_carry_the_standard_reason() {
        assert_eq!(
            &HeadBuilder::for_code(404, 0).finish().status[..],
            b"404 Not Found"
        );
        assert_eq!(&HeadBuilder::for_code(299, 0).finish().status[..], b"299 ");
    }
}
