//! Gunicorn's "HTTP/2" section, plus ferricorn's `--http` shorthand for the
//! two settings that pick the protocol. `http::h2::Http2Options` reads them.

use super::int_in;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting, Value};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "http_protocols",
        section: Section::Http2,
        cli: &["--http-protocols"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("h1"),
        validate: http_protocols,
        example: "--http-protocols h2,h1",
        short: "HTTP protocol versions to support (comma-separated, order = preference).",
        desc: "HTTP protocol versions to support (comma-separated, order = preference).\n\
\n\
h1 is HTTP/1.x; h2 is HTTP/2. Over TLS the list is the ALPN offer, in this \
order; without TLS, h2 takes effect through --http2-cleartext (or --http). HTTP/2 streams become jobs like HTTP/1 requests: \
WSGI and ASGI apps run unchanged (environ SERVER_PROTOCOL HTTP/2.0, scope \
http_version 2). WebSocket over HTTP/2 (RFC 8441) is not offered.",
        cost: "With h2: one HTTP/2 connection can carry many requests at once; each in-flight stream holds buffers and a job slot.",
        compat: Compat::Full,
    },
    Setting {
        name: "http2_cleartext",
        section: Section::Http2,
        cli: &["--http2-cleartext"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("off"),
        validate: http2_cleartext,
        example: "--http2-cleartext upgrade",
        short: "Accept HTTP/2 over cleartext TCP (h2c), and by which mechanism.",
        desc: "Accept HTTP/2 over cleartext TCP (h2c), and by which mechanism.\n\
\n\
off (the default): never. prior-knowledge: a connection that opens with the \
HTTP/2 preface (PRI * HTTP/2.0) is served as HTTP/2, and anything else from a \
trusted peer is refused with 400. upgrade: an HTTP/1.1 Upgrade: h2c request \
(not honoured by ferricorn: it is answered as HTTP/1.1). both: prior-knowledge, \
and HTTP/1 connections are served as usual. Needs h2 in --http-protocols; only \
peers in --forwarded-allow-ips are considered, everyone else gets HTTP/1.x.",
        cost: "None while off. Only for peers in --forwarded-allow-ips: do not expose a cleartext HTTP/2 port to the internet.",
        compat: Compat::Partial("upgrade (an HTTP/1.1 Upgrade: h2c request) is not honoured: such a request is served as HTTP/1.1; both behaves as prior-knowledge that also serves HTTP/1"),
    },
    Setting {
        name: "http2_max_concurrent_streams",
        section: Section::Http2,
        cli: &["--http2-max-concurrent-streams"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(100),
        validate: |raw| int_in(raw, 1, i64::MAX, "a positive integer"),
        example: "--http2-max-concurrent-streams 100",
        short: "Maximum number of concurrent HTTP/2 streams per connection.",
        desc: "Maximum number of concurrent HTTP/2 streams per connection.\n\nAdvertised in the server's SETTINGS frame; a client opening more is refused by the protocol. Each stream can hold one request in the app.",
        cost: "Each open stream may hold one request in the app and its buffers; more streams, more memory per connection.",
        compat: Compat::Full,
    },
    Setting {
        name: "http2_initial_window_size",
        section: Section::Http2,
        cli: &["--http2-initial-window-size"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(65535),
        validate: |raw| int_in(raw, 0, i32::MAX.into(), "an integer from 0 to 2147483647"),
        example: "--http2-initial-window-size 65535",
        short: "Initial HTTP/2 flow control window size in bytes.",
        desc: "Initial HTTP/2 flow control window size in bytes.\n\nHow much request body a client may send on a stream before the app has read it; the window is released only as the app reads.",
        cost: "The most request body a client may send per stream before the app reads it: memory per stream.",
        compat: Compat::Full,
    },
    Setting {
        name: "http2_max_frame_size",
        section: Section::Http2,
        cli: &["--http2-max-frame-size"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(16384),
        validate: |raw| int_in(raw, 16_384, 16_777_215, "an integer from 16384 to 16777215"),
        example: "--http2-max-frame-size 16384",
        short: "Maximum HTTP/2 frame payload size in bytes.",
        desc: "Maximum HTTP/2 frame payload size in bytes.\n\nThe largest frame payload the server accepts (16384 to 16777215).",
        cost: "Larger frames: fewer frame headers, longer head-of-line blocking per frame.",
        compat: Compat::Full,
    },
    Setting {
        name: "http2_max_header_list_size",
        section: Section::Http2,
        cli: &["--http2-max-header-list-size"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(65536),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer"),
        example: "--http2-max-header-list-size 65536",
        short: "Maximum size of HTTP/2 header list in bytes (HPACK protection).",
        desc: "Maximum size of HTTP/2 header list in bytes (HPACK protection).\n\nA request whose decoded header list is larger is refused; 0 means unlimited (not recommended).",
        cost: "The most header bytes one request may make us decode and hold.",
        compat: Compat::Full,
    },
    Setting {
        name: "http",
        section: Section::Http2,
        cli: &["--http"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::None,
        validate: http_shorthand,
        example: "--http auto",
        short: "Shorthand for the protocol settings: auto, 1 or 2.",
        desc: "Shorthand for the protocol settings: auto, 1 or 2.\n\
\n\
Not a gunicorn setting. auto serves HTTP/1.x and detects HTTP/2 prior \
knowledge (--http-protocols h1,h2 --http2-cleartext both); 2 serves HTTP/2 \
only (--http-protocols h2 --http2-cleartext prior-knowledge); 1 serves HTTP/1.x \
only (--http-protocols h1 --http2-cleartext off). Unset (the default), those \
two settings decide. Setting both spellings to different things is an error. \
As in gunicorn, cleartext HTTP/2 is only for peers in --forwarded-allow-ips \
(a TLS-terminating proxy); other peers get HTTP/1.x.",
        cost: "As for --http-protocols and --http2-cleartext.",
        compat: Compat::Full,
    },
];

/// `--http`: one of its three words.
fn http_shorthand(raw: Value) -> Result<Value, String> {
    match raw {
        Value::None => Ok(Value::None),
        Value::Int(n) => super::choice(Value::Str(n.to_string()), &["auto", "1", "2"]),
        other => super::choice(other, &["auto", "1", "2"]),
    }
}

/// gunicorn's `validate_http_protocols`: a comma-separated preference list
/// of h1 and h2; empty or None means h1.
fn http_protocols(raw: Value) -> Result<Value, String> {
    const WANTED: &str = "expected a comma-separated list of h1, h2";
    let text = match raw {
        Value::None => String::new(),
        Value::Str(s) => s,
        _ => return Err(WANTED.to_owned()),
    };
    let mut protocols: Vec<String> = text
        .split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .filter(|p| !p.is_empty())
        .collect();
    if protocols.iter().any(|p| p != "h1" && p != "h2") {
        return Err(WANTED.to_owned());
    }
    let mut distinct = protocols.clone();
    distinct.sort();
    distinct.dedup();
    if distinct.len() != protocols.len() {
        return Err("expected each of h1, h2 at most once".to_owned());
    }
    if protocols.is_empty() {
        protocols.push("h1".to_owned());
    }
    Ok(Value::List(protocols))
}

/// gunicorn's `validate_http2_cleartext`; `True` in a conf file means
/// prior-knowledge.
fn http2_cleartext(raw: Value) -> Result<Value, String> {
    match raw {
        Value::None | Value::Bool(false) => Ok(Value::Str("off".to_owned())),
        Value::Bool(true) => Ok(Value::Str("prior-knowledge".to_owned())),
        other => super::choice(other, &["off", "prior-knowledge", "upgrade", "both"]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_protocols_is_a_checked_preference_list() {
        assert_eq!(
            http_protocols(Value::Str(" H2, h1 ".into())),
            Ok(Value::List(vec!["h2".into(), "h1".into()]))
        );
        assert_eq!(
            http_protocols(Value::None),
            Ok(Value::List(vec!["h1".into()]))
        );
        assert!(http_protocols(Value::Str("h3".into())).is_err());
        assert!(http_protocols(Value::Str("h2,h2".into())).is_err());
    }

    #[test]
    fn http2_cleartext_true_means_prior_knowledge() {
        assert_eq!(
            http2_cleartext(Value::Bool(true)),
            Ok(Value::Str("prior-knowledge".into()))
        );
        assert!(http2_cleartext(Value::Str("sometimes".into())).is_err());
    }
}
