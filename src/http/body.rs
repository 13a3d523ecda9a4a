//! Decodes a request body (Content-Length or chunked) out of the connection's read buffer.
//!
//! A push-style state machine: the connection appends bytes to the buffer and asks for the next
//! piece. Data slices are split off the buffer (no copy). Chunked syntax is checked strictly —
//! sizes, line ends, extensions and trailers — because a lenient decoder is how one request
//! smuggles another past a proxy.

use bytes::{Bytes, BytesMut};

use super::error::RequestError;
use super::request::{memchr, Framing};

/// Longest chunk-size line (size + extensions) we accept.
const MAX_CHUNK_LINE: usize = 4096;
/// Most trailer bytes we accept after the last chunk.
const MAX_TRAILERS: usize = 64 * 1024;

#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// A piece of body data.
    Data(Bytes),
    /// The buffer holds no complete next piece; read more from the socket.
    NeedMore,
    /// The body is complete; the buffer now starts at the next request.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunked {
    Size,
    Data(u64),
    DataEnd,
    Trailers(usize),
}

/// A body decoder with an optional cap on the decoded size (`--limit-request-body`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decoder {
    state: State,
    /// Decoded bytes still allowed; `u64::MAX` when unlimited.
    left: u64,
    /// The configured limit, for the error message (0 = unlimited).
    limit: u64,
}

impl Decoder {
    pub fn new(framing: Framing) -> Self {
        Decoder::with_limit(framing, 0)
    }

    /// A decoder that fails with `BodyTooLarge` once more than `limit` bytes (0 = unlimited)
    /// have been decoded. Content-Length bodies are refused before any decoding (see
    /// `http::edge`); this catches chunked bodies, whose size is only known as they arrive.
    pub fn with_limit(framing: Framing, limit: u64) -> Self {
        Decoder {
            state: State::new(framing),
            left: if limit == 0 { u64::MAX } else { limit },
            limit,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Takes the next piece off `buf`. At most `max` data bytes are returned at once.
    pub fn decode(&mut self, buf: &mut BytesMut, max: usize) -> Result<Step, RequestError> {
        let step = self.state.decode(buf, max)?;
        if let Step::Data(d) = &step {
            self.left = self
                .left
                .checked_sub(d.len() as u64)
                .ok_or(RequestError::BodyTooLarge { limit: self.limit })?;
        }
        Ok(step)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Chunked(Chunked),
    Done,
}

impl State {
    pub fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunked::Size),
        }
    }

    /// Takes the next piece off `buf`. At most `max` data bytes are returned at once.
    fn decode(&mut self, buf: &mut BytesMut, max: usize) -> Result<Step, RequestError> {
        loop {
            match *self {
                State::Done => return Ok(Step::Done),
                State::Length(0) => {
                    *self = State::Done;
                }
                State::Length(remaining) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = take_len(remaining, buf.len(), max);
                    *self = State::Length(remaining - n as u64);
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                State::Chunked(Chunked::Size) => {
                    let Some(nl) = memchr(b'\n', buf) else {
                        if buf.len() > MAX_CHUNK_LINE {
                            return Err(RequestError::BadChunk("chunk size line too long"));
                        }
                        return Ok(Step::NeedMore);
                    };
                    // the same limit whether the line arrived whole or in pieces
                    if nl > MAX_CHUNK_LINE {
                        return Err(RequestError::BadChunk("chunk size line too long"));
                    }
                    let size = parse_chunk_size_line(&buf[..=nl])?;
                    let _ = buf.split_to(nl + 1);
                    *self = State::Chunked(if size == 0 {
                        Chunked::Trailers(0)
                    } else {
                        Chunked::Data(size)
                    });
                }
                State::Chunked(Chunked::Data(remaining)) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let n = take_len(remaining, buf.len(), max);
                    let left = remaining - n as u64;
                    *self = State::Chunked(if left == 0 {
                        Chunked::DataEnd
                    } else {
                        Chunked::Data(left)
                    });
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                State::Chunked(Chunked::DataEnd) => {
                    if buf.len() < 2 {
                        if buf.first().is_some_and(|&b| b != b'\r') {
                            return Err(RequestError::BadChunk("chunk data not followed by CRLF"));
                        }
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(RequestError::BadChunk("chunk data not followed by CRLF"));
                    }
                    let _ = buf.split_to(2);
                    *self = State::Chunked(Chunked::Size);
                }
                State::Chunked(Chunked::Trailers(seen)) => {
                    let Some(nl) = memchr(b'\n', buf) else {
                        if seen + buf.len() > MAX_TRAILERS {
                            return Err(RequestError::BadChunk("trailers too large"));
                        }
                        return Ok(Step::NeedMore);
                    };
                    let line = &buf[..=nl];
                    if nl == 0 || line[nl - 1] != b'\r' {
                        return Err(RequestError::BadChunk("bare LF in trailers"));
                    }
                    let content = &line[..nl - 1];
                    let done = content.is_empty();
                    if !done {
                        check_trailer_field(content)?;
                    }
                    let _ = buf.split_to(nl + 1);
                    if seen + nl + 1 > MAX_TRAILERS {
                        return Err(RequestError::BadChunk("trailers too large"));
                    }
                    *self = if done {
                        State::Done
                    } else {
                        State::Chunked(Chunked::Trailers(seen + nl + 1))
                    };
                }
            }
        }
    }
}

