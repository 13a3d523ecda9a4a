//! Server settings: gunicorn's settings registry, the sources it is read
//! from, and the typed `Settings` the rest of the server reads.
//!
//! Flow: each source (argv, `GUNICORN_CMD_ARGS`, `FERRICORN_CMD_ARGS`, a
//! gunicorn.conf.py) yields a validated `Values` layer; `resolve` stacks them
//! default < file < env < argv; only the merged layer is converted to
//! `Settings`. This module owns that conversion and the outcome (`Parsed`);
//! it must stay free of I/O beyond reading the environment, checking paths
//! and running the conf file: binding sockets and importing the app happen
//! elsewhere.

pub mod cli;
pub mod defs;
// only `make docs` (a test run) renders the pages; the server itself never needs them
#[cfg(test)]
pub mod docs;
pub mod error;
pub mod file;
pub mod hooks;
pub mod origin;
pub mod print;
pub mod registry;
pub mod resolve;
pub mod shlex;

use std::path::PathBuf;

use clap::error::ErrorKind;
use log::LevelFilter;
use pyo3::Python;

use crate::net::BindAddr;
pub use error::SettingError;
pub use hooks::Hooks;
// The docs renderer will use these; not all are yet.
#[allow(unused_imports)]
pub use registry::{Env, Setting, Value, Values, SETTINGS};
use resolve::{ConfLoader, Stop};

/// The crate version, as `--version` prints it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything the server needs to start, validated and typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The positional APP_MODULE, kept verbatim (`module:callable`,
    /// `module`, `module:factory()`, `module:factory(1, x='y')`); the Python
    /// loader resolves it.
    pub app: String,
    pub bind: Vec<BindAddr>,
    pub threads: usize,
    pub chdir: Option<PathBuf>,
    /// Directories to put in front of sys.path, in order.
    pub pythonpath: Vec<String>,
    /// `--env KEY=VALUE` pairs, set in the master before the app loads.
    pub raw_env: Vec<(String, String)>,
    pub log_level: LevelFilter,
    /// Access log destination (`-` = stdout); `None` = no access log.
    pub accesslog: Option<String>,
    /// Validated access log format (`accesslog::Format` parses it).
    pub access_log_format: String,
    /// `--access-log-json`: JSON objects instead of format lines.
    pub access_log_json: bool,
    /// Error log destination; `-` = stderr.
    pub errorlog: String,
    /// `--statsd-host`; `None` = no StatsD metrics.
    pub statsd_host: Option<crate::metrics::statsd::StatsdAddr>,
    /// As given; `statsd` applies gunicorn's trailing-dot rule.
    pub statsd_prefix: String,
    pub dogstatsd_tags: String,
    /// `--metrics-bind` HOST:PORT for the master's Prometheus endpoint; `None` = off.
    pub metrics_bind: Option<String>,
    /// 0 = unlimited.
    pub limit_request_line: usize,
    /// Never 0: gunicorn's 0 ("no limit") is its maximum, 32768.
    pub limit_request_fields: usize,
    /// 0 = unlimited.
    pub limit_request_field_size: usize,
    /// Seconds.
    pub keepalive: u64,
    pub backlog: i32,
    /// Worker processes; at least 1.
    pub workers: usize,
    pub preload_app: bool,
    /// The name in `master [NAME]` titles; `None` means use `app`.
    pub proc_name: Option<String>,
    /// Seconds a worker may go silent before it is killed; 0 = off.
    pub timeout: u64,
    /// Seconds workers get to finish after a graceful stop.
    pub graceful_timeout: u64,
    /// Requests before a worker restarts; 0 = off.
    pub max_requests: u64,
    /// Up to this many requests added at random to `max_requests`.
    pub max_requests_jitter: u64,
    /// Megabytes of RSS above which a worker is retired; 0 = off.
    pub max_worker_memory: u64,
    pub pidfile: Option<PathBuf>,
    pub daemon: bool,
    /// With `daemon`: keep stdout/stderr unless they are a terminal.
    pub enable_stdio_inheritance: bool,
    /// The uid workers switch to, resolved from a name when given one;
    /// `None` = don't change.
    pub user: Option<u32>,
    /// The gid workers switch to; `None` = don't change.
    pub group: Option<u32>,
    /// Umask for unix socket files; at most 0o777.
    pub umask: u32,
    pub reuse_port: bool,
    /// `--static` mounts and `--static-max-age`.
    pub static_files: crate::http::static_files::StaticConfig,
    /// Interface choice and the ASGI worker's settings.
    pub asgi: crate::bridge::asgi::AsgiOptions,
    /// stdout/stderr into the error log file.
    pub capture_output: bool,
    /// `--log-syslog`: where and how; `None` when off.
    pub syslog: Option<SyslogSettings>,
    /// `--health-path`, answered by the server itself.
    pub health_path: Option<String>,
    /// `--reload` and its engine and extra files.
    pub reload: crate::worker::ReloadOptions,
    /// Proxies, PROXY protocol, body limit and slow-client timeouts.
    pub edge: crate::http::edge::EdgeOptions,
    /// `--certfile` and the rest of the SSL section; `None`: plain HTTP.
    pub tls: Option<crate::net::tls::TlsSettings>,
    /// The dirty worker pool; `None` when off.
    pub dirty: Option<crate::dirty::DirtyOptions>,
    /// Callables from the conf file, by hook name.
    pub hooks: Hooks,
    /// Every setting's resolved value by name: what hooks see as `server.cfg`.
    pub values: Values,
    /// One line per gunicorn setting that was given but has no effect here;
    /// logged at startup.
    pub warnings: Vec<String>,
    /// Where each given setting came from, for `--log-level debug`.
    pub origins: origin::Origins,
}

