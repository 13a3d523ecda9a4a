//! The four request-target forms (RFC 9112 §3.2) and the `host [":" port]` syntax that Host and
//! authorities share (RFC 3986 §3.2.2), checked from bytes.
//!
//! It decides which form a target is, whether the method allows that form, and what path,
//! query and authority the rest of the server sees. It never allocates and never looks at other
//! header fields: combining the authority with the Host field is `request`'s job.
use bytes::Bytes;

use super::error::RequestError;
use super::request::memchr;

/// A request-target split per its form; every field is a slice of the target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Path part, still percent-encoded; `/` when an absolute-form target has none, the whole
    /// `*` for asterisk-form and empty for authority-form.
    pub path: Bytes,
    pub query: Bytes,
    /// `host[:port]` of an absolute-form or authority-form target (userinfo left out): per
    /// RFC 9112 §3.2.2 it replaces whatever the Host field says.
    pub authority: Option<Bytes>,
}

/// Splits `target` per its form and checks the form is one `method` may use.
pub fn split(method: &[u8], target: &Bytes) -> Result<Target, RequestError> {
    let t = &target[..];
    // RFC 9110 §9.3.6: CONNECT takes authority-form only, and the port is required
    if method == b"CONNECT" {
        if !is_host_port(t, Port::Required) {
            return Err(RequestError::BadTarget);
        }
        return Ok(Target {
            path: Bytes::new(),
            query: Bytes::new(),
            authority: Some(target.clone()),
        });
    }
    let (path_start, authority) = if t.starts_with(b"/") {
        (0, None)
    } else if t == b"*" {
        // RFC 9112 §3.2.4: only OPTIONS may address the server as a whole
        if method != b"OPTIONS" {
            return Err(RequestError::BadTarget);
        }
        return Ok(Target {
            path: target.clone(),
            query: Bytes::new(),
            authority: None,
        });
    } else if let Some(scheme_end) = find(t, b"://") {
        let scheme = &t[..scheme_end];
        if !(scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")) {
            return Err(RequestError::BadTarget);
        }
        let start = scheme_end + 3;
        let end = t[start..]
            .iter()
            .position(|&b| b == b'/' || b == b'?' || b == b'#')
            .map_or(t.len(), |i| start + i);
        (end, Some(authority(target, start, end)?))
    } else {
        // relative references, and authority-form on anything but CONNECT
        return Err(RequestError::BadTarget);
    };
    let rest = &t[path_start..];
    let rest = &rest[..memchr(b'#', rest).unwrap_or(rest.len())];
    let (path, query) = match memchr(b'?', rest) {
        Some(q) => (&rest[..q], &rest[q + 1..]),
        None => (rest, &rest[rest.len()..]),
    };
    let path = if path.is_empty() {
        Bytes::from_static(b"/")
    } else {
        target.slice_ref(path)
    };
    Ok(Target {
        path,
        query: target.slice_ref(query),
        authority,
    })
}

/// The `host[:port]` of an absolute-form authority at `target[start..end]`. RFC 9110 §4.2.1: an
/// http(s) URI with an empty host is invalid. Userinfo is accepted (as gunicorn does) but is
/// never part of the authority the app sees.
fn authority(target: &Bytes, start: usize, end: usize) -> Result<Bytes, RequestError> {
    let raw = &target[start..end];
    let host_port = match raw.iter().rposition(|&b| b == b'@') {
        Some(at) => {
            let userinfo = &raw[..at];
            if !userinfo
                .iter()
                .all(|&b| is_reg_name_byte(b) || b == b':' || b == b'%')
            {
                return Err(RequestError::BadTarget);
            }
            &raw[at + 1..]
        }
        None => raw,
    };
    if host_port.is_empty()
        || host_port.starts_with(b":")
        || !is_host_port(host_port, Port::Optional)
    {
        return Err(RequestError::BadTarget);
    }
    Ok(target.slice_ref(host_port))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Optional,
    Required,
}

