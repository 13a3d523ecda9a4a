//! The command line: a clap `Command` generated from the registry, and argv
//! turned into one validated `Values` layer.
//!
//! Nothing here names a particular setting: a new entry in `defs/` gets its
//! flag, help line and validation without touching this file. It must not
//! apply defaults or convert to typed `Settings`; that is resolution's job,
//! so the same layer can later sit above a conf file and GUNICORN_CMD_ARGS.

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, Command};

use super::registry::{Action, DefaultValue, Setting, Value, Values, SETTINGS};

/// The binary name shown in usage and help, whatever argv[0] says (under
/// `python -m ferricorn` it is `__main__.py`).
pub const BIN_NAME: &str = "ferricorn";

const APP_ID: &str = "app";
const VERSION_ID: &str = "version";

/// What argv said, before defaults.
#[derive(Debug)]
pub struct CliArgs {
    pub app: Option<String>,
    pub version: bool,
    /// Only the settings given on the command line.
    pub values: Values,
}

/// The full command, gunicorn's shape: `-v/--version`, `-h/--help`, one
/// optional positional APP_MODULE (optional so that its absence gets
/// gunicorn's own message), then every setting grouped by section.
pub fn command() -> Command {
    let base = Command::new(BIN_NAME)
        .bin_name(BIN_NAME)
        .about("A Gunicorn-compatible Python application server.")
        .override_usage(format!("{BIN_NAME} [OPTIONS] [APP_MODULE]"))
        .disable_version_flag(true)
        .disable_help_flag(true)
        // argparse lets a repeated option override the earlier one...
        .args_override_self(true)
        // ...and accepts unambiguous prefixes such as --work for --workers.
        .infer_long_args(true)
        .arg(
            Arg::new(VERSION_ID)
                .short('v')
                .long("version")
                .action(ArgAction::SetTrue)
                .help("show program's version number and exit"),
        )
        .arg(
            Arg::new("help")
                .short('h')
                .long("help")
                .action(ArgAction::Help)
                .help("show this help message and exit"),
        )
        .arg(Arg::new(APP_ID).value_name("APP_MODULE").help(
            "The application: module:callable, module (callable `application`), \
             module:factory() or module:factory(args)",
        ));
    SETTINGS
        .iter()
        .filter(|s| !s.cli.is_empty())
        .fold(base, |cmd, setting| cmd.arg(arg_for(setting)))
}

fn arg_for(setting: &'static Setting) -> Arg {
    let help = match setting.default {
        DefaultValue::None => setting.short.to_owned(),
        default => format!("{} [default: {default}]", setting.short),
    };
    let mut arg = Arg::new(setting.name)
        .help(help)
        .help_heading(setting.section.title())
        .action(match setting.action {
            Action::Store | Action::StoreOptional(_) => ArgAction::Set,
            Action::Append => ArgAction::Append,
            Action::StoreTrue | Action::StoreFalse => ArgAction::SetTrue,
        });
    if !setting.action.is_switch() {
        arg = arg.value_name(setting.meta);
    }
    if let Action::StoreOptional(missing) = setting.action {
        arg = arg.num_args(0..=1).default_missing_value(missing);
    }
    let mut longs = setting.cli.iter().filter_map(|f| f.strip_prefix("--"));
    if let Some(long) = longs.next() {
        arg = arg.long(long);
    }
    for alias in longs {
        arg = arg.visible_alias(alias);
    }
    for short in setting.cli.iter().filter(|f| !f.starts_with("--")) {
        if let Some(c) = short.chars().nth(1) {
            arg = arg.short(c);
        }
    }
    arg
}

