//! The PROXY protocol (HAProxy's, v1 text and v2 binary): a load balancer that terminates TCP
//! prepends one header to the connection naming the real client, before any HTTP.
//!
//! This module only parses bytes (`parse`); `http::edge` reads the socket, checks
//! `--proxy-allow-from` and swaps the connection's peer. gunicorn 27 semantics: the header is
//! looked for once, at connection start; a connection that does not start with one is served as
//! plain HTTP; which versions are looked for is `--proxy-protocol` (off, v1, v2, auto = both).
//! Malformed headers are refused (400). Where gunicorn deviates from the spec we say so below.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::RequestError;

/// The v2 header's fixed signature.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line the spec allows, CRLF included.
const V1_MAX_LINE: usize = 107;

/// `--proxy-protocol`, as the validator normalised it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Off,
    V1,
    V2,
    Auto,
}

impl Mode {
    pub fn from_setting(value: &str) -> Option<Self> {
        Some(match value {
            "off" => Mode::Off,
            "v1" => Mode::V1,
            "v2" => Mode::V2,
            "auto" => Mode::Auto,
            _ => return None,
        })
    }

    fn v1(self) -> bool {
        matches!(self, Mode::V1 | Mode::Auto)
    }

    fn v2(self) -> bool {
        matches!(self, Mode::V2 | Mode::Auto)
    }
}

/// What a PROXY header said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    /// gunicorn's PROXY_PROTOCOL value: "TCP4", "TCP6", or for headers that carry no
    /// addresses "LOCAL" (v2 health checks), "UNSPEC" (v2) or "UNKNOWN" (v1).
    pub protocol: &'static str,
    /// The client and the address it connected to; `None` when the header carries none, and
    /// then the connection keeps its socket peer.
    pub addresses: Option<(SocketAddr, SocketAddr)>,
}

/// The outcome of looking at the start of a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse {
    /// The bytes so far may still begin a PROXY header: read more.
    NeedMore,
    /// The connection does not start with a PROXY header (of an enabled version).
    NotProxy,
    /// A whole header, `len` bytes long (HTTP starts after it).
    Header { len: usize, header: ProxyHeader },
}

/// Looks for a PROXY header at the start of `buf`. `Err` is a header that started (so the
/// connection is not plain HTTP) but is malformed. Call `is_header_start` first to decide
/// whether the peer must be authorised.
pub fn parse(buf: &[u8], mode: Mode) -> Result<Parse, RequestError> {
    match start(buf, mode) {
        Start::No => Ok(Parse::NotProxy),
        Start::Maybe => Ok(Parse::NeedMore),
        Start::V1 => parse_v1(buf),
        Start::V2 => parse_v2(buf),
    }
}

/// Whether `buf` definitely begins a PROXY header of an enabled version (gunicorn checks the
/// source address at this point, before parsing the rest).
pub fn is_header_start(buf: &[u8], mode: Mode) -> bool {
    matches!(start(buf, mode), Start::V1 | Start::V2)
}

enum Start {
    No,
    Maybe,
    V1,
    V2,
}

fn start(buf: &[u8], mode: Mode) -> Start {
    const V1_PREFIX: &[u8] = b"PROXY ";
    let mut maybe = false;
    if mode.v2() {
        if buf.starts_with(V2_SIGNATURE) {
            return Start::V2;
        }
        maybe |= V2_SIGNATURE.starts_with(buf);
    }
    if mode.v1() {
        if buf.starts_with(V1_PREFIX) {
            return Start::V1;
        }
        maybe |= V1_PREFIX.starts_with(buf);
    }
    if maybe {
        Start::Maybe
    } else {
        Start::No
    }
}

fn bad(why: &'static str) -> RequestError {
    RequestError::BadProxyHeader(why)
}

