//! Gunicorn's "SSL" section. ferricorn does not terminate TLS yet, so these
//! are accepted for compatibility (flags and conf names parse) and each use
//! is warned about; none has an effect.

use super::{boolean, int_in, opt_string};
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting, Value};

const PLAIN_HTTP: &str =
    "ferricorn serves plain HTTP only; terminate TLS in a proxy in front of it";

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "keyfile",
        section: Section::Ssl,
        cli: &["--keyfile"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a file path"),
        example: "--keyfile /etc/ssl/private/server.key",
        short: "SSL key file.",
        desc: "SSL key file.\n\
\n\
Not supported yet: ferricorn serves plain HTTP and warns that the key file \
is ignored.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
    Setting {
        name: "certfile",
        section: Section::Ssl,
        cli: &["--certfile"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a file path"),
        example: "--certfile /etc/ssl/certs/server.pem",
        short: "SSL certificate file.",
        desc: "SSL certificate file.\n\
\n\
Not supported yet: ferricorn serves plain HTTP and warns that the \
certificate is ignored.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
    Setting {
        name: "ca_certs",
        section: Section::Ssl,
        cli: &["--ca-certs"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a file path"),
        example: "--ca-certs /etc/ssl/certs/ca.pem",
        short: "CA certificates file.",
        desc: "CA certificates file.\n\
\n\
Not supported yet: ferricorn serves plain HTTP and warns that the CA file \
is ignored.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
    Setting {
        name: "ciphers",
        section: Section::Ssl,
        cli: &["--ciphers"],
        meta: "CIPHERS",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "an OpenSSL cipher list"),
        example: "--ciphers ECDHE+AESGCM",
        short: "SSL Cipher suite to use, in the format of an OpenSSL cipher list.",
        desc: "SSL Cipher suite to use, in the format of an OpenSSL cipher list.\n\
\n\
Not supported yet: ferricorn serves plain HTTP and warns that the cipher \
list is ignored.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
    Setting {
        name: "ssl_version",
        section: Section::Ssl,
        cli: &["--ssl-version"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(2),
        validate: ssl_version,
        example: "--ssl-version 2",
        short: "SSL version to use (see stdlib ssl module's).",
        desc: "SSL version to use (see stdlib ssl module's).\n\nNo effect in ferricorn: ferricorn serves plain HTTP only.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
    Setting {
        name: "cert_reqs",
        section: Section::Ssl,
        cli: &["--cert-reqs"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: |raw| int_in(raw, 0, 2, "0, 1 or 2 (ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED)"),
        example: "--cert-reqs 2",
        short: "Whether client certificate is required (see stdlib ssl module's)",
        desc: "Whether client certificate is required (see stdlib ssl module's)\n\nNo effect in ferricorn: ferricorn serves plain HTTP only.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
    Setting {
        name: "suppress_ragged_eofs",
        section: Section::Ssl,
        cli: &["--suppress-ragged-eofs"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(true),
        validate: boolean,
        example: "--suppress-ragged-eofs",
        short: "Suppress ragged EOFs (see stdlib ssl module's)",
        desc: "Suppress ragged EOFs (see stdlib ssl module's)\n\nNo effect in ferricorn: ferricorn serves plain HTTP only.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
    Setting {
        name: "do_handshake_on_connect",
        section: Section::Ssl,
        cli: &["--do-handshake-on-connect"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--do-handshake-on-connect",
        short: "Whether to perform SSL handshake on socket connect (see stdlib ssl module's)",
        desc: "Whether to perform SSL handshake on socket connect (see stdlib ssl module's)\n\nNo effect in ferricorn: ferricorn serves plain HTTP only.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(PLAIN_HTTP),
    },
];

/// gunicorn's `ssl_version` is deprecated and unchecked; this accepts what
/// its `ssl.PROTOCOL_*` constants can be: a small integer or a constant name.
fn ssl_version(raw: Value) -> Result<Value, String> {
    const NAMES: &[&str] = &[
        "SSLv23",
        "TLS",
        "TLS_CLIENT",
        "TLS_SERVER",
        "TLSv1",
        "TLSv1_1",
        "TLSv1_2",
    ];
    match raw {
        Value::Str(ref s) if NAMES.contains(&s.trim()) => Ok(Value::Str(s.trim().to_owned())),
        other => int_in(
            other,
            0,
            17,
            "an ssl.PROTOCOL_* value, e.g. 2 or TLS_SERVER",
        ),
    }
}
