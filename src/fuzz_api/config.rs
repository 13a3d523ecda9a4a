//! Targets for what an operator writes (settings, bind strings, proxy lists, the access log
//! format, static mounts) and for what a client controls inside them (the request fields an
//! access log line or a static path is made of).

use std::fmt::Write;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;

use super::Cursor;
use crate::accesslog::format::{Atom, Format, Key};
use crate::accesslog::{json, render, LogTime, Record};
use crate::exchange::ConnInfo;
use crate::http::forwarded::{parse_str_dict, AllowList, Network, SecureSchemes};
use crate::http::request::check_method;
use crate::http::static_files::negotiate::{
    acceptable_encodings, content_type, if_range_allows, not_modified, parse_range, RangeReq,
};
use crate::http::static_files::path::route;
use crate::http::static_files::Mount;
use crate::metrics::statsd::StatsdAddr;
use crate::net::BindAddr;
use crate::settings::registry::{find, Value, SETTINGS};
use crate::settings::shlex;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `--forwarded-allow-ips` / `--proxy-allow-from` entries and `secure_scheme_headers`: a
/// network contains the address it was written with, the "did you mean" network of a host-bits
/// error parses and contains it too, a list allows what it names (and unix peers), and a
/// dict's pairs read back the same from the repr we would write for them. Scheme headers of an
/// untrusted peer never change the scheme.
pub fn forwarded(data: &[u8]) {
    let mut c = Cursor::new(data);
    let flags = c.byte();
    let list = text(c.piece());
    let items: Vec<&str> = list.split(',').collect();
    for item in &items {
        let item = item.trim();
        let addr: Result<IpAddr, _> = item.split_once('/').map_or(item, |(a, _)| a).parse();
        match Network::parse(item) {
            Ok(net) => assert!(net.contains(addr.expect("a parsed network's address"))),
            Err(why) => {
                if let Some(hint) = why
                    .rsplit_once("did you mean ")
                    .and_then(|(_, h)| h.strip_suffix('?'))
                {
                    let net = Network::parse(hint).expect("the suggested network parses");
                    let addr = addr.expect("an address with host bits");
                    // peers are compared as IPv4 when IPv4-mapped: an IPv6 network wider than
                    // ::ffff:0:0/96 does not hold them, by design
                    let mapped = matches!(addr, IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some());
                    assert!(
                        mapped || net.contains(addr),
                        "{hint} does not contain {addr}"
                    );
                }
            }
        }
    }
    if let Ok(allow) = AllowList::parse(&items) {
        assert!(allow.allows(None), "unix peers are always trusted");
        for item in &items {
            if let Ok(ip) = item.trim().parse() {
                assert!(allow.allows(Some(ip)), "{item} not allowed by its own list");
            }
        }
    }

    let repr = text(c.piece());
    if let Ok(pairs) = parse_str_dict(&repr) {
        let quote = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
        let again: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}: {}", quote(k), quote(v)))
            .collect();
        let again = format!("{{{}}}", again.join(", "));
        assert_eq!(parse_str_dict(&again), Ok(pairs), "{again}");
    }
    let schemes = SecureSchemes::from_repr(&repr).unwrap_or_default();
    let mut headers = Vec::new();
    while !c.is_empty() {
        headers.push((
            Bytes::from(c.piece().to_vec()),
            Bytes::from(c.piece().to_vec()),
        ));
    }
    let listener = flags & 1 != 0;
    assert_eq!(schemes.secure(&headers, listener, false), Ok(listener));
    let _ = schemes.secure(&headers, listener, true);
}

/// `--bind` and `--statsd-host` values: whatever parses prints in a canonical spelling that
/// parses back to the same address.
pub fn bind(data: &[u8]) {
    let s = text(data);
    for value in s.split('\n') {
        if let Ok(addr) = value.parse::<BindAddr>() {
            let shown = addr.to_string();
            assert_eq!(
                shown.parse::<BindAddr>(),
                Ok(addr),
                "{value:?} shown as {shown:?}"
            );
        }
        if let Ok(addr) = StatsdAddr::parse(value) {
            let shown = addr.to_string();
            assert_eq!(
                StatsdAddr::parse(&shown),
                Ok(addr),
                "{value:?} shown as {shown:?}"
            );
        }
    }
}

