//! Gunicorn's "Worker Processes" section: how many workers there are, how
//! much concurrency each has, when the master restarts or kills them, and
//! how long idle connections are kept.

use super::{choice, int_in};
use crate::settings::registry::{Action, Compat, DefaultValue, Env, Section, Setting, Value};

/// `-k` values that run WSGI in ferricorn's threaded workers, canonicalised.
const WSGI_WORKERS: &[(&str, &str)] = &[
    ("sync", "sync"),
    ("gunicorn.workers.sync.SyncWorker", "sync"),
    ("gthread", "gthread"),
    ("gunicorn.workers.gthread.ThreadWorker", "gthread"),
];

const ASGI_WORKERS: &[&str] = &[
    "asgi",
    "gunicorn.workers.gasgi.ASGIWorker",
    "uvicorn.workers.UvicornWorker",
    "uvicorn.workers.UvicornH11Worker",
    "uvicorn_worker.UvicornWorker",
    "uvicorn_worker.UvicornH11Worker",
];

const GREEN_WORKERS: &[&str] = &[
    "gevent",
    "eventlet",
    "tornado",
    "gunicorn.workers.ggevent.GeventWorker",
    "gunicorn.workers.geventlet.EventletWorker",
    "gunicorn.workers.gtornado.TornadoWorker",
];

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "workers",
        section: Section::WorkerProcesses,
        cli: &["-w", "--workers"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::FromEnv {
            doc: "1, or $WEB_CONCURRENCY when set",
            get: workers_default,
        },
        // usize on every supported target holds i64::MAX.
        validate: |raw| int_in(raw, 1, i64::MAX, "a positive integer"),
        example: "--workers 4",
        short: "The number of worker processes for handling requests.",
        desc: "The number of worker processes for handling requests.\n\
\n\
A positive integer generally in the 2-4 x $(NUM_CORES) range. Tune it \
against your own workload: each worker is a separate process with its own \
copy of the application, so workers give CPU-bound Python code true \
parallelism, where threads do not.\n\
\n\
The default is the WEB_CONCURRENCY environment variable when it is set (as \
some platforms, such as Heroku, do), otherwise 1.",
        cost: "Each worker holds a full copy of the application in memory (less \
with --preload, which shares pages until they are written). Workers beyond \
the number of cores add context switches, not throughput, for CPU-bound apps.",
        compat: Compat::Partial("0 workers is refused rather than starting a master with none"),
    },
    Setting {
        name: "worker_class",
        section: Section::WorkerProcesses,
        cli: &["-k", "--worker-class"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("sync"),
        validate: validate_worker_class,
        example: "--worker-class gthread",
        short: "The type of workers to use.",
        desc: "The type of workers to use.\n\
\n\
ferricorn's workers are native threads serving WSGI, so `sync` (the \
default) and `gthread` are the same worker: concurrency per process is \
--threads either way. gunicorn's class paths for them \
(gunicorn.workers.sync.SyncWorker, gunicorn.workers.gthread.ThreadWorker) \
are accepted too. `asgi` serves ASGI 3 apps (and ASGI 2 ones, wrapped) on \
an asyncio event loop; gunicorn's and uvicorn's ASGI worker paths \
(gunicorn.workers.gasgi.ASGIWorker, uvicorn.workers.UvicornWorker, \
uvicorn_worker.UvicornWorker) select it too. Green-thread workers (gevent, \
eventlet, tornado) are refused with an error saying what to use instead; \
custom worker classes are not supported.",
        cost: "None; see --threads and --workers for what concurrency costs.",
        compat: Compat::Partial(
            "sync/gthread (threaded WSGI) and asgi; no green-thread or custom workers",
        ),
    },
    Setting {
        name: "worker_connections",
        section: Section::WorkerProcesses,
        cli: &["--worker-connections", "--limit-concurrency"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(1000),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer"),
        example: "--worker-connections 1000",
        short: "The maximum number of simultaneous clients.",
        desc: "The maximum number of simultaneous clients.\n\
\n\
For ASGI workers (-k asgi): the most requests and websockets one worker \
serves at once; a request past the limit is answered 503 Service \
Unavailable without reaching the app (uvicorn's --limit-concurrency, which \
is accepted as another name for it). 0 means no limit. WSGI workers serve \
--threads requests at once and ignore it, as gunicorn's sync worker does.",
        cost: "Too low refuses bursts an async app could have absorbed; too high \
lets a slow dependency pile up requests (and their memory) in the worker.",
        compat: Compat::Partial("limits concurrent requests of ASGI workers; no effect on WSGI workers"),
    },
    Setting {
        name: "threads",
        section: Section::WorkerProcesses,
        cli: &["--threads"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(1),
        // usize on every supported target holds i64::MAX.
        validate: |raw| int_in(raw, 1, i64::MAX, "a positive integer"),
        example: "--threads 4",
        short: "The number of worker threads for handling requests.",
        desc: "The number of worker threads for handling requests.\n\
\n\
Each worker runs the application in this many threads, so one worker can \
serve that many requests at once. A positive integer, generally in the \
2-4 x $(NUM_CORES) range for I/O-bound applications; tune it against your \
own workload. Threads share one interpreter, so CPU-bound Python code gains \
little from more than one.",
        cost: "Each thread holds a stack and its request's memory. Threads beyond \
what the application's I/O waits can use only add GIL contention.",
        compat: Compat::Full,
    },
    Setting {
        name: "keepalive",
        section: Section::WorkerProcesses,
        cli: &["--keep-alive"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(2),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative number of seconds"),
        example: "--keep-alive 5",
        short: "The number of seconds to wait for requests on a Keep-Alive connection.",
        desc: "The number of seconds to wait for requests on a Keep-Alive connection.\n\
\n\
Generally set in the 1-5 seconds range for servers with direct client \
connections. Behind a load balancer that reuses connections, set it higher \
than the balancer's idle timeout so the server is not the side that closes \
first. 0 closes each connection after its response.",
        cost: "Every idle kept-alive connection holds a socket and a slot of the \
worker's concurrency for up to this long; too low costs clients a new TCP \
(and TLS) handshake per request.",
        compat: Compat::Full,
    },
    Setting {
        name: "max_requests",
        section: Section::WorkerProcesses,
        cli: &["--max-requests"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer (0 disables it)"),
        example: "--max-requests 1000",
        short: "The maximum number of requests a worker will process before restarting.",
        desc: "The maximum number of requests a worker will process before restarting.\n\
\n\
Any value greater than zero makes each worker exit gracefully after that \
many requests, and the master starts a fresh one: a simple way to bound the \
damage of memory leaks. 0 (the default) disables these restarts.",
        cost: "Each restart reloads the application in a new worker (unless \
preloaded) and briefly lowers capacity; too low a value restarts constantly.",
        compat: Compat::Full,
    },
    Setting {
        name: "max_requests_jitter",
        section: Section::WorkerProcesses,
        cli: &["--max-requests-jitter"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer"),
        example: "--max-requests-jitter 50",
        short: "The maximum jitter to add to the *max_requests* setting.",
        desc: "The maximum jitter to add to the *max_requests* setting.\n\
\n\
Each worker's limit becomes max_requests plus a random number from 0 to \
this value, so workers started together do not all restart at the same \
moment. Has no effect when max_requests is 0.",
        cost: "None; without it, workers started together restart together and \
capacity dips all at once.",
        compat: Compat::Full,
    },
    Setting {
        name: "max_worker_memory",
        section: Section::WorkerProcesses,
        cli: &["--max-worker-memory"],
        meta: "MB",
        action: Action::Store,
        default: DefaultValue::Int(0),
        // Megabytes, kept below u64::MAX bytes when multiplied out.
        validate: |raw| {
            int_in(
                raw,
                0,
                1 << 40,
                "a non-negative number of megabytes (0 disables it)",
            )
        },
        example: "--max-worker-memory 512",
        short: "Restart a worker whose resident memory exceeds this many megabytes.",
        desc: "Restart a worker whose resident memory exceeds this many megabytes.\n\
\n\
The master checks each worker's resident set size (RSS) periodically; a \
worker above the limit is retired gracefully, like one that reached \
max_requests: it finishes its requests and a fresh worker replaces it. \
0 (the default) disables the check. This is a ferricorn setting; gunicorn \
has no equivalent.",
        cost: "A read of /proc per worker per check. Too low a limit restarts \
workers constantly; RSS counts pages shared with the master under \
--preload, so leave room for them.",
        compat: Compat::Partial("ferricorn's own setting; gunicorn rejects the flag"),
    },
    Setting {
        name: "timeout",
        section: Section::WorkerProcesses,
        cli: &["-t", "--timeout"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(30),
        validate: |raw| {
            int_in(
                raw,
                0,
                i64::MAX,
                "a non-negative number of seconds (0 disables it)",
            )
        },
        example: "--timeout 30",
        short: "Workers silent for more than this many seconds are killed and restarted.",
        desc: "Workers silent for more than this many seconds are killed and restarted.\n\
\n\
Each worker reports to the master while it runs, idle or busy; one that \
stops reporting for this long (stuck in a C extension, deadlocked) is \
killed and replaced. 0 disables the check. The default of 30 seconds \
suits most applications; raise it only for requests known to hold a \
worker's event loop longer.",
        cost: "Too low kills workers that are merely slow; too high leaves a \
stuck worker's share of capacity unused for that long.",
        compat: Compat::Full,
    },
    Setting {
        name: "graceful_timeout",
        section: Section::WorkerProcesses,
        cli: &["--graceful-timeout"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(30),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative number of seconds"),
        example: "--graceful-timeout 30",
        short: "Timeout for graceful workers restart in seconds.",
        desc: "Timeout for graceful workers restart in seconds.\n\
\n\
After a graceful stop or restart signal (TERM, HUP, USR2, a max_requests \
restart), workers have this long to finish the requests they are serving; \
those still running afterwards are killed.",
        cost: "Shutdowns and deploys can take this long; too short cuts off \
slow requests mid-response.",
        compat: Compat::Full,
    },
    Setting {
        name: "asgi_loop",
        section: Section::WorkerProcesses,
        cli: &["--asgi-loop", "--loop"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("auto"),
        validate: |raw| choice(raw, &["auto", "asyncio", "uvloop"]),
        example: "--asgi-loop asyncio",
        short: "Event loop implementation for ASGI workers.",
        desc: "Event loop implementation for ASGI workers.\n\
\n\
auto uses uvloop when it is installed, else asyncio; uvloop fails the worker \
boot when uvloop is missing. `--loop` (uvicorn's name) is accepted too.",
        cost: "uvloop is usually faster; asyncio has no extra dependency.",
        compat: Compat::Full,
    },
    Setting {
        name: "asgi_lifespan",
        section: Section::WorkerProcesses,
        cli: &["--asgi-lifespan", "--lifespan"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("auto"),
        validate: |raw| choice(raw, &["auto", "on", "off"]),
        example: "--asgi-lifespan off",
        short: "Control ASGI lifespan protocol handling.",
        desc: "Control ASGI lifespan protocol handling.\n\
\n\
Each ASGI worker runs the app's lifespan startup before it accepts requests \
and its shutdown when it stops. auto: an app that raises on the lifespan \
scope is taken not to support it (logged, then served anyway); on: that is \
fatal; off: lifespan is never called. A startup that reports failure is \
fatal in auto and on. `--lifespan` (uvicorn's name) is accepted too.",
        cost: "Worker boot waits for the app's startup.",
        compat: Compat::Full,
    },
    Setting {
        name: "asgi_disconnect_grace_period",
        section: Section::WorkerProcesses,
        cli: &["--asgi-disconnect-grace-period"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(3),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative number of seconds"),
        example: "--asgi-disconnect-grace-period 3",
        short: "Grace period (seconds) for ASGI apps to handle client disconnects.",
        desc: "Grace period (seconds) for ASGI apps to handle client disconnects.\n\nNo effect in ferricorn: a request whose client left runs to its end (its sends are dropped); it is not cancelled.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored(
            "a request whose client left runs to its end (its sends are dropped); it is not cancelled",
        ),
    },
    Setting {
        name: "websocket_max_message_size",
        section: Section::WorkerProcesses,
        cli: &["--websocket-max-message-size", "--ws-max-size"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(16 * 1024 * 1024),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative number of bytes"),
        example: "--websocket-max-message-size 1048576",
        short: "Largest WebSocket message, in bytes, the `asgi` worker accepts.",
        desc: "Largest WebSocket message, in bytes, the `asgi` worker accepts.\n\
\n\
A larger message closes the connection with code 1009 (message too big). \
`--ws-max-size` (uvicorn's name) is accepted too.",
        cost: "Each connection may buffer up to this much for one message.",
        compat: Compat::Full,
    },
    Setting {
        name: "ws_ping_interval",
        section: Section::WorkerProcesses,
        cli: &["--ws-ping-interval"],
        meta: "SECONDS",
        action: Action::Store,
        default: DefaultValue::Int(20),
        validate: super::seconds,
        example: "--ws-ping-interval 20",
        short: "Seconds between the server's WebSocket pings (0: never).",
        desc: "Seconds between the server's WebSocket pings (0: never).\n\
\n\
Not a gunicorn setting; uvicorn's, with its default. Pings keep idle \
websockets alive through proxies and find dead peers.",
        cost: "One small frame per connection per interval.",
        compat: Compat::Full,
    },
    Setting {
        name: "ws_ping_timeout",
        section: Section::WorkerProcesses,
        cli: &["--ws-ping-timeout"],
        meta: "SECONDS",
        action: Action::Store,
        default: DefaultValue::Int(20),
        validate: super::seconds,
        example: "--ws-ping-timeout 20",
        short: "Seconds to wait for the pong to a server ping before closing (0: forever).",
        desc: "Seconds to wait for the pong to a server ping before closing (0: forever).\n\
\n\
Not a gunicorn setting; uvicorn's, with its default.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "ws_per_message_deflate",
        section: Section::WorkerProcesses,
        cli: &["--ws-per-message-deflate"],
        meta: "BOOL",
        action: Action::Store,
        default: DefaultValue::Bool(true),
        validate: super::boolean,
        example: "--ws-per-message-deflate false",
        short: "Offer the permessage-deflate WebSocket extension.",
        desc: "Offer the permessage-deflate WebSocket extension.\n\
\n\
Not a gunicorn setting; uvicorn's, with its default (true).",
        cost: "Compression costs CPU per message and memory per connection.",
        compat: Compat::Full,
    },
    Setting {
        name: "interface",
        section: Section::WorkerProcesses,
        cli: &["--interface"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("auto"),
        validate: |raw| choice(raw, &["auto", "wsgi", "asgi"]),
        example: "--interface asgi",
        short: "The application interface: wsgi, asgi or auto.",
        desc: "The application interface: wsgi, asgi or auto.\n\
\n\
Not a gunicorn setting. auto (the default) serves an app whose call is a \
coroutine function (ASGI 3) as ASGI and anything else as WSGI; asgi also \
serves ASGI 2 double callables. -k asgi (or an ASGI worker class path) \
means --interface asgi.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "http_parser",
        section: Section::WorkerProcesses,
        cli: &["--http-parser"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("auto"),
        validate: |raw| choice(raw, &["auto", "fast", "python"]),
        example: "--http-parser python",
        short: "HTTP parser implementation.",
        desc: "HTTP parser implementation.\n\nNo effect in ferricorn: Ferricorn always parses HTTP in Rust (hyper); there is no Python parser to choose.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("ferricorn always parses HTTP in Rust (httparse); there is no Python parser to choose"),
    },
];

/// Canonicalises the WSGI worker names and says what to do instead for the
/// worker kinds ferricorn does not have.
fn validate_worker_class(raw: Value) -> Result<Value, String> {
    let Value::Str(name) = raw else {
        return Err("expected a worker class name such as sync or gthread".to_owned());
    };
    let name = name.trim();
    if let Some((_, canonical)) = WSGI_WORKERS.iter().find(|(alias, _)| *alias == name) {
        return Ok(Value::Str((*canonical).to_owned()));
    }
    if ASGI_WORKERS.contains(&name) {
        return Ok(Value::Str("asgi".to_owned()));
    }
    if GREEN_WORKERS.contains(&name) {
        return Err(format!(
            "ferricorn has no {name} workers; for many concurrent requests use \
threads instead (--threads N, e.g. --threads 32), or serve an ASGI app with -k asgi"
        ));
    }
    Err("expected sync, gthread or asgi (custom worker classes are not supported)".to_owned())
}

/// Gunicorn reads WEB_CONCURRENCY when it loads its config; a value that is
/// not a number is reported by the validator as the default's fault.
fn workers_default(env: Env<'_>) -> Value {
    match env.var("WEB_CONCURRENCY") {
        Some(n) => Value::Str(n),
        None => Value::Int(1),
    }
}

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, DefaultValue, Env, Value, Values};

    #[test]
    fn workers_default_to_one_or_web_concurrency() {
        let workers = find("workers").unwrap();
        let none = |_: &str| None;
        assert_eq!(workers.default.value(Env::from_fn(&none)), Value::Int(1));
        let web = |k: &str| (k == "WEB_CONCURRENCY").then(|| "5".to_owned());
        let values = Values::defaults(Env::from_fn(&web)).unwrap();
        assert_eq!(values.int("workers").unwrap(), 5);
    }

    #[test]
    fn a_bad_web_concurrency_is_reported_as_the_workers_default() {
        let web = |k: &str| (k == "WEB_CONCURRENCY").then(|| "lots".to_owned());
        let err = Values::defaults(Env::from_fn(&web))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "--workers / workers = \"lots\": expected a positive integer; the default is \
             1, or $WEB_CONCURRENCY when set, e.g. --workers 4"
        );
    }

    #[test]
    fn workers_must_be_at_least_one() {
        let workers = find("workers").unwrap();
        assert_eq!(
            workers.check(Value::Str("0x4".into())).unwrap(),
            Value::Int(4)
        );
        for bad in ["0", "-2", "four"] {
            let err = workers
                .check(Value::Str(bad.into()))
                .unwrap_err()
                .to_string();
            assert_eq!(
                err,
                format!(
                    "--workers / workers = {bad:?}: expected a positive integer, \
                     e.g. --workers 4"
                )
            );
        }
    }

    #[test]
    fn restart_and_timeout_settings_match_gunicorns_defaults() {
        for (name, default) in [
            ("max_requests", 0),
            ("max_requests_jitter", 0),
            ("max_worker_memory", 0),
            ("timeout", 30),
            ("graceful_timeout", 30),
        ] {
            let setting = find(name).unwrap();
            assert!(
                matches!(setting.default, DefaultValue::Int(d) if d == default),
                "{name}"
            );
            assert_eq!(
                setting.check(Value::Str("0".into())).unwrap(),
                Value::Int(0)
            );
            let err = setting
                .check(Value::Str("-1".into()))
                .unwrap_err()
                .to_string();
            let flag = setting.long_flag().unwrap();
            assert!(
                err.starts_with(&format!(
                    "{flag} / {name} = \"-1\": expected a non-negative"
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn sync_and_gthread_and_their_gunicorn_paths_are_accepted() {
        let class = find("worker_class").unwrap();
        for (given, canonical) in [
            ("sync", "sync"),
            ("gunicorn.workers.sync.SyncWorker", "sync"),
            ("gthread", "gthread"),
            ("gunicorn.workers.gthread.ThreadWorker", "gthread"),
        ] {
            assert_eq!(
                class.check(Value::Str(given.into())).unwrap(),
                Value::Str(canonical.into())
            );
        }
    }

    #[test]
    fn asgi_worker_classes_select_the_asgi_worker() {
        let class = find("worker_class").unwrap();
        for given in [
            "asgi",
            "gunicorn.workers.gasgi.ASGIWorker",
            "uvicorn.workers.UvicornWorker",
            "uvicorn_worker.UvicornWorker",
        ] {
            assert_eq!(
                class.check(Value::Str(given.into())).unwrap(),
                Value::Str("asgi".into())
            );
        }
    }

    #[test]
    fn green_thread_worker_classes_suggest_threads() {
        let class = find("worker_class").unwrap();
        for given in ["gevent", "eventlet", "tornado"] {
            let err = class
                .check(Value::Str(given.into()))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("ferricorn has no {given} workers")),
                "{err}"
            );
            assert!(err.contains("--threads N"), "{err}");
        }
        let err = class
            .check(Value::Str("myapp.Worker".into()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected sync, gthread or asgi"), "{err}");
    }

    #[test]
    fn threads_defaults_to_one_and_must_be_at_least_one() {
        let threads = find("threads").unwrap();
        assert!(matches!(threads.default, DefaultValue::Int(1)));
        assert_eq!(
            threads.check(Value::Str("8".into())).unwrap(),
            Value::Int(8)
        );
        assert_eq!(
            threads
                .check(Value::Str("four".into()))
                .unwrap_err()
                .to_string(),
            "--threads / threads = \"four\": expected a positive integer, e.g. --threads 4"
        );
        let err = threads.check(Value::Int(0)).unwrap_err().to_string();
        assert_eq!(
            err,
            "--threads / threads = 0: expected a positive integer, e.g. --threads 4"
        );
    }

    #[test]
    fn keepalive_defaults_to_two_seconds_and_allows_zero() {
        let keepalive = find("keepalive").unwrap();
        assert!(matches!(keepalive.default, DefaultValue::Int(2)));
        assert_eq!(keepalive.check(Value::Int(0)).unwrap(), Value::Int(0));
        let err = keepalive
            .check(Value::Str("-1".into()))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--keep-alive / keepalive = \"-1\": "),
            "{err}"
        );
        assert!(err.ends_with("e.g. --keep-alive 5"), "{err}");
    }
}