/// Parses argv (argv[0] is the program) into a layer of validated values.
///
/// Errors are clap errors, so a bad value is rendered exactly like an
/// unknown flag: message, usage, and a pointer to --help, with exit code 2.
pub fn parse(cmd: &mut Command, argv: &[String]) -> Result<CliArgs, clap::Error> {
    let matches = cmd.try_get_matches_from_mut(argv)?;
    let mut values = Values::default();
    for setting in SETTINGS.iter().filter(|s| !s.cli.is_empty()) {
        if matches.value_source(setting.name) != Some(ValueSource::CommandLine) {
            continue;
        }
        let raw = match setting.action {
            Action::Store | Action::StoreOptional(_) => {
                match matches.get_one::<String>(setting.name) {
                    Some(v) => Value::Str(v.clone()),
                    None => continue,
                }
            }
            Action::Append => Value::List(
                matches
                    .get_many::<String>(setting.name)
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect(),
            ),
            Action::StoreTrue => Value::Bool(true),
            Action::StoreFalse => Value::Bool(false),
        };
        values
            .set_setting(setting, raw)
            .map_err(|e| cmd.error(ErrorKind::ValueValidation, e))?;
    }
    Ok(CliArgs {
        app: matches.get_one::<String>(APP_ID).cloned(),
        version: matches.get_flag(VERSION_ID),
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        std::iter::once("ferricorn")
            .chain(args.iter().copied())
            .map(String::from)
            .collect()
    }

    fn parse_ok(args: &[&str]) -> CliArgs {
        parse(&mut command(), &argv(args)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse_err(args: &[&str]) -> clap::Error {
        parse(&mut command(), &argv(args)).unwrap_err()
    }

    #[test]
    fn generated_command_passes_clap_consistency_checks() {
        command().debug_assert();
    }

    #[test]
    fn every_gunicorn_flag_spelling_parses() {
        // chdir's and static_map's example directories need not exist on this machine.
        let tmp = std::env::temp_dir().to_string_lossy().into_owned();
        let mount = format!("/static={tmp}");
        for setting in SETTINGS {
            let value = match setting.example.split_whitespace().nth(1) {
                _ if setting.name == "chdir" => Some(tmp.as_str()),
                _ if setting.name == "static_map" => Some(mount.as_str()),
                v => v,
            };
            for flag in setting.cli {
                let args: Vec<&str> = std::iter::once(*flag)
                    .chain(value)
                    .chain(["app:app"])
                    .collect();
                let parsed = parse_ok(&args);
                assert!(
                    parsed.values.get(setting.name).is_some(),
                    "{flag} did not set {}",
                    setting.name
                );
            }
        }
    }

    #[test]
    fn only_given_flags_enter_the_layer() {
        let args = parse_ok(&["--threads", "3", "app:app"]);
        assert_eq!(args.app.as_deref(), Some("app:app"));
        assert_eq!(args.values.iter().count(), 1);
        assert_eq!(args.values.get("threads"), Some(&Value::Int(3)));
    }

    #[test]
    fn bind_is_repeatable_and_keeps_order() {
        let args = parse_ok(&[
            "-b",
            "127.0.0.1:1",
            "--bind",
            "unix:/tmp/s",
            "-b[::1]:2",
            "a",
        ]);
        assert_eq!(
            args.values.get("bind"),
            Some(&Value::List(vec![
                "127.0.0.1:1".into(),
                "unix:/tmp/s".into(),
                "[::1]:2".into()
            ]))
        );
    }

    #[test]
    fn a_repeated_single_value_flag_keeps_the_last_like_argparse() {
        let args = parse_ok(&["--threads", "2", "--threads=5", "a"]);
        assert_eq!(args.values.get("threads"), Some(&Value::Int(5)));
    }

    #[test]
    fn unambiguous_prefixes_work_like_argparse() {
        let args = parse_ok(&["--thread", "2", "--log-lev", "debug", "a"]);
        assert_eq!(args.values.get("threads"), Some(&Value::Int(2)));
        assert_eq!(
            args.values.get("loglevel"),
            Some(&Value::Str("debug".into()))
        );
    }

    #[test]
    fn log_level_is_case_insensitive() {
        let args = parse_ok(&["--log-level", "WARNING", "a"]);
        assert_eq!(
            args.values.get("loglevel"),
            Some(&Value::Str("warning".into()))
        );
    }

    #[test]
    fn unknown_flag_is_a_usage_error_suggesting_the_nearest() {
        let err = parse_err(&["--bnd", "x", "a"]);
        assert_eq!(err.kind(), ErrorKind::UnknownArgument);
        assert_eq!(err.exit_code(), 2);
        let text = err.render().to_string();
        assert!(text.contains("'--bnd'"), "{text}");
        assert!(text.contains("--bind"), "{text}");
        assert!(
            text.contains("Usage: ferricorn [OPTIONS] [APP_MODULE]"),
            "{text}"
        );
    }

    #[test]
    fn bad_value_is_a_usage_error_naming_flag_value_and_fix() {
        let err = parse_err(&["--threads", "four", "a"]);
        assert_eq!(err.kind(), ErrorKind::ValueValidation);
        assert_eq!(err.exit_code(), 2);
        let text = err.render().to_string();
        assert!(
            text.starts_with(
                "error: --threads / threads = \"four\": expected a positive integer, \
                 e.g. --threads 4\n"
            ),
            "{text}"
        );
        assert!(text.contains("Usage: ferricorn"), "{text}");
    }

    #[test]
    fn help_groups_settings_under_gunicorn_sections_in_order() {
        let help = command().render_help().to_string();
        let mut last = 0;
        // conf-only settings (wsgi_app) have no flag to list
        for setting in SETTINGS.iter().filter(|s| !s.cli.is_empty()) {
            let heading = format!("\n{}:\n", setting.section.title());
            let at = help
                .find(&heading)
                .unwrap_or_else(|| panic!("no {heading:?} in\n{help}"));
            assert!(at >= last, "sections out of order in\n{help}");
            last = at;
            let flag = setting.long_flag().unwrap();
            let flag_at = help[at..].find(flag).map(|i| i + at);
            assert!(flag_at.is_some(), "{flag} not under its section in\n{help}");
        }
        assert!(help.contains("[default: 4094]"), "{help}");
        assert!(!help.contains('\x1b'), "help must be plain text");
    }
}
