//! Gunicorn's "Logging" section: the access log (destination, format, ferricorn's JSON
//! form), the error log destination, the level, stdio inheritance, StatsD, and ferricorn's
//! Prometheus endpoint (`--metrics-bind`).

use super::{boolean, choice, dict, opt_string};
use crate::accesslog::{Format, DEFAULT_FORMAT};
use crate::metrics::statsd::StatsdAddr;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting, Value};

/// Gunicorn's level names, most verbose first.
pub const LOG_LEVELS: &[&str] = &["debug", "info", "warning", "error", "critical"];

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "enable_stdio_inheritance",
        section: Section::Logging,
        cli: &["-R", "--enable-stdio-inheritance"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--enable-stdio-inheritance",
        short: "Enable stdio inheritance.",
        desc: "Enable stdio inheritance.\n\
\n\
With --daemon, keep stdout and stderr as they were (say, redirected to a \
file by the shell) instead of pointing them at /dev/null; a terminal is \
still let go. stdin always becomes /dev/null. Set PYTHONUNBUFFERED in the \
environment to see Python's output without buffering delays.",
        cost: "None; without --daemon it has no effect.",
        compat: Compat::Full,
    },
    Setting {
        name: "accesslog",
        section: Section::Logging,
        cli: &["--access-logfile"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_accesslog,
        example: "--access-logfile -",
        short: "The Access log file to write to.",
        desc: "The Access log file to write to.\n\
\n\
'-' means log to stdout. The file is opened for appending (and created) at \
startup, before workers fork; a path that cannot be opened stops the server. \
Lines are formatted by --access-logformat and written by each worker's I/O \
thread, one write per line, never by a Python thread. Not set (the default): \
no access log, and nothing is gathered per request.",
        cost: "One line formatted and written per response, on the worker's I/O \
thread; writes are blocking, so a slow disk slows that worker.",
        compat: Compat::Partial(
            "lines go straight to the file or stdout, not through Python's logging \
module, so logconfig handlers and syslog do not see them",
        ),
    },
    Setting {
        name: "access_log_format",
        section: Section::Logging,
        cli: &["--access-logformat"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str(DEFAULT_FORMAT),
        validate: validate_access_log_format,
        example: "--access-logformat %(h)s:%(s)s",
        short: "The access log format.",
        desc: "The access log format.\n\
\n\
Atoms, written %(name)s: h remote address, l '-', u user name (HTTP Basic \
auth), t time of logging in Common Log Format, r request line, m method, U \
path without query, q query string, H protocol, s status, B and b response \
body length, f referer, a user agent, T duration in seconds, M in \
milliseconds, D in microseconds, L in decimal seconds, p <pid>, \
{header}i request header, {header}o response header, {variable}e WSGI \
environ variable. Unknown atoms print '-'; double quotes in values are \
escaped as \\\". The default is the Apache combined format. The format is \
parsed once at startup.",
        cost: "Each {header}o atom keeps the response headers until the line is \
written; other atoms cost only their formatting.",
        compat: Compat::Partial(
            "only the s conversion (with flags, width, precision) is accepted, and a \
malformed format is an error at startup rather than a traceback per request; \
{variable}e knows the environ keys the server sets (REQUEST_METHOD, PATH_INFO, \
QUERY_STRING, RAW_URI, SERVER_*, REMOTE_*, SCRIPT_NAME, CONTENT_*, HTTP_*, \
wsgi.url_scheme), not keys the application adds",
        ),
    },
    Setting {
        name: "errorlog",
        section: Section::Logging,
        cli: &["--error-logfile", "--log-file"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::Str("-"),
        validate: validate_errorlog,
        example: "--error-logfile /var/log/ferricorn/error.log",
        short: "The Error log file to write to.",
        desc: "The Error log file to write to.\n\
\n\
Using '-' for FILE makes ferricorn log to stderr (the default). Otherwise the \
file is opened for appending (and created) at startup; server messages and \
wsgi.errors go there. Python's own stderr (print to sys.stderr, \
faulthandler dumps) is not redirected.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "loglevel",
        section: Section::Logging,
        cli: &["--log-level"],
        meta: "LEVEL",
        action: Action::Store,
        default: DefaultValue::Str("info"),
        validate: |raw| choice(raw, LOG_LEVELS),
        example: "--log-level warning",
        short: "The granularity of Error log outputs.",
        desc: "The granularity of Error log outputs.\n\
\n\
Valid level names are debug, info, warning, error and critical, in any \
case. critical logs the same as error: the Rust logger has no level above \
error.",
        cost: "debug logs per-connection detail, which costs CPU and disk on busy \
servers; error and above can hide the warnings that explain an outage.",
        compat: Compat::Partial(
            "critical is treated as error; an unknown level is an error rather than \
silently meaning info",
        ),
    },
    Setting {
        name: "disable_redirect_access_to_syslog",
        section: Section::Logging,
        cli: &["--disable-redirect-access-to-syslog"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--disable-redirect-access-to-syslog",
        short: "Disable redirect access logs to syslog.",
        desc: "Disable redirect access logs to syslog.\n\nNo effect in ferricorn: Syslog is not implemented yet, so there is nothing to redirect.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("syslog is not implemented yet, so there is nothing to redirect"),
    },
    Setting {
        name: "capture_output",
        section: Section::Logging,
        cli: &["--capture-output"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--capture-output",
        short: "Redirect stdout/stderr to specified file in errorlog.",
        desc: "Redirect stdout/stderr to specified file in errorlog.\n\
\n\
With --error-logfile set to a file, the master (after daemonizing) points \
file descriptors 1 and 2 at it, so the app's print()s, warnings and \
anything C code writes land in the error log, in every worker; USR1 \
reopens it there too. With the error log on stderr it changes nothing.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "logger_class",
        section: Section::Logging,
        cli: &["--logger-class"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("gunicorn.glogging.Logger"),
        validate: |raw| opt_string(raw, "a dotted class path"),
        example: "--logger-class myapp.logging.Logger",
        short: "The logger you want to use to log events in Gunicorn.",
        desc: "The logger you want to use to log events in Gunicorn.\n\nNo effect in ferricorn: Ferricorn's logger is built in and cannot be replaced.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("ferricorn's logger is built in and cannot be replaced"),
    },
    Setting {
        name: "logconfig",
        section: Section::Logging,
        cli: &["--log-config"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a file path"),
        example: "--log-config logging.conf",
        short: "The log config file to use.",
        desc: "The log config file to use.\n\nApplied to Python's logging module in the master before the app is imported \
(so every worker inherits it); the first of logconfig_dict, logconfig_json and \
logconfig that is set wins, as in gunicorn. A configuration Python refuses \
stops the server before it binds. ferricorn's own error and access log lines \
are written by Rust and do not pass through Python's logging.",
        cost: "None beyond the handlers it installs.",
        compat: Compat::Partial(
            "configures the app's Python loggers; ferricorn's own log lines do not go through them",
        ),
    },
    Setting {
        name: "logconfig_dict",
        section: Section::Logging,
        cli: &[],
        meta: "DICT",
        action: Action::Store,
        default: DefaultValue::Object("{}"),
        validate: dict,
        example: "logconfig_dict = {'version': 1}",
        short: "The log config dictionary to use, using the standard Python logging module's dictionary configuration format.",
        desc: "The log config dictionary to use, using the standard Python logging module's dictionary configuration format.\n\nApplied to Python's logging module in the master before the app is imported \
(so every worker inherits it); the first of logconfig_dict, logconfig_json and \
logconfig that is set wins, as in gunicorn. A configuration Python refuses \
stops the server before it binds. ferricorn's own error and access log lines \
are written by Rust and do not pass through Python's logging.",
        cost: "None beyond the handlers it installs.",
        compat: Compat::Partial(
            "configures the app's Python loggers; ferricorn's own log lines do not go through them",
        ),
    },
    Setting {
        name: "logconfig_json",
        section: Section::Logging,
        cli: &["--log-config-json"],
        meta: "FILE",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a file path"),
        example: "--log-config-json logging.json",
        short: "The log config to read config from a JSON file",
        desc: "The log config to read config from a JSON file\n\nApplied to Python's logging module in the master before the app is imported \
(so every worker inherits it); the first of logconfig_dict, logconfig_json and \
logconfig that is set wins, as in gunicorn. A configuration Python refuses \
stops the server before it binds. ferricorn's own error and access log lines \
are written by Rust and do not pass through Python's logging.",
        cost: "None beyond the handlers it installs.",
        compat: Compat::Partial(
            "configures the app's Python loggers; ferricorn's own log lines do not go through them",
        ),
    },
    Setting {
        name: "syslog_addr",
        section: Section::Logging,
        cli: &["--log-syslog-to"],
        meta: "SYSLOG_ADDR",
        action: Action::Store,
        default: DefaultValue::Str("udp://localhost:514"),
        validate: |raw| opt_string(raw, "a syslog address"),
        example: "--log-syslog-to udp://localhost:514",
        short: "Address to send syslog messages.",
        desc: "Address to send syslog messages.\n\nNo effect in ferricorn: Syslog is not implemented yet; logs go to --error-logfile.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("syslog is not implemented yet; logs go to --error-logfile"),
    },
    Setting {
        name: "syslog",
        section: Section::Logging,
        cli: &["--log-syslog"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--log-syslog",
        short: "Send *Gunicorn* logs to syslog.",
        desc: "Send *Gunicorn* logs to syslog.\n\nNo effect in ferricorn: Syslog is not implemented yet; logs go to --error-logfile.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("syslog is not implemented yet; logs go to --error-logfile"),
    },
    Setting {
        name: "syslog_prefix",
        section: Section::Logging,
        cli: &["--log-syslog-prefix"],
        meta: "SYSLOG_PREFIX",
        action: Action::Store,
        default: DefaultValue::None,
        validate: |raw| opt_string(raw, "a prefix string"),
        example: "--log-syslog-prefix myapp",
        short: "Makes Gunicorn use the parameter as program-name in the syslog entries.",
        desc: "Makes Gunicorn use the parameter as program-name in the syslog entries.\n\nNo effect in ferricorn: Syslog is not implemented yet; logs go to --error-logfile.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("syslog is not implemented yet; logs go to --error-logfile"),
    },
    Setting {
        name: "syslog_facility",
        section: Section::Logging,
        cli: &["--log-syslog-facility"],
        meta: "SYSLOG_FACILITY",
        action: Action::Store,
        default: DefaultValue::Str("user"),
        validate: |raw| opt_string(raw, "a syslog facility name"),
        example: "--log-syslog-facility local0",
        short: "Syslog facility name",
        desc: "Syslog facility name\n\nNo effect in ferricorn: Syslog is not implemented yet; logs go to --error-logfile.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("syslog is not implemented yet; logs go to --error-logfile"),
    },
    Setting {
        name: "statsd_host",
        section: Section::Logging,
        cli: &["--statsd-host"],
        meta: "STATSD_ADDR",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_statsd_host,
        example: "--statsd-host localhost:8125",
        short: "The address of the StatsD server to log to.",
        desc: "The address of the StatsD server to log to.\n\
\n\
Address is a string of the form: unix://PATH for a unix datagram socket, or \
HOST:PORT for UDP (the port defaults to 8125). Not set (the default): no \
metrics. When set, each worker's I/O thread sends gunicorn's per-request \
metrics (gunicorn.requests counter, gunicorn.request.duration timer in \
milliseconds, gunicorn.request.status.<code> counter), the master sends the \
gunicorn.workers gauge when the worker count changes, and every process \
counts error log lines (gunicorn.log.error, gunicorn.log.warning, \
gunicorn.log.exception for application errors). Datagrams are sent without \
blocking; one the socket cannot take is dropped. The socket is connected \
once at startup; an address that cannot be resolved there is logged and \
metrics stay off. A HUP does not change the StatsD settings.",
        cost: "Three non-blocking datagrams per request on the worker's I/O thread; \
none when unset.",
        compat: Compat::Partial(
            "gunicorn.log.critical is never sent (the error log has no level above error), \
and warning and error lines below --log-level are not counted",
        ),
    },
    Setting {
        name: "dogstatsd_tags",
        section: Section::Logging,
        cli: &["--dogstatsd-tags"],
        meta: "DOGSTATSD_TAGS",
        action: Action::Store,
        default: DefaultValue::Str(""),
        validate: trimmed_string,
        example: "--dogstatsd-tags env:prod,team:web",
        short: "A comma-delimited list of datadog statsd (dogstatsd) tags to append to statsd metrics.",
        desc: "A comma-delimited list of datadog statsd (dogstatsd) tags to append to statsd metrics.\n\
\n\
e.g. 'tag1:value1,tag2:value2'; each datagram then ends with |#tag1:value1,tag2:value2. \
Empty (the default): no tags. Only used with --statsd-host.",
        cost: "A few bytes per datagram.",
        compat: Compat::Full,
    },
    Setting {
        name: "statsd_prefix",
        section: Section::Logging,
        cli: &["--statsd-prefix"],
        meta: "STATSD_PREFIX",
        action: Action::Store,
        default: DefaultValue::Str(""),
        validate: trimmed_string,
        example: "--statsd-prefix myapp",
        short: "Prefix to use when emitting statsd metrics (a trailing `.` is added, if not provided).",
        desc: "Prefix to use when emitting statsd metrics (a trailing `.` is added, if not provided).\n\
\n\
Trailing dots collapse into one, as gunicorn's rule does (which, like it, leaves \
a one-character prefix alone). Empty (the default): metric names are \
gunicorn's own. Only used with --statsd-host.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "enable_backlog_metric",
        section: Section::Logging,
        cli: &["--enable-backlog-metric"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--enable-backlog-metric",
        short: "Enable socket backlog metric (only supported on Linux).",
        desc: "Enable socket backlog metric (only supported on Linux).\n\nNo effect in ferricorn: The gunicorn.backlog metric is not implemented yet.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the gunicorn.backlog metric is not implemented yet"),
    },
    Setting {
        name: "access_log_json",
        section: Section::Logging,
        cli: &["--access-log-json"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--access-log-json",
        short: "Write the access log as one JSON object per request.",
        desc: "Write the access log as one JSON object per request.\n\
\n\
With --access-logfile, each response is logged as a JSON object on one line \
instead of a --access-logformat line, with the keys remote_addr, time (ISO \
8601 with the local offset), method, path (PATH_INFO, decoded), query, \
protocol, status (a number), response_bytes, duration_us, referer and \
user_agent (null when the request had none) and pid. Strings are the \
request's bytes read as latin-1, as WSGI reads them, and escaped as JSON \
requires. Off by default. This is a ferricorn setting; gunicorn has no \
equivalent.",
        cost: "About the cost of a text line; no effect without --access-logfile.",
        compat: Compat::Partial("ferricorn's own setting; gunicorn rejects the flag"),
    },
    Setting {
        name: "metrics_bind",
        section: Section::Logging,
        cli: &["--metrics-bind"],
        meta: "ADDRESS",
        action: Action::Store,
        default: DefaultValue::None,
        validate: validate_metrics_bind,
        example: "--metrics-bind 127.0.0.1:9100",
        short: "Serve Prometheus metrics from the master on HOST:PORT.",
        desc: "Serve Prometheus metrics from the master on HOST:PORT.\n\
\n\
The master answers GET /metrics on this address in Prometheus' text format: \
ferricorn_requests_total by status code, the \
ferricorn_request_duration_seconds histogram (5 ms to 10 s buckets), \
ferricorn_requests_in_flight, ferricorn_worker_restarts_total, \
ferricorn_worker_timeouts_total and ferricorn_workers. Workers count into \
memory shared with the master; counts of workers that exited are kept. The \
socket is served from the master's loop, without threads, and each answer \
closes its connection. The address is bound at startup; failure stops the \
server; a HUP does not move it. Not set (the default): no endpoint and no counting. Anyone who can \
reach the address can read the metrics; bind it to a private interface. \
This is a ferricorn setting; gunicorn has no equivalent.",
        cost: "A few atomic additions per request in each worker; a scrape costs \
the master a pass over the live workers' counters.",
        compat: Compat::Partial("ferricorn's own setting; gunicorn rejects the flag"),
    },
];

/// gunicorn's `validate_string`: stripped.
fn trimmed_string(raw: Value) -> Result<Value, String> {
    match raw {
        Value::Str(s) => Ok(Value::Str(s.trim().to_owned())),
        Value::None => Ok(Value::Str(String::new())),
        _ => Err("expected a string".to_owned()),
    }
}

/// `None`, or the address in its canonical spelling (`StatsdAddr`'s display).
fn validate_statsd_host(raw: Value) -> Result<Value, String> {
    match opt_string(raw, "host:port or unix://PATH")? {
        Value::Str(s) => StatsdAddr::parse(&s)
            .map(|a| Value::Str(a.to_string()))
            .map_err(|e| format!("expected host:port or unix://PATH ({e})")),
        other => Ok(other),
    }
}

/// `HOST:PORT` (`[v6]:PORT` for IPv6), checked for shape only: the name is resolved when the
/// master binds it.
fn validate_metrics_bind(raw: Value) -> Result<Value, String> {
    const WHAT: &str = "HOST:PORT, e.g. 127.0.0.1:9100";
    match opt_string(raw, WHAT)? {
        Value::Str(s) if s.trim().is_empty() => Ok(Value::None),
        Value::Str(s) => {
            let s = s.trim();
            let ok = s
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if ok {
                Ok(Value::Str(s.to_owned()))
            } else {
                Err(format!("expected {WHAT}"))
            }
        }
        other => Ok(other),
    }
}

/// A path, or `None` when unset or blank (gunicorn: an empty name means no access log).
fn validate_accesslog(raw: Value) -> Result<Value, String> {
    match opt_string(raw, "a file path or -")? {
        Value::Str(s) if s.trim().is_empty() => Ok(Value::None),
        Value::Str(s) => Ok(Value::Str(s.trim().to_owned())),
        other => Ok(other),
    }
}

/// A path, `-` when unset or blank.
fn validate_errorlog(raw: Value) -> Result<Value, String> {
    match opt_string(raw, "a file path or -")? {
        Value::Str(s) if !s.trim().is_empty() => Ok(Value::Str(s.trim().to_owned())),
        _ => Ok(Value::Str("-".to_owned())),
    }
}

/// Stripped like gunicorn's `validate_string`, then parsed so a bad format fails at startup.
fn validate_access_log_format(raw: Value) -> Result<Value, String> {
    match raw {
        Value::Str(s) => {
            let s = s.trim().to_owned();
            Format::parse(&s)?;
            Ok(Value::Str(s))
        }
        _ => Err("expected a format string".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use crate::accesslog::DEFAULT_FORMAT;
    use crate::settings::registry::{find, DefaultValue, Value};

    #[test]
    fn access_log_is_off_by_default_and_blank_means_off() {
        let acc = find("accesslog").unwrap();
        assert!(matches!(acc.default, DefaultValue::None));
        assert_eq!(acc.check(Value::Str("  ".into())).unwrap(), Value::None);
        assert_eq!(
            acc.check(Value::Str(" - ".into())).unwrap(),
            Value::Str("-".into())
        );
    }

    #[test]
    fn access_log_format_defaults_to_combined_and_rejects_bad_formats() {
        let fmt = find("access_log_format").unwrap();
        assert!(matches!(fmt.default, DefaultValue::Str(DEFAULT_FORMAT)));
        assert_eq!(
            fmt.check(Value::Str(" %(h)s \n".into())).unwrap(),
            Value::Str("%(h)s".into())
        );
        assert_eq!(
            fmt.check(Value::Str("%(h)d".into()))
                .unwrap_err()
                .to_string(),
            "--access-logformat / access_log_format = \"%(h)d\": expected a format of \
             %(name)s atoms, found a conversion other than s (atoms are written %(name)s), \
             e.g. --access-logformat %(h)s:%(s)s"
        );
    }

    #[test]
    fn errorlog_defaults_to_stderr_under_both_flags() {
        let err = find("errorlog").unwrap();
        assert!(matches!(err.default, DefaultValue::Str("-")));
        assert_eq!(err.cli, &["--error-logfile", "--log-file"]);
        assert_eq!(err.check(Value::None).unwrap(), Value::Str("-".into()));
    }

    #[test]
    fn stdio_inheritance_defaults_off() {
        let inherit = find("enable_stdio_inheritance").unwrap();
        assert!(matches!(inherit.default, DefaultValue::Bool(false)));
        assert_eq!(
            inherit.check(Value::Str("true".into())).unwrap(),
            Value::Bool(true)
        );
    }

    #[test]
    fn loglevel_defaults_to_info_and_accepts_any_case() {
        let level = find("loglevel").unwrap();
        assert!(matches!(level.default, DefaultValue::Str("info")));
        assert_eq!(
            level.check(Value::Str("WARNING".into())).unwrap(),
            Value::Str("warning".into())
        );
        assert_eq!(
            level.check(Value::Str("Critical".into())).unwrap(),
            Value::Str("critical".into())
        );
    }

    #[test]
    fn loglevel_rejects_unknown_names_listing_the_valid_ones() {
        let level = find("loglevel").unwrap();
        assert_eq!(
            level
                .check(Value::Str("verbose".into()))
                .unwrap_err()
                .to_string(),
            "--log-level / loglevel = \"verbose\": expected one of debug, info, warning, \
             error, critical, e.g. --log-level warning"
        );
    }

    #[test]
    fn statsd_host_is_canonicalised_and_bad_ports_name_the_flag() {
        let host = find("statsd_host").unwrap();
        assert!(matches!(host.default, DefaultValue::None));
        assert_eq!(
            host.check(Value::Str(" LocalHost ".into())).unwrap(),
            Value::Str("localhost:8125".into())
        );
        assert_eq!(
            host.check(Value::Str("unix:///run/s.sock".into())).unwrap(),
            Value::Str("unix:///run/s.sock".into())
        );
        let err = host
            .check(Value::Str("host:nope".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--statsd-host / statsd_host = \"host:nope\""),
            "{err}"
        );
        assert!(err.ends_with("e.g. --statsd-host localhost:8125"), "{err}");
    }

    #[test]
    fn statsd_prefix_and_tags_default_empty_and_are_stripped() {
        for name in ["statsd_prefix", "dogstatsd_tags"] {
            let s = find(name).unwrap();
            assert!(matches!(s.default, DefaultValue::Str("")), "{name}");
            assert_eq!(
                s.check(Value::Str(" a:b ".into())).unwrap(),
                Value::Str("a:b".into())
            );
        }
    }

    #[test]
    fn access_log_json_is_an_off_by_default_switch() {
        let json = find("access_log_json").unwrap();
        assert!(matches!(json.default, DefaultValue::Bool(false)));
        assert_eq!(json.cli, &["--access-log-json"]);
        assert_eq!(json.check(Value::Bool(true)).unwrap(), Value::Bool(true));
    }

    #[test]
    fn metrics_bind_wants_host_and_port() {
        let bind = find("metrics_bind").unwrap();
        assert!(matches!(bind.default, DefaultValue::None));
        for ok in ["127.0.0.1:9100", "[::1]:0", "localhost:9100"] {
            assert_eq!(
                bind.check(Value::Str(ok.into())).unwrap(),
                Value::Str(ok.into())
            );
        }
        assert_eq!(bind.check(Value::Str(" ".into())).unwrap(), Value::None);
        for bad in ["9100", ":9100", "host:", "host:99999"] {
            let err = bind.check(Value::Str(bad.into())).unwrap_err().to_string();
            assert!(err.contains("expected HOST:PORT"), "{bad}: {err}");
        }
    }
}
