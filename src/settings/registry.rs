//! The settings registry: what a setting is, the one table of all of them,
//! and the raw "value by conf name" layer that resolution merges.
//!
//! Each setting is declared exactly once, in `defs/<section>.rs`; the CLI,
//! `--help`, the docs page and the typed `Settings` are all derived from the
//! table here. This module must not know any particular setting by name:
//! code that does belongs in `defs/` (declaration) or `mod.rs` (conversion).

use std::collections::BTreeMap;
use std::fmt;

use super::defs;
use super::error::SettingError;

/// A setting's value before it becomes a typed field of `Settings`.
///
/// Every source fills this same shape: argv and `GUNICORN_CMD_ARGS` give
/// strings, a `gunicorn.conf.py` gives Python objects. Validators accept any
/// variant that makes sense (as gunicorn's do: `workers = "4"` works in a
/// conf file) and return one canonical variant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<String>),
    /// Any other Python object from a conf file (a float, a dict...), kept
    /// as its `repr` so that the validator's refusal can quote it.
    Object(String),
}

/// Renders roughly as the user wrote it, so errors can quote the bad value.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::None => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::List(items) => f.debug_list().entries(items).finish(),
            Value::Object(repr) => f.write_str(repr),
        }
    }
}

/// Environment lookups for defaults that read it (`bind` reads `$PORT`).
///
/// Passed in rather than read directly so tests never touch the process
/// environment, which other tests running in parallel share.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Env<'a> {
    #[allow(dead_code)] // tests, and embedders that pass their own environment
    pub fn from_fn(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Env { lookup }
    }

    pub fn var(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }
}

impl Env<'static> {
    /// The real process environment.
    pub fn process() -> Self {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok()
        }
        Env { lookup: &var }
    }
}

/// Gunicorn's documentation sections, in the order its docs list them; help
/// output is grouped under these headings in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    ConfigFile,
    Control,
    Debugging,
    DirtyArbiters,
    Http2,
    Logging,
    ProcessNaming,
    Ssl,
    Security,
    ServerMechanics,
    ServerSocket,
    WorkerProcesses,
}

impl Section {
    pub fn title(self) -> &'static str {
        match self {
            Section::ConfigFile => "Config File",
            Section::Control => "Control",
            Section::Debugging => "Debugging",
            Section::DirtyArbiters => "Dirty Arbiters",
            Section::Http2 => "HTTP/2",
            Section::Logging => "Logging",
            Section::ProcessNaming => "Process Naming",
            Section::Ssl => "SSL",
            Section::Security => "Security",
            Section::ServerMechanics => "Server Mechanics",
            Section::ServerSocket => "Server Socket",
            Section::WorkerProcesses => "Worker Processes",
        }
    }
}

/// How repeated flags combine, mirroring gunicorn's argparse actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// One value; a later flag overrides an earlier one.
    Store,
    /// Repeatable; every occurrence is kept (`-b a -b b`).
    Append,
    /// A flag without a value that sets `True`.
    StoreTrue,
    /// A flag without a value that sets `False` (`--no-sendfile`).
    StoreFalse,
    /// One value, which may be left out to mean this one (argparse's
    /// `nargs="?"` with a `const`: `--proxy-protocol` alone is `auto`).
    StoreOptional(&'static str),
}

impl Action {
    /// Whether the flag stands alone, without a value.
    pub fn is_switch(self) -> bool {
        matches!(self, Action::StoreTrue | Action::StoreFalse)
    }
}