/// `--log-syslog`'s destination and line prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct SyslogSettings {
    pub addr: String,
    pub facility: String,
    pub prefix: String,
    /// Access log lines go to syslog too (unless --disable-redirect-access-to-syslog).
    pub access_too: bool,
}

/// The outcome of reading the command line.
#[derive(Debug)]
// Built once at startup and matched at once; boxing would only add noise
// at every caller.
#[allow(clippy::large_enum_variant)]
pub enum Parsed {
    Run(Settings),
    /// `--check-config` or `--print-config`: print `printed` (if any) to
    /// stdout, import the app, exit.
    Check {
        settings: Settings,
        printed: Option<String>,
    },
    /// Help, version or a usage error: print `output` and exit with `code`.
    Exit {
        code: i32,
        output: String,
        to_stderr: bool,
    },
}

impl Parsed {
    fn from_clap(err: clap::Error) -> Self {
        Parsed::Exit {
            code: err.exit_code(),
            output: err.render().to_string(),
            to_stderr: err.use_stderr(),
        }
    }
}

/// Reads argv (argv[0] is the program name), the process environment and the
/// conf file, which `py` executes.
pub fn parse_args(py: Python<'_>, argv: &[String]) -> Parsed {
    parse_args_with(argv, Env::process(), &file::PyConfLoader::new(py))
}

/// `parse_args` with an explicit environment and no conf file, for tests.
#[cfg(test)]
pub fn parse_args_with_env(argv: &[String], env: Env<'_>) -> Parsed {
    struct NoConf;
    impl ConfLoader for NoConf {
        fn exists(&self, _: &str) -> bool {
            false
        }
        fn load(&self, _: &str, shown: &str) -> Result<resolve::ConfFile, error::SourceError> {
            Err(error::SourceError::Read {
                file: shown.to_owned(),
                detail: "no conf files in tests".to_owned(),
            })
        }
    }
    parse_args_with(argv, env, &NoConf)
}

