//! `--access-log-json`: a `Record` as one JSON object per line, with the facts the text atoms
//! give (the same values `render` computes: latin-1 strings, PATH_INFO, environ-style joined
//! headers), for log pipelines that would otherwise parse the combined format back.
//!
//! Pure: no I/O, no clock. Strings are escaped here (RFC 8259: quote, backslash, control
//! characters); everything else is a number or `null`.

use std::fmt::Write;

use super::record::{LogTime, Record};
use super::render::{civil_from_days, environ_header, latin1, path_info, remote_addr};

/// Appends the object for `rec` (without the newline) to `out`.
pub fn render(rec: &Record, script_name: &str, out: &mut String) {
    out.push_str("{\"remote_addr\":");
    string(out, &remote_addr(rec));
    out.push_str(",\"time\":");
    string(out, &iso8601(rec.time));
    out.push_str(",\"method\":");
    string(out, &latin1(&rec.method));
    out.push_str(",\"path\":");
    string(out, &path_info(rec, script_name));
    out.push_str(",\"query\":");
    string(out, &latin1(&rec.query));
    out.push_str(",\"protocol\":");
    string(out, rec.protocol);
    out.push_str(",\"status\":");
    match crate::metrics::status_code(&rec.status) {
        0 => out.push_str("null"),
        code => {
            let _ = write!(out, "{code}");
        }
    }
    let _ = write!(
        out,
        ",\"response_bytes\":{},\"duration_us\":{}",
        rec.sent,
        rec.duration.as_micros()
    );
    for (key, header) in [("referer", "referer"), ("user_agent", "user-agent")] {
        let _ = write!(out, ",\"{key}\":");
        match environ_header(rec, header) {
            Some(v) => string(out, &v),
            None => out.push_str("null"),
        }
    }
    let _ = write!(out, ",\"pid\":{}}}", rec.pid);
}

/// A JSON string literal for `s`.
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `2026-11-24T18:24:05+01:00`: local time with its offset, to the second.
pub fn iso8601(t: LogTime) -> String {
    let local = t.unix + t.offset;
    let (days, secs) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let sign = if t.offset < 0 { '-' } else { '+' };
    let off = t.offset.abs() / 60;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        off / 60,
        off % 60
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;
    use crate::exchange::ConnInfo;

    fn record(headers: &[(&'static str, &'static [u8])]) -> Record {
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
            time: LogTime {
                unix: 1_795_541_045,
                offset: 3600,
            },
            method: Bytes::from_static(b"GET"),
            target: Bytes::from_static(b"/a%20b?x=1"),
            path: Bytes::from_static(b"/a%20b"),
            query: Bytes::from_static(b"x=1"),
            protocol: "HTTP/1.1",
            secure: false,
            request_headers: headers
                .iter()
                .map(|(n, v)| (Bytes::from_static(n.as_bytes()), Bytes::from_static(v)))
                .collect(),
            status: Bytes::from_static(b"404 Not Found"),
            sent: 9,
            response_headers: Vec::new(),
            duration: Duration::from_micros(1234),
            pid: 42,
        }
    }

    #[test]
    fn a_record_becomes_one_object_with_every_fact() {
        let rec = record(&[("User-Agent", b"curl/8"), ("Referer", b"http://r/")]);
        let mut out = String::new();
        render(&rec, "", &mut out);
        assert_eq!(
            out,
            "{\"remote_addr\":\"10.0.0.7\",\"time\":\"2026-11-24T18:24:05+01:00\",\
             \"method\":\"GET\",\"path\":\"/a b\",\"query\":\"x=1\",\"protocol\":\"HTTP/1.1\",\
             \"status\":404,\"response_bytes\":9,\"duration_us\":1234,\
             \"referer\":\"http://r/\",\"user_agent\":\"curl/8\",\"pid\":42}"
        );
    }

    #[test]
    fn missing_headers_are_null_and_hostile_ones_are_escaped() {
        let rec = record(&[("user-agent", b"a\"b\\c\n\x01\x7f\xe9")]);
        let mut out = String::new();
        render(&rec, "/a", &mut out);
        assert!(out.contains("\"referer\":null"), "{out}");
        assert!(out.contains("\"path\":\" b\""), "{out}");
        // latin-1 0xe9 is é, written as UTF-8
        assert!(
            out.contains("\"user_agent\":\"a\\\"b\\\\c\\n\\u0001\\u007fé\""),
            "{out}"
        );
    }

    #[test]
    fn strings_escape_exactly_what_json_requires() {
        let mut out = String::new();
        string(&mut out, "plain/ünï \u{2028} \t\r\u{1f}");
        assert_eq!(out, "\"plain/ünï \u{2028} \\t\\r\\u001f\"");
    }

    #[test]
    fn iso_times_carry_the_offset_in_effect() {
        let t = |unix, offset| iso8601(LogTime { unix, offset });
        assert_eq!(t(0, 0), "1970-01-01T00:00:00+00:00");
        assert_eq!(t(1_795_541_045, -19_800), "2026-11-24T11:54:05-05:30");
        assert_eq!(t(951_782_400, 0), "2000-02-29T00:00:00+00:00");
    }
}
