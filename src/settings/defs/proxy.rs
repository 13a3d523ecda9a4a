//! Gunicorn's proxy-facing "Server Mechanics" settings: trusted proxies,
//! forwarded headers, the PROXY and uwsgi protocols. `http::edge` applies
//! the trusted-proxy, PROXY protocol and uwsgi allow-list ones (`http::conn::uwsgi`
//! serves the uwsgi protocol); forwarder_headers is accepted so gunicorn configs
//! load, and warned about.

use super::{addr_list, choice, comma_list, opt_string};
use crate::settings::registry::{Action, Compat, DefaultValue, Env, Section, Setting, Value};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "forwarded_allow_ips",
        section: Section::ServerMechanics,
        cli: &["--forwarded-allow-ips"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::FromEnv { doc: "$FORWARDED_ALLOW_IPS, or 127.0.0.1,::1", get: forwarded_allow_ips_default },
        validate: addr_list,
        example: "--forwarded-allow-ips 10.0.0.0/8,127.0.0.1",
        short: "Front-end's IP addresses or networks from which allowed to handle set secure headers.",
        desc: "Front-end's IP addresses or networks from which allowed to handle set secure headers.\n\
\n\
Comma separated; addresses (`192.168.1.1`), CIDR networks (`10.0.0.0/8`, \
host bits must be zero, as in gunicorn) or `*` for any peer. Only a peer in \
this list may set the scheme through secure_scheme_headers; an untrusted \
peer's scheme headers are ignored. Unix-socket peers are always trusted. \
IPv4 peers of a dual-stack listener (::ffff:a.b.c.d) match IPv4 entries. \
As in gunicorn 27, X-Forwarded-For and Forwarded never change REMOTE_ADDR \
or the ASGI client (use the PROXY protocol for that); they reach the app as \
ordinary headers. Default: $FORWARDED_ALLOW_IPS, or 127.0.0.1,::1.",
        cost: "One address comparison per list entry, per connection.",
        compat: Compat::Full,
    },
    Setting {
        name: "secure_scheme_headers",
        section: Section::ServerMechanics,
        cli: &[],
        meta: "DICT",
        action: Action::Store,
        default: DefaultValue::Object("{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}"),
        validate: secure_scheme_headers,
        example: "secure_scheme_headers = {'X-FORWARDED-PROTO': 'https'}",
        short: "A dictionary containing headers and values that the front-end proxy uses to indicate HTTPS requests.",
        desc: "A dictionary containing headers and values that the front-end proxy uses to indicate HTTPS requests.\n\
\n\
For a peer in forwarded_allow_ips, the first of these headers present sets \
wsgi.url_scheme (and the ASGI scope's scheme: https / wss) to https when \
its value is exactly the one given, else to http; a later one that \
disagrees makes the request fail with 400, as in gunicorn. Header names \
match case-insensitively (gunicorn only matches upper-case keys); values \
are compared exactly. Conf file only; must be a dict of strings.",
        cost: "One header-name comparison per entry and header, per request from a trusted peer.",
        compat: Compat::Partial("keys match case-insensitively"),
    },
    Setting {
        name: "forwarder_headers",
        section: Section::ServerMechanics,
        cli: &["--forwarder-headers"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("SCRIPT_NAME,PATH_INFO"),
        validate: |raw| comma_list(raw, "a comma-separated list of header names"),
        example: "--forwarder-headers SCRIPT_NAME,PATH_INFO",
        short: "A list containing upper-case header field names that the front-end proxy (see forwarded-allow-ips) sets, to be used in WSGI environment.",
        desc: "A list containing upper-case header field names that the front-end proxy (see forwarded-allow-ips) sets, to be used in WSGI environment.\n\nNo effect in ferricorn: Ferricorn drops every header whose name contains an underscore, from any peer; no listed name is let through.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("ferricorn drops every header whose name contains an underscore, from any peer"),
    },
    Setting {
        name: "proxy_protocol",
        section: Section::ServerMechanics,
        cli: &["--proxy-protocol"],
        meta: "MODE",
        action: Action::StoreOptional("auto"),
        default: DefaultValue::Str("off"),
        validate: proxy_protocol,
        example: "--proxy-protocol v1",
        short: "Enable PROXY protocol support.",
        desc: "Enable PROXY protocol support.\n\
\n\
off, v1 (text), v2 (binary) or auto (either); the flag alone means auto, \
and true/false are accepted as in gunicorn. A connection may start with \
one PROXY header, read before its first request: the client it names \
becomes REMOTE_ADDR / REMOTE_PORT and the ASGI scope's client, and WSGI \
gets PROXY_PROTOCOL, PROXY_ADDR and PROXY_PORT. A connection without one \
is served as plain HTTP. A header from a peer outside proxy_allow_ips is \
answered 403 and a malformed one 400, and the connection closed. Headers \
that name no client (v2 LOCAL and UNSPEC, v1 UNKNOWN) keep the socket \
peer; gunicorn refuses v1 UNKNOWN and sets REMOTE_ADDR to None for the \
others. Scheme headers are still trusted by the socket peer's address.",
        cost: "A few byte comparisons at the start of each connection.",
        compat: Compat::Partial("v1 UNKNOWN is accepted; LOCAL/UNSPEC keep the socket peer"),
    },
    Setting {
        name: "proxy_allow_ips",
        section: Section::ServerMechanics,
        cli: &["--proxy-allow-from"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("127.0.0.1,::1"),
        validate: addr_list,
        example: "--proxy-allow-from 127.0.0.1",
        short: "Front-end's IP addresses or networks from which allowed accept proxy requests (comma separated).",
        desc: "Front-end's IP addresses or networks from which allowed accept proxy requests (comma separated).\n\
\n\
Addresses, CIDR networks or `*`, as for forwarded_allow_ips. Unix-socket \
peers are always allowed. Only matters with proxy_protocol.",
        cost: "One address comparison per entry, per PROXY header.",
        compat: Compat::Full,
    },
    Setting {
        name: "protocol",
        section: Section::ServerMechanics,
        cli: &["--protocol"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("http"),
        validate: |raw| choice(raw, &["http", "uwsgi"]),
        example: "--protocol http",
        short: "The protocol for incoming connections.",
        desc: "The protocol for incoming connections.\n\
\n\
`http` (HTTP/1.x) or `uwsgi`, the binary protocol of nginx's `uwsgi_pass` \
(with `include uwsgi_params;`), for every listener. Each request is one \
packet of CGI variables, then CONTENT_LENGTH bytes of body; the response \
goes back as an HTTP/1.0 status line, headers and body, never chunked: \
without a Content-Length the connection closes after the body. REMOTE_ADDR \
/ REMOTE_PORT, SERVER_NAME / SERVER_PORT, the method, URI, protocol and \
HTTP_* headers become the request; HTTPS=on (or UWSGI_SCHEME, \
REQUEST_SCHEME, wsgi.url_scheme = https) makes it https. Every other var \
(DOCUMENT_ROOT, REQUEST_URI, custom uwsgi_param values) is copied into the \
WSGI environ, where gunicorn drops them and reports the socket peer as \
REMOTE_ADDR; a SCRIPT_NAME var is the mount point (the ASGI root_path). \
Only modifier1 0 is served (501 otherwise), malformed packets get 400, \
peers outside uwsgi_allow_ips 403 (gunicorn answers all three 500). \
--health-path is answered as for HTTP; --static mounts and WebSocket \
upgrades are HTTP only (such requests reach the app).",
        cost: "None for http (chosen once per connection); for uwsgi a few small allocations per request (the vars, the per-request client facts).",
        compat: Compat::Partial("the other CGI vars reach the WSGI environ; protocol errors get 400/403/501, not gunicorn's 500"),
    },
    Setting {
        name: "uwsgi_allow_ips",
        section: Section::ServerMechanics,
        cli: &["--uwsgi-allow-from"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("127.0.0.1,::1"),
        validate: addr_list,
        example: "--uwsgi-allow-from 127.0.0.1",
        short: "IPs allowed to send uWSGI protocol requests (comma separated).",
        desc: "IPs allowed to send uWSGI protocol requests (comma separated).\n\
\n\
Addresses, CIDR networks or `*`, as for forwarded_allow_ips (gunicorn \
compares exact addresses). A connection from another address is answered \
403 and closed before anything is read. Unix-socket peers are always \
allowed. Only matters with protocol = uwsgi.",
        cost: "One address comparison per entry, per connection.",
        compat: Compat::Full,
    },
    Setting {
        name: "root_path",
        section: Section::ServerMechanics,
        cli: &["--root-path"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str(""),
        validate: |raw| opt_string(raw, "a URL path prefix"),
        example: "--root-path /api",
        short: "The root path for ASGI applications.",
        desc: "The root path for ASGI applications.\n\
\n\
The ASGI scope's `root_path`, for an app mounted below a URL prefix by a \
proxy; as in uvicorn, the scope's `path` then starts with it too. WSGI apps \
take their SCRIPT_NAME from the SCRIPT_NAME environment variable, as in \
gunicorn.",
        cost: "None.",
        compat: Compat::Partial("ASGI only; WSGI's SCRIPT_NAME comes from the environment"),
    },
    Setting {
        name: "header_map",
        section: Section::ServerMechanics,
        cli: &["--header-map"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("drop"),
        validate: |raw| choice(raw, &["drop", "refuse", "dangerous"]),
        example: "--header-map refuse",
        short: "Configure how header field names are mapped into environ",
        desc: "Configure how header field names are mapped into environ\n\nNo effect in ferricorn: Always gunicorn's default, drop: a header whose name has an underscore never reaches the app.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("always gunicorn's default, drop: a header whose name has an underscore never reaches the app"),
    },
];

/// gunicorn reads `$FORWARDED_ALLOW_IPS` for the default.
fn forwarded_allow_ips_default(env: Env<'_>) -> Value {
    Value::Str(
        env.var("FORWARDED_ALLOW_IPS")
            .unwrap_or_else(|| "127.0.0.1,::1".to_owned()),
    )
}

/// gunicorn's `validate_dict`, and more: the dict must map strings to strings, since only a
/// string can equal a header value (checked here so a mistake shows at startup).
fn secure_scheme_headers(raw: Value) -> Result<Value, String> {
    match &raw {
        Value::Object(repr) => crate::http::forwarded::parse_str_dict(repr).map(|_| raw),
        _ => Err("expected a dict of header names to values".to_owned()),
    }
}

/// gunicorn's `validate_proxy_protocol`: booleans and a few spellings map to
/// off, auto, v1 or v2.
fn proxy_protocol(raw: Value) -> Result<Value, String> {
    const WANTED: &str = "expected one of off, auto, v1, v2 (or true/false)";
    let mode = match raw {
        Value::None | Value::Bool(false) => "off",
        Value::Bool(true) => "auto",
        Value::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "false" | "off" | "0" | "none" => "off",
            "true" | "auto" | "1" => "auto",
            "v1" => "v1",
            "v2" => "v2",
            _ => return Err(WANTED.to_owned()),
        },
        _ => return Err(WANTED.to_owned()),
    };
    Ok(Value::Str(mode.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_allow_ips_default_reads_the_environment() {
        let env = Env::from_fn(&|k| (k == "FORWARDED_ALLOW_IPS").then(|| "10.0.0.1".to_owned()));
        assert_eq!(
            forwarded_allow_ips_default(env),
            Value::Str("10.0.0.1".into())
        );
    }

    #[test]
    fn proxy_protocol_alone_means_auto_as_in_gunicorn() {
        let mut cmd = crate::settings::cli::command();
        let argv = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let parsed =
            crate::settings::cli::parse(&mut cmd, &argv(&["ferricorn", "--proxy-protocol"]));
        assert_eq!(
            parsed.unwrap().values.get("proxy_protocol"),
            Some(&Value::Str("auto".into()))
        );
        let parsed = crate::settings::cli::parse(
            &mut cmd,
            &argv(&["ferricorn", "--proxy-protocol", "v2", "app:app"]),
        )
        .unwrap();
        assert_eq!(
            parsed.values.get("proxy_protocol"),
            Some(&Value::Str("v2".into()))
        );
        assert_eq!(parsed.app.as_deref(), Some("app:app"));
    }

    #[test]
    fn proxy_protocol_normalises_like_gunicorn() {
        for (raw, want) in [
            (Value::Bool(true), "auto"),
            (Value::None, "off"),
            (Value::Str("TRUE".into()), "auto"),
            (Value::Str("none".into()), "off"),
            (Value::Str("v2".into()), "v2"),
        ] {
            assert_eq!(proxy_protocol(raw), Ok(Value::Str(want.into())));
        }
        assert!(proxy_protocol(Value::Str("v3".into())).is_err());
    }
}
