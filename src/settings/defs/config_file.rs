//! Gunicorn's "Config File" section: where the conf file is and the app it
//! may name. Finding, running and reading the file is `settings::resolve` and
//! `settings::file`; this only declares the two settings.

use super::opt_string;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "config",
        section: Section::ConfigFile,
        cli: &["-c", "--config"],
        meta: "CONFIG",
        action: Action::Store,
        default: DefaultValue::Str("./gunicorn.conf.py"),
        validate: |raw| opt_string(raw, "a file path or python:MODULE"),
        example: "--config /etc/ferricorn/gunicorn.conf.py",
        short: "The Gunicorn config file.",
        desc: "The Gunicorn config file.\n\
\n\
A string of the form PATH, file:PATH, or python:MODULE_NAME. The file is \
Python: every module-level name that is not private (_name) or a module is \
read as a setting of the same name, e.g. `workers = 4`, and server hooks are \
functions named after them. A name that is not a setting is an error (gunicorn \
ignores it), so typos are caught; names bound by import statements are \
skipped. Settings from the file are overridden by GUNICORN_CMD_ARGS, then \
FERRICORN_CMD_ARGS, then the command line.\n\
\n\
Only has an effect on the command line or in GUNICORN_CMD_ARGS. Without it, \
./gunicorn.conf.py is read if it exists, else ./ferricorn.conf.py, both \
relative to the directory the server was started in (--chdir does not move \
them).",
        cost: "The file is executed once, by the master, before anything binds; \
its import-time side effects happen there.",
        compat: Compat::Partial(
            "falls back to ./ferricorn.conf.py, and unknown names in the file are errors",
        ),
    },
    Setting {
        name: "wsgi_app",
        section: Section::ConfigFile,
        cli: &[],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "an app spec such as \"myapp:app\""),
        example: "wsgi_app = \"myapp:app\"",
        short: "A WSGI application path in pattern $(MODULE_NAME):$(VARIABLE_NAME).",
        desc: "A WSGI application path in pattern $(MODULE_NAME):$(VARIABLE_NAME).\n\
\n\
Only read from the conf file, and only used when no APP_MODULE is given on \
the command line; the same forms are accepted (module, module:name, \
module:factory(args)).",
        cost: "None.",
        compat: Compat::Full,
    },
];

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, Value};

    #[test]
    fn config_keeps_the_location_verbatim() {
        let config = find("config").unwrap();
        for location in ["gunicorn.conf.py", "python:app.conf", "file:/etc/x"] {
            assert_eq!(
                config.check(Value::Str(location.into())).unwrap(),
                Value::Str(location.into())
            );
        }
        assert!(config.check(Value::Int(1)).is_err());
    }

    #[test]
    fn wsgi_app_is_conf_only() {
        let wsgi_app = find("wsgi_app").unwrap();
        assert!(wsgi_app.cli.is_empty());
        let err = wsgi_app.check(Value::Int(3)).unwrap_err().to_string();
        assert!(
            err.starts_with("wsgi_app = 3: expected an app spec"),
            "{err}"
        );
    }
}
