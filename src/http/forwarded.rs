//! Who may speak for the client: the `--forwarded-allow-ips` / `--proxy-allow-from` address
//! lists, and what a trusted front end's `--secure-scheme-headers` say about the scheme.
//!
//! gunicorn 27 semantics, decided here once per request so that both bridges only read the
//! outcome (`Job::secure`):
//!
//! * A peer is trusted when its address is in the list (`*` = any); a unix-socket peer always
//!   is ("connections not associated with an IP address are treated as allowed").
//! * Only a trusted peer's secure-scheme headers count. The first one present decides the
//!   scheme (its value equal to the configured one: https, else http); every later one must
//!   agree or the request is refused with 400 (gunicorn's `InvalidSchemeHeaders`). An
//!   untrusted peer's are ignored, not refused.
//! * `X-Forwarded-For` and RFC 7239 `Forwarded` are *not* applied: gunicorn 27 never takes
//!   REMOTE_ADDR from a header (only from the PROXY protocol, `http::proxy_protocol`); they reach
//!   the app as ordinary headers.
//!
//! No I/O and no Python: everything here is tested from values.

use std::net::IpAddr;

use bytes::Bytes;

use super::error::RequestError;

/// An IP network in CIDR form; a bare address is a /32 (or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// Parses `10.0.0.0/8`, `::1` or `fd00::/8`. Like Python's `ip_network` (strict), host bits
    /// set below the prefix (`192.168.1.1/24`) are an error: such an entry is usually a typo.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (addr_text, prefix_text) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = addr_text
            .parse()
            .map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{text:?}: the prefix length must be at most {max}"))?,
            Some(_) => return Err(format!("{text:?} is not an IP address or network")),
        };
        // `contains` compares a dual-stack listener's `::ffff:a.b.c.d` peers as IPv4, so an
        // IPv4-mapped entry is kept as the IPv4 network it names; as IPv6 it never matched
        // anything (found with fuzz/, forwarded)
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        let net = Network { addr, prefix };
        if net.masked(addr) != bits(addr) {
            return Err(format!(
                "{text:?} has host bits set; did you mean {}/{prefix}?",
                net.network_address()
            ));
        }
        Ok(net)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // a dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; they are still IPv4 peers
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.addr.is_ipv4() && self.masked(ip) == bits(self.addr)
    }

    fn mask(&self) -> u128 {
        let width = if self.addr.is_ipv4() { 32 } else { 128 };
        let host_bits = width - u32::from(self.prefix);
        if host_bits >= 128 {
            0
        } else {
            (u128::MAX << host_bits) & (u128::MAX >> (128 - width))
        }
    }

    fn masked(&self, ip: IpAddr) -> u128 {
        bits(ip) & self.mask()
    }

    fn network_address(&self) -> IpAddr {
        let b = bits(self.addr) & self.mask();
        match self.addr {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(b as u32)),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(b)),
        }
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// `--forwarded-allow-ips` or `--proxy-allow-from`: addresses and networks, or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AllowList {
    any: bool,
    networks: Vec<Network>,
}

impl AllowList {
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Self, String> {
        let mut list = AllowList::default();
        for item in items {
            match item.as_ref().trim() {
                "" => {}
                "*" => list.any = true,
                other => list.networks.push(Network::parse(other)?),
            }
        }
        Ok(list)
    }