/// The default as declared, before validation.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // List waits for a setting that uses it
pub enum DefaultValue {
    None,
    Bool(bool),
    Int(i64),
    Str(&'static str),
    List(&'static [&'static str]),
    /// A Python literal with no other form (a dict), as a conf file's value
    /// arrives: its `repr`.
    Object(&'static str),
    /// Depends on the environment; `doc` is what help and docs show.
    FromEnv {
        doc: &'static str,
        get: fn(Env<'_>) -> Value,
    },
}

impl DefaultValue {
    pub fn value(self, env: Env<'_>) -> Value {
        match self {
            DefaultValue::None => Value::None,
            DefaultValue::Bool(b) => Value::Bool(b),
            DefaultValue::Int(i) => Value::Int(i),
            DefaultValue::Str(s) => Value::Str(s.to_owned()),
            DefaultValue::List(items) => {
                Value::List(items.iter().map(|s| (*s).to_owned()).collect())
            }
            DefaultValue::Object(repr) => Value::Object(repr.to_owned()),
            DefaultValue::FromEnv { get, .. } => get(env),
        }
    }
}

impl fmt::Display for DefaultValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DefaultValue::None => f.write_str("none"),
            DefaultValue::Bool(b) => write!(f, "{b}"),
            DefaultValue::Int(i) => write!(f, "{i}"),
            DefaultValue::Str(s) => f.write_str(s),
            DefaultValue::List(items) => f.write_str(&items.join(", ")),
            DefaultValue::Object(repr) => f.write_str(repr),
            DefaultValue::FromEnv { doc, .. } => f.write_str(doc),
        }
    }
}

/// How faithfully ferricorn implements a gunicorn setting, so users and the
/// docs page can tell "accepted and honoured" from "accepted and ignored".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compat {
    /// Same meaning and effect as in gunicorn.
    Full,
    /// Honoured, with the stated difference.
    Partial(&'static str),
    /// Parsed for compatibility but has no effect, for the stated reason.
    Ignored(&'static str),
}

/// Turns a raw value into its canonical form, or says what was expected.
/// The reason is a fragment ("expected a positive integer"); the registry
/// adds the flag, the value and the example around it.
pub type Validator = fn(Value) -> Result<Value, String>;

/// One gunicorn setting, declared once.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)] // desc, cost and compat are read by the docs renderer (docs.rs)
pub struct Setting {
    /// Gunicorn's conf-file name, e.g. `limit_request_field_size`.
    pub name: &'static str,
    pub section: Section,
    /// Gunicorn's exact flag spellings; empty for conf-file-only settings.
    pub cli: &'static [&'static str],
    /// Placeholder for the value in help, e.g. `INT`.
    pub meta: &'static str,
    pub action: Action,
    pub default: DefaultValue,
    pub validate: Validator,
    /// A valid command line, shown after "e.g." in errors.
    pub example: &'static str,
    /// One line for `--help`.
    pub short: &'static str,
    /// Full documentation for the docs page.
    pub desc: &'static str,
    /// What raising or lowering it costs (memory, latency, exposure).
    pub cost: &'static str,
    pub compat: Compat,
}

impl Setting {
    /// The first `--long` spelling, which is what errors cite.
    pub fn long_flag(&self) -> Option<&'static str> {
        self.cli.iter().copied().find(|f| f.starts_with("--"))
    }

    /// The example as a conf-file line: `--workers 4` becomes `workers = 4`.
    /// Conf-only settings already declare theirs in that form.
    pub fn conf_example(&self) -> String {
        let Some(flag) = self.long_flag() else {
            return self.example.to_owned();
        };
        let words = self.example.strip_prefix(flag).unwrap_or("").trim();
        let literal = match (self.action, (self.validate)(Value::Str(words.to_owned()))) {
            (Action::StoreTrue, _) => "True".to_owned(),
            (Action::StoreFalse, _) => "False".to_owned(),
            (_, Ok(Value::Int(n))) => n.to_string(),
            (_, Ok(Value::List(items))) => format!("{items:?}"),
            _ => format!("{words:?}"),
        };
        format!("{} = {literal}", self.name)
    }

    /// Validates `raw`, wrapping a refusal with this setting's flag, name
    /// and example.
    pub fn check(&'static self, raw: Value) -> Result<Value, SettingError> {
        let shown = raw.to_string();
        (self.validate)(raw).map_err(|reason| SettingError::invalid(self, shown, reason))
    }
}

/// Every section's table, in help order. Adding a section means adding its
/// file under `defs/` and one line here; adding a setting touches only its
/// section file.
const PARTS: &[&[Setting]] = &[
    defs::config_file::SETTINGS,
    defs::control::SETTINGS,
    defs::debugging::SETTINGS,
    defs::dirty_arbiters::SETTINGS,
    defs::http2::SETTINGS,
    defs::logging::SETTINGS,
    defs::process_naming::SETTINGS,
    defs::ssl::SETTINGS,
    defs::security::SETTINGS,
    defs::server_mechanics::SETTINGS,
    defs::proxy::SETTINGS,
    defs::http_parsing::SETTINGS,
    defs::server_socket::SETTINGS,
    defs::worker_processes::SETTINGS,
];