/// Every setting's validator: the canonical value it returns is accepted again unchanged (a
/// value goes through validation once per layer and again for `--print-config`), and
/// `GUNICORN_CMD_ARGS` splitting reads back the words of a line we quote for it.
pub fn settings(data: &[u8]) {
    let mut c = Cursor::new(data);
    // by conf name (the seeds name theirs), else any setting
    let name = c.piece();
    let setting = std::str::from_utf8(name)
        .ok()
        .and_then(find)
        .unwrap_or(&SETTINGS[name.len() % SETTINGS.len()]);
    let kind = c.byte();
    let s = text(c.rest());
    let raw = match kind % 6 {
        0 | 1 => Value::Str(s.clone()),
        2 => Value::List(s.split('\n').map(str::to_owned).collect()),
        3 => Value::Object(s.clone()),
        4 => Value::Int(s.trim().parse().unwrap_or(s.len() as i64)),
        _ => Value::Bool(s.is_empty()),
    };
    if let Ok(canonical) = (setting.validate)(raw.clone()) {
        let again = (setting.validate)(canonical.clone());
        // a validator may take fewer kinds than it returns (a str becomes a list that a
        // conf file could not have given); a canonical value it takes must not change
        let same_kind = std::mem::discriminant(&raw) == std::mem::discriminant(&canonical);
        if same_kind || again.is_ok() {
            assert_eq!(
                again,
                Ok(canonical.clone()),
                "{}: {raw:?} became {canonical:?}, which does not validate to itself",
                setting.name
            );
        }
    }
    if let Ok(words) = shlex::split(&s) {
        let quoted: Vec<String> = words
            .iter()
            .map(|w| format!("'{}'", w.replace('\'', "'\"'\"'")))
            .collect();
        assert_eq!(shlex::split(&quoted.join(" ")), Ok(words));
    }
}

/// The access log: a format prints back (from its atoms) to a spec that parses to the same
/// atoms; a line rendered from any request has no line break that the format's own text does
/// not have (a client must not be able to forge log lines); the JSON form is one valid JSON
/// object on one line.
pub fn access_log(data: &[u8]) {
    let mut c = Cursor::new(data);
    let spec = text(c.piece());
    let Ok(format) = Format::parse(&spec) else {
        return;
    };
    let again = spec_of(&format);
    assert_eq!(
        Format::parse(&again),
        Ok(format.clone()),
        "{spec:?} printed as {again:?}"
    );

    let rec = record(&mut c);
    let script_name = if rec.secure { "/app" } else { "" };
    let mut line = String::new();
    render::render(&format, &rec, script_name, &mut line);
    let breaks = |s: &str| s.chars().filter(|c| matches!(c, '\r' | '\n')).count();
    let own: usize = format
        .atoms
        .iter()
        .map(|a| match a {
            Atom::Literal(l) => breaks(l),
            Atom::Field(..) => 0,
        })
        .sum();
    assert_eq!(breaks(&line), own, "a request put a line break in {line:?}");

    let mut object = String::new();
    json::render(&rec, script_name, &mut object);
    assert!(!object.contains('\n'), "{object}");
    let parsed: Result<serde_json::Value, _> = serde_json::from_str(&object);
    assert!(parsed.is_ok_and(|v| v.is_object()), "{object}");
}