fn take_len(remaining: u64, available: usize, max: usize) -> usize {
    let remaining = usize::try_from(remaining).unwrap_or(usize::MAX);
    remaining.min(available).min(max)
}

/// `chunk-size [ chunk-ext ] CRLF` with `chunk-size = 1*HEXDIG`.
fn parse_chunk_size_line(line: &[u8]) -> Result<u64, RequestError> {
    let Some(content) = line.strip_suffix(b"\r\n") else {
        return Err(RequestError::BadChunk("chunk size line not ended by CRLF"));
    };
    let digits = content
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(content.len());
    if digits == 0 {
        return Err(RequestError::BadChunk("invalid chunk size"));
    }
    // leading zeros are allowed in any number; only what follows them must fit in 64 bits
    let zeros = content[..digits].iter().take_while(|&&b| b == b'0').count();
    if digits - zeros > 16 {
        return Err(RequestError::BadChunk("chunk size too large"));
    }
    let mut size: u64 = 0;
    for &b in &content[zeros..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(d)))
            .ok_or(RequestError::BadChunk("chunk size too large"))?;
    }
    // we ignore extensions but refuse anything that is not one, so `5 x`, `5;` or `5\x00`
    // cannot be read two ways by two parsers
    if !is_chunk_ext(&content[digits..]) {
        return Err(RequestError::BadChunk("invalid chunk extension"));
    }
    Ok(size)
}

/// RFC 9112 §7.1.1: `chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )`
/// with a token name and a token or quoted-string value. Whitespace is allowed only around
/// `;` and `=` (BWS), never trailing on its own.
fn is_chunk_ext(mut ext: &[u8]) -> bool {
    fn skip_bws(v: &[u8]) -> &[u8] {
        let n = v.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        &v[n..]
    }
    fn take_token(v: &[u8]) -> Option<(&[u8], &[u8])> {
        let n = v.iter().take_while(|&&b| is_tchar(b)).count();
        (n > 0).then(|| v.split_at(n))
    }
    while !ext.is_empty() {
        let Some(rest) = skip_bws(ext).strip_prefix(b";") else {
            return false;
        };
        let Some((_name, rest)) = take_token(skip_bws(rest)) else {
            return false;
        };
        let after_name = skip_bws(rest);
        ext = match after_name.strip_prefix(b"=") {
            Some(value) => {
                let value = skip_bws(value);
                let rest = if value.first() == Some(&b'"') {
                    quoted_string_end(value).map(|end| &value[end..])
                } else {
                    take_token(value).map(|(_, rest)| rest)
                };
                let Some(rest) = rest else { return false };
                rest
            }
            None => rest,
        };
    }
    true
}

