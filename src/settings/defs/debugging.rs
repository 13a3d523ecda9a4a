//! Gunicorn's "Debugging" section: --check-config and --print-config, which
//! stop after resolution (`settings::resolve` turns them into
//! `Parsed::Check`), and the code reloader (`worker::reload`).

use super::{boolean, choice, string_list};
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "reload",
        section: Section::Debugging,
        cli: &["--reload"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--reload",
        short: "Restart workers when code changes.",
        desc: "Restart workers when code changes.\n\
\n\
Each worker watches the source files of the modules the app imported \
(outside the standard library and installed packages) and the \
--reload-extra-file files; when one changes, every worker is replaced, new \
ones first, as with HUP (the configuration is not re-read). A change that \
does not import (a syntax error) is logged and the running workers keep \
serving until the next change. For development; with --preload the master \
holds the old code, so reloaded workers would not see changes.",
        cost: "A file watch per directory of the app's modules in each worker.",
        compat: Compat::Full,
    },
    Setting {
        name: "spew",
        section: Section::Debugging,
        cli: &["--spew"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--spew",
        short: "Install a trace function that spews every line executed by the server.",
        desc: "Install a trace function that spews every line executed by the server.\n\
\n\
This is the nuclear option in gunicorn. ferricorn's server is not Python, \
so there are no lines to trace: the flag is accepted with a warning and has \
no effect.",
        cost: "None in ferricorn.",
        compat: Compat::Ignored("the server is not Python code; use --log-level debug"),
    },
    Setting {
        name: "check_config",
        section: Section::Debugging,
        cli: &["--check-config"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--check-config",
        short: "Check the configuration and exit.",
        desc: "Check the configuration and exit.\n\
\n\
Reads every source (conf file, GUNICORN_CMD_ARGS, FERRICORN_CMD_ARGS, the \
command line) and imports the application, then exits: 0 and no output when \
all is well, non-zero with the error otherwise. Nothing is bound.",
        cost: "None; the application is imported once.",
        compat: Compat::Full,
    },
    Setting {
        name: "print_config",
        section: Section::Debugging,
        cli: &["--print-config"],
        meta: "",
        action: Action::StoreTrue,
        default: DefaultValue::Bool(false),
        validate: boolean,
        example: "--print-config",
        short: "Print the configuration settings as fully resolved. Implies --check-config.",
        desc: "Print the configuration settings as fully resolved. Implies --check-config.\n\
\n\
Prints every setting, one `name = value` line each in name order, after \
all sources are merged, then checks the application as --check-config does.",
        cost: "None.",
        compat: Compat::Full,
    },
    Setting {
        name: "reload_engine",
        section: Section::Debugging,
        cli: &["--reload-engine"],
        meta: "STRING",
        action: Action::Store,
        default: DefaultValue::Str("auto"),
        validate: |raw| choice(raw, &["auto", "poll", "inotify"]),
        example: "--reload-engine poll",
        short: "The implementation that should be used to power reload.",
        desc: "The implementation that should be used to power reload.\n\
\n\
auto and inotify use the operating system's file events (inotify on Linux); \
poll checks modification times every second.",
        cost: "poll wakes each worker every second.",
        compat: Compat::Full,
    },
    Setting {
        name: "reload_extra_files",
        section: Section::Debugging,
        cli: &["--reload-extra-file"],
        meta: "FILES",
        action: Action::Append,
        default: DefaultValue::List(&[]),
        validate: |raw| string_list(raw, "a file path or a list of them"),
        example: "--reload-extra-file templates/base.html",
        short: "Extends reload option to also watch and reload on additional files (e.g., templates, configurations, specifications, etc.).",
        desc: "Extends reload option to also watch and reload on additional files (e.g., templates, configurations, specifications, etc.).\n\
\n\
Relative paths are taken from the directory the server starts in (after --chdir).",
        cost: "One more watched directory per file's directory.",
        compat: Compat::Full,
    },
];