/// `uri-host [ ":" port ]` with `port = *DIGIT` (`Port::Required`: `1*DIGIT`). The host is an
/// IPv6 literal in brackets or a reg-name (which covers IPv4 and DNS names) and may be empty,
/// as an origin-form request's Host may be (RFC 9112 §3.2).
pub fn is_host_port(v: &[u8], port: Port) -> bool {
    let (host_ok, port_part) = if let Some(literal) = v.strip_prefix(b"[") {
        let Some(close) = memchr(b']', literal) else {
            return false;
        };
        let ip = &literal[..close];
        let ok = !ip.is_empty()
            && ip
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        match &literal[close + 1..] {
            [] => (ok, None),
            [b':', digits @ ..] => (ok, Some(digits)),
            _ => return false,
        }
    } else {
        match v.iter().rposition(|&b| b == b':') {
            Some(i) => (is_reg_name(&v[..i]), Some(&v[i + 1..])),
            None => (is_reg_name(v), None),
        }
    };
    let port_ok = match (port_part, port) {
        (None, Port::Optional) => true,
        (None, Port::Required) => false,
        (Some(d), Port::Optional) => d.iter().all(u8::is_ascii_digit),
        (Some(d), Port::Required) => !d.is_empty() && d.iter().all(u8::is_ascii_digit),
    };
    // a CONNECT target names a host to connect to: an empty one is no target
    let host_present = port == Port::Optional || v.first().is_some_and(|&b| b != b':');
    host_ok && port_ok && host_present
}

/// RFC 3986 reg-name: unreserved, sub-delims and percent-encoded octets. The comma is refused
/// even though it is a sub-delim: `Host: a,b` is how two Host values read once combined
/// (RFC 9110 §5.3), which RFC 9112 §3.2 says to refuse.
fn is_reg_name(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' => {
                let hex = v.get(i + 1..i + 3);
                if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if is_reg_name_byte(b) => i += 1,
            _ => return false,
        }
    }
    true
}

fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+;=".contains(&b)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(method: &str, target: &'static str) -> Result<Target, RequestError> {
        split(method.as_bytes(), &Bytes::from_static(target.as_bytes()))
    }

    #[test]
    fn origin_form_splits_path_query_and_drops_the_fragment() {
        let t = form("GET", "/a%20b?x=1#frag").unwrap();
        assert_eq!((&t.path[..], &t.query[..]), (&b"/a%20b"[..], &b"x=1"[..]));
        assert_eq!(t.authority, None);
    }

    #[test]
    fn absolute_form_gives_the_authority_without_userinfo() {
        let t = form("GET", "http://user:pw@example.com:8080/p?q").unwrap();
        assert_eq!(t.authority.as_deref(), Some(&b"example.com:8080"[..]));
        assert_eq!((&t.path[..], &t.query[..]), (&b"/p"[..], &b"q"[..]));
        let t = form("GET", "HTTPS://[::1]").unwrap();
        assert_eq!(t.authority.as_deref(), Some(&b"[::1]"[..]));
        assert_eq!(&t.path[..], b"/");
    }

    #[test]
    fn absolute_form_with_no_or_bad_host_is_refused() {
        for target in [
            "http:///p",
            "http://:80/p",
            "http://user@/p",
            "http://a\"b/",
            "http://a,b/",
            "http://[::1/",
            "http://a:8x/",
            "ftp://example.com/",
        ] {
            assert_eq!(
                form("GET", target),
                Err(RequestError::BadTarget),
                "{target}"
            );
        }
    }

    #[test]
    fn connect_takes_authority_form_with_a_port_only() {
        let t = form("CONNECT", "example.com:443").unwrap();
        assert_eq!(t.authority.as_deref(), Some(&b"example.com:443"[..]));
        assert!(t.path.is_empty() && t.query.is_empty());
        assert!(form("CONNECT", "[::1]:443").is_ok());
        for target in [
            "/",
            "example.com",
            "example.com:",
            ":443",
            "http://e.com:443/",
            "*",
        ] {
            assert_eq!(
                form("CONNECT", target),
                Err(RequestError::BadTarget),
                "{target}"
            );
        }
    }

    #[test]
    fn asterisk_form_is_for_options_only_and_authority_form_for_connect_only() {
        assert_eq!(&form("OPTIONS", "*").unwrap().path[..], b"*");
        assert_eq!(form("GET", "*"), Err(RequestError::BadTarget));
        assert_eq!(form("OPTIONS", "*/x"), Err(RequestError::BadTarget));
        assert_eq!(form("GET", "example.com:80"), Err(RequestError::BadTarget));
        assert_eq!(form("GET", "a/b"), Err(RequestError::BadTarget));
    }

    #[test]
    fn host_syntax() {
        for ok in [
            "",
            "example.com",
            "example.com:8080",
            "example.com:",
            "example.com.",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8000",
            "0.0.0.0=5000",
            "a%2Db",
        ] {
            assert!(is_host_port(ok.as_bytes(), Port::Optional), "{ok:?}");
        }
        for bad in [
            "exa mple.com",
            "a,b",
            "example.com/x",
            "user@example.com",
            "example.com:80a",
            "a:b:c",
            "[::1",
            "[::1]x",
            "[]",
            "a%zz",
            "caf\u{e9}",
        ] {
            assert!(!is_host_port(bad.as_bytes(), Port::Optional), "{bad:?}");
        }
    }
}
