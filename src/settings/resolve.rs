//! Where settings come from and which wins: defaults < conf file <
//! `GUNICORN_CMD_ARGS` < `FERRICORN_CMD_ARGS` < argv, as gunicorn's
//! `Application.load_config` stacks them.
//!
//! This module decides precedence, which conf file is read, where the APP
//! comes from, and which accepted-but-ignored settings deserve a warning. It
//! does not run Python: the conf file is read through `ConfLoader`, which
//! `file.rs` implements with the GIL and tests fake with plain values.

use clap::error::ErrorKind;
use clap::Command;

use super::cli::{self, CliArgs};
use super::error::SourceError;
use super::hooks::{self, HookFn, HookSpec, Hooks};
use super::origin::{Origin, Origins};
use super::registry::{self, Compat, Env, Value, Values, SETTINGS};
use super::shlex;

/// Environment variables holding extra arguments, lowest precedence first.
/// gunicorn reads the first; the second lets ferricorn-only flags stay out of
/// a variable gunicorn would choke on.
pub const CMD_ARGS_VARS: [&str; 2] = ["GUNICORN_CMD_ARGS", "FERRICORN_CMD_ARGS"];

/// Conf files read when no `-c` is given, in order; relative to the
/// directory the server starts in, never moved by `--chdir` (gunicorn looks
/// before it applies the flag).
pub const DEFAULT_CONF_FILES: [&str; 2] = ["gunicorn.conf.py", "ferricorn.conf.py"];

/// What a conf file defined, in definition order.
pub struct ConfFile {
    /// How errors name the file: the location as given, or the default name.
    pub shown: String,
    pub entries: Vec<Entry>,
}