/// `PROXY TCP4 src dst sport dport\r\n`.
fn parse_v1(buf: &[u8]) -> Result<Parse, RequestError> {
    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
        if buf.len() >= V1_MAX_LINE {
            return Err(bad("v1 line longer than 107 bytes"));
        }
        return Ok(Parse::NeedMore);
    };
    if end + 2 > V1_MAX_LINE {
        return Err(bad("v1 line longer than 107 bytes"));
    }
    let line = std::str::from_utf8(&buf[..end]).map_err(|_| bad("v1 line is not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    let len = end + 2;
    // The spec has receivers accept UNKNOWN (a balancer's own health check) and ignore the
    // rest of the line; gunicorn refuses it. We accept it and keep the socket peer.
    if fields.get(1) == Some(&"UNKNOWN") {
        let header = ProxyHeader {
            protocol: "UNKNOWN",
            addresses: None,
        };
        return Ok(Parse::Header { len, header });
    }
    let [_, proto, src, dst, sport, dport] = fields[..] else {
        return Err(bad("v1 line does not have six fields"));
    };
    let addr = |text: &str| -> Result<IpAddr, RequestError> {
        match proto {
            "TCP4" => text.parse::<Ipv4Addr>().map(IpAddr::V4),
            "TCP6" => text.parse::<Ipv6Addr>().map(IpAddr::V6),
            _ => return Err(bad("v1 protocol is not TCP4, TCP6 or UNKNOWN")),
        }
        .map_err(|_| bad("v1 address does not match its protocol"))
    };
    let port = |text: &str| -> Result<u16, RequestError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("v1 port is not a number"));
        }
        text.parse().map_err(|_| bad("v1 port out of range"))
    };
    let client = SocketAddr::new(addr(src)?, port(sport)?);
    let proxy = SocketAddr::new(addr(dst)?, port(dport)?);
    let header = ProxyHeader {
        protocol: if proto == "TCP4" { "TCP4" } else { "TCP6" },
        addresses: Some((client, proxy)),
    };
    Ok(Parse::Header { len, header })
}

