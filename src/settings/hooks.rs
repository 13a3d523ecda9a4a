//! Gunicorn's server hooks: which names a conf file may define as callables,
//! the arity each must have, and the `Hooks` map `Settings` carries.
//!
//! Hooks are kept apart from the settings registry because their values are
//! Python callables, not `Value`s, and they have no flag. This module only
//! declares and checks; calling hooks belongs to src/hooks.rs.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use pyo3::prelude::*;

/// How many positional parameters a hook must take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    Exactly(usize),
    /// `post_request` may drop trailing arguments, as gunicorn allows.
    Between(usize, usize),
}

impl Arity {
    fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::Between(lo, hi) => (lo..=hi).contains(&n),
        }
    }
}

/// One hook gunicorn knows.
#[derive(Debug)]
pub struct HookSpec {
    pub name: &'static str,
    pub arity: Arity,
    /// The parameters, as gunicorn's docs name them, for error examples.
    pub params: &'static str,
}

const fn hook(name: &'static str, arity: usize, params: &'static str) -> HookSpec {
    HookSpec {
        name,
        arity: Arity::Exactly(arity),
        params,
    }
}

/// Gunicorn 27's server hooks and dirty-arbiter hooks, with their arities.
pub static HOOKS: &[HookSpec] = &[
    hook("on_starting", 1, "server"),
    hook("on_reload", 1, "server"),
    hook("when_ready", 1, "server"),
    hook("pre_fork", 2, "server, worker"),
    hook("post_fork", 2, "server, worker"),
    hook("post_worker_init", 1, "worker"),
    hook("worker_int", 1, "worker"),
    hook("worker_abort", 1, "worker"),
    hook("pre_exec", 1, "server"),
    hook("pre_request", 2, "worker, req"),
    HookSpec {
        name: "post_request",
        arity: Arity::Between(2, 4),
        params: "worker, req, environ, resp",
    },
    hook("child_exit", 2, "server, worker"),
    hook("worker_exit", 2, "server, worker"),
    hook("nworkers_changed", 3, "server, new_value, old_value"),
    hook("on_exit", 1, "server"),
    hook("ssl_context", 2, "config, default_ssl_context_factory"),
    hook("on_dirty_starting", 1, "arbiter"),
    hook("dirty_post_fork", 2, "arbiter, worker"),
    hook("dirty_worker_init", 1, "worker"),
    hook("dirty_worker_exit", 2, "arbiter, worker"),
];

pub fn find(name: &str) -> Option<&'static HookSpec> {
    HOOKS.iter().find(|h| h.name == name)
}

impl HookSpec {
    /// Checks a callable's positional arity; the error is a reason fragment
    /// that the conf-file loader puts after `name = <value>: `.
    pub fn check_arity(&self, arity: usize) -> Result<(), String> {
        if self.arity.accepts(arity) {
            return Ok(());
        }
        let wanted = match self.arity {
            Arity::Exactly(1) => "1 positional argument".to_owned(),
            Arity::Exactly(k) => format!("{k} positional arguments"),
            Arity::Between(lo, hi) => format!("{lo} to {hi} positional arguments"),
        };
        Err(format!("expected a callable taking {wanted}, not {arity}"))
    }

    /// A working definition, shown after "e.g." in errors.
    pub fn example(&self) -> String {
        format!("def {}({}): ...", self.name, self.params)
    }
}

/// A hook callable. Shared (`Arc`) so `Settings` stays `Clone` without the
/// GIL; compared by identity.
#[derive(Clone, Debug)]
pub struct HookFn {
    func: Arc<Py<PyAny>>,
    /// `<qualname()>`, as gunicorn's --print-config shows callables.
    shown: String,
    /// Positional parameters it takes (post_request may take 2 to 4).
    arity: usize,
}

impl HookFn {
    pub fn new(func: Py<PyAny>, shown: String, arity: usize) -> Self {
        HookFn {
            func: Arc::new(func),
            shown,
            arity,
        }
    }

    pub fn func(&self) -> &Py<PyAny> {
        &self.func
    }

    pub fn arity(&self) -> usize {
        self.arity
    }
}

impl fmt::Display for HookFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PartialEq for HookFn {
    fn eq(&self, other: &Self) -> bool {
        self.func.as_ptr() == other.func.as_ptr()
    }
}

/// The hooks a conf file defined, by name. Unset hooks are absent: gunicorn's
/// defaults do nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Hooks {
    map: BTreeMap<&'static str, HookFn>,
}

impl Hooks {
    pub fn insert(&mut self, spec: &'static HookSpec, func: HookFn) {
        self.map.insert(spec.name, func);
    }

    pub fn get(&self, name: &str) -> Option<&HookFn> {
        self.map.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_are_unique_and_not_settings() {
        let mut seen = std::collections::HashSet::new();
        for h in HOOKS {
            assert!(seen.insert(h.name), "duplicate hook {}", h.name);
            assert!(
                crate::settings::registry::find(h.name).is_none(),
                "{} is both a hook and a setting",
                h.name
            );
            let declared = h.params.split(", ").count();
            match h.arity {
                Arity::Exactly(k) => assert_eq!(k, declared, "{}", h.name),
                Arity::Between(_, hi) => assert_eq!(hi, declared, "{}", h.name),
            }
        }
    }

    #[test]
    fn arity_must_match_gunicorns() {
        let post_fork = find("post_fork").unwrap();
        assert!(post_fork.check_arity(2).is_ok());
        assert_eq!(
            post_fork.check_arity(1).unwrap_err(),
            "expected a callable taking 2 positional arguments, not 1"
        );
        assert_eq!(post_fork.example(), "def post_fork(server, worker): ...");
        let on_starting = find("on_starting").unwrap();
        assert_eq!(
            on_starting.check_arity(0).unwrap_err(),
            "expected a callable taking 1 positional argument, not 0"
        );
    }

    #[test]
    fn post_request_accepts_two_to_four_arguments() {
        let post_request = find("post_request").unwrap();
        for n in 2..=4 {
            assert!(post_request.check_arity(n).is_ok(), "{n}");
        }
        assert!(post_request.check_arity(1).is_err());
        assert!(post_request.check_arity(5).is_err());
    }
}
