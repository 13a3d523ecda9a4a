//! Gunicorn's "SSL" section. ferricorn does not terminate TLS yet, so these
//! are accepted for compatibility (flags and conf names parse) and each use
//! is warned about; none has an effect.

use super::opt_string;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting};

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
];
