//! Gunicorn's "Security" section: size limits on the request head, which
//! bound the memory an unauthenticated client can make a worker spend, and
//! ferricorn's own limits on the body and on slow clients (`http::edge`).

use super::{int_in, seconds};
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting};

/// Gunicorn's hard ceiling on the request line (`http/message.py`).
pub const MAX_REQUEST_LINE: i64 = 8190;
/// Gunicorn's hard ceiling on the number of header fields.
pub const MAX_HEADERS: i64 = 32768;

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "limit_request_line",
        section: Section::Security,
        cli: &["--limit-request-line"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(4094),
        validate: |raw| {
            int_in(
                raw,
                0,
                MAX_REQUEST_LINE,
                "an integer from 0 (unlimited) to 8190",
            )
        },
        example: "--limit-request-line 4094",
        short: "The maximum size of HTTP request line in bytes.",
        desc: "The maximum size of HTTP request line in bytes.\n\
\n\
The request line holds the method, the URI (with its query string) and the \
protocol version, so this caps the length of URLs the server accepts; it \
must be large enough for every resource name the application serves. A \
number from 0 (unlimited) to 8190. Longer request lines are refused.",
        cost: "Bytes buffered per connection before the request is even routed; \
a higher limit lets slow or hostile clients hold more memory.",
        compat: Compat::Partial(
            "values above 8190 are refused at startup; gunicorn silently lowers \
them to 8190",
        ),
    },
    Setting {
        name: "limit_request_fields",
        section: Section::Security,
        cli: &["--limit-request-fields"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(100),
        validate: |raw| int_in(raw, 0, MAX_HEADERS, "an integer from 0 to 32768"),
        example: "--limit-request-fields 100",
        short: "Limit the number of HTTP headers fields in a request.",
        desc: "Limit the number of HTTP headers fields in a request.\n\
\n\
Together with limit_request_field_size this bounds the size of a request \
head. At most 32768; 0 means that maximum, as in gunicorn. Requests with \
more fields are refused.",
        cost: "Header storage per request grows with this limit; many tiny \
headers are a cheap way for a client to make the parser work.",
        compat: Compat::Full,
    },
    Setting {
        name: "limit_request_field_size",
        section: Section::Security,
        cli: &["--limit-request-field_size"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(8190),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer (0 = unlimited)"),
        example: "--limit-request-field_size 8190",
        short: "Limit the allowed size of an HTTP request header field.",
        desc: "Limit the allowed size of an HTTP request header field.\n\
\n\
A positive number of bytes, or 0 for unlimited header field sizes. Note the \
flag's underscore, kept from gunicorn: --limit-request-field_size.",
        cost: "A very high or unlimited value lets one client make a worker buffer \
arbitrarily large headers: a cheap denial of service.",
        compat: Compat::Full,
    },
    Setting {
        name: "limit_request_body",
        section: Section::Security,
        cli: &["--limit-request-body"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: |raw| {
            int_in(
                raw,
                0,
                i64::MAX,
                "a non-negative number of bytes (0 = unlimited)",
            )
        },
        example: "--limit-request-body 10485760",
        short: "The maximum size of a request body in bytes (0: unlimited).",
        desc: "The maximum size of a request body in bytes (0: unlimited).\n\
\n\
Not a gunicorn setting (gunicorn 27 has none; ferricorn's own, default 0). \
A Content-Length above the limit is answered 413 before the application is \
called; a chunked body is counted as it arrives and answered 413 as soon as \
it passes the limit (the application, if it was already reading, sees an \
error from wsgi.input / receive()).",
        cost: "None: one comparison per request, one subtraction per body piece.",
        compat: Compat::Full,
    },
    Setting {
        name: "header_timeout",
        section: Section::Security,
        cli: &["--header-timeout"],
        meta: "SECONDS",
        action: Action::Store,
        default: DefaultValue::Int(10),
        validate: seconds,
        example: "--header-timeout 10",
        short: "Seconds a client may take to send a request head (0: no limit).",
        desc: "Seconds a client may take to send a request head (0: no limit).\n\
\n\
Not a gunicorn setting; ferricorn's defence against slowloris clients that \
trickle a header byte at a time to hold connections open. The clock starts \
when a connection opens (so it also bounds a PROXY protocol header) and, on \
a keep-alive connection, at the first byte of the next request (the idle \
wait before it is --keep-alive). A head still incomplete then is answered \
408 and the connection closed; a connection that sent nothing is just \
closed. Fractions are allowed (0.5). The wait happens on the worker's I/O \
thread: it never holds an application thread.",
        cost: "One timer per connection while its head arrives. Too low a value \
cuts off legitimate clients on slow links.",
        compat: Compat::Full,
    },
    Setting {
        name: "body_timeout",
        section: Section::Security,
        cli: &["--body-timeout"],
        meta: "SECONDS",
        action: Action::Store,
        default: DefaultValue::Int(30),
        validate: seconds,
        example: "--body-timeout 30",
        short: "Longest silence in seconds while reading a request body (0: no limit).",
        desc: "Longest silence in seconds while reading a request body (0: no limit).\n\
\n\
Not a gunicorn setting (its default matches gunicorn's --timeout). While \
the application waits for more of the request body, a client that sends \
nothing for this long is answered 408 (or, once the response has begun, \
disconnected) and the application's read fails instead of blocking its \
thread indefinitely. Fractions are allowed.",
        cost: "One timer per body read that has to wait for the network.",
        compat: Compat::Full,
    },
];

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, DefaultValue, Value};

    #[test]
    fn body_limit_and_slow_client_timeouts_have_safe_defaults() {
        let body = find("limit_request_body").unwrap();
        assert!(matches!(body.default, DefaultValue::Int(0)));
        assert!(body.check(Value::Str("-1".into())).is_err());
        let head = find("header_timeout").unwrap();
        assert!(matches!(head.default, DefaultValue::Int(10)));
        assert_eq!(
            head.check(Value::Str("0.25".into())).unwrap(),
            Value::Str("0.25".into())
        );
        assert!(find("body_timeout")
            .unwrap()
            .check(Value::Str("soon".into()))
            .is_err());
    }

    #[test]
    fn limit_request_line_defaults_to_4094_and_caps_at_8190() {
        let line = find("limit_request_line").unwrap();
        assert!(matches!(line.default, DefaultValue::Int(4094)));
        assert_eq!(line.check(Value::Int(0)).unwrap(), Value::Int(0));
        assert_eq!(line.check(Value::Int(8190)).unwrap(), Value::Int(8190));
        assert_eq!(
            line.check(Value::Str("8191".into()))
                .unwrap_err()
                .to_string(),
            "--limit-request-line / limit_request_line = \"8191\": expected an integer \
             from 0 (unlimited) to 8190, e.g. --limit-request-line 4094"
        );
    }

    #[test]
    fn limit_request_fields_defaults_to_100_and_caps_at_32768() {
        let fields = find("limit_request_fields").unwrap();
        assert!(matches!(fields.default, DefaultValue::Int(100)));
        assert_eq!(fields.check(Value::Int(32768)).unwrap(), Value::Int(32768));
        let err = fields.check(Value::Int(32769)).unwrap_err().to_string();
        assert!(err.starts_with("--limit-request-fields / limit_request_fields = 32769"));
        assert!(fields.check(Value::Str("many".into())).is_err());
    }

    #[test]
    fn limit_request_field_size_defaults_to_8190_and_allows_unlimited() {
        let size = find("limit_request_field_size").unwrap();
        assert!(matches!(size.default, DefaultValue::Int(8190)));
        assert_eq!(size.check(Value::Int(0)).unwrap(), Value::Int(0));
        let err = size.check(Value::Str("-5".into())).unwrap_err().to_string();
        assert!(
            err.starts_with("--limit-request-field_size / limit_request_field_size = \"-5\""),
            "{err}"
        );
    }
}