/// Length of the quoted-string at the start of `v` (RFC 9110 §5.6.4), if it is one.
fn quoted_string_end(v: &[u8]) -> Option<usize> {
    let mut i = 1;
    while i < v.len() {
        match v[i] {
            b'"' => return Some(i + 1),
            b'\\' => {
                // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                let next = *v.get(i + 1)?;
                if (next < 0x20 && next != b'\t') || next == 0x7f {
                    return None;
                }
                i += 2;
            }
            b'\t' | b' ' | 0x21..=0x7e | 0x80..=0xff => i += 1,
            _ => return None,
        }
    }
    None
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_trailer_field(line: &[u8]) -> Result<(), RequestError> {
    let Some(colon) = memchr(b':', line) else {
        return Err(RequestError::BadChunk("invalid trailer field"));
    };
    let name = &line[..colon];
    // RFC 9110 §6.5.1: fields that steer framing, routing or authentication may not arrive
    // after the body, where a proxy that already forwarded the head would never see them.
    const FORBIDDEN: [&[u8]; 6] = [
        b"host",
        b"content-length",
        b"transfer-encoding",
        b"trailer",
        b"authorization",
        b"te",
    ];
    if FORBIDDEN.iter().any(|f| name.eq_ignore_ascii_case(f)) {
        return Err(RequestError::BadChunk("forbidden trailer field"));
    }
    let name_ok = !name.is_empty() && name.iter().all(|&b| is_tchar(b));
    let value_ok = line[colon + 1..]
        .iter()
        .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    if name_ok && value_ok {
        Ok(())
    } else {
        Err(RequestError::BadChunk("invalid trailer field"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(framing: Framing, raw: &[u8]) -> Result<(Vec<u8>, Vec<u8>), RequestError> {
        let mut dec = Decoder::new(framing);
        let mut buf = BytesMut::from(raw);
        let mut out = Vec::new();
        loop {
            match dec.decode(&mut buf, usize::MAX)? {
                Step::Data(d) => out.extend_from_slice(&d),
                Step::Done => return Ok((out, buf.to_vec())),
                Step::NeedMore => return Err(RequestError::IncompleteBody),
            }
        }
    }

    #[test]
    fn a_limited_decoder_refuses_the_byte_past_the_limit() {
        let mut at = Decoder::with_limit(Framing::Chunked, 5);
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"[..]);
        let mut got = Vec::new();
        while let Step::Data(d) = at.decode(&mut buf, usize::MAX).unwrap() {
            got.extend_from_slice(&d);
        }
        assert_eq!(got, b"abcde");
        let mut over = Decoder::with_limit(Framing::Chunked, 4);
        let mut buf = BytesMut::from(&b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"[..]);
        assert!(matches!(
            over.decode(&mut buf, usize::MAX),
            Ok(Step::Data(_))
        ));
        assert_eq!(
            over.decode(&mut buf, usize::MAX),
            Err(RequestError::BodyTooLarge { limit: 4 })
        );
        // 0 means unlimited
        let mut free = Decoder::with_limit(Framing::Length(3), 0);
        let mut buf = BytesMut::from(&b"abc"[..]);
        assert!(matches!(
            free.decode(&mut buf, usize::MAX),
            Ok(Step::Data(_))
        ));
    }

    #[test]
    fn length_body_stops_at_its_length() {
        let (body, rest) = decode_all(Framing::Length(5), b"helloGET").unwrap();
        assert_eq!(body, b"hello");
        assert_eq!(rest, b"GET");
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let raw = b"5;name=val\r\nhello\r\n6\r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (body, rest) = decode_all(Framing::Chunked, raw).unwrap();
        assert_eq!(body, b"hello world");
        assert_eq!(rest, b"NEXT");
    }

    #[test]
    fn chunked_body_arrives_in_pieces() {
        let raw = b"a\r\n0123456789\r\n0\r\n\r\n";
        let mut dec = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for &b in raw.iter() {
            buf.extend_from_slice(&[b]);
            while let Step::Data(d) = dec.decode(&mut buf, usize::MAX).unwrap() {
                out.extend_from_slice(&d);
            }
        }
        assert!(dec.is_done());
        assert_eq!(out, b"0123456789");
    }

    #[test]
    fn corrupt_chunks_are_refused() {
        for raw in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b" 5\r\nhello\r\n0\r\n\r\n",
            b"5 x\r\nhello\r\n0\r\n\r\n",
            b"fffffffffffffffff\r\n",
            b"5\r\nhello\r\n0\r\nbad trailer\r\n\r\n",
            b"-1\r\n",
            b"5\r\nhello\r\n0 \r\n\r\n",
            b"5\r\nhello\r\n0\r\nContent-Length: 9\r\n\r\n",
        ] {
            assert!(
                matches!(
                    decode_all(Framing::Chunked, raw),
                    Err(RequestError::BadChunk(_))
                ),
                "accepted {:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn chunk_extensions_follow_the_grammar() {
        for ok in [
            &b"5;a\r\nhello\r\n0\r\n\r\n"[..],
            b"5;a=1;b=2\r\nhello\r\n0\r\n\r\n",
            b"5 ; a = 1\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"x; \\\"y\"\r\nhello\r\n0;last\r\n\r\n",
        ] {
            let (body, _) = decode_all(Framing::Chunked, ok)
                .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(ok)));
            assert_eq!(body, b"hello");
        }
        for bad in [
            &b"5;\r\nhello\r\n0\r\n\r\n"[..],
            b"5;=1\r\nhello\r\n0\r\n\r\n",
            b"5;a=\r\nhello\r\n0\r\n\r\n",
            b"5;a b\r\nhello\r\n0\r\n\r\n",
            b"5;a=\"open\r\nhello\r\n0\r\n\r\n",
            b"5;a=b c\r\nhello\r\n0\r\n\r\n",
            b"5;a \r\nhello\r\n0\r\n\r\n",
            b"5;a\x00\r\nhello\r\n0\r\n\r\n",
        ] {
            assert!(
                decode_all(Framing::Chunked, bad).is_err(),
                "accepted {:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn leading_zeros_in_a_chunk_size_are_not_an_overflow() {
        let raw = b"000000000000000000005\r\nhello\r\n00000000000000000000\r\n\r\n";
        assert_eq!(decode_all(Framing::Chunked, raw).unwrap().0, b"hello");
        let wrap = b"10000000000000005\r\nhello\r\n0\r\n\r\n";
        assert!(decode_all(Framing::Chunked, wrap).is_err());
    }

    #[test]
    fn a_chunk_line_over_the_limit_is_refused_even_when_it_arrives_whole() {
        let mut raw = b"5;a=".to_vec();
        raw.resize(MAX_CHUNK_LINE + 10, b'x');
        raw.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert_eq!(
            decode_all(Framing::Chunked, &raw),
            Err(RequestError::BadChunk("chunk size line too long"))
        );
    }

    #[test]
    fn max_bounds_each_piece() {
        let mut dec = Decoder::new(Framing::Length(10));
        let mut buf = BytesMut::from(&b"0123456789"[..]);
        assert_eq!(
            dec.decode(&mut buf, 4).unwrap(),
            Step::Data(Bytes::from_static(b"0123"))
        );
    }
}
