//! Turns a `Record` into one access log line following a parsed `Format`, the way gunicorn's
//! `Logger.atoms` + `SafeAtoms` + `%` formatting would. Pure: no I/O, no clock.
//!
//! Gunicorn details kept on purpose: every string value has `"` escaped as `\"` (and, unlike
//! gunicorn, control characters as `\xNN`); bytes are read as latin-1 (WSGI's native strings);
//! `b` prints `0` for an empty body; `f`, `a`, `u` and `{...}e` read the WSGI environ, where repeated headers are joined with `,`, while
//! `{...}i` reads the header list, where the last repeat wins.

use std::fmt::Write;

use super::format::{Atom, Format, Key, Pad};
use super::record::{LogTime, Record};

/// Appends the line for `rec` (without the newline) to `out`. `script_name` is the
/// process's SCRIPT_NAME, which PATH_INFO (`U`) leaves out.
pub fn render(format: &Format, rec: &Record, script_name: &str, out: &mut String) {
    for atom in &format.atoms {
        match atom {
            Atom::Literal(s) => out.push_str(s),
            Atom::Field(key, pad) => {
                let value = value(key, rec, script_name);
                push_padded(out, &value, pad);
            }
        }
    }
}

fn value(key: &Key, rec: &Record, script_name: &str) -> String {
    let dur = rec.duration;
    let text = match key {
        Key::RemoteAddr => remote_addr(rec),
        Key::Ident | Key::Unknown => return "-".to_owned(),
        Key::User => basic_auth_user(rec).unwrap_or_else(|| "-".to_owned()),
        Key::Time => clf_time(rec.time),
        Key::RequestLine => format!(
            "{} {} {}",
            latin1(&rec.method),
            latin1(&rec.target),
            rec.protocol
        ),
        Key::Method => latin1(&rec.method),
        Key::Path => path_info(rec, script_name),
        Key::Query => latin1(&rec.query),
        Key::Protocol => rec.protocol.to_owned(),
        Key::Status => status_code(rec),
        Key::Sent | Key::SentClf => return rec.sent.to_string(),
        Key::Referer => environ_header(rec, "referer").unwrap_or_else(|| "-".to_owned()),
        Key::UserAgent => environ_header(rec, "user-agent").unwrap_or_else(|| "-".to_owned()),
        Key::Seconds => return dur.as_secs().to_string(),
        Key::Micros => return dur.as_micros().to_string(),
        Key::Millis => return dur.as_millis().to_string(),
        Key::Decimal => return format!("{}.{:06}", dur.as_secs(), dur.subsec_micros()),
        Key::Pid => format!("<{}>", rec.pid),
        Key::RequestHeader(name) => match last_request_header(rec, name) {
            Some(v) => v,
            None => return "-".to_owned(),
        },
        Key::ResponseHeader(name) => match response_header(rec, name) {
            Some(v) => v,
            None => return "-".to_owned(),
        },
        Key::Environ(name) => match environ(rec, name, script_name) {
            Some(v) => v,
            None => return "-".to_owned(),
        },
    };
    escape(text)
}

/// Python's `%-W.Ps` on an already escaped value.
fn push_padded(out: &mut String, value: &str, pad: &Pad) {
    let value = match pad.precision {
        Some(p) => value
            .char_indices()
            .nth(p)
            .map_or(value, |(i, _)| &value[..i]),
        None => value,
    };
    let fill = pad.width.saturating_sub(value.chars().count());
    if !pad.left {
        out.extend(std::iter::repeat_n(' ', fill));
    }
    out.push_str(value);
    if pad.left {
        out.extend(std::iter::repeat_n(' ', fill));
    }
}

/// gunicorn escapes `"`; we also write control characters as `\xNN` (as Apache does), because
/// PATH_INFO and the Basic auth user are decoded from what the client sent and `%0a` there
/// would otherwise start a forged log line.
fn escape(s: String) -> String {
    if !s.chars().any(|c| c == '"' || c.is_ascii_control()) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out
}

/// Bytes to chars one-to-one, as WSGI strings carry them.
pub(super) fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| char::from(c)).collect()
}

