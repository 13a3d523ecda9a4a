//! Gunicorn's "Control" section: the control socket that `gunicornc` (and
//! `ferricorn ctl`) drive, served by the master (src/master/control/).

use super::{boolean, int_in, opt_string};
use crate::settings::registry::{Action, Compat, DefaultValue, Env, Section, Setting, Value};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "control_socket",
        section: Section::Control,
        cli: &["--control-socket"],
        meta: "PATH",
        action: Action::Store,
        default: DefaultValue::FromEnv { doc: "$XDG_RUNTIME_DIR/gunicorn.ctl, or ~/.gunicorn/gunicorn.ctl", get: control_socket_default },
        validate: |raw| opt_string(raw, "a socket path"),
        example: "--control-socket /run/myapp.ctl",
        short: "Unix socket path for control interface.",
        desc: "Unix socket path for control interface.\n\n\
The master listens there for gunicorn's control protocol, so `gunicornc -s PATH` and \
`ferricorn ctl -s PATH` can show workers, stats, config and listeners, add, remove or kill \
workers, reload, reopen logs and shut down. ferricorn adds `show requests` (every request \
in an app now: worker, method, path, age) and `dump stacks [PID]` (every Python thread's \
stack of a worker, taken without stopping it). Default: `$XDG_RUNTIME_DIR/gunicorn.ctl`, \
else `~/.gunicorn/gunicorn.ctl`; a relative path is taken from the working directory; the \
parent directory is created (mode 0700) if missing. A stale socket file is replaced; a \
path that exists and is not a socket is refused (with a warning: the server runs without). \
Clients of another uid than the server's are refused (root is allowed). The file is \
removed on exit. `--no-control-socket` turns it off.",
        cost: "One more descriptor in the master's poll loop, served between supervision \
steps. Workers record each request's method and path in a shared table (a few memory \
stores per request) and register one signal handler.",
        compat: Compat::Partial("a path that exists and is not a socket is refused instead of deleted; `show requests` and `dump stacks` are ferricorn's"),
    },
    Setting {
        name: "control_socket_mode",
        section: Section::Control,
        cli: &["--control-socket-mode"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0o600),
        validate: validate_mode,
        example: "--control-socket-mode 0o600",
        short: "Permission mode for control socket.",
        desc: "Permission mode for control socket.\n\n\
Default `0600` lets only the owner connect; `0660` lets the group connect too (the \
server still refuses peers of another uid, except root). The socket is created with \
this mode (the umask is narrowed around bind), never looser even for an instant.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "control_socket_disable",
        section: Section::Control,
        cli: &["--no-control-socket"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--no-control-socket",
        short: "Disable control socket.",
        desc: "Disable control socket.\n\n\
No socket is created, and `gunicornc` / `ferricorn ctl` cannot reach this server; \
workers keep no request table.",
        cost: "None.",
        compat: Compat::Full,
    },
];

/// gunicorn's `auto_int`: a leading `0` followed by a digit means octal (`0660`), as in a
/// chmod command; `0o660` and plain decimal work too.
fn validate_mode(raw: Value) -> Result<Value, String> {
    const WHAT: &str = "a file mode, e.g. 0600 or 0o660";
    let raw = match raw {
        Value::Str(s) => {
            let t = s.trim();
            match t.strip_prefix('0') {
                Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => {
                    match i64::from_str_radix(rest, 8) {
                        Ok(n) => Value::Int(n),
                        Err(_) => return Err(format!("expected {WHAT}")),
                    }
                }
                _ => Value::Str(s),
            }
        }
        other => other,
    };
    int_in(raw, 0, 0o7777, WHAT)
}

/// gunicorn prefers `$XDG_RUNTIME_DIR`, then `~/.gunicorn/`. It also checks
/// that the runtime directory exists; that needs the filesystem, and the
/// value is only shown, so the variable alone decides here.
fn control_socket_default(env: Env<'_>) -> Value {
    let dir = match (env.var("XDG_RUNTIME_DIR"), env.var("HOME")) {
        (Some(runtime), _) if !runtime.is_empty() => runtime,
        (_, Some(home)) => format!("{home}/.gunicorn"),
        _ => "~/.gunicorn".to_owned(),
    };
    Value::Str(format!("{dir}/gunicorn.ctl"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_read_like_chmod() {
        for (raw, mode) in [("0660", 0o660), ("0o600", 0o600), ("384", 0o600), ("0", 0)] {
            assert_eq!(
                validate_mode(Value::Str(raw.into())),
                Ok(Value::Int(mode)),
                "{raw}"
            );
        }
        assert!(validate_mode(Value::Str("0668".into())).is_err());
        assert!(validate_mode(Value::Int(0o10000)).is_err());
    }

    #[test]
    fn control_socket_default_prefers_the_runtime_dir() {
        let env = Env::from_fn(&|k| match k {
            "XDG_RUNTIME_DIR" => Some("/run/user/1".to_owned()),
            _ => Some("/home/u".to_owned()),
        });
        assert_eq!(
            control_socket_default(env),
            Value::Str("/run/user/1/gunicorn.ctl".into())
        );
        let env = Env::from_fn(&|k| (k == "HOME").then(|| "/home/u".to_owned()));
        assert_eq!(
            control_socket_default(env),
            Value::Str("/home/u/.gunicorn/gunicorn.ctl".into())
        );
    }
}
