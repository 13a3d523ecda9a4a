//! The conf-file loader: runs the file through `ferricorn._conf` (Python)
//! and turns what it defines into `resolve::Entry`s.
//!
//! This is the only part of `settings/` that touches Python. It converts
//! objects to `Value`s and checks hooks (callable, arity), but it must not
//! validate setting values or decide precedence: the registry and
//! `resolve.rs` do, the same way for every source.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyInt, PyList, PyString, PyTuple};

use super::error::SourceError;
use super::hooks::{self, HookFn, HookSpec};
use super::registry::{Value, SETTINGS};
use super::resolve::{ConfFile, ConfLoader, Entry};

/// Reads conf files with the interpreter the server runs in.
pub struct PyConfLoader<'py> {
    py: Python<'py>,
}

impl<'py> PyConfLoader<'py> {
    pub fn new(py: Python<'py>) -> Self {
        PyConfLoader { py }
    }

    fn run(&self, location: &str, shown: &str) -> PyResult<Result<ConfFile, SourceError>> {
        let conf = self.py.import("ferricorn._conf")?;
        let known: Vec<&str> = SETTINGS
            .iter()
            .map(|s| s.name)
            .chain(hooks::HOOKS.iter().map(|h| h.name))
            .collect();
        let namespace = match conf.call_method1("load_config", (location, known)) {
            Ok(ns) => ns,
            Err(e) => return Ok(Err(read_error(&conf, shown, e))),
        };
        let namespace = namespace.cast_into::<PyDict>()?;
        let mut entries = Vec::with_capacity(namespace.len());
        for (key, obj) in namespace.iter() {
            let name: String = key.extract()?;
            match hooks::find(&name) {
                Some(spec) => match hook(&conf, spec, &obj, shown)? {
                    Ok(func) => entries.push(Entry::Hook(spec, func)),
                    Err(e) => return Ok(Err(e)),
                },
                None => entries.push(Entry::Value(name, to_value(&obj))),
            }
        }
        Ok(Ok(ConfFile {
            shown: shown.to_owned(),
            entries,
        }))
    }
}

impl ConfLoader for PyConfLoader<'_> {
    fn exists(&self, path: &str) -> bool {
        std::path::Path::new(path).is_file()
    }

    fn load(&self, location: &str, shown: &str) -> Result<ConfFile, SourceError> {
        self.run(location, shown).unwrap_or_else(|e| {
            // A failure of the helper itself, not of the user's file.
            Err(SourceError::Read {
                file: shown.to_owned(),
                detail: format!("internal error in ferricorn._conf: {e}"),
            })
        })
    }
}

fn read_error(conf: &Bound<'_, PyModule>, shown: &str, err: PyErr) -> SourceError {
    let fallback = err.to_string();
    // into_value keeps the traceback attached, so the user sees their line.
    let detail = conf
        .call_method1("describe_failure", (err.into_value(conf.py()),))
        .and_then(|d| d.extract::<String>())
        .unwrap_or(fallback);
    SourceError::Read {
        file: shown.to_owned(),
        detail: detail.trim_end().to_owned(),
    }
}

/// A hook must be callable (or an import path to one) with gunicorn's arity.
fn hook(
    conf: &Bound<'_, PyModule>,
    spec: &'static HookSpec,
    obj: &Bound<'_, PyAny>,
    shown: &str,
) -> PyResult<Result<HookFn, SourceError>> {
    let refuse = |obj: &Bound<'_, PyAny>, reason: String| SourceError::Hook {
        file: shown.to_owned(),
        name: spec.name,
        value: repr(obj),
        reason,
        example: spec.example(),
    };
    let func = match obj.cast::<PyString>() {
        Ok(path) => match conf.call_method1("import_callable", (path,)) {
            Ok(func) => func,
            Err(e) => {
                let why = e.value(conf.py()).str()?.to_string();
                return Ok(Err(refuse(obj, format!("cannot import it ({why})"))));
            }
        },
        Err(_) => obj.clone(),
    };
    if !func.is_callable() {
        return Ok(Err(refuse(obj, "expected a callable".to_owned())));
    }
    let arity = match conf.call_method1("arity", (&func,)) {
        Ok(n) => n.extract::<usize>()?,
        Err(_) => {
            let reason = "its signature cannot be inspected".to_owned();
            return Ok(Err(refuse(obj, reason)));
        }
    };
    if let Err(reason) = spec.check_arity(arity) {
        return Ok(Err(refuse(obj, reason)));
    }
    let shown_fn = match func
        .getattr("__qualname__")
        .and_then(|q| q.extract::<String>())
    {
        Ok(q) => format!("<{q}()>"),
        Err(_) => repr(&func),
    };
    Ok(Ok(HookFn::new(func.unbind(), shown_fn, arity)))
}

/// The Python object as the registry's validators see it. Anything without a
/// `Value` shape keeps its repr, so the validator's refusal can quote it.
fn to_value(obj: &Bound<'_, PyAny>) -> Value {
    if obj.is_none() {
        return Value::None;
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if obj.is_instance_of::<PyInt>() {
        return obj
            .extract::<i64>()
            .map_or_else(|_| Value::Object(repr(obj)), Value::Int);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return match s.to_str() {
            Ok(s) => Value::Str(s.to_owned()),
            Err(_) => Value::Object(repr(obj)),
        };
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let items: Option<Vec<String>> = obj
            .try_iter()
            .ok()
            .and_then(|it| it.map(|item| item.ok()?.extract::<String>().ok()).collect());
        if let Some(items) = items {
            return Value::List(items);
        }
    }
    Value::Object(repr(obj))
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable object>".to_owned())
}