pub enum Entry {
    /// A module-level name and its value, not yet checked against the registry.
    Value(String, Value),
    /// A hook, already checked to be callable with the right arity.
    Hook(&'static HookSpec, HookFn),
}

/// Runs conf files. `file::PyConfLoader` is the real one.
pub trait ConfLoader {
    /// Whether a default conf file exists.
    fn exists(&self, path: &str) -> bool;
    /// Runs `location` (a path, `file:PATH` or `python:MODULE`).
    fn load(&self, location: &str, shown: &str) -> Result<ConfFile, SourceError>;
}

/// Why resolution stopped.
#[derive(Debug)]
pub enum Stop {
    /// `-v/--version` on the command line.
    Version,
    /// argv did not parse, or asked for --help.
    Usage(clap::Error),
    /// Like `Usage`, but found in an environment variable: the rendered text
    /// already names it.
    EnvUsage { code: i32, output: String },
    /// The conf file: exit 1, no usage text.
    Source(SourceError),
}

/// Every source merged: the complete layer, the hooks, and the APP.
#[derive(Debug)]
pub struct Resolved {
    pub app: Option<String>,
    pub values: Values,
    pub hooks: Hooks,
    /// One line per accepted-but-ignored setting that was set.
    pub warnings: Vec<String>,
    /// Which source each given setting came from.
    pub origins: Origins,
}

/// Reads every source and stacks them.
pub fn resolve(
    cmd: &mut Command,
    argv: &[String],
    env: Env<'_>,
    loader: &dyn ConfLoader,
) -> Result<Resolved, Stop> {
    let args = cli::parse(cmd, argv).map_err(Stop::Usage)?;
    if args.version {
        return Err(Stop::Version);
    }
    let mut env_layers = Vec::new();
    for var in CMD_ARGS_VARS {
        if let Some(raw) = env.var(var) {
            env_layers.push((var, env_layer(cmd, var, &raw)?));
        }
    }
    // gunicorn: -c on the command line, else in GUNICORN_CMD_ARGS, else the
    // default file. FERRICORN_CMD_ARGS sits between the two.
    let given = std::iter::once(&args.values)
        .chain(env_layers.iter().rev().map(|(_, layer)| layer))
        .find_map(|layer| match layer.get("config") {
            Some(Value::Str(location)) => Some(location.clone()),
            _ => None,
        });
    let location = given.map(|l| (l.clone(), l)).or_else(|| {
        DEFAULT_CONF_FILES
            .iter()
            .find(|name| loader.exists(name))
            .map(|name| (format!("./{name}"), (*name).to_owned()))
    });

    let mut values = Values::default();
    let mut hooks = Hooks::default();
    let mut origins = Origins::default();
    if let Some((location, shown)) = location {
        let file = loader.load(&location, &shown).map_err(Stop::Source)?;
        let (layer, file_hooks) = file_layer(file).map_err(Stop::Source)?;
        origins.record(&layer, &Origin::File(location.clone()));
        origins.conf_file = Some(location);
        values = layer;
        hooks = file_hooks;
    }
    let higher = env_layers
        .into_iter()
        .map(|(var, layer)| (Origin::Env(var), layer))
        .chain([(Origin::CommandLine, args.values)]);
    for (origin, layer) in higher {
        origins.record(&layer, &origin);
        values.overlay(layer);
    }
    let values = values
        .with_defaults(env)
        .map_err(|e| Stop::Usage(cmd.error(ErrorKind::ValueValidation, e)))?;
    Ok(Resolved {
        app: args.app,
        warnings: ignored_warnings(&values, env),
        values,
        hooks,
        origins,
    })
}

/// One `*_CMD_ARGS` variable, split like a shell and parsed like argv.
fn env_layer(cmd: &mut Command, var: &'static str, raw: &str) -> Result<Values, Stop> {
    let in_var = |code: i32, message: &str| Stop::EnvUsage {
        code,
        output: format!("error: {var}: {message}\n"),
    };
    let words = shlex::split(raw).map_err(|e| in_var(2, &format!("{e} in {raw:?}")))?;
    let argv: Vec<String> = std::iter::once(cli::BIN_NAME.to_owned())
        .chain(words)
        .collect();
    let CliArgs { app, values, .. } = cli::parse(cmd, &argv).map_err(|err| {
        let rendered = err.render().to_string();
        Stop::EnvUsage {
            code: err.exit_code(),
            output: match rendered.strip_prefix("error: ") {
                Some(rest) => format!("error: {var}: {rest}"),
                // --help inside the variable: show it as asked.
                None => rendered,
            },
        }
    })?;
    if let Some(app) = app {
        return Err(in_var(
            2,
            &format!(
                "found the APP_MODULE {app:?}; give the application on the command \
                 line (or as wsgi_app in the conf file), not in {var}"
            ),
        ));
    }
    Ok(values)
}

/// Checks a conf file's names and values against the registry.
fn file_layer(file: ConfFile) -> Result<(Values, Hooks), SourceError> {
    let mut values = Values::default();
    let mut hooks = Hooks::default();
    for entry in file.entries {
        let (name, raw) = match entry {
            Entry::Hook(spec, func) => {
                hooks.insert(spec, func);
                continue;
            }
            Entry::Value(name, raw) => (name, raw),
        };
        if let Some(setting) = registry::find(&name) {
            values
                .set_setting(setting, raw)
                .map_err(|error| SourceError::InFile {
                    file: file.shown.clone(),
                    error,
                })?;
            continue;
        }
        let lower = name.to_ascii_lowercase();
        let is_name = |n: &str| registry::find(n).is_some() || hooks::find(n).is_some();
        // Settings are lower-case; gunicorn skips other names, and
        // UPPER_CASE constants are common in conf files. Only a case slip
        // of a real name is worth stopping for.
        if lower != name && !is_name(&lower) {
            continue;
        }
        let names = SETTINGS.iter().map(|s| s.name);
        let suggestion =
            registry::closest_among(&name, names.chain(hooks::HOOKS.iter().map(|h| h.name)));
        return Err(SourceError::UnknownName {
            file: file.shown,
            name,
            suggestion,
        });
    }
    Ok((values, hooks))
}

/// gunicorn's settings that ferricorn accepts but does not honour get one
/// line each when they are set to anything but their default, so nothing is
/// silently dropped.
fn ignored_warnings(values: &Values, env: Env<'_>) -> Vec<String> {
    SETTINGS
        .iter()
        .filter_map(|s| match s.compat {
            Compat::Ignored(instead) => Some((s, instead)),
            _ => None,
        })
        .filter(|(s, _)| values.get(s.name) != s.check(s.default.value(env)).ok().as_ref())
        .map(|(s, instead)| match s.long_flag() {
            Some(flag) => format!("{flag} / {} has no effect in ferricorn: {instead}", s.name),
            None => format!("{} has no effect in ferricorn: {instead}", s.name),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Conf files by location; records which location was loaded.
    #[derive(Default)]
    struct Fake {
        files: Vec<(&'static str, Vec<(&'static str, Value)>)>,
        loaded: RefCell<Vec<String>>,
    }

    impl Fake {
        fn with(mut self, location: &'static str, entries: Vec<(&'static str, Value)>) -> Self {
            self.files.push((location, entries));
            self
        }
    }

    impl ConfLoader for Fake {
        fn exists(&self, path: &str) -> bool {
            self.files.iter().any(|(l, _)| *l == path)
        }

        fn load(&self, location: &str, shown: &str) -> Result<ConfFile, SourceError> {
            self.loaded.borrow_mut().push(location.to_owned());
            let key = location.strip_prefix("./").unwrap_or(location);
            let (_, entries) =
                self.files
                    .iter()
                    .find(|(l, _)| *l == key)
                    .ok_or_else(|| SourceError::Read {
                        file: shown.to_owned(),
                        detail: format!("{location:?} doesn't exist"),
                    })?;
            Ok(ConfFile {
                shown: shown.to_owned(),
                entries: entries
                    .iter()
                    .map(|(k, v)| Entry::Value((*k).to_owned(), v.clone()))
                    .collect(),
            })
        }
    }

    fn argv(args: &[&str]) -> Vec<String> {
        std::iter::once("ferricorn")
            .chain(args.iter().copied())
            .map(String::from)
            .collect()
    }

    fn run(args: &[&str], vars: &[(&str, &str)], loader: &Fake) -> Result<Resolved, Stop> {
        let owned: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |k: &str| owned.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        resolve(
            &mut cli::command(),
            &argv(args),
            Env::from_fn(&lookup),
            loader,
        )
    }

    fn ok(args: &[&str], vars: &[(&str, &str)], loader: &Fake) -> Resolved {
        run(args, vars, loader).unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn source_error(args: &[&str], loader: &Fake) -> String {
        match run(args, &[], loader) {
            Err(Stop::Source(e)) => e.to_string(),
            other => panic!("expected a source error, got {other:?}"),
        }
    }

    #[test]
    fn precedence_is_file_then_gunicorn_env_then_ferricorn_env_then_argv() {
        let conf = Fake::default().with(
            "gunicorn.conf.py",
            vec![
                ("workers", Value::Int(2)),
                ("threads", Value::Int(2)),
                ("backlog", Value::Int(2)),
                ("keepalive", Value::Int(2)),
            ],
        );
        let vars = [
            (
                "GUNICORN_CMD_ARGS",
                "--threads 3 --backlog 3 --keep-alive 3",
            ),
            ("FERRICORN_CMD_ARGS", "--backlog 4 --keep-alive 4"),
        ];
        let r = ok(&["--keep-alive", "5", "a:app"], &vars, &conf);
        assert_eq!(r.values.int("workers").unwrap(), 2);
        assert_eq!(r.values.int("threads").unwrap(), 3);
        assert_eq!(r.values.int("backlog").unwrap(), 4);
        assert_eq!(r.values.int("keepalive").unwrap(), 5);
        assert_eq!(r.values.int("timeout").unwrap(), 30, "untouched default");
        let origin = |name| r.origins.of(name).map(ToString::to_string);
        assert_eq!(
            origin("workers").as_deref(),
            Some("config file ./gunicorn.conf.py")
        );
        assert_eq!(origin("threads").as_deref(), Some("GUNICORN_CMD_ARGS"));
        assert_eq!(origin("backlog").as_deref(), Some("FERRICORN_CMD_ARGS"));
        assert_eq!(origin("keepalive").as_deref(), Some("command line"));
        assert_eq!(origin("timeout"), None, "a default has no origin");
    }

    #[test]
    fn a_list_from_a_higher_source_replaces_the_files_list() {
        let conf = Fake::default().with(
            "gunicorn.conf.py",
            vec![("bind", Value::List(vec!["a:1".into(), "b:2".into()]))],
        );
        let r = ok(&["-b", "c:3", "a:app"], &[], &conf);
        assert_eq!(r.values.list("bind").unwrap(), ["c:3".to_owned()]);
    }

    #[test]
    fn gunicorn_conf_py_is_preferred_to_ferricorn_conf_py() {
        let both = Fake::default()
            .with("ferricorn.conf.py", vec![("workers", Value::Int(7))])
            .with("gunicorn.conf.py", vec![("workers", Value::Int(3))]);
        assert_eq!(ok(&["a"], &[], &both).values.int("workers").unwrap(), 3);
        assert_eq!(*both.loaded.borrow(), ["./gunicorn.conf.py"]);
        let only = Fake::default().with("ferricorn.conf.py", vec![("workers", Value::Int(7))]);
        assert_eq!(ok(&["a"], &[], &only).values.int("workers").unwrap(), 7);
    }

    #[test]
    fn dash_c_replaces_the_default_file_and_the_env_may_name_it() {
        let conf = Fake::default()
            .with("gunicorn.conf.py", vec![("workers", Value::Int(3))])
            .with("other.py", vec![("workers", Value::Int(9))]);
        let r = ok(&["-c", "other.py", "a"], &[], &conf);
        assert_eq!(r.values.int("workers").unwrap(), 9);
        let r = ok(&["a"], &[("GUNICORN_CMD_ARGS", "-c other.py")], &conf);
        assert_eq!(r.values.int("workers").unwrap(), 9);
        // argv's -c beats the env's
        let r = ok(
            &["-c", "gunicorn.conf.py", "a"],
            &[("GUNICORN_CMD_ARGS", "-c other.py")],
            &conf,
        );
        assert_eq!(r.values.int("workers").unwrap(), 3);
    }

    #[test]
    fn no_conf_file_means_defaults() {
        let r = ok(&["a"], &[], &Fake::default());
        assert_eq!(r.values.int("workers").unwrap(), 1);
        assert_eq!(
            r.values.str("config").unwrap(),
            "./gunicorn.conf.py",
            "gunicorn's documented default"
        );
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn a_missing_dash_c_file_is_a_source_error() {
        let text = source_error(&["-c", "nope.py", "a"], &Fake::default());
        assert_eq!(
            text,
            "failed to read config file nope.py: \"nope.py\" doesn't exist"
        );
    }

    #[test]
    fn file_values_are_converted_by_their_validators() {
        let conf = Fake::default().with(
            "gunicorn.conf.py",
            vec![
                ("workers", Value::Str("4".into())),
                ("bind", Value::Str("0.0.0.0:80".into())),
                ("preload_app", Value::Str("true".into())),
                ("wsgi_app", Value::Str("m:app".into())),
            ],
        );
        let r = ok(&[], &[], &conf);
        assert_eq!(r.values.int("workers").unwrap(), 4);
        assert_eq!(r.values.list("bind").unwrap(), ["0.0.0.0:80".to_owned()]);
        assert!(r.values.bool("preload_app").unwrap());
        assert_eq!(r.values.opt_str("wsgi_app").unwrap(), Some("m:app"));
        assert_eq!(r.app, None, "the APP comes from wsgi_app later");
    }

    #[test]
    fn an_unknown_file_name_is_an_error_naming_file_and_nearest_name() {
        let conf = Fake::default().with("gunicorn.conf.py", vec![("worker", Value::Int(2))]);
        assert_eq!(
            source_error(&["a"], &conf),
            "gunicorn.conf.py: unknown setting \"worker\" (did you mean \"workers\"?)"
        );
        let conf = Fake::default().with("gunicorn.conf.py", vec![("post_frok", Value::None)]);
        assert!(
            source_error(&["a"], &conf).contains("(did you mean \"post_fork\"?)"),
            "hooks are suggested too"
        );
        let conf = Fake::default().with("gunicorn.conf.py", vec![("helper", Value::Int(1))]);
        assert_eq!(
            source_error(&["a"], &conf),
            "gunicorn.conf.py: unknown setting \"helper\" (not a gunicorn setting or hook; \
             start helper names with \"_\" so they are not read as settings)"
        );
    }

    #[test]
    fn upper_case_constants_are_skipped_but_a_case_slip_is_not() {
        let conf = Fake::default().with(
            "gunicorn.conf.py",
            vec![
                ("BASE_DIR", Value::Str("/srv".into())),
                ("workers", Value::Int(2)),
            ],
        );
        assert_eq!(ok(&["a"], &[], &conf).values.int("workers").unwrap(), 2);
        let conf = Fake::default().with("gunicorn.conf.py", vec![("Workers", Value::Int(2))]);
        assert_eq!(
            source_error(&["a"], &conf),
            "gunicorn.conf.py: unknown setting \"Workers\" (did you mean \"workers\"?)"
        );
    }

    #[test]
    fn a_wrong_type_in_the_file_names_file_key_value_and_example() {
        let conf = Fake::default().with(
            "gunicorn.conf.py",
            vec![("workers", Value::Object("2.5".into()))],
        );
        assert_eq!(
            source_error(&["a"], &conf),
            "gunicorn.conf.py: workers = 2.5: expected a positive integer, e.g. workers = 4"
        );
    }

    #[test]
    fn env_args_are_split_like_a_shell() {
        let r = ok(
            &["a"],
            &[("GUNICORN_CMD_ARGS", "--name 'my app' -b \"127.0.0.1:9\"")],
            &Fake::default(),
        );
        assert_eq!(r.values.opt_str("proc_name").unwrap(), Some("my app"));
        assert_eq!(r.values.list("bind").unwrap(), ["127.0.0.1:9".to_owned()]);
    }

    #[test]
    fn env_args_must_not_contain_the_app() {
        match run(
            &["a"],
            &[("GUNICORN_CMD_ARGS", "-w 2 b:app")],
            &Fake::default(),
        ) {
            Err(Stop::EnvUsage { code, output }) => {
                assert_eq!(code, 2);
                assert!(
                    output.starts_with("error: GUNICORN_CMD_ARGS: found the APP_MODULE \"b:app\""),
                    "{output}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_bad_env_value_names_the_variable_and_the_flag() {
        match run(
            &["a"],
            &[("FERRICORN_CMD_ARGS", "--workers four")],
            &Fake::default(),
        ) {
            Err(Stop::EnvUsage { code, output }) => {
                assert_eq!(code, 2);
                assert!(
                    output.starts_with("error: FERRICORN_CMD_ARGS: --workers / workers = \"four\""),
                    "{output}"
                );
            }
            other => panic!("{other:?}"),
        }
        match run(&["a"], &[("GUNICORN_CMD_ARGS", "'-w 2")], &Fake::default()) {
            Err(Stop::EnvUsage { output, .. }) => {
                assert!(output.contains("No closing quotation"), "{output}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ignored_settings_warn_from_any_source() {
        let conf = Fake::default().with(
            "gunicorn.conf.py",
            vec![("worker_tmp_dir", Value::Str("/dev/shm".into()))],
        );
        let r = ok(
            &["--do-handshake-on-connect", "a"],
            &[("GUNICORN_CMD_ARGS", "--http-parser python")],
            &conf,
        );
        assert_eq!(r.warnings.len(), 3, "{:?}", r.warnings);
        assert!(r.warnings.iter().any(|w| w.starts_with(
            "--worker-tmp-dir / worker_tmp_dir has no effect in ferricorn: workers report"
        )));
        assert!(r
            .warnings
            .iter()
            .any(|w| w
                .starts_with("--do-handshake-on-connect / do_handshake_on_connect has no effect")));
        // left at their defaults they say nothing
        assert!(ok(&["a"], &[], &Fake::default()).warnings.is_empty());
    }
}