/// Resolves every source, then decides what to do with the result.
pub fn parse_args_with(argv: &[String], env: Env<'_>, loader: &dyn ConfLoader) -> Parsed {
    let mut cmd = cli::command();
    let resolved = match resolve::resolve(&mut cmd, argv, env, loader) {
        Ok(r) => r,
        Err(Stop::Version) => {
            return Parsed::Exit {
                code: 0,
                output: format!("{} (version {VERSION})\n", cli::BIN_NAME),
                to_stderr: false,
            }
        }
        Err(Stop::Usage(err)) => return Parsed::from_clap(err),
        Err(Stop::EnvUsage { code, output }) => {
            return Parsed::Exit {
                code,
                output,
                to_stderr: true,
            }
        }
        Err(Stop::Source(err)) => {
            return Parsed::Exit {
                code: 1,
                output: format!("error: {err}\n"),
                to_stderr: true,
            }
        }
    };
    let values = resolved.values;
    // The command line's APP wins over the conf file's wsgi_app.
    let wsgi_app = values.opt_str("wsgi_app").ok().flatten().map(str::to_owned);
    let Some(app) = resolved.app.or(wsgi_app) else {
        // Gunicorn's wording, with usage, via argparse's error path (exit 2).
        let err = cmd.error(
            ErrorKind::MissingRequiredArgument,
            "No application module specified.",
        );
        return Parsed::from_clap(err);
    };
    let mut settings = match Settings::from_values(app, &values) {
        Ok(s) => s,
        Err(err) => return Parsed::from_clap(cmd.error(ErrorKind::ValueValidation, err)),
    };
    settings.hooks = resolved.hooks;
    settings.warnings = resolved.warnings;
    if settings.hooks.get("ssl_context").is_some() {
        settings
            .warnings
            .push(crate::net::tls::SSL_CONTEXT_IGNORED.to_owned());
    }
    settings.origins = resolved.origins;
    let print = values.bool("print_config").unwrap_or(false);
    if print || values.bool("check_config").unwrap_or(false) {
        let printed = print.then(|| print::render(&values, &settings.hooks));
        return Parsed::Check { settings, printed };
    }
    Parsed::Run(settings)
}

