//! Renders docs/settings.md and docs/migration.md from the settings registry, so the pages
//! cannot drift from the code: a test fails when the committed pages differ from what this
//! renders (`make docs` rewrites them).

use std::fmt::Write;

use super::registry::{Compat, DefaultValue, Section, Setting, SETTINGS};

/// A peer server's flag and the ferricorn setting that does its job (`None`: no equivalent).
struct PeerFlag {
    flag: &'static str,
    setting: Option<&'static str>,
    note: &'static str,
}

const fn peer(flag: &'static str, setting: Option<&'static str>, note: &'static str) -> PeerFlag {
    PeerFlag {
        flag,
        setting,
        note,
    }
}

/// uvicorn 0.3x's command line.
const UVICORN: &[PeerFlag] = &[
    peer(
        "APP",
        None,
        "the same `module:app` spec; `--factory` becomes `module:factory()`",
    ),
    peer("--host / --port", Some("bind"), "`-b HOST:PORT`"),
    peer("--uds PATH", Some("bind"), "`-b unix:PATH`"),
    peer("--fd N", Some("bind"), "`-b fd://N`"),
    peer("--workers N", Some("workers"), ""),
    peer(
        "--reload",
        Some("reload"),
        "also `--reload-extra-file` for non-Python files",
    ),
    peer("--loop", Some("asgi_loop"), "`--loop` is accepted as is"),
    peer(
        "--http",
        None,
        "always ferricorn's own HTTP/1.1 parser in Rust",
    ),
    peer("--ws", None, "always ferricorn's WebSocket layer in Rust"),
    peer(
        "--ws-max-size",
        Some("websocket_max_message_size"),
        "`--ws-max-size` accepted",
    ),
    peer("--ws-ping-interval", Some("ws_ping_interval"), ""),
    peer("--ws-ping-timeout", Some("ws_ping_timeout"), ""),
    peer(
        "--ws-per-message-deflate",
        Some("ws_per_message_deflate"),
        "offers are declined for now",
    ),
    peer("--lifespan", Some("asgi_lifespan"), "`--lifespan` accepted"),
    peer(
        "--interface",
        Some("interface"),
        "`asgi3`/`asgi2` are both `asgi`; `wsgi` serves WSGI natively",
    ),
    peer(
        "--env-file",
        None,
        "use `-e KEY=VALUE` or your process manager",
    ),
    peer("--log-config", Some("logconfig"), ""),
    peer("--log-level", Some("loglevel"), ""),
    peer(
        "--access-log / --no-access-log",
        Some("accesslog"),
        "off unless `--access-logfile -`",
    ),
    peer("--proxy-headers", Some("forwarded_allow_ips"), ""),
    peer("--forwarded-allow-ips", Some("forwarded_allow_ips"), ""),
    peer("--root-path", Some("root_path"), ""),
    peer(
        "--limit-concurrency",
        Some("worker_connections"),
        "`--limit-concurrency` accepted",
    ),
    peer("--backlog", Some("backlog"), ""),
    peer("--limit-max-requests", Some("max_requests"), ""),
    peer("--timeout-keep-alive", Some("keepalive"), ""),
    peer("--timeout-graceful-shutdown", Some("graceful_timeout"), ""),
    peer(
        "--ssl-certfile / --ssl-keyfile",
        Some("certfile"),
        "and `keyfile`",
    ),
    peer("--header", None, "set headers in the app or a middleware"),
    peer("--app-dir", Some("pythonpath"), "or `--chdir`"),
];

