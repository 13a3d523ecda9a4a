//! `--print-config`: every setting's final value, one `name = value` line
//! each, sorted and aligned as gunicorn prints its `Config`.
//!
//! Values are shown as Python's `str()` would show gunicorn's (strings bare,
//! lists as Python lists, `True`/`None`), so the output diffs cleanly against
//! `gunicorn --print-config` for the settings both have.

use super::hooks::{Hooks, HOOKS};
use super::registry::{Value, Values, SETTINGS};

/// The full listing, ending with a newline.
pub fn render(values: &Values, hooks: &Hooks) -> String {
    let mut lines: Vec<(&str, String)> = SETTINGS
        .iter()
        .map(|s| {
            (
                s.name,
                values.get(s.name).map_or_else(|| "None".to_owned(), py_str),
            )
        })
        .chain(HOOKS.iter().map(|h| {
            let shown = hooks
                .get(h.name)
                .map_or_else(|| "None".to_owned(), |f| f.to_string());
            (h.name, shown)
        }))
        .collect();
    lines.sort();
    let width = lines.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(name, value)| format!("{name:width$} = {value}\n"))
        .collect()
}

/// Python's `str(value)` for the shapes a validated value can take.
fn py_str(value: &Value) -> String {
    match value {
        Value::Str(s) => s.clone(),
        Value::List(items) => {
            let items: Vec<String> = items.iter().map(|s| py_repr(s)).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// Python's `repr(str)`: single quotes unless the text holds only `'`.
fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::registry::Env;

    #[test]
    fn every_setting_and_hook_gets_one_aligned_sorted_line() {
        let values = Values::defaults(Env::from_fn(&|_| None)).unwrap();
        let text = render(&values, &Hooks::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), SETTINGS.len() + HOOKS.len());
        let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        let eq_at = lines[0].find(" = ").unwrap();
        assert!(lines.iter().all(|l| l.find(" = ") == Some(eq_at)), "{text}");
        assert!(lines
            .iter()
            .any(|l| l.starts_with("workers ") && l.ends_with(" = 1")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("bind ") && l.ends_with(" = ['127.0.0.1:8000']")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("worker_class ") && l.ends_with(" = sync")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("preload_app ") && l.ends_with(" = False")));
        assert!(lines
            .iter()
            .any(|l| l.starts_with("post_fork ") && l.ends_with(" = None")));
    }

    #[test]
    fn strings_in_lists_use_pythons_repr() {
        assert_eq!(py_repr("a"), "'a'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'\"b\\"), "'a\\'\"b\\\\'");
    }
}