/// REMOTE_ADDR: the peer's IP, or empty for a unix socket (as our environ sets it).
pub(super) fn remote_addr(rec: &Record) -> String {
    rec.conn
        .peer
        .map_or_else(String::new, |p| p.ip().to_string())
}

/// The first word of the status line, as gunicorn's `status.split(None, 1)[0]`.
fn status_code(rec: &Record) -> String {
    let status = latin1(&rec.status);
    status.split_whitespace().next().unwrap_or("").to_owned()
}

/// PATH_INFO: the percent-decoded path without the SCRIPT_NAME prefix.
pub(super) fn path_info(rec: &Record, script_name: &str) -> String {
    let path: Vec<u8> = percent_encoding::percent_decode(&rec.path).collect();
    let script = script_name.as_bytes();
    let rest = match path.strip_prefix(script) {
        Some(rest) if !script.is_empty() => rest,
        _ => &path[..],
    };
    latin1(rest)
}

/// `HTTP_*` as the environ has it: repeats joined with `,` in arrival order.
pub(super) fn environ_header(rec: &Record, lower: &str) -> Option<String> {
    let mut joined: Option<String> = None;
    for (name, value) in &rec.request_headers {
        if name.eq_ignore_ascii_case(lower.as_bytes()) {
            let value = latin1(value);
            joined = Some(match joined {
                Some(prev) => format!("{prev},{value}"),
                None => value,
            });
        }
    }
    joined
}

fn last_request_header(rec: &Record, lower: &str) -> Option<String> {
    rec.request_headers
        .iter()
        .rev()
        .find(|(name, _)| name.eq_ignore_ascii_case(lower.as_bytes()))
        .map(|(_, v)| latin1(v))
}

fn response_header(rec: &Record, lower: &str) -> Option<String> {
    rec.response_headers
        .split(|&b| b == b'\n')
        .rev()
        .find_map(|line| {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            name.eq_ignore_ascii_case(lower.as_bytes())
                .then(|| latin1(value.trim_ascii()))
        })
}

/// The WSGI environ variables a record can answer for (`{name}e`, name lowercased).
fn environ(rec: &Record, name: &str, script_name: &str) -> Option<String> {
    let conn = &rec.conn;
    Some(match name {
        "request_method" => latin1(&rec.method),
        "raw_uri" => latin1(&rec.target),
        "path_info" => path_info(rec, script_name),
        "query_string" => latin1(&rec.query),
        "server_protocol" => rec.protocol.to_owned(),
        "script_name" => script_name.to_owned(),
        "remote_addr" => remote_addr(rec),
        "remote_port" => conn.peer.map_or_else(String::new, |p| p.port().to_string()),
        "server_name" => conn.server_name.clone(),
        "server_port" => conn.server_port.clone(),
        "wsgi.url_scheme" => if rec.secure { "https" } else { "http" }.to_owned(),
        "content_type" => environ_header(rec, "content-type")?,
        "content_length" => environ_header(rec, "content-length")?,
        other => {
            let header = other.strip_prefix("http_")?.replace('_', "-");
            environ_header(rec, &header)?
        }
    })
}

/// The user name of `Authorization: Basic ...`, decoded as gunicorn's `_get_user` does.
fn basic_auth_user(rec: &Record) -> Option<String> {
    let auth = environ_header(rec, "authorization")?;
    if !auth.to_ascii_lowercase().starts_with("basic") {
        return None;
    }
    let (_, encoded) = auth.split_once(' ')?;
    let decoded = b64decode(encoded.trim())?;
    let user = decoded.split(|&b| b == b':').next().unwrap_or(&[]);
    String::from_utf8(user.to_vec()).ok()
}

/// Python's lenient `base64.b64decode`: characters outside the alphabet are skipped, and
/// the data must be whole or correctly padded.
fn b64decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits, mut quad, mut pads) = (0u32, 0u32, 0usize, 0usize);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => {
                pads += 1;
                // enough padding completes the data; the rest is ignored
                if quad >= 2 && quad + pads >= 4 {
                    return Some(out);
                }
                continue;
            }
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        quad = (quad + 1) % 4;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    (quad == 0).then_some(out)
}