/// granian 2.x's command line.
const GRANIAN: &[PeerFlag] = &[
    peer(
        "--interface",
        Some("interface"),
        "`-k asgi` also selects ASGI; rsgi is not served",
    ),
    peer("--host / --port", Some("bind"), "`-b HOST:PORT`"),
    peer("--uds PATH", Some("bind"), "`-b unix:PATH`"),
    peer("--workers", Some("workers"), ""),
    peer(
        "--blocking-threads",
        Some("threads"),
        "WSGI only; ASGI runs one event loop per worker",
    ),
    peer(
        "--runtime-threads",
        None,
        "one I/O thread per worker; scale with `--workers`",
    ),
    peer("--loop", Some("asgi_loop"), ""),
    peer("--http", None, "HTTP/1.1 only for now"),
    peer(
        "--ws / --no-ws",
        None,
        "websockets are always on for ASGI apps",
    ),
    peer("--backlog", Some("backlog"), ""),
    peer(
        "--backpressure",
        Some("worker_connections"),
        "ASGI: 503 past the limit",
    ),
    peer(
        "--http1-keep-alive",
        Some("keepalive"),
        "seconds; 0 turns keep-alive off",
    ),
    peer("--url-path-prefix", Some("root_path"), ""),
    peer(
        "--workers-lifetime",
        Some("max_requests"),
        "by requests, not time; see also `--max-worker-memory`",
    ),
    peer("--workers-kill-timeout", Some("graceful_timeout"), ""),
    peer(
        "--respawn-failed-workers",
        None,
        "always: the master replaces every worker that dies",
    ),
    peer("--reload", Some("reload"), ""),
    peer("--log-level", Some("loglevel"), ""),
    peer("--access-log", Some("accesslog"), "`--access-logfile -`"),
    peer("--pid-file", Some("pidfile"), "`-p FILE`"),
];

