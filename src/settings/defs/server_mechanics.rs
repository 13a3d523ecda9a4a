//! Gunicorn's "Server Mechanics" section: the process environment the
//! application is loaded into (working directory, import path, preloading)
//! and the master's own process chores (daemon, pid file, user and group,
//! umask, SO_REUSEPORT). The chores themselves live in `process/` and
//! `net::bind`; user and group names are resolved to ids here, at parse
//! time, so a typo fails before anything starts.

use super::{boolean, int_in, opt_boolean, opt_string, string_list};
use crate::process::privileges::{resolve_group, resolve_user};
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
    Setting {
        name: "preload_app",
        section: Section::ServerMechanics,
        cli: &["--preload"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--preload",
        short: "Load application code before the worker processes are forked.",
        desc: "Load application code before the worker processes are forked.\n\
\n\
The master imports the application once and every worker starts as a copy \
of it: startup is faster and memory pages are shared until written. \
Without it each worker imports the application itself, so restarting \
workers (HUP) picks up new code.",
        cost: "Code changes need a full restart (or USR2) rather than HUP; an \
import-time error stops the master instead of failing workers one by one.",
        compat: Compat::Full,
    },
    Setting {
        name: "daemon",
        section: Section::ServerMechanics,
        cli: &["-D", "--daemon"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--daemon",
        short: "Daemonize the Gunicorn process.",
        desc: "Daemonize the Gunicorn process.\n\
\n\
Detaches the server from the controlling terminal and enters the \
background: it forks twice, starts a new session, sets the umask to 022 \
and points stdin, stdout and stderr at /dev/null (see \
--enable-stdio-inheritance). Use --error-log and --pid to keep track of it.",
        cost: "Errors printed before logging is set up are lost; under systemd, \
supervisord or a container leave it off and let the supervisor manage the \
process.",
        compat: Compat::Full,
    },
    Setting {
        name: "pidfile",
        section: Section::ServerMechanics,
        cli: &["-p", "--pid"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_pidfile,
        example: "--pid /run/ferricorn.pid",
        short: "A filename to use for the PID file.",
        desc: "A filename to use for the PID file.\n\
\n\
The master writes its pid there once it runs and removes the file when it \
exits. Start-up fails if the file names another live process; a file left \
by a dead one is replaced. During a USR2 upgrade the old master's file \
becomes FILE.oldbin. If not set, no PID file is written.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "worker_tmp_dir",
        section: Section::ServerMechanics,
        cli: &["--worker-tmp-dir"],
        meta: "DIR",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a directory path"),
        example: "--worker-tmp-dir /dev/shm",
        short: "A directory to use for the worker heartbeat temporary file.",
        desc: "A directory to use for the worker heartbeat temporary file.\n\
\n\
gunicorn's workers signal liveness by touching a temporary file there. \
ferricorn's workers report to the master through shared memory instead, so \
no file is written: the setting is accepted with a warning and has no \
effect.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(
            "workers report liveness through shared memory, so no heartbeat file is written",
        ),
    },
    Setting {
        name: "user",
        section: Section::ServerMechanics,
        cli: &["-u", "--user"],
        meta: "USER",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_user,
        example: "--user 1000",
        short: "Switch worker processes to run as this user.",
        desc: "Switch worker processes to run as this user.\n\
\n\
A numeric user id or a user name known to this system; names are resolved \
when the settings are read, so a typo fails at start-up. Workers switch \
after the sockets are bound, so the master (usually root) can bind \
privileged ports. When the user changes, the workers' supplementary groups \
become that user's. By default the user is not changed.",
        cost: "Running workers as an unprivileged user limits what a compromised \
application can do; it needs the master to start as root.",
        compat: Compat::Partial(
            "supplementary groups are always reset to the user's (gunicorn does \
that only with --initgroups)",
        ),
    },
    Setting {
        name: "health_path",
        section: Section::ServerMechanics,
        cli: &["--health-path"],
        meta: "PATH",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_health_path,
        example: "--health-path /healthz",
        short: "A URL path answered 200 by the server itself, for health probes.",
        desc: "A URL path answered 200 by the server itself, for health probes.\n\
\n\
Not a gunicorn setting. A GET or HEAD of exactly this path (query strings \
included in the match are not) is answered `200 OK` by the worker's \
connection code without entering Python, so a probe never waits behind \
busy app threads; during a graceful stop it answers 503 so load balancers \
and Kubernetes readiness probes stop routing to a draining worker. Hung \
workers are the master's job (--timeout), not the probe's.",
        cost: "One comparison per request.",
        compat: Compat::Full,
    },
    Setting {
        name: "group",
        section: Section::ServerMechanics,
        cli: &["-g", "--group"],
        meta: "GROUP",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_group,
        example: "--group 1000",
        short: "Switch worker process to run as this group.",
        desc: "Switch worker process to run as this group.\n\
\n\
A numeric group id or a group name known to this system, resolved when the \
settings are read. By default the group is not changed.",
        cost: "As for --user.",
        compat: Compat::Full,
    },
    Setting {
        name: "umask",
        section: Section::ServerMechanics,
        cli: &["-m", "--umask"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: validate_umask,
        example: "--umask 0o077",
        short: "A bit mask for the file mode on files written by Gunicorn.",
        desc: "A bit mask for the file mode on files written by Gunicorn.\n\
\n\
It applies to unix sockets (a socket's mode is 0777 minus the mask). As in \
gunicorn the value is read like Python's int(value, 0), so 18, 0o22 and \
0x12 are the same mask, and a leading zero (0022) also means octal.",
        cost: "None; a loose mask lets other local users connect to a unix \
socket, a tight one can lock out the proxy in front of it.",
        compat: Compat::Full,
    },
    Setting {
        name: "reuse_port",
        section: Section::ServerMechanics,
        cli: &["--reuse-port"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--reuse-port",
        short: "Set the SO_REUSEPORT flag on the listening socket.",
        desc: "Set the SO_REUSEPORT flag on the listening socket.\n\
\n\
Lets several servers bind the same TCP port, with the kernel spreading new \
connections across them. Every socket on the port must set it.",
        cost: "Another process running as the same user can bind the port too \
and receive a share of its connections.",
        compat: Compat::Full,
    },
    Setting {
        name: "sendfile",
        section: Section::ServerMechanics,
        cli: &["--no-sendfile"],
        meta: "",
        action: Action::StoreFalse,
        default: DefaultValue::None,
        validate: opt_boolean,
        example: "--no-sendfile",
        short: "Disables the use of `sendfile()`.",
        desc: "Disables the use of `sendfile()`.\n\nNo effect in ferricorn: Ferricorn never uses sendfile(2); file wrappers are read and written in chunks.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("ferricorn never uses sendfile(2); file wrappers are read and written in chunks"),
    },
    Setting {
        name: "initgroups",
        section: Section::ServerMechanics,
        cli: &["--initgroups"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--initgroups",
        short: "If true, set the worker process's group access list with all of the groups of which the specified username is a member, plus the specified group id.",
        desc: "If true, set the worker process's group access list with all of the groups of which the specified username is a member, plus the specified group id.\n\nNo effect in ferricorn: Supplementary groups are not changed yet; only the uid and gid are dropped.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("supplementary groups are not changed yet; only the uid and gid are dropped"),
    },
    Setting {
        name: "tmp_upload_dir",
        section: Section::ServerMechanics,
        cli: &[],
        meta: "DIR",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a directory path"),
        example: "tmp_upload_dir = \"/var/tmp\"",
        short: "Directory to store temporary request data as they are read.",
        desc: "Directory to store temporary request data as they are read.\n\nNo effect in ferricorn: Unused, as in gunicorn: request bodies are never spooled to disk.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("unused, as in gunicorn: request bodies are never spooled to disk"),
    },
    Setting {
        name: "paste",
        section: Section::ServerMechanics,
        cli: &["--paste", "--paster"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a PasteDeploy config URI"),
        example: "--paste development.ini",
        short: "Load a PasteDeploy config file.",
        desc: "Load a PasteDeploy config file.\n\nNo effect in ferricorn: PasteDeploy apps are not loaded yet; pass module:app instead.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("PasteDeploy apps are not loaded yet; pass module:app instead"),
    },
    Setting {
        name: "raw_paste_global_conf",
        section: Section::ServerMechanics,
        cli: &["--paste-global"],
        meta: "CONF",
        action: Action::Append,
        default: DefaultValue::List(&[]),
        validate: |raw| string_list(raw, "a KEY=VALUE string or a list of them"),
        example: "--paste-global FOO=1",
        short: "Set a PasteDeploy global config variable in `key=value` form.",
        desc: "Set a PasteDeploy global config variable in `key=value` form.\n\nNo effect in ferricorn: PasteDeploy apps are not loaded yet, so there is no global conf to set.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("PasteDeploy apps are not loaded yet, so there is no global conf to set"),
    },
    Setting {
        name: "raw_env",
        section: Section::ServerMechanics,
        cli: &["-e", "--env"],
        meta: "ENV",
        action: Action::Append,
        default: DefaultValue::List(&[]),
        validate: validate_raw_env,
        example: "--env DJANGO_SETTINGS_MODULE=myapp.settings",
        short: "Set environment variables in the execution environment.",
        desc: "Set environment variables in the execution environment.\n\
\n\
Each value is KEY=VALUE; repeat the flag for several. The master sets them \
(in `os.environ`) before the application is imported, so the app and every \
worker see them.",
        cost: "None.",
        compat: Compat::Full,
    },
];

/// gunicorn strips the path; an empty one means no pid file.
fn validate_pidfile(raw: Value) -> Result<Value, String> {
    match opt_string(raw, "a file path")? {
        Value::Str(s) if s.trim().is_empty() => Ok(Value::None),
        Value::Str(s) => Ok(Value::Str(s.trim().to_owned())),
        other => Ok(other),
    }
}

fn validate_user(raw: Value) -> Result<Value, String> {
    validate_id(raw, resolve_user)
}

fn validate_group(raw: Value) -> Result<Value, String> {
    validate_id(raw, resolve_group)
}

/// A name or number becomes the id (`Int`); `None` leaves it unchanged.
fn validate_id(raw: Value, resolve: fn(&str) -> Result<u32, String>) -> Result<Value, String> {
    match raw {
        Value::None => Ok(Value::None),
        Value::Int(n) => resolve(&n.to_string()).map(|id| Value::Int(id.into())),
        Value::Str(s) => resolve(&s).map(|id| Value::Int(id.into())),
        _ => Err("expected a name or a numeric id".to_owned()),
    }
}

/// Gunicorn's CLI turns a leading "0<digit>" into "0o<digit>" before
/// `int(x, 0)`, so 0022 is octal there; everything else is `int(x, 0)`.
fn validate_umask(raw: Value) -> Result<Value, String> {
    const WHAT: &str = "a mode mask from 0 to 0o777, e.g. 0o022 or 18";
    let raw = match raw {
        Value::Str(s) => {
            let t = s.trim();
            let b = t.as_bytes();
            if b.len() > 1 && b[0] == b'0' && b[1].is_ascii_digit() {
                match i64::from_str_radix(&t[1..], 8) {
                    Ok(n) => Value::Int(n),
                    Err(_) => return Err(format!("expected {WHAT}")),
                }
            } else {
                Value::Str(s)
            }
        }
        other => other,
    };
    int_in(raw, 0, 0o777, WHAT)
}

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

/// Each entry must be KEY=VALUE, as gunicorn's `Config.env` requires (it
/// refuses the entry when the server starts; this refuses it up front).
fn validate_raw_env(raw: Value) -> Result<Value, String> {
    let list = string_list(raw, "a KEY=VALUE string or a list of them")?;
    if let Value::List(items) = &list {
        if let Some(bad) = items.iter().find(|e| !e.contains('=')) {
            return Err(format!("{bad:?} has no '='; expected KEY=VALUE"));
        }
    }
    Ok(list)
}

fn validate_health_path(raw: Value) -> Result<Value, String> {
    match &raw {
        Value::None => Ok(raw),
        Value::Str(p) if p.starts_with('/') && !p.contains(['?', '#', ' ']) => Ok(raw),
        _ => Err("expected a URL path starting with /, e.g. /healthz".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::validate_raw_env;
    use crate::settings::registry::{find, DefaultValue, Value};

    #[test]
    fn flags_default_off_and_take_gunicorns_booleans() {
        for name in ["preload_app", "daemon", "reuse_port"] {
            let setting = find(name).unwrap();
            assert!(
                matches!(setting.default, DefaultValue::Bool(false)),
                "{name}"
            );
            assert_eq!(setting.check(Value::Bool(true)).unwrap(), Value::Bool(true));
            assert_eq!(
                setting.check(Value::Str("False".into())).unwrap(),
                Value::Bool(false)
            );
            let err = setting
                .check(Value::Str("yes".into()))
                .unwrap_err()
                .to_string();
            let flag = setting.long_flag().unwrap();
            assert_eq!(
                err,
                format!("{flag} / {name} = \"yes\": expected true or false, e.g. {flag}")
            );
        }
    }

    #[test]
    fn pidfile_defaults_to_none_and_keeps_the_path() {
        let pidfile = find("pidfile").unwrap();
        assert!(matches!(pidfile.default, DefaultValue::None));
        assert_eq!(
            pidfile.check(Value::Str(" run/app.pid ".into())).unwrap(),
            Value::Str("run/app.pid".into())
        );
        assert_eq!(
            pidfile.check(Value::Str(String::new())).unwrap(),
            Value::None
        );
    }

    #[test]
    fn user_and_group_resolve_names_and_numbers_at_parse_time() {
        let user = find("user").unwrap();
        let group = find("group").unwrap();
        assert!(matches!(user.default, DefaultValue::None));
        assert!(matches!(group.default, DefaultValue::None));
        assert_eq!(
            user.check(Value::Str("root".into())).unwrap(),
            Value::Int(0)
        );
        assert_eq!(
            user.check(Value::Str("1000".into())).unwrap(),
            Value::Int(1000)
        );
        assert_eq!(user.check(Value::Int(33)).unwrap(), Value::Int(33));
        assert_eq!(group.check(Value::Str("0".into())).unwrap(), Value::Int(0));
        assert_eq!(user.check(Value::None).unwrap(), Value::None);
    }

    #[test]
    fn unknown_user_or_group_names_the_flag() {
        let err = find("user")
            .unwrap()
            .check(Value::Str("no-such-user-ferricorn".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--user / user = \"no-such-user-ferricorn\": no such user"),
            "{err}"
        );
        assert!(err.ends_with("e.g. --user 1000"), "{err}");
        let err = find("group")
            .unwrap()
            .check(Value::Str("no-such-group-ferricorn".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--group / group = \"no-such-group-ferricorn\": no such group"),
            "{err}"
        );
        let err = find("user")
            .unwrap()
            .check(Value::Int(-1))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--user / user = -1: "), "{err}");
    }

    #[test]
    fn umask_reads_like_gunicorns_auto_int() {
        let umask = find("umask").unwrap();
        assert!(matches!(umask.default, DefaultValue::Int(0)));
        for (text, mask) in [
            ("0", 0),
            ("18", 18),
            ("0o22", 0o22),
            ("0x12", 0x12),
            ("0022", 0o22),
            ("077", 0o77),
            ("0O777", 0o777),
        ] {
            assert_eq!(
                umask.check(Value::Str(text.into())).unwrap(),
                Value::Int(mask),
                "{text}"
            );
        }
        for bad in ["0o1000", "-1", "08", "rwx"] {
            let err = umask.check(Value::Str(bad.into())).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--umask / umask = {bad:?}: expected a mode mask")),
                "{err}"
            );
        }
    }

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

    #[test]
    fn raw_env_entries_need_an_equals_sign() {
        assert_eq!(
            validate_raw_env(Value::Str("A=b=c".into())),
            Ok(Value::List(vec!["A=b=c".into()]))
        );
        let err = validate_raw_env(Value::List(vec!["A=1".into(), "B".into()])).unwrap_err();
        assert!(err.contains("\"B\" has no '='"), "{err}");
    }
}
