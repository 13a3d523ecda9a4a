//! Where each resolved setting came from (default, conf file, an `*_CMD_ARGS` variable, the
//! command line), recorded by `resolve` as it stacks the layers, so `--log-level debug` can
//! explain every non-default value. It decides nothing about precedence.

use std::collections::BTreeMap;
use std::fmt;

use super::registry::{DefaultValue, Env, Values, SETTINGS};

/// One source of a setting's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The conf file read: `./gunicorn.conf.py`, or the `-c` location as given.
    File(String),
    /// `GUNICORN_CMD_ARGS` or `FERRICORN_CMD_ARGS`.
    Env(&'static str),
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(shown) => write!(f, "config file {shown}"),
            Origin::Env(var) => f.write_str(var),
            Origin::CommandLine => f.write_str("command line"),
        }
    }
}

/// The winning source of every setting that was given; absent means the default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Origins {
    by_name: BTreeMap<&'static str, Origin>,
    /// The conf file that was read, if any.
    pub conf_file: Option<String>,
}

impl Origins {
    /// Records `layer`'s settings as coming from `origin`; call it lowest layer first, as
    /// `Values::overlay` is called, so the last writer wins here too.
    pub fn record(&mut self, layer: &Values, origin: &Origin) {
        for (name, _) in layer.iter() {
            self.by_name.insert(name, origin.clone());
        }
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub fn of(&self, name: &str) -> Option<&Origin> {
        self.by_name.get(name)
    }

    /// One line per setting that is not at its fixed default, naming the value and its
    /// source; an environment-dependent default that the environment changed (`$PORT`,
    /// `$WEB_CONCURRENCY`) says so too. `values` is the complete resolved layer.
    pub fn explain(&self, values: &Values, env: Env<'_>) -> Vec<String> {
        let mut lines = Vec::new();
        for setting in SETTINGS {
            let Some(value) = values.get(setting.name) else {
                continue;
            };
            if let Some(origin) = self.by_name.get(setting.name) {
                lines.push(format!("{} = {value} (from {origin})", setting.name));
                continue;
            }
            if let DefaultValue::FromEnv { doc, .. } = setting.default {
                if env_vars_in(doc).any(|var| env.var(var).is_some()) {
                    lines.push(format!(
                        "{} = {value} (default, from the environment: {doc})",
                        setting.name
                    ));
                }
            }
        }
        lines
    }
}

/// The `$NAME`s a default's doc says it reads (`0.0.0.0:$PORT when PORT is set`).
fn env_vars_in(doc: &str) -> impl Iterator<Item = &str> {
    doc.split('$').skip(1).map(|rest| {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::registry::Value;

    #[test]
    fn explain_names_the_winning_source_and_env_defaults() {
        let mut file = Values::default();
        file.set("workers", Value::Int(2)).unwrap();
        file.set("threads", Value::Int(2)).unwrap();
        let mut argv = Values::default();
        argv.set("threads", Value::Int(8)).unwrap();
        let mut origins = Origins::default();
        origins.record(&file, &Origin::File("./gunicorn.conf.py".into()));
        origins.record(&argv, &Origin::CommandLine);
        let mut all = file.clone();
        all.overlay(argv);
        let vars = |k: &str| (k == "PORT").then(|| "9000".to_owned());
        let env = Env::from_fn(&vars);
        let all = all.with_defaults(env).unwrap();
        let lines = origins.explain(&all, env);
        assert!(lines.contains(&"workers = 2 (from config file ./gunicorn.conf.py)".into()));
        assert!(lines.contains(&"threads = 8 (from command line)".into()));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("bind = [\"0.0.0.0:9000\"] (default, from the environment")),
            "{lines:?}"
        );
        assert!(!lines.iter().any(|l| l.starts_with("timeout")), "{lines:?}");
        assert_eq!(origins.of("timeout"), None);
    }

    #[test]
    fn env_vars_are_read_from_the_default_doc() {
        let vars: Vec<&str> = env_vars_in("$XDG_RUNTIME_DIR/g.ctl, or 0.0.0.0:$PORT").collect();
        assert_eq!(vars, ["XDG_RUNTIME_DIR", "PORT"]);
    }
}