    /// Loopback only: gunicorn's default for both lists.
    pub fn loopback() -> Self {
        AllowList {
            any: false,
            networks: vec![
                Network {
                    addr: IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
                    prefix: 32,
                },
                Network {
                    addr: IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
        }
    }

    /// `peer` is `None` for a unix-socket peer, which gunicorn always trusts: only a local
    /// process (normally the front end itself) can connect there.
    pub fn allows(&self, peer: Option<IpAddr>) -> bool {
        match peer {
            None => true,
            Some(ip) => self.any || self.networks.iter().any(|n| n.contains(ip)),
        }
    }
}

/// `--secure-scheme-headers`: header names (matched case-insensitively) and the exact value
/// that means "the client used HTTPS".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureSchemes(Vec<(String, String)>);

impl Default for SecureSchemes {
    /// gunicorn's default dict.
    fn default() -> Self {
        SecureSchemes(vec![
            ("X-FORWARDED-PROTOCOL".into(), "ssl".into()),
            ("X-FORWARDED-PROTO".into(), "https".into()),
            ("X-FORWARDED-SSL".into(), "on".into()),
        ])
    }
}

impl SecureSchemes {
    /// From the `repr` of a conf file's dict of strings, e.g. `{'X-FORWARDED-PROTO': 'https'}`.
    pub fn from_repr(repr: &str) -> Result<Self, String> {
        parse_str_dict(repr).map(SecureSchemes)
    }

    /// Whether the request counts as HTTPS. `listener_secure` is the connection's own scheme;
    /// `trusted` whether the peer is in `--forwarded-allow-ips`.
    pub fn secure(
        &self,
        headers: &[(Bytes, Bytes)],
        listener_secure: bool,
        trusted: bool,
    ) -> Result<bool, RequestError> {
        if !trusted || self.0.is_empty() {
            return Ok(listener_secure);
        }
        let mut decided: Option<bool> = None;
        for (name, value) in headers {
            let Some((_, wanted)) = self
                .0
                .iter()
                .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(name))
            else {
                continue;
            };
            let says = value[..] == *wanted.as_bytes();
            match decided {
                Some(prev) if prev != says => return Err(RequestError::ContradictoryScheme),
                _ => decided = Some(says),
            }
        }
        Ok(decided.unwrap_or(listener_secure))
    }
}

/// Parses the `repr` of a Python dict whose keys and values are all strings. Anything else is
/// an error naming what was found, so a config mistake shows at startup, not per request.
pub fn parse_str_dict(repr: &str) -> Result<Vec<(String, String)>, String> {
    let mut rest = repr.trim();
    rest = rest
        .strip_prefix('{')
        .and_then(|r| r.strip_suffix('}'))
        .ok_or("expected a dict of strings, e.g. {'X-FORWARDED-PROTO': 'https'}")?;
    let mut pairs = Vec::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(pairs);
        }
        let (key, after) = py_string(rest)?;
        rest = after
            .trim_start()
            .strip_prefix(':')
            .ok_or("expected ':' after a key")?;
        let (value, after) = py_string(rest.trim_start())?;
        pairs.push((key.to_ascii_uppercase(), value));
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None if rest.is_empty() => return Ok(pairs),
            None => return Err("expected ',' between entries".into()),
        }
    }
}

