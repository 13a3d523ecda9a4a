//! Gunicorn's "Server Socket" section: where to listen and how deep the
//! accept queue is. Parsing of an address lives in `net::bind`; this file
//! only declares the settings and checks values with it.

use super::{int_in, string_list};
use crate::net::BindAddr;
use crate::settings::registry::{Action, Compat, DefaultValue, Env, Section, Setting, Value};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "bind",
        section: Section::ServerSocket,
        cli: &["-b", "--bind"],
        meta: "ADDRESS",
        action: Action::Append,
        default: DefaultValue::FromEnv {
            doc: "127.0.0.1:8000, or 0.0.0.0:$PORT when PORT is set",
            get: bind_default,
        },
        validate: validate_bind,
        example: "--bind 127.0.0.1:8000",
        short: "The socket to bind.",
        desc: "The socket to bind. Repeat the flag to listen on several.\n\
\n\
A string of the form HOST, HOST:PORT, [IPV6]:PORT, :PORT, unix:PATH or \
fd://FD. HOST alone listens on port 8000; an empty host means every IPv4 \
interface. A hostname binds the first address it resolves to that can be \
bound. unix:PATH replaces a stale socket file at PATH but refuses to remove \
anything that is not a socket. fd://FD adopts a listening socket inherited \
from the parent (systemd, a supervisor).\n\
\n\
Example: `-b 127.0.0.1:8000 -b [::1]:8000` serves both loopbacks. When \
[::]:PORT and an IPv4 address on the same port are both bound, the IPv6 \
socket is made IPv6-only so the two do not collide; alone, [::] follows the \
system default (usually dual-stack), as in gunicorn.\n\
\n\
If the PORT environment variable is set, the default is 0.0.0.0:$PORT, \
otherwise 127.0.0.1:8000.",
        cost: "One listening socket per address. Binding 0.0.0.0 or [::] exposes \
the server on every interface, not just this machine.",
        compat: Compat::Full,
    },
    Setting {
        name: "backlog",
        section: Section::ServerSocket,
        cli: &["--backlog"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(2048),
        validate: |raw| int_in(raw, 0, i32::MAX.into(), "an integer from 0 to 2147483647"),
        example: "--backlog 2048",
        short: "The maximum number of pending connections.",
        desc: "The maximum number of pending connections.\n\
\n\
This is how many clients can wait in the kernel's accept queue before \
being served. When it is full, new clients see errors or retries. It only \
matters under heavy load. Generally set in the 64-2048 range; the kernel \
silently caps it at net.core.somaxconn.",
        cost: "Kernel memory per queued connection. Too small refuses clients \
during bursts; too large hides overload as latency instead of failing fast.",
        compat: Compat::Full,
    },
];

fn bind_default(env: Env<'_>) -> Value {
    let addr = match env.var("PORT") {
        Some(port) => format!("0.0.0.0:{port}"),
        None => "127.0.0.1:8000".to_owned(),
    };
    Value::List(vec![addr])
}

fn validate_bind(raw: Value) -> Result<Value, String> {
    let list = string_list(raw, "an address string or a list of them")?;
    if let Value::List(items) = &list {
        for item in items {
            if let Err(err) = item.parse::<BindAddr>() {
                // Only name the entry when there is more than one to choose from.
                return Err(if items.len() > 1 {
                    format!("{item:?}: {}", err.reason())
                } else {
                    err.reason().to_owned()
                });
            }
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, Env, Value};

    fn env_with_port(port: &'static str) -> impl Fn(&str) -> Option<String> {
        move |k| (k == "PORT").then(|| port.to_owned())
    }

    #[test]
    fn bind_defaults_to_loopback_8000_without_port() {
        let bind = find("bind").unwrap();
        let none = |_: &str| None;
        assert_eq!(
            bind.default.value(Env::from_fn(&none)),
            Value::List(vec!["127.0.0.1:8000".into()])
        );
    }

    #[test]
    fn bind_default_honours_port_on_all_interfaces() {
        let bind = find("bind").unwrap();
        let env = env_with_port("5000");
        assert_eq!(
            bind.default.value(Env::from_fn(&env)),
            Value::List(vec!["0.0.0.0:5000".into()])
        );
    }

    #[test]
    fn bind_accepts_one_string_or_a_list_and_rejects_bad_ports() {
        let bind = find("bind").unwrap();
        assert_eq!(
            bind.check(Value::Str("unix:/tmp/x.sock".into())).unwrap(),
            Value::List(vec!["unix:/tmp/x.sock".into()])
        );
        let err = bind
            .check(Value::List(vec!["127.0.0.1:test".into()]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--bind / bind = [\"127.0.0.1:test\"]: \"test\" is not a valid port number, \
             e.g. --bind 127.0.0.1:8000"
        );
        let err = bind
            .check(Value::List(vec!["a:1".into(), "fd://x".into()]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"fd://x\": \"x\" is not a valid file descriptor"),
            "{err}"
        );
        assert!(bind.check(Value::Int(80)).is_err());
    }

    #[test]
    fn backlog_defaults_to_2048_and_rejects_negative_or_huge() {
        let backlog = find("backlog").unwrap();
        assert!(matches!(backlog.default, super::DefaultValue::Int(2048)));
        assert_eq!(
            backlog.check(Value::Str("64".into())).unwrap(),
            Value::Int(64)
        );
        for bad in ["-1", "4294967296", "lots"] {
            let err = backlog
                .check(Value::Str(bad.into()))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("--backlog / backlog = "), "{err}");
            assert!(err.ends_with("e.g. --backlog 2048"), "{err}");
        }
    }
}
