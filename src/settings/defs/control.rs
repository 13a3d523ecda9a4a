//! Gunicorn's "Control" section: the gunicornc control socket. Not
//! implemented in ferricorn yet; the settings parse so gunicorn configs
//! load, and each use is warned about.

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
        desc: "Unix socket path for control interface.\n\nNo effect in ferricorn: The control socket is not implemented yet.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the control socket is not implemented yet"),
    },
    Setting {
        name: "control_socket_mode",
        section: Section::Control,
        cli: &["--control-socket-mode"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0o600),
        validate: |raw| int_in(raw, 0, 0o7777, "a file mode, e.g. 0o600"),
        example: "--control-socket-mode 0o600",
        short: "Permission mode for control socket.",
        desc: "Permission mode for control socket.\n\nNo effect in ferricorn: The control socket is not implemented yet.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the control socket is not implemented yet"),
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
        desc: "Disable control socket.\n\nNo effect in ferricorn: The control socket is not implemented yet.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the control socket is not implemented yet"),
    },
];

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
