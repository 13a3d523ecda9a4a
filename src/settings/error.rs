//! The one error type for settings: a value that failed its validator, or a
//! name that is not a setting.
//!
//! Every message names the setting the way a user would fix it (flag and conf
//! name), the value that was refused, and a working example. This module only
//! formats; it must not decide policy such as whether an unknown conf name is
//! fatal (the resolver decides: it is, unlike gunicorn, so typos surface).

use std::fmt;

use super::registry::Setting;

/// A setting that could not be accepted.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SettingError {
    kind: Kind,
}

#[derive(Debug, thiserror::Error)]
enum Kind {
    #[error("{}: {reason}{}", Subject(setting, value), Example(setting))]
    Invalid {
        setting: &'static Setting,
        value: String,
        reason: String,
    },
    #[error("unknown setting {name:?}{}", Suggestion(*suggestion))]
    Unknown {
        name: String,
        suggestion: Option<&'static str>,
    },
}

impl SettingError {
    /// `value` is rendered the way the user wrote it (see `Value`'s Display).
    pub(crate) fn invalid(
        setting: &'static Setting,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        SettingError {
            kind: Kind::Invalid {
                setting,
                value: value.to_string(),
                reason: reason.into(),
            },
        }
    }

    pub(crate) fn unknown(name: &str, suggestion: Option<&'static str>) -> Self {
        SettingError {
            kind: Kind::Unknown {
                name: name.to_owned(),
                suggestion,
            },
        }
    }

    /// The error as a conf-file line would fix it: `workers = "four":
    /// expected a positive integer, e.g. workers = 4`.
    pub fn conf_line(&self) -> String {
        match &self.kind {
            Kind::Invalid {
                setting,
                value,
                reason,
            } => format!(
                "{} = {value}: {reason}, e.g. {}",
                setting.name,
                setting.conf_example()
            ),
            Kind::Unknown { .. } => self.to_string(),
        }
    }

    /// True when the name was not a setting at all (a typo in a conf file).
    #[allow(dead_code)] // tests
    pub fn is_unknown(&self) -> bool {
        matches!(self.kind, Kind::Unknown { .. })
    }

    /// The setting whose value was refused, if the name was known.
    #[allow(dead_code)] // tests
    pub fn setting(&self) -> Option<&'static Setting> {
        match self.kind {
            Kind::Invalid { setting, .. } => Some(setting),
            Kind::Unknown { .. } => None,
        }
    }
}

/// A configuration source that cannot be used: the conf file (a bad name or
/// value, a hook of the wrong shape, a file that fails to run). Unlike argv
/// errors these are not usage errors: they exit 1 without the usage text, as
/// gunicorn's config errors do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{file}: {}", .error.conf_line())]
    InFile { file: String, error: SettingError },
    /// A module-level name that is neither a setting nor a hook.
    #[error("{file}: unknown setting {name:?} ({})", UnknownHint(*suggestion))]
    UnknownName {
        file: String,
        name: String,
        suggestion: Option<&'static str>,
    },
    #[error("{file}: {name} = {value}: {reason}, e.g. {example}")]
    Hook {
        file: String,
        name: &'static str,
        value: String,
        reason: String,
        example: String,
    },
    /// `detail` is one line for a missing file, a traceback for a file
    /// that raised.
    #[error("failed to read config file {file}:{}{detail}", if .detail.contains('\n') { "\n" } else { " " })]
    Read { file: String, detail: String },
}

/// `--threads / threads = "four"`, or `threads = "four"` for a setting that
/// only exists in the conf file.
struct Subject<'a>(&'a Setting, &'a str);

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Subject(setting, value) = self;
        match setting.long_flag() {
            Some(flag) => write!(f, "{flag} / {} = {value}", setting.name),
            None => write!(f, "{} = {value}", setting.name),
        }
    }
}

struct Example<'a>(&'a Setting);

impl fmt::Display for Example<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.example {
            "" => Ok(()),
            example => write!(f, ", e.g. {example}"),
        }
    }
}

struct UnknownHint(Option<&'static str>);

impl fmt::Display for UnknownHint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "did you mean {name:?}?"),
            None => f.write_str(
                "not a gunicorn setting or hook; start helper names with \"_\" so they \
                 are not read as settings",
            ),
        }
    }
}

struct Suggestion(Option<&'static str>);

impl fmt::Display for Suggestion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, " (did you mean {name:?}?)"),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::registry::find;

    #[test]
    fn invalid_value_names_flag_conf_name_value_and_example() {
        let threads = find("threads").unwrap();
        let err = SettingError::invalid(threads, "\"four\"", "expected a positive integer");
        assert_eq!(
            err.to_string(),
            "--threads / threads = \"four\": expected a positive integer, e.g. --threads 4"
        );
        assert!(!err.is_unknown());
        assert_eq!(err.setting().map(|s| s.name), Some("threads"));
    }

    #[test]
    fn conf_line_uses_the_conf_name_and_a_conf_example() {
        let workers = find("workers").unwrap();
        let err = SettingError::invalid(workers, "\"four\"", "expected a positive integer");
        assert_eq!(
            err.conf_line(),
            "workers = \"four\": expected a positive integer, e.g. workers = 4"
        );
        let file = SourceError::UnknownName {
            file: "gunicorn.conf.py".into(),
            name: "worker".into(),
            suggestion: Some("workers"),
        };
        assert_eq!(
            file.to_string(),
            "gunicorn.conf.py: unknown setting \"worker\" (did you mean \"workers\"?)"
        );
    }

    #[test]
    fn unknown_name_suggests_the_closest_setting() {
        let err = SettingError::unknown("thread", Some("threads"));
        assert_eq!(
            err.to_string(),
            "unknown setting \"thread\" (did you mean \"threads\"?)"
        );
        assert!(err.is_unknown());
        assert!(err.setting().is_none());
    }
}
