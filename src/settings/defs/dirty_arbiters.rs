//! Gunicorn's "Dirty Arbiters" section: a second pool of worker processes, forked and
//! supervised by the master, for long-running calls from the HTTP workers (src/dirty/). The
//! dirty hooks are declared with the other hooks in `settings/hooks.rs`.

use super::int_in;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "dirty_apps",
        section: Section::DirtyArbiters,
        cli: &["--dirty-app"],
        meta: "STRING",
        action: Action::Append,
        default: DefaultValue::List(&[]),
        validate: crate::dirty::spec::validate,
        example: "--dirty-app myapp.ml:Model",
        short: "Dirty applications to load in the dirty worker pool.",
        desc: "Dirty applications to load in the dirty worker pool.

Each is `module.path:ClassName` (a subclass of `ferricorn.dirty.DirtyApp`), optionally `:N` to have only N dirty workers load it (else the class attribute `workers`, else every dirty worker). Repeat the flag for several apps. The pool starts when `dirty_workers` > 0 and at least one app is given. Default `[]`.",
        cost: "One listening unix socket per app in a private temporary directory; the apps live only in the dirty workers, never in the master or HTTP workers.",
        compat: Compat::Full,
    },
    Setting {
        name: "dirty_workers",
        section: Section::DirtyArbiters,
        cli: &["--dirty-workers"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer"),
        example: "--dirty-workers 2",
        short: "The number of dirty worker processes.",
        desc: "The number of dirty worker processes, forked and supervised by the master beside the HTTP workers. 0 (the default) disables the pool.",
        cost: "One process per dirty worker, each holding every app it loads in memory.",
        compat: Compat::Full,
    },
    Setting {
        name: "dirty_timeout",
        section: Section::DirtyArbiters,
        cli: &["--dirty-timeout"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(300),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer"),
        example: "--dirty-timeout 300",
        short: "Timeout for dirty task execution in seconds.",
        desc: "Timeout for dirty task execution in seconds. A call running longer makes its caller raise `DirtyTimeoutError`, and the master kills the dirty worker running it (SIGABRT, which prints its Python stacks, then SIGKILL) and forks a replacement. For a streamed result (an action returning a generator) it bounds each item. 0 disables it. Default 300.",
        cost: "A check in the master loop, at most every half second.",
        compat: Compat::Full,
    },
    Setting {
        name: "dirty_threads",
        section: Section::DirtyArbiters,
        cli: &["--dirty-threads"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(1),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer"),
        example: "--dirty-threads 1",
        short: "The number of threads per dirty worker.",
        desc: "The number of threads per dirty worker, each serving one call at a time. With more than 1, the dirty apps must be thread-safe. 0 counts as 1. Default 1.",
        cost: "One OS thread each; calls in one process share the GIL.",
        compat: Compat::Full,
    },
    Setting {
        name: "dirty_graceful_timeout",
        section: Section::DirtyArbiters,
        cli: &["--dirty-graceful-timeout"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(30),
        validate: |raw| int_in(raw, 0, i64::MAX, "a non-negative integer"),
        example: "--dirty-graceful-timeout 30",
        short: "Timeout for graceful dirty worker shutdown in seconds.",
        desc: "Timeout for graceful dirty worker shutdown in seconds: after TERM (server stop, HUP), a dirty worker finishes the calls it accepted and closes its apps; past this it is killed. Default 30.",
        cost: "None.",
        compat: Compat::Full,
    },
];