fn find(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

fn flags(s: &Setting) -> String {
    if s.cli.is_empty() {
        return format!("`{}` (conf file only)", s.name);
    }
    s.cli
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn default_text(d: DefaultValue) -> String {
    match d {
        DefaultValue::None => "None".into(),
        DefaultValue::Bool(b) => if b { "True" } else { "False" }.into(),
        DefaultValue::Int(i) => i.to_string(),
        DefaultValue::Str(s) => format!("{s:?}"),
        DefaultValue::List(items) => format!("{items:?}"),
        DefaultValue::Object(repr) => repr.into(),
        DefaultValue::FromEnv { doc, .. } => doc.into(),
    }
}

fn compat_text(c: Compat) -> String {
    match c {
        Compat::Full => "as gunicorn".into(),
        Compat::Partial(why) => format!("partly: {why}"),
        Compat::Ignored(why) => format!("accepted, no effect: {why}"),
    }
}

const SECTIONS: &[Section] = &[
    Section::ConfigFile,
    Section::Debugging,
    Section::Logging,
    Section::ProcessNaming,
    Section::Ssl,
    Section::Security,
    Section::ServerMechanics,
    Section::ServerSocket,
    Section::WorkerProcesses,
    Section::Http2,
    Section::Control,
    Section::DirtyArbiters,
];

/// docs/settings.md: every setting, by gunicorn's sections.
pub fn settings_page() -> String {
    let mut out = String::from(
        "# Settings\n\n<!-- generated from src/settings/defs by `make docs`; do not edit -->\n\n\
Every gunicorn 27.0.1 setting, with the same names, flags and defaults, plus ferricorn's own. \
Each can be given on the command line, in `GUNICORN_CMD_ARGS` / `FERRICORN_CMD_ARGS`, or as \
`name = value` in a `gunicorn.conf.py`.\n",
    );
    for &section in SECTIONS {
        let _ = write!(out, "\n## {}\n", section.title());
        for s in SETTINGS.iter().filter(|s| s.section == section) {
            let _ = write!(
                out,
                "\n### `{}`\n\n{} · default `{}` · {}\n\n{}\n",
                s.name,
                flags(s),
                default_text(s.default),
                compat_text(s.compat),
                s.desc.trim_end()
            );
            if !s.cost.is_empty() {
                let _ = writeln!(out, "\n*Cost:* {}", s.cost.trim_end());
            }
        }
    }
    out
}

fn peer_table(out: &mut String, peer_name: &str, rows: &[PeerFlag]) {
    let _ = writeln!(out, "| {peer_name} | ferricorn | note |\n|---|---|---|");
    for row in rows {
        let ours = row
            .setting
            .and_then(find)
            .map_or_else(|| "—".to_owned(), flags);
        let _ = writeln!(out, "| `{}` | {ours} | {} |", row.flag, row.note);
    }
}

/// docs/migration.md: moving from gunicorn, uvicorn and granian.
pub fn migration_page() -> String {
    let mut out = String::from(MIGRATION_INTRO);
    out.push_str("\n## From gunicorn\n\nChange the word `gunicorn` to `ferricorn`. Settings that differ:\n\n| setting | flags | in ferricorn |\n|---|---|---|\n");
    for s in SETTINGS
        .iter()
        .filter(|s| !matches!(s.compat, Compat::Full))
    {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            s.name,
            flags(s),
            compat_text(s.compat)
        );
    }
    out.push_str("\n## From uvicorn\n\n`uvicorn main:app --workers 4` becomes `ferricorn main:app -k asgi -w 4` (or keep `-k uvicorn.workers.UvicornWorker` from a gunicorn command line).\n\n");
    peer_table(&mut out, "uvicorn", UVICORN);
    out.push_str("\n## From granian\n\n`granian --interface asgi main:app` becomes `ferricorn -k asgi main:app`; `--interface wsgi` apps need no flag.\n\n");
    peer_table(&mut out, "granian", GRANIAN);
    out.push_str(MIGRATION_FAQ);
    out
}

const MIGRATION_INTRO: &str = "# Migrating to ferricorn\n\n<!-- generated from src/settings by `make docs`; do not edit -->\n\n\
ferricorn reads gunicorn's command line, `gunicorn.conf.py` (with its server hooks) and \
`GUNICORN_CMD_ARGS`, and serves WSGI and ASGI apps in gunicorn's pre-fork model. The tables \
below come from the same settings table the server parses, so they say what the code does.\n";

const MIGRATION_FAQ: &str = "\n## Differences worth knowing\n\n\
* **Workers are threads plus Rust I/O.** `-k sync` and `-k gthread` are the same worker: \
`--threads N` app threads, one Rust I/O thread. Slow clients never hold an app thread.\n\
* **ASGI is native.** `-k asgi` (or uvicorn's worker class path) runs the app on an asyncio \
loop (uvloop when installed) fed by the Rust I/O thread; no uvicorn needed.\n\
* **Stricter HTTP.** Requests gunicorn lets through with a warning (unknown transfer codings, \
`Content-Length` with `Transfer-Encoding`, obsolete line folding) get a 4xx and the connection \
closes.\n\
* **Dirty workers:** change `from gunicorn.dirty import ...` to `from ferricorn.dirty import \
...` (same names: `DirtyApp`, `get_dirty_client`, `get_dirty_client_async`, the errors, \
`stash`). The master forks the dirty workers itself (no separate dirty arbiter process); \
arguments and results travel pickled, so any picklable value works (tuples stay tuples). \
A dirty worker that dies before starting a call has it retried; one that dies during a call \
makes the caller raise `DirtyWorkerError` saying so (never retried).\n\
* **gevent/eventlet/tornado workers** are refused: use `--threads` or an ASGI app.\n\
* **Settings with no effect** are accepted with a one-line warning naming what ferricorn does \
instead, never silently.\n";

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str, rendered: &str) {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        if std::env::var_os("FERRICORN_WRITE_DOCS").is_some() {
            std::fs::write(&full, rendered).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&full).unwrap_or_default();
        assert!(
            committed == rendered,
            "{path} is out of date with the settings registry: run `make docs`"
        );
    }

    #[test]
    fn settings_page_is_up_to_date() {
        check("docs/settings.md", &settings_page());
    }

    #[test]
    fn migration_page_is_up_to_date() {
        check("docs/migration.md", &migration_page());
    }

    #[test]
    fn every_peer_flag_maps_to_a_real_setting() {
        for row in UVICORN.iter().chain(GRANIAN) {
            if let Some(name) = row.setting {
                assert!(find(name).is_some(), "{} maps to unknown {name}", row.flag);
            }
        }
    }

    #[test]
    fn every_section_is_rendered() {
        let page = settings_page();
        for s in SETTINGS {
            assert!(page.contains(&format!("### `{}`", s.name)), "{}", s.name);
        }
    }
}
