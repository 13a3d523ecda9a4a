//! Setting declarations, one file per gunicorn documentation section, plus
//! the small vocabulary of validators they share.
//!
//! A section file declares `SETTINGS` and tests each entry right below it.
//! Validators here only check and canonicalise a `Value`; they must not read
//! other settings (cross-setting rules belong to resolution) and must not
//! produce typed `Settings` fields (that is `settings/mod.rs`).

pub mod config_file;
pub mod control;
pub mod debugging;
pub mod dirty_arbiters;
pub mod http2;
pub mod http_parsing;
pub mod logging;
pub mod process_naming;
pub mod proxy;
pub mod security;
pub mod server_mechanics;
pub mod server_socket;
pub mod ssl;
pub mod worker_processes;

use super::registry::Value;

/// An integer within `lo..=hi`, from an int or a string.
///
/// Strings follow Python's `int(s, 0)`, which gunicorn's validators use, so a
/// conf file's `backlog = "0x800"` or `"2_048"` means what it does there; plain
/// decimal with leading zeros is also accepted, as gunicorn's CLI accepts it.
/// `what` completes "expected ..." in the error, e.g. "a positive integer".
pub(crate) fn int_in(raw: Value, lo: i64, hi: i64, what: &str) -> Result<Value, String> {
    let n = match raw {
        Value::Int(n) => Some(n),
        Value::Str(ref s) => parse_int(s),
        _ => None,
    };
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(Value::Int(n)),
        _ => Err(format!("expected {what}")),
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = match lower.get(..2) {
        Some("0x") => (16, &lower[2..]),
        Some("0o") => (8, &lower[2..]),
        Some("0b") => (2, &lower[2..]),
        _ => (10, lower.as_str()),
    };
    // Python allows one underscore between digits (and after a base prefix),
    // never leading, trailing or doubled in plain decimal.
    let digits = match (radix, digits.strip_prefix('_')) {
        (10, Some(_)) => return None,
        (_, Some(rest)) => rest,
        (_, None) => digits,
    };
    let well_formed = digits.chars().all(|c| c == '_' || c.is_digit(radix));
    if !well_formed || digits.is_empty() || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let magnitude = i64::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// A boolean, as gunicorn's `validate_bool`: `True`/`False`, or the strings
/// "true"/"false" in any case (a conf file's `preload_app = "true"`).
/// `None` counts as false, as it is falsy in gunicorn.
pub(crate) fn boolean(raw: Value) -> Result<Value, String> {
    match raw {
        Value::Bool(_) => Ok(raw),
        Value::None => Ok(Value::Bool(false)),
        Value::Str(ref s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err("expected true or false".to_owned()),
        },
        _ => Err("expected true or false".to_owned()),
    }
}

/// A string, or `None` to leave the setting unset.
pub(crate) fn opt_string(raw: Value, what: &str) -> Result<Value, String> {
    match raw {
        Value::Str(_) | Value::None => Ok(raw),
        _ => Err(format!("expected {what}")),
    }
}

/// A list of strings; a single string becomes a one-item list, as in
/// gunicorn's `validate_list_string` (`bind = "0.0.0.0:80"` in a conf file).
pub(crate) fn string_list(raw: Value, what: &str) -> Result<Value, String> {
    match raw {
        Value::Str(s) => Ok(Value::List(vec![s])),
        Value::List(_) => Ok(raw),
        Value::None => Ok(Value::List(Vec::new())),
        _ => Err(format!("expected {what}")),
    }
}

/// A non-negative number of seconds, whole or fractional (`0.5`), as uvicorn's float
/// options take; a conf file's float arrives as its repr. Stored as an int or a decimal string.
pub(crate) fn seconds(raw: Value) -> Result<Value, String> {
    let text = match &raw {
        Value::Int(n) if *n >= 0 => return Ok(raw),
        Value::Str(s) | Value::Object(s) => s.trim().to_owned(),
        _ => return Err("expected a non-negative number of seconds".to_owned()),
    };
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f >= 0.0 => Ok(Value::Str(f.to_string())),
        _ => Err("expected a non-negative number of seconds".to_owned()),
    }
}

/// One of `choices`, compared case-insensitively and stored lower-case.
pub(crate) fn choice(raw: Value, choices: &[&str]) -> Result<Value, String> {
    if let Value::Str(s) = &raw {
        let lower = s.trim().to_ascii_lowercase();
        if choices.contains(&lower.as_str()) {
            return Ok(Value::Str(lower));
        }
    }
    Err(format!("expected one of {}", choices.join(", ")))
}

/// `None` (gunicorn's "unset", kept so it prints as `None`) or a boolean.
pub(crate) fn opt_boolean(raw: Value) -> Result<Value, String> {
    match raw {
        Value::None => Ok(Value::None),
        other => boolean(other),
    }
}

/// A comma-separated string as a list, as gunicorn's
/// `validate_string_to_list` (a list from a conf file is kept as it is).
pub(crate) fn comma_list(raw: Value, what: &str) -> Result<Value, String> {
    match raw {
        Value::Str(s) => Ok(Value::List(
            s.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect(),
        )),
        Value::List(_) => Ok(raw),
        Value::None => Ok(Value::List(Vec::new())),
        _ => Err(format!("expected {what}")),
    }
}

