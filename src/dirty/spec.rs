//! `--dirty-app` specs: `module:Class` (every dirty worker loads it) or `module:Class:N` (only
//! N of them do), as gunicorn 27 parses them. Pure parsing; the registry's validator and the
//! pool both use it, so a bad spec is a configuration error before anything is bound.

use crate::settings::Value;

/// One dirty app as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSpec {
    /// `module:Class`, the name callers pass to `execute()`.
    pub path: String,
    /// How many dirty workers load it; `None` = all of them (or the class's `workers`
    /// attribute, which the dirty worker reads after importing it).
    pub limit: Option<usize>,
}

impl AppSpec {
    pub fn parse(spec: &str) -> Result<AppSpec, String> {
        let parts: Vec<&str> = spec.split(':').collect();
        let bad_path = || {
            format!("{spec:?} is not a dirty app spec: expected module.path:ClassName or module.path:ClassName:N")
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.split('.').all(|p| {
                    let mut chars = p.chars();
                    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
                        && chars.all(|c| c.is_alphanumeric() || c == '_')
                })
        };
        match parts.as_slice() {
            [module, class] if ident(module) && ident(class) => Ok(AppSpec {
                path: spec.to_owned(),
                limit: None,
            }),
            [module, class, n] if ident(module) && ident(class) => match n.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(AppSpec {
                    path: format!("{module}:{class}"),
                    limit: Some(n),
                }),
                Ok(_) => Err(format!(
                    "{spec:?}: the worker count after the class must be at least 1"
                )),
                Err(_) => Err(format!(
                    "{spec:?}: the worker count after the class must be an integer, not {n:?}"
                )),
            },
            _ => Err(bad_path()),
        }
    }
}

/// The registry's validator for `dirty_apps`: a string or a list of specs, each well formed.
pub fn validate(raw: Value) -> Result<Value, String> {
    let list = crate::settings::defs::string_list(raw, "a module:Class string or a list of them")?;
    if let Value::List(items) = &list {
        for item in items {
            AppSpec::parse(item)?;
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_without_count_goes_to_every_worker() {
        let s = AppSpec::parse("app.ml:Model").unwrap();
        assert_eq!(s.path, "app.ml:Model");
        assert_eq!(s.limit, None);
    }

    #[test]
    fn spec_with_count_limits_the_workers() {
        let s = AppSpec::parse("app.ml:Model:2").unwrap();
        assert_eq!(s.path, "app.ml:Model");
        assert_eq!(s.limit, Some(2));
    }

    #[test]
    fn malformed_specs_are_refused_with_the_reason() {
        for bad in [
            "app",
            "app:",
            ":Cls",
            "a:b:c:d",
            "a b:C",
            "app:Cls:0",
            "app:Cls:x",
        ] {
            assert!(AppSpec::parse(bad).is_err(), "{bad} was accepted");
        }
        assert!(AppSpec::parse("app:Cls:0")
            .unwrap_err()
            .contains("at least 1"));
    }

    #[test]
    fn validator_checks_every_item() {
        let ok = validate(Value::List(vec!["a:B".into(), "c:D:1".into()]));
        assert!(ok.is_ok());
        assert!(validate(Value::List(vec!["a:B".into(), "nope".into()])).is_err());
        assert_eq!(
            validate(Value::Str("a:B".into())),
            Ok(Value::List(vec!["a:B".into()]))
        );
    }
}