/// A spec that `Format::parse` reads as `format`.
fn spec_of(format: &Format) -> String {
    let mut spec = String::new();
    for atom in &format.atoms {
        match atom {
            Atom::Literal(l) => spec.push_str(&l.replace('%', "%%")),
            Atom::Field(key, pad) => {
                let name = match key {
                    Key::RemoteAddr => "h".to_owned(),
                    Key::Ident => "l".to_owned(),
                    Key::User => "u".to_owned(),
                    Key::Time => "t".to_owned(),
                    Key::RequestLine => "r".to_owned(),
                    Key::Method => "m".to_owned(),
                    Key::Path => "U".to_owned(),
                    Key::Query => "q".to_owned(),
                    Key::Protocol => "H".to_owned(),
                    Key::Status => "s".to_owned(),
                    Key::Sent => "B".to_owned(),
                    Key::SentClf => "b".to_owned(),
                    Key::Referer => "f".to_owned(),
                    Key::UserAgent => "a".to_owned(),
                    Key::Seconds => "T".to_owned(),
                    Key::Micros => "D".to_owned(),
                    Key::Millis => "M".to_owned(),
                    Key::Decimal => "L".to_owned(),
                    Key::Pid => "p".to_owned(),
                    Key::RequestHeader(n) => format!("{{{n}}}i"),
                    Key::ResponseHeader(n) => format!("{{{n}}}o"),
                    Key::Environ(n) => format!("{{{n}}}e"),
                    Key::Unknown => "?".to_owned(),
                };
                let _ = write!(spec, "%({name})");
                if pad.left {
                    spec.push('-');
                }
                if pad.width > 0 {
                    let _ = write!(spec, "{}", pad.width);
                }
                if let Some(p) = pad.precision {
                    let _ = write!(spec, ".{p}");
                }
                spec.push('s');
            }
        }
    }
    spec
}

/// A record with what the request parser can let through: a token method, a visible-ASCII
/// target, header values without CR, LF or NUL (but with obs-text), any duration.
fn record(c: &mut Cursor<'_>) -> Record {
    let flags = c.byte();
    let method = match c.piece() {
        m if check_method(m).is_ok() => Bytes::from(m.to_vec()),
        _ => Bytes::from_static(b"GET"),
    };
    let target: Vec<u8> = c
        .piece()
        .iter()
        .copied()
        .filter(|b| (0x21..=0x7e).contains(b))
        .collect();
    let target = Bytes::from(target);
    let (path, query) = match target.iter().position(|&b| b == b'?') {
        Some(q) => (target.slice(..q), target.slice(q + 1..)),
        None => (target.clone(), Bytes::new()),
    };
    let clean = |b: &[u8]| -> Vec<u8> {
        b.iter()
            .copied()
            .filter(|b| !matches!(b, b'\r' | b'\n' | 0))
            .collect()
    };
    let mut request_headers = Vec::new();
    let mut response_headers = Vec::new();
    for i in 0..c.byte() % 8 {
        let name: Vec<u8> = c
            .piece()
            .iter()
            .copied()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'-')
            .collect();
        let value = clean(c.piece());
        if name.is_empty() {
            continue;
        }
        if i % 2 == 0 {
            request_headers.push((Bytes::from(name), Bytes::from(value)));
        } else {
            response_headers.extend_from_slice(&name);
            response_headers.extend_from_slice(b": ");
            response_headers.extend_from_slice(&value);
            response_headers.extend_from_slice(b"\r\n");
        }
    }
    let status = Bytes::from(clean(c.piece()));
    let micros = c
        .piece()
        .iter()
        .fold(0u64, |n, &b| n.wrapping_mul(251) ^ u64::from(b));
    Record {
        conn: Arc::new(ConnInfo {
            peer: (flags & 1 != 0).then(|| "10.1.2.3:4567".parse().expect("an address")),
            server_name: "127.0.0.1".into(),
            server_port: "8000".into(),
            forwarded_trusted: false,
            proxy: None,
            tls: None,
            cgi_vars: Vec::new(),
        }),
        time: LogTime {
            unix: 1_795_541_045,
            offset: i64::from(flags) * 60 - 7200,
        },
        method,
        target,
        path,
        query,
        protocol: "HTTP/1.1",
        secure: flags & 2 != 0,
        request_headers,
        status,
        sent: micros / 3,
        response_headers,
        duration: Duration::from_micros(micros),
        pid: 4242,
    }
}