/// gunicorn's `validate_string_to_addr_list`: comma-separated IP addresses
/// or networks (`10.0.0.0/8`), or `*` for any.
pub(crate) fn addr_list(raw: Value) -> Result<Value, String> {
    const WANTED: &str = "a comma-separated list of IP addresses or networks, or *";
    let list = comma_list(raw, WANTED)?;
    if let Value::List(items) = &list {
        if let Some(bad) = items.iter().find(|item| !is_addr_or_network(item)) {
            return Err(format!(
                "{bad:?} is not an IP address or network; expected {WANTED}"
            ));
        }
    }
    Ok(list)
}

fn is_addr_or_network(item: &str) -> bool {
    if item == "*" {
        return true;
    }
    let (addr, prefix) = match item.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (item, None),
    };
    let Ok(addr) = addr.parse::<std::net::IpAddr>() else {
        return false;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= max))
}

/// A dict from a conf file (kept as its `repr`), as gunicorn's
/// `validate_dict`; there is no command-line form.
pub(crate) fn dict(raw: Value) -> Result<Value, String> {
    match raw {
        Value::Object(ref repr) if repr.starts_with('{') => Ok(raw),
        _ => Err("expected a dict".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_follows_python_int_base_zero() {
        assert_eq!(parse_int("42"), Some(42));
        assert_eq!(parse_int(" +7 "), Some(7));
        assert_eq!(parse_int("-3"), Some(-3));
        assert_eq!(parse_int("0x800"), Some(2048));
        assert_eq!(parse_int("0O17"), Some(15));
        assert_eq!(parse_int("0b101"), Some(5));
        assert_eq!(parse_int("2_048"), Some(2048));
        assert_eq!(parse_int("0x_ff"), Some(255));
        assert_eq!(parse_int("010"), Some(10));
        for bad in ["", "four", "4.0", "_1", "1_", "1__0", "0x", "--1", "1e3"] {
            assert_eq!(parse_int(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn int_in_enforces_the_range() {
        assert_eq!(int_in(Value::Int(5), 1, 10, "x"), Ok(Value::Int(5)));
        assert_eq!(
            int_in(Value::Str("10".into()), 1, 10, "x"),
            Ok(Value::Int(10))
        );
        assert!(int_in(Value::Int(0), 1, 10, "x").is_err());
        assert!(int_in(Value::Int(11), 1, 10, "x").is_err());
        assert_eq!(
            int_in(Value::Bool(true), 0, 1, "a flag-free integer"),
            Err("expected a flag-free integer".into())
        );
    }

    #[test]
    fn boolean_follows_gunicorns_validate_bool() {
        assert_eq!(boolean(Value::Bool(true)), Ok(Value::Bool(true)));
        assert_eq!(boolean(Value::Str(" TRUE ".into())), Ok(Value::Bool(true)));
        assert_eq!(boolean(Value::Str("false".into())), Ok(Value::Bool(false)));
        assert_eq!(boolean(Value::None), Ok(Value::Bool(false)));
        assert!(boolean(Value::Str("yes".into())).is_err());
        assert!(boolean(Value::Int(1)).is_err());
    }

    #[test]
    fn string_list_wraps_a_single_string() {
        assert_eq!(
            string_list(Value::Str("a".into()), "x"),
            Ok(Value::List(vec!["a".into()]))
        );
        assert!(string_list(Value::Int(1), "x").is_err());
    }

    #[test]
    fn addr_list_accepts_addresses_networks_and_star() {
        assert_eq!(
            addr_list(Value::Str("127.0.0.1, ::1,10.0.0.0/8,*".into())),
            Ok(Value::List(vec![
                "127.0.0.1".into(),
                "::1".into(),
                "10.0.0.0/8".into(),
                "*".into()
            ]))
        );
        assert!(addr_list(Value::Str("10.0.0.0/33".into())).is_err());
        assert!(addr_list(Value::Str("proxy.local".into())).is_err());
    }

    #[test]
    fn dict_takes_only_a_python_dict() {
        assert!(dict(Value::Object("{'a': 1}".into())).is_ok());
        assert!(dict(Value::Object("[1]".into())).is_err());
        assert!(dict(Value::Str("{}".into())).is_err());
    }

    #[test]
    fn opt_boolean_keeps_none() {
        assert_eq!(opt_boolean(Value::None), Ok(Value::None));
        assert_eq!(
            opt_boolean(Value::Str("False".into())),
            Ok(Value::Bool(false))
        );
    }

    #[test]
    fn seconds_take_fractions_from_any_source() {
        assert_eq!(seconds(Value::Int(3)), Ok(Value::Int(3)));
        assert_eq!(
            seconds(Value::Str("0.5".into())),
            Ok(Value::Str("0.5".into()))
        );
        assert_eq!(
            seconds(Value::Object("2.25".into())),
            Ok(Value::Str("2.25".into()))
        );
        assert!(seconds(Value::Str("-1".into())).is_err());
        assert!(seconds(Value::Str("soon".into())).is_err());
    }

    #[test]
    fn choice_is_case_insensitive_and_canonical() {
        assert_eq!(
            choice(Value::Str("WARNING".into()), &["warning"]),
            Ok(Value::Str("warning".into()))
        );
        assert!(choice(Value::Str("warn".into()), &["warning"]).is_err());
    }
}
