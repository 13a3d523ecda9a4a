//! Gunicorn's "Worker Processes" section: how much concurrency each worker
//! has and how long idle connections are kept.

use super::int_in;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting};

pub const SETTINGS: &[Setting] = &[
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
];

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, DefaultValue, Value};

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
