//! Gunicorn's "Logging" section. The level and stdio inheritance so far;
//! the access log and error log destinations will join it here.

use super::{boolean, choice};
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting};

/// Gunicorn's level names, most verbose first.
pub const LOG_LEVELS: &[&str] = &["debug", "info", "warning", "error", "critical"];

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "enable_stdio_inheritance",
        section: Section::Logging,
        cli: &["-R", "--enable-stdio-inheritance"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--enable-stdio-inheritance",
        short: "Enable stdio inheritance.",
        desc: "Enable stdio inheritance.\n\
\n\
With --daemon, keep stdout and stderr as they were (say, redirected to a \
file by the shell) instead of pointing them at /dev/null; a terminal is \
still let go. stdin always becomes /dev/null. Set PYTHONUNBUFFERED in the \
environment to see Python's output without buffering delays.",
        cost: "None; without --daemon it has no effect.",
        compat: Compat::Full,
    },
    Setting {
        name: "loglevel",
        section: Section::Logging,
        cli: &["--log-level"],
        meta: "LEVEL",
        action: Action::Store,
        default: DefaultValue::Str("info"),
        validate: |raw| choice(raw, LOG_LEVELS),
        example: "--log-level warning",
        short: "The granularity of Error log outputs.",
        desc: "The granularity of Error log outputs.\n\
\n\
Valid level names are debug, info, warning, error and critical, in any \
case. critical logs the same as error: the Rust logger has no level above \
error.",
        cost: "debug logs per-connection detail, which costs CPU and disk on busy \
servers; error and above can hide the warnings that explain an outage.",
        compat: Compat::Partial(
            "critical is treated as error; an unknown level is an error rather than \
silently meaning info",
        ),
    },
];

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, DefaultValue, Value};

    #[test]
    fn stdio_inheritance_defaults_off() {
        let inherit = find("enable_stdio_inheritance").unwrap();
        assert!(matches!(inherit.default, DefaultValue::Bool(false)));
        assert_eq!(
            inherit.check(Value::Str("true".into())).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn loglevel_defaults_to_info_and_accepts_any_case() {
        let level = find("loglevel").unwrap();
        assert!(matches!(level.default, DefaultValue::Str("info")));
        assert_eq!(
            level.check(Value::Str("WARNING".into())).unwrap(),
            Value::Str("warning".into())
        );
        assert_eq!(
            level.check(Value::Str("Critical".into())).unwrap(),
            Value::Str("critical".into())
        );
    }

    #[test]
    fn loglevel_rejects_unknown_names_listing_the_valid_ones() {
        let level = find("loglevel").unwrap();
        assert_eq!(
            level
                .check(Value::Str("verbose".into()))
                .unwrap_err()
                .to_string(),
            "--log-level / loglevel = \"verbose\": expected one of debug, info, warning, \
             error, critical, e.g. --log-level warning"
        );
    }
}