impl Settings {
    /// Converts a fully resolved layer (every setting present, defaults
    /// included) into typed settings.
    pub fn from_values(app: String, values: &Values) -> Result<Self, SettingError> {
        let syslog = syslog_settings(&app, values)?;
        Ok(Settings {
            app,
            bind: bind_addrs(values)?,
            threads: int_as(values, "threads")?,
            chdir: values.opt_str("chdir")?.map(PathBuf::from),
            pythonpath: values
                .opt_str("pythonpath")?
                .map(split_pythonpath)
                .unwrap_or_default(),
            raw_env: values
                .list("raw_env")?
                .iter()
                .filter_map(|e| e.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            log_level: level_filter(values.str("loglevel")?),
            accesslog: values.opt_str("accesslog")?.map(str::to_owned),
            access_log_format: values.str("access_log_format")?.to_owned(),
            access_log_json: values.bool("access_log_json")?,
            errorlog: values.str("errorlog")?.to_owned(),
            statsd_host: statsd_host(values)?,
            statsd_prefix: values.str("statsd_prefix")?.to_owned(),
            dogstatsd_tags: values.str("dogstatsd_tags")?.to_owned(),
            metrics_bind: values.opt_str("metrics_bind")?.map(str::to_owned),
            limit_request_line: int_as(values, "limit_request_line")?,
            limit_request_fields: match int_as(values, "limit_request_fields")? {
                0 => defs::security::MAX_HEADERS as usize,
                n => n,
            },
            limit_request_field_size: int_as(values, "limit_request_field_size")?,
            keepalive: int_as(values, "keepalive")?,
            backlog: int_as(values, "backlog")?,
            workers: int_as(values, "workers")?,
            preload_app: values.bool("preload_app")?,
            proc_name: values.opt_str("proc_name")?.map(str::to_owned),
            timeout: int_as(values, "timeout")?,
            graceful_timeout: int_as(values, "graceful_timeout")?,
            max_requests: int_as(values, "max_requests")?,
            max_requests_jitter: int_as(values, "max_requests_jitter")?,
            max_worker_memory: int_as(values, "max_worker_memory")?,
            pidfile: values.opt_str("pidfile")?.map(PathBuf::from),
            daemon: values.bool("daemon")?,
            enable_stdio_inheritance: values.bool("enable_stdio_inheritance")?,
            user: opt_int_as(values, "user")?,
            group: opt_int_as(values, "group")?,
            umask: int_as(values, "umask")?,
            reuse_port: values.bool("reuse_port")?,
            static_files: static_config(values)?,
            asgi: crate::bridge::asgi::AsgiOptions::from_values(values)?,
            capture_output: values.bool("capture_output")?,
            syslog,
            health_path: values.opt_str("health_path")?.map(str::to_owned),
            reload: crate::worker::ReloadOptions {
                enabled: values.bool("reload")?,
                engine: values.str("reload_engine")?.to_owned(),
                extra_files: values
                    .list("reload_extra_files")?
                    .iter()
                    .map(PathBuf::from)
                    .collect(),
            },
            edge: crate::http::edge::EdgeOptions::from_values(values)?,
            tls: crate::net::tls::TlsSettings::from_values(values)?,
            dirty: crate::dirty::DirtyOptions::from_values(values)?,
            hooks: Hooks::default(),
            values: values.clone(),
            warnings: Vec::new(),
            origins: origin::Origins::default(),
        })
    }
}

/// The validator already parsed it once; parsing the canonical form again cannot fail unless
/// the two disagree, which the error then reports against the setting.
fn statsd_host(
    values: &Values,
) -> Result<Option<crate::metrics::statsd::StatsdAddr>, SettingError> {
    let Some(raw) = values.opt_str("statsd_host")? else {
        return Ok(None);
    };
    crate::metrics::statsd::StatsdAddr::parse(raw)
        .map(Some)
        .map_err(|reason| {
            let setting = registry::find("statsd_host").expect("statsd_host is declared");
            SettingError::invalid(setting, Value::Str(raw.to_owned()), reason)
        })
}

fn syslog_settings(app: &str, values: &Values) -> Result<Option<SyslogSettings>, SettingError> {
    if !values.bool("syslog")? {
        return Ok(None);
    }
    Ok(Some(SyslogSettings {
        addr: values.str("syslog_addr")?.to_owned(),
        facility: values.str("syslog_facility")?.to_owned(),
        // gunicorn: syslog_prefix, else the process name, dots for colons
        prefix: values
            .opt_str("syslog_prefix")?
            .or(values.opt_str("proc_name")?)
            .unwrap_or(app)
            .replace(':', "."),
        access_too: !values.bool("disable_redirect_access_to_syslog")?,
    }))
}

/// The validator stored canonical `URL=DIR` items; parsing them again checks the directories
/// once more, which only fails if one vanished since.
fn static_config(values: &Values) -> Result<crate::http::static_files::StaticConfig, SettingError> {
    let list = values.list("static_map")?;
    let mounts = crate::http::static_files::parse_mounts(list).map_err(|e| {
        let setting = registry::find("static_map").expect("static_map is declared");
        SettingError::invalid(setting, Value::List(list.to_vec()), e.to_string())
    })?;
    Ok(crate::http::static_files::StaticConfig {
        mounts,
        max_age: int_as(values, "static_max_age")?,
    })
}

fn bind_addrs(values: &Values) -> Result<Vec<BindAddr>, SettingError> {
    let list = values.list("bind")?;
    list.iter()
        .map(|item| {
            item.parse::<BindAddr>().map_err(|e| {
                let setting = registry::find("bind").expect("bind is declared");
                SettingError::invalid(setting, Value::List(list.to_vec()), e.reason())
            })
        })
        .collect()
}

/// An integer setting narrowed to its field's type; validators already
/// bound the range, so failure here means a validator is too loose.
fn int_as<T: TryFrom<i64>>(values: &Values, name: &'static str) -> Result<T, SettingError> {
    let n = values.int(name)?;
    T::try_from(n).map_err(|_| {
        let setting = registry::find(name).expect("int_as is only called with declared names");
        SettingError::invalid(setting, n, "out of range for this platform")
    })
}

/// `int_as` for settings where `None` means "leave it alone".
fn opt_int_as<T: TryFrom<i64>>(
    values: &Values,
    name: &'static str,
) -> Result<Option<T>, SettingError> {
    match values.opt_int(name)? {
        None => Ok(None),
        Some(n) => T::try_from(n).map(Some).map_err(|_| {
            let setting =
                registry::find(name).expect("opt_int_as is only called with declared names");
            SettingError::invalid(setting, n, "out of range for this platform")
        }),
    }
}

/// Gunicorn splits on commas and keeps entries verbatim; we also drop the
/// empty entries a trailing comma would otherwise turn into "" (the cwd).
fn split_pythonpath(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Gunicorn's level names onto the `log` crate's, which stops at Error.
fn level_filter(name: &str) -> LevelFilter {
    match name {
        "debug" => LevelFilter::Debug,
        "warning" => LevelFilter::Warn,
        "error" | "critical" => LevelFilter::Error,
        _ => LevelFilter::Info,
    }
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

    fn no_env() -> Env<'static> {
        Env::from_fn(&|_| None)
    }

    fn run(args: &[&str]) -> Settings {
        match parse_args_with_env(&argv(args), no_env()) {
            Parsed::Run(settings) => settings,
            other => panic!("expected Run, got {other:?}"),
        }
    }

    fn exit(args: &[&str]) -> (i32, String, bool) {
        match parse_args_with_env(&argv(args), no_env()) {
            Parsed::Exit {
                code,
                output,
                to_stderr,
            } => (code, output, to_stderr),
            other => panic!("expected Exit, got {other:?}"),
        }
    }

    #[test]
    fn defaults_match_gunicorn() {
        let s = run(&["app:app"]);
        let values = s.values.clone();
        assert_eq!(
            s,
            Settings {
                app: "app:app".into(),
                bind: vec![BindAddr::Tcp {
                    host: "127.0.0.1".into(),
                    port: 8000
                }],
                threads: 1,
                chdir: None,
                pythonpath: vec![],
                raw_env: vec![],
                log_level: LevelFilter::Info,
                accesslog: None,
                access_log_format: crate::accesslog::DEFAULT_FORMAT.into(),
                access_log_json: false,
                errorlog: "-".into(),
                statsd_host: None,
                statsd_prefix: String::new(),
                dogstatsd_tags: String::new(),
                metrics_bind: None,
                limit_request_line: 4094,
                limit_request_fields: 100,
                limit_request_field_size: 8190,
                keepalive: 2,
                backlog: 2048,
                workers: 1,
                preload_app: false,
                proc_name: None,
                timeout: 30,
                graceful_timeout: 30,
                max_requests: 0,
                max_requests_jitter: 0,
                max_worker_memory: 0,
                pidfile: None,
                daemon: false,
                enable_stdio_inheritance: false,
                user: None,
                group: None,
                umask: 0,
                reuse_port: false,
                static_files: Default::default(),
                asgi: crate::bridge::asgi::AsgiOptions {
                    interface: "auto".into(),
                    event_loop: "auto".into(),
                    lifespan: "auto".into(),
                    root_path: String::new(),
                    max_in_flight: 1000,
                    ws_max_size: 16 << 20,
                    ws_ping_interval: 20.0,
                    ws_ping_timeout: 20.0,
                    ws_per_message_deflate: true,
                },
                capture_output: false,
                syslog: None,
                health_path: None,
                reload: crate::worker::ReloadOptions {
                    enabled: false,
                    engine: "auto".into(),
                    extra_files: vec![],
                },
                edge: crate::http::edge::EdgeOptions::default(),
                tls: None,
                dirty: None,
                origins: Default::default(),
                hooks: Hooks::default(),
                values,
                warnings: vec![],
            }
        );
    }

    #[test]
    fn process_flags_reach_their_typed_fields() {
        let s = run(&[
            "-w",
            "3",
            "--preload",
            "-n",
            "shop",
            "-t",
            "0",
            "--graceful-timeout",
            "5",
            "--max-requests",
            "1000",
            "--max-requests-jitter",
            "50",
            "--max-worker-memory",
            "512",
            "-p",
            "/run/shop.pid",
            "-D",
            "-R",
            "-u",
            "root",
            "-g",
            "0",
            "-m",
            "0022",
            "--reuse-port",
            "a:app",
        ]);
        assert_eq!(s.workers, 3);
        assert!(s.preload_app);
        assert_eq!(s.proc_name.as_deref(), Some("shop"));
        assert_eq!((s.timeout, s.graceful_timeout), (0, 5));
        assert_eq!((s.max_requests, s.max_requests_jitter), (1000, 50));
        assert_eq!(s.max_worker_memory, 512);
        assert_eq!(
            s.pidfile.as_deref(),
            Some(std::path::Path::new("/run/shop.pid"))
        );
        assert!(s.daemon && s.enable_stdio_inheritance && s.reuse_port);
        assert_eq!((s.user, s.group), (Some(0), Some(0)));
        assert_eq!(s.umask, 0o22);
    }

    #[test]
    fn metrics_flags_reach_their_typed_fields() {
        let s = run(&[
            "--statsd-host",
            "[::1]:9125",
            "--statsd-prefix",
            "shop",
            "--dogstatsd-tags",
            "env:prod",
            "--access-log-json",
            "--metrics-bind",
            "127.0.0.1:9100",
            "a:app",
        ]);
        assert_eq!(
            s.statsd_host,
            Some(crate::metrics::statsd::StatsdAddr::Udp {
                host: "::1".into(),
                port: 9125
            })
        );
        assert_eq!(
            (s.statsd_prefix.as_str(), s.dogstatsd_tags.as_str()),
            ("shop", "env:prod")
        );
        assert!(s.access_log_json);
        assert_eq!(s.metrics_bind.as_deref(), Some("127.0.0.1:9100"));
    }

    #[test]
    fn web_concurrency_sets_the_default_worker_count_but_the_flag_wins() {
        let env = |k: &str| (k == "WEB_CONCURRENCY").then(|| "6".to_owned());
        let Parsed::Run(s) = parse_args_with_env(&argv(&["a"]), Env::from_fn(&env)) else {
            panic!("expected Run");
        };
        assert_eq!(s.workers, 6);
        let Parsed::Run(s) = parse_args_with_env(&argv(&["-w", "2", "a"]), Env::from_fn(&env))
        else {
            panic!("expected Run");
        };
        assert_eq!(s.workers, 2);
    }

    #[test]
    fn an_unknown_user_is_a_usage_error_naming_user() {
        let (code, output, to_stderr) = exit(&["--user", "no-such-user-ferricorn", "a"]);
        assert_eq!(code, 2);
        assert!(to_stderr);
        assert!(
            output.contains("--user / user = \"no-such-user-ferricorn\": no such user"),
            "{output}"
        );
    }

    #[test]
    fn every_flag_reaches_its_typed_field() {
        let tmp = std::env::temp_dir();
        let tmp_str = tmp.to_str().unwrap();
        let s = run(&[
            "-b",
            "0.0.0.0:80",
            "-b",
            "unix:/run/a.sock",
            "--threads",
            "8",
            "--chdir",
            tmp_str,
            "--pythonpath",
            "/srv/app, /srv/lib,",
            "--log-level",
            "CRITICAL",
            "--limit-request-line",
            "0",
            "--limit-request-fields",
            "0",
            "--limit-request-field_size",
            "0",
            "--keep-alive",
            "75",
            "--backlog",
            "64",
            "mod:factory(1, x='y')",
        ]);
        assert_eq!(s.app, "mod:factory(1, x='y')");
        assert_eq!(
            s.bind,
            vec![
                BindAddr::Tcp {
                    host: "0.0.0.0".into(),
                    port: 80
                },
                BindAddr::Unix("/run/a.sock".into())
            ]
        );
        assert_eq!(s.threads, 8);
        assert_eq!(s.chdir.as_deref(), Some(tmp.as_path()));
        assert_eq!(s.pythonpath, ["/srv/app", "/srv/lib"]);
        assert_eq!(s.log_level, LevelFilter::Error);
        assert_eq!(s.limit_request_line, 0);
        assert_eq!(s.limit_request_fields, 32768);
        assert_eq!(s.limit_request_field_size, 0);
        assert_eq!(s.keepalive, 75);
        assert_eq!(s.backlog, 64);
    }

    #[test]
    fn port_env_moves_the_default_bind_to_all_interfaces() {
        let env = |k: &str| (k == "PORT").then(|| "5000".to_owned());
        let Parsed::Run(s) = parse_args_with_env(&argv(&["a"]), Env::from_fn(&env)) else {
            panic!("expected Run");
        };
        assert_eq!(
            s.bind,
            vec![BindAddr::Tcp {
                host: "0.0.0.0".into(),
                port: 5000
            }]
        );
    }

    #[test]
    fn explicit_bind_beats_port_env_even_when_port_is_garbage() {
        let env = |k: &str| (k == "PORT").then(|| "garbage".to_owned());
        let Parsed::Run(s) = parse_args_with_env(&argv(&["-b", ":1", "a"]), Env::from_fn(&env))
        else {
            panic!("expected Run");
        };
        assert_eq!(s.bind.len(), 1);
    }

    #[test]
    fn a_bad_port_env_is_reported_as_the_bind_default() {
        let env = |k: &str| (k == "PORT").then(|| "garbage".to_owned());
        let Parsed::Exit { code, output, .. } =
            parse_args_with_env(&argv(&["a"]), Env::from_fn(&env))
        else {
            panic!("expected Exit");
        };
        assert_eq!(code, 2);
        assert!(
            output.contains("\"garbage\" is not a valid port number"),
            "{output}"
        );
        assert!(
            output.contains("0.0.0.0:$PORT when PORT is set"),
            "{output}"
        );
    }

    #[test]
    fn log_destination_flags_reach_their_typed_fields() {
        let s = run(&[
            "--access-logfile",
            "-",
            "--access-logformat",
            "%(h)s %(s)s",
            "--log-file",
            "/tmp/err.log",
            "a:b",
        ]);
        assert_eq!(s.accesslog.as_deref(), Some("-"));
        assert_eq!(s.access_log_format, "%(h)s %(s)s");
        assert_eq!(s.errorlog, "/tmp/err.log");
        assert_eq!(run(&["--error-logfile", "e.log", "a:b"]).errorlog, "e.log");
    }

    #[test]
    fn log_levels_map_to_the_log_crate() {
        for (name, level) in [
            ("debug", LevelFilter::Debug),
            ("INFO", LevelFilter::Info),
            ("WARNING", LevelFilter::Warn),
            ("error", LevelFilter::Error),
            ("critical", LevelFilter::Error),
        ] {
            assert_eq!(run(&["--log-level", name, "a"]).log_level, level, "{name}");
        }
    }

    #[test]
    fn version_prints_gunicorns_shape_and_exits_zero() {
        for flag in ["-v", "--version"] {
            let (code, output, to_stderr) = exit(&[flag]);
            assert_eq!(code, 0);
            assert_eq!(output, format!("ferricorn (version {VERSION})\n"));
            assert!(!to_stderr);
        }
    }

    #[test]
    fn help_exits_zero_on_stdout() {
        for flag in ["-h", "--help"] {
            let (code, output, to_stderr) = exit(&[flag]);
            assert_eq!(code, 0);
            assert!(!to_stderr);
            assert!(output.contains("Usage: ferricorn [OPTIONS] [APP_MODULE]"));
            assert!(output.contains("Server Socket:"), "{output}");
        }
    }

    #[test]
    fn missing_app_is_gunicorns_usage_error() {
        let (code, output, to_stderr) = exit(&["--threads", "2"]);
        assert_eq!(code, 2);
        assert!(to_stderr);
        assert!(
            output.starts_with("error: No application module specified.\n"),
            "{output}"
        );
        assert!(
            output.contains("Usage: ferricorn [OPTIONS] [APP_MODULE]"),
            "{output}"
        );
    }

    #[test]
    fn value_errors_exit_two_on_stderr_naming_the_flag() {
        let (code, output, to_stderr) = exit(&["--limit-request-line", "9000", "a"]);
        assert_eq!(code, 2);
        assert!(to_stderr);
        assert!(
            output.contains("--limit-request-line / limit_request_line = \"9000\""),
            "{output}"
        );
    }

    #[test]
    fn unknown_flag_suggests_the_nearest() {
        let (code, output, _) = exit(&["--keepalive", "3", "a"]);
        assert_eq!(code, 2);
        assert!(output.contains("--keep-alive"), "{output}");
    }

    #[test]
    fn extra_positionals_are_refused() {
        let (code, _, _) = exit(&["a:app", "b:app"]);
        assert_eq!(code, 2);
    }

    #[test]
    fn pythonpath_split_drops_empty_entries() {
        assert_eq!(split_pythonpath("a,,b ,"), ["a", "b"]);
        assert!(split_pythonpath("").is_empty());
    }
}
