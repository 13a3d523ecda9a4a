//! Gunicorn's "SSL" section. `--certfile` (with `--keyfile`) turns TLS on for every listener,
//! terminated by rustls (`net::tls` builds its config, `http::tls` runs the sessions).
//! `--ciphers` and `--ssl-version` are read as gunicorn users write them and mapped onto what
//! rustls offers (`net::tls::ciphers`); what cannot be mapped is an error naming the setting.

use super::{boolean, int_in, opt_string};
use crate::net::tls::ciphers;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting, Value};

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
The PEM private key (PKCS#8, PKCS#1 or SEC1) of `--certfile`'s certificate. \
Unset, the key is read from the certificate file. It must match the \
certificate: a mismatch stops the server before it binds. As in gunicorn, \
workers read it after dropping privileges: with `--user`, that user must be \
able to read it.",
        cost: "Read once by the master at startup (to check it) and once by each \
worker when it boots, so the workers a HUP starts use a renewed key.",
        compat: Compat::Full,
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
Setting it serves HTTPS on every listener (TCP and unix sockets), terminated \
in the worker by rustls: TLS 1.2 and 1.3, ALPN from --http-protocols (`http/1.1`, \
and `h2` when listed). The file holds the \
PEM certificate chain, leaf first. Requests see `wsgi.url_scheme` `https` \
(ASGI: `scheme` `https`/`wss`, and the `tls` scope extension). An unreadable \
or invalid file stops the server before it binds. Each worker reads the file \
when it boots: replace the files and send HUP to serve a renewed certificate \
without dropping a connection.",
        cost: "A TLS handshake per connection (keep-alive amortises it) and \
encryption of every byte; static files and `wsgi.file_wrapper` are read and \
encrypted instead of sent with sendfile.",
        compat: Compat::Full,
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
PEM certificates of the CAs that sign client certificates, used when \
`--cert-reqs` asks for them (then it is required).",
        cost: "Read with the certificate; verifying a client chain costs a few \
signature checks per handshake.",
        compat: Compat::Partial(
            "only client-certificate verification reads it; Python would fall back to the \
             system CAs when it is unset, ferricorn requires it with --cert-reqs 1 or 2",
        ),
    },
    Setting {
        name: "ciphers",
        section: Section::Ssl,
        cli: &["--ciphers"],
        meta: "CIPHERS",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_ciphers,
        example: "--ciphers ECDHE+AESGCM",
        short: "SSL Cipher suite to use, in the format of an OpenSSL cipher list.",
        desc: "SSL Cipher suite to use, in the format of an OpenSSL cipher list.\n\
\n\
Unset, rustls offers all its suites (TLS 1.3: AES-256-GCM, AES-128-GCM, \
ChaCha20-Poly1305; TLS 1.2: ECDHE with ECDSA or RSA and the same ciphers). \
The list is read as OpenSSL reads it and mapped onto those: suite names in \
OpenSSL (`ECDHE-RSA-AES128-GCM-SHA256`) or IANA form \
(`TLS_AES_128_GCM_SHA256`), keywords (`HIGH`, `ECDH+AESGCM`, `aRSA`, \
`CHACHA20`...), `!`/`-` to remove; `+X` and `@SECLEVEL` change nothing. As \
with OpenSSL, the list selects TLS 1.2 suites and leaves TLS 1.3 alone unless \
it names TLS 1.3 suites, and suite names rustls does not implement (DHE, CBC) \
are skipped. An unknown word, or a list leaving no suite, is an error.",
        cost: "None beyond the handshake.",
        compat: Compat::Partial(
            "mapped onto rustls's nine AEAD suites; names it lacks are skipped",
        ),
    },
    Setting {
        name: "ssl_version",
        section: Section::Ssl,
        cli: &["--ssl-version"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(2),
        validate: ssl_version,
        example: "--ssl-version TLSv1_2",
        short: "SSL version to use (see stdlib ssl module's).",
        desc: "SSL version to use (see stdlib ssl module's).\n\
\n\
A `ssl.PROTOCOL_*` number or name. `TLS`/`SSLv23` (2, the default), \
`TLS_SERVER` (17) and `TLSv1_2` (5) offer TLS 1.2 and 1.3; `TLSv1_3` (a \
ferricorn addition) offers TLS 1.3 only. `SSLv3`, `TLSv1` and `TLSv1_1` are \
refused at startup: rustls does not implement them.",
        cost: "None.",
        compat: Compat::Partial(
            "gunicorn 27 ignores it; ferricorn maps it onto rustls's TLS 1.2/1.3 and \
             refuses older versions",
        ),
    },
    Setting {
        name: "cert_reqs",
        section: Section::Ssl,
        cli: &["--cert-reqs"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: |raw| {
            int_in(
                raw,
                0,
                2,
                "0, 1 or 2 (ssl.CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED)",
            )
        },
        example: "--cert-reqs 2",
        short: "Whether client certificate is required (see stdlib ssl module's)",
        desc: "Whether client certificate is required (see stdlib ssl module's)\n\
\n\
0: no client certificate is asked for. 1: one is asked for and verified \
against `--ca-certs` when sent; a client without one is let in. 2: a client \
without a valid certificate fails the handshake. ASGI apps find the chain in \
the scope's `tls` extension.",
        cost: "Verifying a client chain per handshake.",
        compat: Compat::Full,
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
        desc: "Suppress ragged EOFs (see stdlib ssl module's)\n\
\n\
ferricorn always treats a TCP close without TLS close_notify as the end of \
the stream, as this setting's default does; request framing still catches a \
truncated body.",
        cost: "None.",
        compat: Compat::Ignored(
            "a TLS EOF without close_notify always ends the stream quietly (the default, True)",
        ),
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
        desc: "Whether to perform SSL handshake on socket connect (see stdlib ssl module's)\n\
\n\
ferricorn always handshakes right after accept, on the worker's I/O thread \
and within `--header-timeout`, never on an app thread.",
        cost: "None.",
        compat: Compat::Ignored(
            "the handshake always runs right after accept, on the I/O thread, within \
             --header-timeout",
        ),
    },
];

/// An OpenSSL cipher list that maps onto at least one rustls suite.
fn validate_ciphers(raw: Value) -> Result<Value, String> {
    match raw {
        Value::Str(ref s) => ciphers::select(s).map(|_| raw.clone()),
        Value::None => Ok(raw),
        _ => Err("expected an OpenSSL cipher list".to_owned()),
    }
}

/// A `ssl.PROTOCOL_*` value (number or name) that rustls can honour; kept as given, so
/// --print-config shows what the user wrote.
fn ssl_version(raw: Value) -> Result<Value, String> {
    let shown = match &raw {
        Value::Str(s) => s.trim().to_owned(),
        Value::Int(n) => n.to_string(),
        _ => return Err("expected an ssl.PROTOCOL_* value, e.g. 2 or TLS_SERVER".to_owned()),
    };
    ciphers::Versions::parse(&shown)?;
    Ok(match shown.parse::<i64>() {
        Ok(n) => Value::Int(n),
        Err(_) => Value::Str(shown),
    })
}