/// Signature, version/command, family/transport, length, addresses, TLVs (ignored).
fn parse_v2(buf: &[u8]) -> Result<Parse, RequestError> {
    let Some(&[ver_cmd, fam_proto, hi, lo]) = buf.get(12..16) else {
        return Ok(Parse::NeedMore);
    };
    if ver_cmd >> 4 != 2 {
        return Err(bad("v2 version is not 2"));
    }
    let len = 16 + usize::from(u16::from_be_bytes([hi, lo]));
    let Some(body) = buf.get(16..len) else {
        return Ok(Parse::NeedMore);
    };
    match ver_cmd & 0x0f {
        // LOCAL: the balancer talking for itself (health checks); no client to name
        0 => {
            let header = ProxyHeader {
                protocol: "LOCAL",
                addresses: None,
            };
            return Ok(Parse::Header { len, header });
        }
        1 => {}
        _ => return Err(bad("v2 command is neither LOCAL nor PROXY")),
    }
    // as gunicorn: only stream transports (TCP); checked before the family, so an all-zero
    // UNSPEC byte is refused too
    if fam_proto & 0x0f != 1 {
        return Err(bad("v2 transport is not STREAM"));
    }
    let (protocol, addresses) = match fam_proto >> 4 {
        0 => ("UNSPEC", None),
        1 => {
            let a: &[u8; 12] = body
                .get(..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(bad("v2 IPv4 addresses truncated"))?;
            let ip = |o: usize| IpAddr::V4(Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]));
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            let pair = (
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            );
            ("TCP4", Some(pair))
        }
        2 => {
            let a: &[u8; 36] = body
                .get(..36)
                .and_then(|s| s.try_into().ok())
                .ok_or(bad("v2 IPv6 addresses truncated"))?;
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&a[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([a[o], a[o + 1]]);
            let pair = (
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            );
            ("TCP6", Some(pair))
        }
        _ => return Err(bad("v2 address family is not INET or INET6")),
    };
    let header = ProxyHeader {
        protocol,
        addresses,
    };
    Ok(Parse::Header { len, header })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn v2(cmd: u8, fam: u8, addrs: &[u8]) -> Vec<u8> {
        let mut b = V2_SIGNATURE.to_vec();
        b.push(0x20 | cmd);
        b.push(fam);
        b.extend_from_slice(&(addrs.len() as u16).to_be_bytes());
        b.extend_from_slice(addrs);
        b
    }

    #[test]
    fn v1_tcp4_names_client_and_proxy() {
        let raw = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n";
        let Parse::Header { len, header } = parse(raw, Mode::Auto).unwrap() else {
            panic!("expected a header");
        };
        assert_eq!(&raw[len..len + 3], b"GET");
        assert_eq!(header.protocol, "TCP4");
        assert_eq!(
            header.addresses,
            Some((sa("192.0.2.1:56324"), sa("198.51.100.2:443")))
        );
    }

    #[test]
    fn v1_tcp6_and_unknown() {
        let raw = b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n";
        let Ok(Parse::Header { header, .. }) = parse(raw, Mode::V1) else {
            panic!("expected a header");
        };
        assert_eq!(header.addresses.unwrap().0, sa("[2001:db8::1]:1"));
        let Ok(Parse::Header { header, len }) = parse(b"PROXY UNKNOWN\r\nGET", Mode::V1) else {
            panic!("expected a header");
        };
        assert_eq!(
            (header.protocol, header.addresses, len),
            ("UNKNOWN", None, 15)
        );
    }

    #[test]
    fn v1_malformed_lines_are_refused() {
        for raw in [
            &b"PROXY TCP4 192.0.2.1 198.51.100.2 56324\r\n"[..],
            b"PROXY TCP4 2001:db8::1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 65536 2\r\n",
            b"PROXY TCP4 192.0.2.1 198.51.100.2 +1 2\r\n",
            b"PROXY UDP4 192.0.2.1 198.51.100.2 1 2\r\n",
            b"PROXY TCP4  192.0.2.1 198.51.100.2 1 2\r\n",
        ] {
            assert!(
                matches!(parse(raw, Mode::Auto), Err(RequestError::BadProxyHeader(_))),
                "{raw:?}"
            );
        }
        let long = [&b"PROXY TCP4 "[..], &[b'1'; 120]].concat();
        assert!(parse(&long, Mode::V1).is_err());
    }

    #[test]
    fn partial_headers_ask_for_more() {
        assert_eq!(parse(b"PRO", Mode::V1), Ok(Parse::NeedMore));
        assert_eq!(parse(b"PROXY TCP4 1.2", Mode::V1), Ok(Parse::NeedMore));
        assert_eq!(parse(b"\r\n\r\n\0", Mode::V2), Ok(Parse::NeedMore));
        let full = v2(1, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 0, 80, 1, 187]);
        for cut in 0..full.len() {
            assert_eq!(parse(&full[..cut], Mode::V2), Ok(Parse::NeedMore), "{cut}");
        }
    }

    #[test]
    fn plain_http_is_not_a_proxy_header() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n", Mode::Auto),
            Ok(Parse::NotProxy)
        );
        assert_eq!(parse(b"P", Mode::V2), Ok(Parse::NotProxy));
        // v1 only: a v2 signature is not looked for (and HTTP parsing will refuse it)
        assert_eq!(parse(&v2(0, 0, &[]), Mode::V1), Ok(Parse::NotProxy));
        assert!(!is_header_start(b"GET /", Mode::Auto));
        assert!(is_header_start(b"PROXY ", Mode::Auto));
    }

    #[test]
    fn v2_inet_and_inet6_with_tlvs() {
        let mut addrs = vec![192, 0, 2, 1, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb];
        addrs.extend_from_slice(&[0x04, 0, 1, 0]); // a NOOP TLV, ignored
        let mut raw = v2(1, 0x11, &addrs);
        let header_len = raw.len();
        raw.extend_from_slice(b"GET");
        let Ok(Parse::Header { len, header }) = parse(&raw, Mode::Auto) else {
            panic!("expected a header");
        };
        assert_eq!(len, header_len);
        assert_eq!(
            header,
            ProxyHeader {
                protocol: "TCP4",
                addresses: Some((sa("192.0.2.1:56324"), sa("10.0.0.1:443")))
            }
        );
        let mut a6 = [0u8; 36];
        a6[15] = 1; // ::1
        a6[0] = 0x20;
        a6[1] = 0x01; // 2001::
        a6[32..34].copy_from_slice(&8080u16.to_be_bytes());
        let Ok(Parse::Header { header, .. }) = parse(&v2(1, 0x21, &a6), Mode::V2) else {
            panic!("expected a header");
        };
        let (client, proxy) = header.addresses.unwrap();
        assert_eq!(client, sa("[2001::1]:8080"));
        assert_eq!(proxy.ip(), "::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn v2_local_and_unspec_keep_the_socket_peer() {
        let Ok(Parse::Header { header, .. }) = parse(&v2(0, 0, &[]), Mode::V2) else {
            panic!("expected a header");
        };
        assert_eq!((header.protocol, header.addresses), ("LOCAL", None));
        let Ok(Parse::Header { header, .. }) = parse(&v2(1, 0x01, &[]), Mode::V2) else {
            panic!("expected a header");
        };
        assert_eq!((header.protocol, header.addresses), ("UNSPEC", None));
    }

    #[test]
    fn v2_malformed_headers_are_refused() {
        let mut wrong_version = v2(1, 0x11, &[0; 12]);
        wrong_version[12] = 0x11;
        for raw in [
            wrong_version,
            v2(2, 0x11, &[0; 12]),  // unknown command
            v2(1, 0x12, &[0; 12]),  // datagram
            v2(1, 0x11, &[0; 8]),   // truncated IPv4
            v2(1, 0x21, &[0; 12]),  // truncated IPv6
            v2(1, 0x31, &[0; 216]), // AF_UNIX
            v2(1, 0x00, &[]),       // UNSPEC transport: gunicorn refuses it
        ] {
            assert!(
                matches!(
                    parse(&raw, Mode::Auto),
                    Err(RequestError::BadProxyHeader(_))
                ),
                "{raw:?}"
            );
        }
    }
}
