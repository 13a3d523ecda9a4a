//! Gunicorn's "HTTP/2" section. ferricorn serves HTTP/1.x only for now, so
//! these are validated as gunicorn does and otherwise ignored (with a
//! warning when set).

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
        desc: "HTTP protocol versions to support (comma-separated, order = preference).\n\nNo effect in ferricorn: HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x"),
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
        desc: "Accept HTTP/2 over cleartext TCP (h2c), and by which mechanism.\n\nNo effect in ferricorn: HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x"),
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
        desc: "Maximum number of concurrent HTTP/2 streams per connection.\n\nNo effect in ferricorn: HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x"),
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
        desc: "Initial HTTP/2 flow control window size in bytes.\n\nNo effect in ferricorn: HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x"),
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
        desc: "Maximum HTTP/2 frame payload size in bytes.\n\nNo effect in ferricorn: HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x"),
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
        desc: "Maximum size of HTTP/2 header list in bytes (HPACK protection).\n\nNo effect in ferricorn: HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("HTTP/2 is not implemented yet; ferricorn serves HTTP/1.x"),
    },
];

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
