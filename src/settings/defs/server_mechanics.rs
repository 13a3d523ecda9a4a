//! Gunicorn's "Server Mechanics" section: the process environment the
//! application is loaded into (working directory, import path).

use super::opt_string;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting, Value};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "chdir",
        section: Section::ServerMechanics,
        cli: &["--chdir"],
        meta: "CHDIR",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_chdir,
        example: "--chdir /srv/app",
        short: "Change directory to specified directory before loading apps.",
        desc: "Change directory to specified directory before loading apps.\n\
\n\
A relative path is taken from the directory ferricorn was started in. The \
directory must exist when the settings are read. By default the server \
stays in the directory it was started in.",
        cost: "None at run time; a wrong directory makes module imports fail at \
startup.",
        compat: Compat::Full,
    },
    Setting {
        name: "pythonpath",
        section: Section::ServerMechanics,
        cli: &["--pythonpath"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a comma-separated string of directories"),
        example: "--pythonpath /srv/app,/srv/lib",
        short: "A comma-separated list of directories to add to the Python path.",
        desc: "A comma-separated list of directories to add to the Python path.\n\
\n\
e.g. '/home/djangoprojects/myproject,/home/python/mylibrary'. The \
directories are put in front of sys.path before the application is \
imported, so they shadow installed packages of the same name.",
        cost: "Each entry is searched on every import that misses the entries \
before it; a module here shadows any installed one of the same name.",
        compat: Compat::Full,
    },
];

/// Resolves against the current directory now, like gunicorn, so that a
/// later chdir by anything else cannot change which directory is meant.
fn validate_chdir(raw: Value) -> Result<Value, String> {
    let Value::Str(dir) = raw else {
        return match raw {
            Value::None => Ok(Value::None),
            _ => Err("expected a directory path".to_owned()),
        };
    };
    let path = std::path::absolute(&dir)
        .map_err(|e| format!("expected an existing directory ({})", os_message(&e)))?;
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(Value::Str(path.to_string_lossy().into_owned())),
        Ok(_) => Err("expected a directory, and this is a file".to_owned()),
        Err(e) => Err(format!("can't chdir there ({})", os_message(&e))),
    }
}

/// The OS's words without Rust's " (os error N)" suffix, which users don't
/// need next to an already-named path.
fn os_message(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(cut) => text[..cut].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, DefaultValue, Value};

    #[test]
    fn chdir_defaults_to_none_and_resolves_existing_directories() {
        let chdir = find("chdir").unwrap();
        assert!(matches!(chdir.default, DefaultValue::None));
        let tmp = std::env::temp_dir();
        let got = chdir
            .check(Value::Str(tmp.to_string_lossy().into_owned()))
            .unwrap();
        assert_eq!(got, Value::Str(tmp.to_string_lossy().into_owned()));
        let Value::Str(relative) = chdir.check(Value::Str(".".into())).unwrap() else {
            panic!("chdir canonicalises to a string");
        };
        assert!(std::path::Path::new(&relative).is_absolute());
    }

    #[test]
    fn chdir_rejects_missing_directories_and_files() {
        let chdir = find("chdir").unwrap();
        let err = chdir
            .check(Value::Str("/nonexistent/ferricorn-test".into()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--chdir / chdir = \"/nonexistent/ferricorn-test\": can't chdir there \
             (No such file or directory), e.g. --chdir /srv/app"
        );
        let file = std::env::current_exe().unwrap();
        let err = chdir
            .check(Value::Str(file.to_string_lossy().into_owned()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("expected a directory, and this is a file"),
            "{err}"
        );
    }

    #[test]
    fn pythonpath_defaults_to_none_and_takes_a_string() {
        let pythonpath = find("pythonpath").unwrap();
        assert!(matches!(pythonpath.default, DefaultValue::None));
        assert_eq!(
            pythonpath.check(Value::Str("a,b".into())).unwrap(),
            Value::Str("a,b".into())
        );
        let err = pythonpath.check(Value::Int(3)).unwrap_err().to_string();
        assert!(
            err.starts_with("--pythonpath / pythonpath = 3: expected a comma"),
            "{err}"
        );
    }
}