/// `[10/Oct/2000:13:55:36 -0700]`, the Common Log Format time.
pub fn clf_time(t: LogTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let local = t.unix + t.offset;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let sign = if t.offset < 0 { '-' } else { '+' };
    let off = t.offset.abs() / 60;
    let mut s = String::with_capacity(28);
    let _ = write!(
        s,
        "[{day:02}/{}/{year}:{:02}:{:02}:{:02} {sign}{:02}{:02}]",
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off / 60,
        off % 60
    );
    s
}

/// Days since 1970-01-01 to (year, month 1-12, day 1-31) in the proleptic Gregorian calendar.
pub(super) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::accesslog::format::DEFAULT_FORMAT;
    use crate::exchange::ConnInfo;

    fn record() -> Record {
        let headers: &[(&str, &str)] = &[
            ("Host", "example.com"),
            ("User-Agent", "curl/8.0 \"x\""),
            ("Referer", "http://ref/"),
            ("Authorization", "Basic dXNlcjpwYXNz"),
            ("X-Dup", "a"),
            ("x-dup", "b"),
        ];
        Record {
            conn: Arc::new(ConnInfo {
                peer: Some("10.0.0.7:51234".parse().unwrap()),
                server_name: "127.0.0.1".into(),
                server_port: "8000".into(),
                forwarded_trusted: false,
                proxy: None,
                tls: None,
                cgi_vars: Vec::new(),
            }),
            // 2026-11-24 17:24:05 UTC, logged at +01:00
            time: LogTime {
                unix: 1_795_541_045,
                offset: 3600,
            },
            method: Bytes::from_static(b"GET"),
            target: Bytes::from_static(b"/app/a%20b?x=1&y=2"),
            path: Bytes::from_static(b"/app/a%20b"),
            query: Bytes::from_static(b"x=1&y=2"),
            protocol: "HTTP/1.1",
            secure: false,
            request_headers: headers
                .iter()
                .map(|(n, v)| (Bytes::from(*n), Bytes::from(*v)))
                .collect(),
            status: Bytes::from_static(b"201 Created"),
            sent: 1234,
            response_headers: b"Content-Type: text/plain\r\nX-Trace: abc\r\n".to_vec(),
            duration: Duration::from_micros(2_003_456),
            pid: 4242,
        }
    }

    fn line(spec: &str, rec: &Record) -> String {
        let mut out = String::new();
        render(&Format::parse(spec).unwrap(), rec, "", &mut out);
        out
    }

    #[test]
    fn decoded_line_breaks_cannot_forge_a_log_line() {
        // found by fuzz/ (access_log): PATH_INFO is percent-decoded, so %0a was a raw newline
        let mut rec = record();
        rec.path = Bytes::from_static(b"/a%0d%0a1.2.3.4 - - \"GET /admin%09x");
        let once = r#"/a\x0d\x0a1.2.3.4 - - \"GET /admin\x09x"#;
        assert_eq!(
            line("%(U)s|%({path_info}e)s", &rec),
            format!("{once}|{once}")
        );
    }

    #[test]
    fn default_format_renders_the_combined_log_line() {
        assert_eq!(
            line(DEFAULT_FORMAT, &record()),
            r#"10.0.0.7 - user [24/Nov/2026:18:24:05 +0100] "GET /app/a%20b?x=1&y=2 HTTP/1.1" 201 1234 "http://ref/" "curl/8.0 \"x\"""#
        );
    }

    #[test]
    fn every_letter_atom_renders_as_gunicorn_does() {
        let rec = record();
        let cases: &[(&str, &str)] = &[
            ("h", "10.0.0.7"),
            ("l", "-"),
            ("u", "user"),
            ("t", "[24/Nov/2026:18:24:05 +0100]"),
            ("r", "GET /app/a%20b?x=1&y=2 HTTP/1.1"),
            ("m", "GET"),
            ("U", "/app/a b"),
            ("q", "x=1&y=2"),
            ("H", "HTTP/1.1"),
            ("s", "201"),
            ("B", "1234"),
            ("b", "1234"),
            ("f", "http://ref/"),
            ("a", "curl/8.0 \\\"x\\\""),
            ("T", "2"),
            ("D", "2003456"),
            ("M", "2003"),
            ("L", "2.003456"),
            ("p", "<4242>"),
            ("z", "-"),
        ];
        for (atom, want) in cases {
            assert_eq!(line(&format!("%({atom})s"), &rec), *want, "atom {atom}");
        }
    }

    #[test]
    fn header_and_environ_atoms_ignore_case_and_miss_as_dash() {
        let rec = record();
        assert_eq!(line("%({HOST}i)s", &rec), "example.com");
        assert_eq!(line("%({x-dup}i)s", &rec), "b", "last repeat wins");
        assert_eq!(line("%({http_x_dup}e)s", &rec), "a,b", "environ joins");
        assert_eq!(line("%({x-missing}i)s", &rec), "-");
        assert_eq!(line("%({content-type}o)s", &rec), "text/plain");
        assert_eq!(line("%({X-TRACE}o)s", &rec), "abc");
        assert_eq!(line("%({server}o)s", &rec), "-");
        assert_eq!(line("%({REMOTE_PORT}e)s", &rec), "51234");
        assert_eq!(line("%({request_method}e)s", &rec), "GET");
        assert_eq!(line("%({nope}e)s", &rec), "-");
    }

    #[test]
    fn url_scheme_follows_a_trusted_proxy() {
        let mut rec = record();
        assert_eq!(line("%({wsgi.url_scheme}e)s", &rec), "http");
        rec.secure = true;
        assert_eq!(line("%({wsgi.url_scheme}e)s", &rec), "https");
    }

    #[test]
    fn script_name_is_left_out_of_path_info() {
        let mut out = String::new();
        render(
            &Format::parse("%(U)s").unwrap(),
            &record(),
            "/app",
            &mut out,
        );
        assert_eq!(out, "/a b");
    }

    #[test]
    fn padding_and_precision_follow_python() {
        assert_eq!(
            line("[%(m)-5s][%(m)5s][%(h).4s]", &record()),
            "[GET  ][  GET][10.0]"
        );
    }

    #[test]
    fn unix_peers_and_empty_bodies() {
        let mut rec = record();
        rec.conn = Arc::new(ConnInfo {
            peer: None,
            server_name: "/tmp/s".into(),
            server_port: String::new(),
            forwarded_trusted: true,
            proxy: None,
            tls: None,
            cgi_vars: Vec::new(),
        });
        rec.sent = 0;
        rec.request_headers.clear();
        assert_eq!(line("%(h)s|%(b)s|%(u)s|%(f)s", &rec), "|0|-|-");
    }

    #[test]
    fn basic_auth_user_decodes_like_python() {
        let user = |auth: &str| {
            let mut rec = record();
            rec.request_headers =
                vec![(Bytes::from("Authorization"), Bytes::from(auth.to_owned()))];
            basic_auth_user(&rec)
        };
        assert_eq!(user("Basic dXNlcjpwYXNz").as_deref(), Some("user"));
        assert_eq!(user("basic  YWxpY2U6").as_deref(), Some("alice"));
        assert_eq!(user("Basic YQ==").as_deref(), Some("a"));
        assert_eq!(user("Basic YQ"), None, "incorrect padding");
        assert_eq!(user("Basic"), None);
        assert_eq!(user("Bearer dXNlcjpwYXNz"), None);
        assert_eq!(user("Basic //8="), None, "not UTF-8");
    }

    #[test]
    fn clf_time_handles_negative_offsets_and_leap_days() {
        assert_eq!(
            clf_time(LogTime {
                unix: 951_782_400, // 2000-02-29 00:00:00 UTC
                offset: -(7 * 3600 + 1800),
            }),
            "[28/Feb/2000:16:30:00 -0730]"
        );
        assert_eq!(
            clf_time(LogTime { unix: 0, offset: 0 }),
            "[01/Jan/1970:00:00:00 +0000]"
        );
    }
}
