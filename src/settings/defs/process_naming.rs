//! Gunicorn's "Process Naming" section: the name `ps` and `top` show for
//! the master and its workers. Setting the title is `process::title`.

use super::opt_string;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting, Value};

pub const SETTINGS: &[Setting] = &[
    Setting {
    name: "proc_name",
    section: Section::ProcessNaming,
    cli: &["-n", "--name"],
    meta: "STRING",
    action: Action::Store,
    default: DefaultValue::None,
    validate: validate_proc_name,
    example: "--name shop-api",
    short: "A base to use with setproctitle for process naming.",
    desc: "A base to use with setproctitle for process naming.\n\
\n\
It appears in `ps` and `top` as `master [NAME]` and `worker [NAME]`, which \
tells several servers on one machine apart. When unset, the application \
module (APP_MODULE) is used. Unlike gunicorn, ferricorn needs no \
setproctitle package: on Linux it sets the title itself, cut to the length \
of the original command line (and to 15 bytes in `top`'s short name); \
elsewhere the title is left alone.",
    cost: "None.",
    compat: Compat::Partial(
        "built in rather than via setproctitle; the title is cut to the original \
command line's length",
    ),
},
    Setting {
        name: "default_proc_name",
        section: Section::ProcessNaming,
        cli: &[],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("gunicorn"),
        validate: |raw| opt_string(raw, "a process name"),
        example: "default_proc_name = \"myapp\"",
        short: "Internal setting that is adjusted for each type of application.",
        desc: "Internal setting that is adjusted for each type of application.\n\nNo effect in ferricorn: Internal to gunicorn; ferricorn names its processes from --name or \"ferricorn\".",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("internal to gunicorn; ferricorn names its processes from --name or \"ferricorn\""),
    },
];

/// gunicorn strips the name; an empty one means unset.
fn validate_proc_name(raw: Value) -> Result<Value, String> {
    match opt_string(raw, "a name")? {
        Value::Str(s) if s.trim().is_empty() => Ok(Value::None),
        Value::Str(s) => Ok(Value::Str(s.trim().to_owned())),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, DefaultValue, Value};

    #[test]
    fn proc_name_defaults_to_none_and_is_trimmed() {
        let name = find("proc_name").unwrap();
        assert!(matches!(name.default, DefaultValue::None));
        assert_eq!(
            name.check(Value::Str(" shop ".into())).unwrap(),
            Value::Str("shop".into())
        );
        assert_eq!(name.check(Value::Str("  ".into())).unwrap(), Value::None);
        let err = name.check(Value::Int(3)).unwrap_err().to_string();
        assert_eq!(
            err,
            "--name / proc_name = 3: expected a name, e.g. --name shop-api"
        );
    }
}