/// A directory static mounts can point at (the mount parser wants an existing directory).
fn static_root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let dir = std::env::temp_dir().join("ferricorn-fuzz-static");
        std::fs::create_dir_all(&dir).expect("create the fuzz static root");
        std::fs::canonicalize(&dir).expect("canonicalise the fuzz static root")
    })
}

/// `--static` mounts and the request paths and headers they answer: a mount prints back to a
/// spec that parses to itself; a path resolves to the longest matching mount and, when it
/// names a file, to plain relative components that cannot leave the mount's directory; ranges
/// stay inside the file; negotiation never names a coding twice.
pub fn static_path(data: &[u8]) {
    let mut c = Cursor::new(data);
    let root = static_root();
    let mut mounts = Vec::new();
    for _ in 0..c.byte() % 4 {
        let url = text(c.piece());
        if let Ok(m) = Mount::parse(&format!("{url}={}", root.display())) {
            let p = &m.prefix;
            assert!(
                p.starts_with('/') && !p.ends_with('/') && p.len() > 1,
                "{p:?}"
            );
            assert!(!p.contains(['%', '\\', '\0']), "{p:?}");
            assert_eq!(Mount::parse(&m.spec()).as_ref(), Ok(&m));
            mounts.push(m);
        }
    }
    let segments: Vec<Vec<Vec<u8>>> = mounts
        .iter()
        .map(|m| {
            m.prefix[1..]
                .split('/')
                .map(|s| s.as_bytes().to_vec())
                .collect()
        })
        .collect();
    let path = c.piece();
    let decoded: Option<Vec<Vec<u8>>> = path.strip_prefix(b"/").map(|rest| {
        rest.split(|&b| b == b'/')
            .map(|s| percent_encoding::percent_decode(s).collect())
            .collect()
    });
    let matches = |prefix: &[Vec<u8>]| {
        decoded
            .as_ref()
            .is_some_and(|d| d.len() >= prefix.len() && d[..prefix.len()] == *prefix)
    };
    let found = route(segments.iter().map(|s| &s[..]), path);
    match &found {
        None => assert!(
            !segments.iter().any(|s| matches(s)),
            "{path:?} missed a mount"
        ),
        Some((i, rel)) => {
            assert!(matches(&segments[*i]));
            let longest = segments.iter().filter(|s| matches(s)).map(Vec::len).max();
            assert_eq!(
                longest,
                Some(segments[*i].len()),
                "{path:?}: not the longest"
            );
            if let Some(rel) = rel {
                assert!(!rel.as_os_str().is_empty() && !path.ends_with(b"/"));
                for part in rel.components() {
                    let Component::Normal(name) = part else {
                        panic!("{path:?} resolves to {rel:?}");
                    };
                    let name = std::os::unix::ffi::OsStrExt::as_bytes(name);
                    assert!(!name.contains(&0) && !name.contains(&b'\\'), "{rel:?}");
                }
                assert!(root.join(rel).starts_with(root));
                let _ = content_type(rel);
            }
        }
    }

    let len = u64::from(c.byte()) * 7;
    let range = c.piece();
    match parse_range(range, len) {
        RangeReq::Part { start, end } => assert!(start <= end && end < len, "{start}-{end}"),
        RangeReq::Unsatisfiable | RangeReq::Full => {}
    }
    let accept = acceptable_encodings(c.piece());
    assert!(accept.len() <= 2 && (accept.len() < 2 || accept[0] != accept[1]));
    let etag = "\"1f-2a\"";
    let (inm, ims) = (c.piece(), c.piece());
    let _ = not_modified(Some(inm), Some(ims), etag, u64::from(c.byte()));
    let _ = not_modified(None, Some(ims), etag, 784_111_777);
    let _ = if_range_allows(c.rest(), etag, 784_111_777);
}
