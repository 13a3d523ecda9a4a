//! Gunicorn's proxy-facing "Server Mechanics" settings: trusted proxies,
//! forwarded headers, the PROXY and uwsgi protocols. ferricorn accepts and
//! validates them so gunicorn configs load, but applies none of them yet;
//! each use is warned about.

use super::{addr_list, choice, comma_list, dict, opt_string};
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
        desc: "Front-end's IP addresses or networks from which allowed to handle set secure headers.\n\nNo effect in ferricorn: Accepted; proxy headers are not applied yet (REMOTE_ADDR is the peer).",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("accepted; proxy headers are not applied yet (REMOTE_ADDR is the peer)"),
    },
    Setting {
        name: "secure_scheme_headers",
        section: Section::ServerMechanics,
        cli: &[],
        meta: "DICT",
        action: Action::Store,
        default: DefaultValue::Object("{'X-FORWARDED-PROTOCOL': 'ssl', 'X-FORWARDED-PROTO': 'https', 'X-FORWARDED-SSL': 'on'}"),
        validate: dict,
        example: "secure_scheme_headers = {'X-FORWARDED-PROTO': 'https'}",
        short: "A dictionary containing headers and values that the front-end proxy uses to indicate HTTPS requests.",
        desc: "A dictionary containing headers and values that the front-end proxy uses to indicate HTTPS requests.\n\nNo effect in ferricorn: Accepted; proxy headers are not applied yet (wsgi.url_scheme is the listener's).",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("accepted; proxy headers are not applied yet (wsgi.url_scheme is the listener's)"),
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
        desc: "A list containing upper-case header field names that the front-end proxy (see forwarded-allow-ips) sets, to be used in WSGI environment.\n\nNo effect in ferricorn: Accepted; proxy headers are not applied yet (REMOTE_ADDR is the peer).",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("accepted; proxy headers are not applied yet (REMOTE_ADDR is the peer)"),
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
        desc: "Enable PROXY protocol support.\n\nNo effect in ferricorn: The PROXY protocol is not implemented yet; connections must speak HTTP directly.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the PROXY protocol is not implemented yet; connections must speak HTTP directly"),
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
        desc: "Front-end's IP addresses or networks from which allowed accept proxy requests (comma separated).\n\nNo effect in ferricorn: The PROXY protocol is not implemented yet.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the PROXY protocol is not implemented yet"),
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
        desc: "The protocol for incoming connections.\n\nNo effect in ferricorn: Ferricorn speaks HTTP only; the uwsgi protocol is not implemented yet.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("ferricorn speaks HTTP only; the uwsgi protocol is not implemented yet"),
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
        desc: "IPs allowed to send uWSGI protocol requests (comma separated).\n\nNo effect in ferricorn: The uwsgi protocol is not implemented yet.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the uwsgi protocol is not implemented yet"),
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
        desc: "Configure how header field names are mapped into environ\n\nNo effect in ferricorn: Not implemented yet: headers with underscores are passed to the app as-is.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("not implemented yet: headers with underscores are passed to the app as-is"),
    },
];

/// gunicorn reads `$FORWARDED_ALLOW_IPS` for the default.
fn forwarded_allow_ips_default(env: Env<'_>) -> Value {
    Value::Str(
        env.var("FORWARDED_ALLOW_IPS")
            .unwrap_or_else(|| "127.0.0.1,::1".to_owned()),
    )
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