const fn count(parts: &[&[Setting]]) -> usize {
    let mut n = 0;
    let mut p = 0;
    while p < parts.len() {
        n += parts[p].len();
        p += 1;
    }
    n
}

/// Flattens the per-section tables at compile time so the rest of the crate
/// sees one slice and nothing is built at run time.
const fn concat<const N: usize>(parts: &[&[Setting]]) -> [Setting; N] {
    let mut out = [parts[0][0]; N];
    let mut k = 0;
    let mut p = 0;
    while p < parts.len() {
        let mut i = 0;
        while i < parts[p].len() {
            out[k] = parts[p][i];
            k += 1;
            i += 1;
        }
        p += 1;
    }
    out
}

static TABLE: [Setting; count(PARTS)] = concat(PARTS);

/// All settings, grouped by section in help order.
pub static SETTINGS: &[Setting] = &TABLE;

/// The setting with this conf name.
pub fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

/// The conf name nearest to a misspelt one, for "did you mean" hints.
pub fn closest(name: &str) -> Option<&'static str> {
    closest_among(name, SETTINGS.iter().map(|s| s.name))
}

/// `closest` over any list of names (the conf-file loader adds hook names).
pub fn closest_among(
    name: &str,
    candidates: impl Iterator<Item = &'static str>,
) -> Option<&'static str> {
    let name = name.to_ascii_lowercase().replace('-', "_");
    candidates
        .map(|candidate| (edit_distance(&name, candidate), candidate))
        .filter(|&(d, candidate)| d <= (candidate.len() / 3).max(2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance; names are short, so the O(n*m) table is fine.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Validated values by conf name: one layer of configuration.
///
/// A layer holds only what its source set, so layers can be stacked
/// (default < conf file < `GUNICORN_CMD_ARGS` < argv) with `overlay`, and
/// only the merged result is converted to typed `Settings`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Values {
    map: BTreeMap<&'static str, Value>,
}

impl Values {
    /// Fills every setting this layer lacks with its default, making it a
    /// complete, convertible layer. Defaults are validated like any other
    /// value (a bad `$PORT` is an error), but only the ones actually used:
    /// `--bind` given on the command line makes `$PORT` irrelevant.
    pub fn with_defaults(mut self, env: Env<'_>) -> Result<Self, SettingError> {
        for setting in SETTINGS {
            if self.map.contains_key(setting.name) {
                continue;
            }
            let raw = setting.default.value(env);
            let shown = raw.to_string();
            let value = (setting.validate)(raw).map_err(|reason| {
                let reason = match setting.default {
                    DefaultValue::FromEnv { doc, .. } => format!("{reason}; the default is {doc}"),
                    _ => reason,
                };
                SettingError::invalid(setting, shown, reason)
            })?;
            self.map.insert(setting.name, value);
        }
        Ok(self)
    }

    pub fn set_setting(
        &mut self,
        setting: &'static Setting,
        raw: Value,
    ) -> Result<(), SettingError> {
        let value = setting.check(raw)?;
        self.map.insert(setting.name, value);
        Ok(())
    }

    pub fn int(&self, name: &'static str) -> Result<i64, SettingError> {
        self.typed(name, "an integer", |v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        })
    }

    /// A duration in seconds, whole or fractional (validated by `defs::seconds`).
    pub fn seconds(&self, name: &'static str) -> Result<f64, SettingError> {
        self.typed(name, "a number of seconds", |v| match v {
            Value::Int(i) => Some(*i as f64),
            Value::Str(s) => s.parse().ok(),
            _ => None,
        })
    }

    pub fn bool(&self, name: &'static str) -> Result<bool, SettingError> {
        self.typed(name, "a boolean", |v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        })
    }

    /// An optional integer: `None` when unset.
    pub fn opt_int(&self, name: &'static str) -> Result<Option<i64>, SettingError> {
        self.typed(name, "an integer or None", |v| match v {
            Value::Int(i) => Some(Some(*i)),
            Value::None => Some(None),
            _ => None,
        })
    }

    /// An optional string: `None` when unset.
    pub fn opt_str(&self, name: &'static str) -> Result<Option<&str>, SettingError> {
        self.typed(name, "a string or None", |v| match v {
            Value::Str(s) => Some(Some(s.as_str())),
            Value::None => Some(None),
            _ => None,
        })
    }

    pub fn str(&self, name: &'static str) -> Result<&str, SettingError> {
        self.typed(name, "a string", |v| match v {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn list(&self, name: &'static str) -> Result<&[String], SettingError> {
        self.typed(name, "a list of strings", |v| match v {
            Value::List(items) => Some(items.as_slice()),
            _ => None,
        })
    }

    /// Reads a value in the shape its validator promised. A mismatch means a
    /// validator and the conversion disagree; it is reported, not panicked
    /// on, because the value may have come from a user's conf file.
    fn typed<'s, T>(
        &'s self,
        name: &'static str,
        expected: &str,
        pick: impl FnOnce(&'s Value) -> Option<T>,
    ) -> Result<T, SettingError> {
        let setting = find(name).ok_or_else(|| SettingError::unknown(name, None))?;
        let value = self.map.get(name).unwrap_or(&Value::None);
        pick(value).ok_or_else(|| {
            SettingError::invalid(
                setting,
                value,
                format!("expected {expected} after validation (this is a ferricorn bug)"),
            )
        })
    }
}

/// The layering API `resolve.rs` stacks sources with.
impl Values {
    /// Every setting at its default.
    #[allow(dead_code)] // tests
    pub fn defaults(env: Env<'_>) -> Result<Self, SettingError> {
        Values::default().with_defaults(env)
    }

    /// Sets a value by conf name; unknown names suggest the nearest one.
    #[allow(dead_code)] // tests
    pub fn set(&mut self, name: &str, raw: Value) -> Result<(), SettingError> {
        let setting = find(name).ok_or_else(|| SettingError::unknown(name, closest(name)))?;
        self.set_setting(setting, raw)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.map.get(name)
    }

    /// Applies a higher-precedence layer: each value it holds replaces ours
    /// whole, lists included (a CLI `--bind` replaces the conf file's, as in
    /// gunicorn).
    pub fn overlay(&mut self, higher: Values) {
        self.map.extend(higher.map);
    }

    #[allow(dead_code)] // tests
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.map.iter().map(|(k, v)| (*k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn no_env() -> Env<'static> {
        Env::from_fn(&|_| None)
    }

    #[test]
    fn table_holds_every_section_part_in_order() {
        assert_eq!(SETTINGS.len(), count(PARTS));
        let sections: Vec<Section> = SETTINGS.iter().map(|s| s.section).collect();
        let mut sorted = sections.clone();
        sorted.sort();
        assert_eq!(sections, sorted, "PARTS must follow Section order");
    }

    #[test]
    fn every_setting_is_documented_and_reachable() {
        for s in SETTINGS {
            assert!(!s.name.is_empty());
            assert!(
                s.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}: conf names are snake_case",
                s.name
            );
            assert!(!s.short.is_empty(), "{}: short help", s.name);
            assert!(
                s.desc.len() > s.short.len(),
                "{}: desc says more than short",
                s.name
            );
            assert!(!s.cost.is_empty(), "{}: cost", s.name);
            assert!(!s.section.title().is_empty());
            match s.long_flag() {
                Some(flag) => assert!(
                    s.example.starts_with(flag),
                    "{}: example uses the flag",
                    s.name
                ),
                // gunicorn's conf-only settings (wsgi_app) show a conf line.
                None => assert!(
                    s.cli.is_empty() && s.example.starts_with(&format!("{} = ", s.name)),
                    "{}: a conf-only setting's example is a conf line",
                    s.name
                ),
            }
            for flag in s.cli {
                assert!(flag.starts_with('-'), "{}: {flag}", s.name);
            }
            if !s.action.is_switch() {
                assert!(!s.meta.is_empty(), "{}: meta var", s.name);
            }
            if let Compat::Partial(why) | Compat::Ignored(why) = s.compat {
                assert!(!why.is_empty(), "{}: compat reason", s.name);
            }
        }
    }

    #[test]
    fn names_and_flags_are_unique() {
        let mut names = HashSet::new();
        let mut flags = HashSet::new();
        for s in SETTINGS {
            assert!(names.insert(s.name), "duplicate name {}", s.name);
            for flag in s.cli {
                assert!(flags.insert(*flag), "duplicate flag {flag}");
            }
        }
    }

    #[test]
    fn every_default_passes_its_own_validator() {
        let values = Values::defaults(no_env()).unwrap();
        assert_eq!(values.iter().count(), SETTINGS.len());
    }

    #[test]
    fn every_example_value_passes_the_validator() {
        for s in SETTINGS.iter().filter(|s| !s.cli.is_empty()) {
            let mut words = s.example.split_whitespace().skip(1);
            if let Some(word) = words.next() {
                let raw = match s.action {
                    Action::Append => Value::List(vec![word.to_owned()]),
                    _ => Value::Str(word.to_owned()),
                };
                // chdir's example names a directory that need not exist here.
                if s.name != "chdir" {
                    s.check(raw)
                        .unwrap_or_else(|e| panic!("{}: example rejected: {e}", s.name));
                }
            }
        }
    }

    #[test]
    fn every_validator_rejects_garbage_naming_flag_and_conf_name() {
        let garbage = [
            Value::Str("garbage".into()),
            Value::Int(-1),
            Value::Bool(true),
        ];
        for s in SETTINGS {
            let err = garbage
                .iter()
                .find_map(|g| s.check(g.clone()).err())
                .unwrap_or_else(|| panic!("{}: accepted every garbage value", s.name));
            let text = err.to_string();
            let subject = match s.long_flag() {
                Some(flag) => format!("{flag} / {} = ", s.name),
                None => format!("{} = ", s.name),
            };
            assert!(text.starts_with(&subject), "{text}");
            assert!(text.ends_with(&format!("e.g. {}", s.example)), "{text}");
        }
    }

    #[test]
    fn set_rejects_unknown_names_with_a_suggestion() {
        let err = Values::default()
            .set("limit_request_feld_size", Value::Int(1))
            .unwrap_err();
        assert!(err.is_unknown());
        assert!(
            err.to_string().contains("limit_request_field_size"),
            "{err}"
        );
        assert_eq!(closest("completely_different_thing"), None);
        assert_eq!(closest("keep-alive"), Some("keepalive"));
    }

    #[test]
    fn overlay_replaces_whole_values() {
        let mut low = Values::default();
        low.set("bind", Value::Str("a:1".into())).unwrap();
        low.set("threads", Value::Int(2)).unwrap();
        let mut high = Values::default();
        high.set("bind", Value::List(vec!["b:2".into()])).unwrap();
        low.overlay(high);
        assert_eq!(low.list("bind").unwrap(), ["b:2".to_owned()]);
        assert_eq!(low.int("threads").unwrap(), 2);
    }

    #[test]
    fn typed_getters_report_a_shape_mismatch_instead_of_panicking() {
        let values = Values::default();
        let err = values.int("threads").unwrap_err();
        assert!(
            err.to_string().contains("--threads / threads = None"),
            "{err}"
        );
    }

    #[test]
    fn values_render_like_the_user_wrote_them() {
        assert_eq!(Value::Str("four".into()).to_string(), "\"four\"");
        assert_eq!(Value::Int(-3).to_string(), "-3");
        assert_eq!(
            Value::List(vec!["a".into(), "b".into()]).to_string(),
            "[\"a\", \"b\"]"
        );
    }

    #[test]
    fn conf_examples_are_python_lines() {
        let example = |name| find(name).unwrap().conf_example();
        assert_eq!(example("workers"), "workers = 4");
        assert_eq!(example("bind"), "bind = [\"127.0.0.1:8000\"]");
        assert_eq!(example("preload_app"), "preload_app = True");
        assert_eq!(example("pidfile"), "pidfile = \"/run/ferricorn.pid\"");
        assert_eq!(example("wsgi_app"), find("wsgi_app").unwrap().example);
    }

    #[test]
    fn closest_among_considers_only_the_given_names() {
        assert_eq!(
            closest_among("post_frok", ["post_fork", "pre_fork"].into_iter()),
            Some("post_fork")
        );
        assert_eq!(closest_among("post_frok", std::iter::empty()), None);
    }

    /// Every setting name in gunicorn 27.0.1's config.py (hooks included).
    const GUNICORN_27_0_1_NAMES: &[&str] = &[
        "access_log_format",
        "accesslog",
        "asgi_disconnect_grace_period",
        "asgi_lifespan",
        "asgi_loop",
        "backlog",
        "bind",
        "ca_certs",
        "capture_output",
        "casefold_http_method",
        "cert_reqs",
        "certfile",
        "chdir",
        "check_config",
        "child_exit",
        "ciphers",
        "config",
        "control_socket",
        "control_socket_disable",
        "control_socket_mode",
        "daemon",
        "default_proc_name",
        "dirty_apps",
        "dirty_graceful_timeout",
        "dirty_post_fork",
        "dirty_threads",
        "dirty_timeout",
        "dirty_worker_exit",
        "dirty_worker_init",
        "dirty_workers",
        "disable_redirect_access_to_syslog",
        "do_handshake_on_connect",
        "dogstatsd_tags",
        "enable_backlog_metric",
        "enable_stdio_inheritance",
        "errorlog",
        "forwarded_allow_ips",
        "forwarder_headers",
        "graceful_timeout",
        "group",
        "header_map",
        "http2_cleartext",
        "http2_initial_window_size",
        "http2_max_concurrent_streams",
        "http2_max_frame_size",
        "http2_max_header_list_size",
        "http_parser",
        "http_protocols",
        "initgroups",
        "keepalive",
        "keyfile",
        "limit_request_field_size",
        "limit_request_fields",
        "limit_request_line",
        "logconfig",
        "logconfig_dict",
        "logconfig_json",
        "logger_class",
        "loglevel",
        "max_requests",
        "max_requests_jitter",
        "nworkers_changed",
        "on_dirty_starting",
        "on_exit",
        "on_reload",
        "on_starting",
        "paste",
        "permit_obsolete_folding",
        "permit_unconventional_http_method",
        "permit_unconventional_http_version",
        "pidfile",
        "post_fork",
        "post_request",
        "post_worker_init",
        "pre_exec",
        "pre_fork",
        "pre_request",
        "preload_app",
        "print_config",
        "proc_name",
        "protocol",
        "proxy_allow_ips",
        "proxy_protocol",
        "pythonpath",
        "raw_env",
        "raw_paste_global_conf",
        "reload",
        "reload_engine",
        "reload_extra_files",
        "reuse_port",
        "root_path",
        "secure_scheme_headers",
        "sendfile",
        "spew",
        "ssl_context",
        "ssl_version",
        "statsd_host",
        "statsd_prefix",
        "strip_header_spaces",
        "suppress_ragged_eofs",
        "syslog",
        "syslog_addr",
        "syslog_facility",
        "syslog_prefix",
        "threads",
        "timeout",
        "tmp_upload_dir",
        "umask",
        "user",
        "uwsgi_allow_ips",
        "websocket_max_message_size",
        "when_ready",
        "worker_abort",
        "worker_class",
        "worker_connections",
        "worker_exit",
        "worker_int",
        "worker_tmp_dir",
        "workers",
        "wsgi_app",
    ];

    #[test]
    fn every_gunicorn_27_0_1_setting_is_known() {
        let missing: Vec<&str> = GUNICORN_27_0_1_NAMES
            .iter()
            .copied()
            .filter(|name| find(name).is_none() && super::super::hooks::find(name).is_none())
            .collect();
        assert!(missing.is_empty(), "unknown gunicorn settings: {missing:?}");
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        assert_eq!(edit_distance("bind", "bind"), 0);
        assert_eq!(edit_distance("bnd", "bind"), 1);
        assert_eq!(edit_distance("thraeds", "threads"), 2);
    }
}