/// One quoted Python string literal (as `repr` writes them) at the start of `s`.
fn py_string(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('\'' | '"'))) => q,
        _ => return Err(format!("expected a string, found {s:?}")),
    };
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '\'' | '"'))) => out.push(e),
                Some((_, 't')) => out.push('\t'),
                _ => return Err("unsupported escape in a string".into()),
            },
            c if c == quote => return Ok((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    Err("unterminated string".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn hdrs(list: &[(&'static str, &'static str)]) -> Vec<(Bytes, Bytes)> {
        list.iter()
            .map(|(n, v)| {
                (
                    Bytes::from_static(n.as_bytes()),
                    Bytes::from_static(v.as_bytes()),
                )
            })
            .collect()
    }

    #[test]
    fn cidr_networks_contain_their_addresses_only() {
        let net = Network::parse("10.0.0.0/8").unwrap();
        assert!(net.contains(ip("10.255.1.2")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let v6 = Network::parse("fd00::/8").unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!(Network::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Network::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        assert!(Network::parse("127.0.0.1")
            .unwrap()
            .contains(ip("127.0.0.1")));
        assert!(!Network::parse("127.0.0.1")
            .unwrap()
            .contains(ip("127.0.0.2")));
    }

    #[test]
    fn host_bits_and_bad_prefixes_are_refused_like_python_ip_network() {
        let err = Network::parse("192.168.1.1/24").unwrap_err();
        assert!(err.contains("192.168.1.0/24"), "{err}");
        assert!(Network::parse("10.0.0.0/33").is_err());
        assert!(Network::parse("10.0.0.0/").is_err());
        assert!(Network::parse("10.0.0.0/+8").is_err());
        assert!(Network::parse("proxy.local").is_err());
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let list = AllowList::loopback();
        assert!(list.allows(Some(ip("::ffff:127.0.0.1"))));
        assert!(list.allows(Some(ip("::1"))));
        assert!(!list.allows(Some(ip("10.0.0.1"))));
    }

    #[test]
    fn ipv4_mapped_entries_match_their_ipv4_peers() {
        let list = AllowList::parse(&["::ffff:10.0.0.1", "::ffff:192.168.0.0/120"]).unwrap();
        assert!(list.allows(Some(ip("10.0.0.1"))));
        assert!(list.allows(Some(ip("::ffff:10.0.0.1"))));
        assert!(list.allows(Some(ip("192.168.0.77"))));
        assert!(!list.allows(Some(ip("10.0.0.2"))));
        let err = Network::parse("::ffff:10.0.0.1/120").unwrap_err();
        assert!(err.contains("did you mean 10.0.0.0/24?"), "{err}");
    }

    #[test]
    fn unix_peers_are_always_trusted_and_star_trusts_everyone() {
        let none = AllowList::parse::<&str>(&[]).unwrap();
        assert!(none.allows(None));
        assert!(!none.allows(Some(ip("127.0.0.1"))));
        let any = AllowList::parse(&["*"]).unwrap();
        assert!(any.allows(Some(ip("203.0.113.9"))));
    }

    #[test]
    fn a_trusted_peers_secure_header_makes_the_request_https() {
        let s = SecureSchemes::default();
        let h = hdrs(&[("X-Forwarded-Proto", "https")]);
        assert_eq!(s.secure(&h, false, true), Ok(true));
        // the value is compared exactly, as gunicorn does
        let h = hdrs(&[("x-forwarded-proto", "HTTPS")]);
        assert_eq!(s.secure(&h, false, true), Ok(false));
        assert_eq!(s.secure(&[], false, true), Ok(false));
    }

    #[test]
    fn an_untrusted_peers_scheme_headers_are_ignored_not_refused() {
        let s = SecureSchemes::default();
        let h = hdrs(&[("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "off")]);
        assert_eq!(s.secure(&h, false, false), Ok(false));
    }

    #[test]
    fn contradictory_scheme_headers_are_refused() {
        let s = SecureSchemes::default();
        let h = hdrs(&[("X-Forwarded-Ssl", "on"), ("X-Forwarded-Proto", "http")]);
        assert_eq!(
            s.secure(&h, false, true),
            Err(RequestError::ContradictoryScheme)
        );
        let agree = hdrs(&[("X-Forwarded-Ssl", "on"), ("X-Forwarded-Proto", "https")]);
        assert_eq!(s.secure(&agree, false, true), Ok(true));
    }

    #[test]
    fn a_trusted_proxy_can_say_http_on_a_secure_listener() {
        let s = SecureSchemes::default();
        let h = hdrs(&[("X-Forwarded-Proto", "http")]);
        assert_eq!(s.secure(&h, true, true), Ok(false));
        assert_eq!(s.secure(&[], true, true), Ok(true));
    }

    #[test]
    fn secure_scheme_dicts_parse_from_their_repr() {
        let s = SecureSchemes::from_repr("{'X-FORWARDED-PROTO': 'https', \"x-scheme\": 'it\\'s'}")
            .unwrap();
        assert_eq!(
            s.0,
            vec![
                ("X-FORWARDED-PROTO".to_owned(), "https".to_owned()),
                ("X-SCHEME".to_owned(), "it's".to_owned())
            ]
        );
        assert_eq!(SecureSchemes::from_repr("{}").unwrap().0, vec![]);
        assert!(SecureSchemes::from_repr("{'A': 1}").is_err());
        assert!(SecureSchemes::from_repr("{'A' 'b'}").is_err());
        assert!(SecureSchemes::from_repr("['A']").is_err());
    }
}
