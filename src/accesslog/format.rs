//! Parses gunicorn's `--access-logformat` once, at startup, into a list of atoms.
//!
//! Gunicorn applies the format with Python's `%` operator and a mapping, so the accepted
//! syntax is `%(key)s` (with optional `-` flag, width and precision) and `%%`. Keys follow
//! gunicorn's `SafeAtoms`: single letters are case-sensitive, `{...}i` / `{...}o` / `{...}e`
//! keys are case-insensitive, and any unknown key renders `-`. This module only parses; it
//! never looks at a request (that is `render`).

/// What an atom prints; see gunicorn's `Logger.atoms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// `h`: the peer address (REMOTE_ADDR).
    RemoteAddr,
    /// `l`: always `-`.
    Ident,
    /// `u`: the user name from Basic auth.
    User,
    /// `t`: the time of logging, `[10/Oct/2000:13:55:36 -0700]`.
    Time,
    /// `r`: `METHOD RAW_URI PROTOCOL`.
    RequestLine,
    /// `m`
    Method,
    /// `U`: PATH_INFO (percent-decoded, SCRIPT_NAME removed).
    Path,
    /// `q`
    Query,
    /// `H`
    Protocol,
    /// `s`: the status code.
    Status,
    /// `B`: body bytes sent.
    Sent,
    /// `b`: body bytes sent (gunicorn prints `0`, not `-`, for an empty body).
    SentClf,
    /// `f`
    Referer,
    /// `a`
    UserAgent,
    /// `T`: whole seconds.
    Seconds,
    /// `D`: microseconds.
    Micros,
    /// `M`: milliseconds.
    Millis,
    /// `L`: decimal seconds, `0.001234`.
    Decimal,
    /// `p`: `<pid>`.
    Pid,
    /// `{name}i`, name lowercased.
    RequestHeader(String),
    /// `{name}o`, name lowercased.
    ResponseHeader(String),
    /// `{name}e`, name lowercased: a WSGI environ variable.
    Environ(String),
    /// Anything else: `-`.
    Unknown,
}

impl Key {
    fn parse(key: &str) -> Key {
        if let Some(inner) = key.strip_prefix('{') {
            let lower = inner.to_ascii_lowercase();
            let Some((name, kind)) = lower.rsplit_once('}') else {
                return Key::Unknown;
            };
            let name = name.to_owned();
            return match kind {
                "i" => Key::RequestHeader(name),
                "o" => Key::ResponseHeader(name),
                "e" => Key::Environ(name),
                _ => Key::Unknown,
            };
        }
        match key {
            "h" => Key::RemoteAddr,
            "l" => Key::Ident,
            "u" => Key::User,
            "t" => Key::Time,
            "r" => Key::RequestLine,
            "m" => Key::Method,
            "U" => Key::Path,
            "q" => Key::Query,
            "H" => Key::Protocol,
            "s" => Key::Status,
            "B" => Key::Sent,
            "b" => Key::SentClf,
            "f" => Key::Referer,
            "a" => Key::UserAgent,
            "T" => Key::Seconds,
            "D" => Key::Micros,
            "M" => Key::Millis,
            "L" => Key::Decimal,
            "p" => Key::Pid,
            _ => Key::Unknown,
        }
    }
}

/// Python's `%-Ws` / `%.Ps` options for one atom.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pad {
    pub width: usize,
    pub left: bool,
    pub precision: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Atom {
    Literal(String),
    Field(Key, Pad),
}

/// A parsed access log format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub atoms: Vec<Atom>,
}

/// Gunicorn's default: the Apache combined log format.
pub const DEFAULT_FORMAT: &str = r#"%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s""#;

impl Format {
    /// Parses `spec`; the error completes "expected ..." for the settings layer.
    pub fn parse(spec: &str) -> Result<Format, String> {
        let mut atoms = Vec::new();
        let mut lit = String::new();
        let mut rest = spec;
        while let Some(at) = rest.find('%') {
            lit.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('%') {
                lit.push('%');
                rest = after;
                continue;
            }
            let Some(after) = rest.strip_prefix('(') else {
                return Err(unsupported("a bare % (write %% for a literal %)"));
            };
            let Some(close) = after.find(')') else {
                return Err(unsupported("an unclosed %("));
            };
            let key = Key::parse(&after[..close]);
            let (pad, after) = parse_pad(&after[close + 1..])?;
            if !lit.is_empty() {
                atoms.push(Atom::Literal(std::mem::take(&mut lit)));
            }
            atoms.push(Atom::Field(key, pad));
            rest = after;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            atoms.push(Atom::Literal(lit));
        }
        Ok(Format { atoms })
    }

    /// Whether any atom reads response headers (only then are they kept per request).
    pub fn wants_response_headers(&self) -> bool {
        self.atoms
            .iter()
            .any(|a| matches!(a, Atom::Field(Key::ResponseHeader(_), _)))
    }
}

/// Largest width or precision accepted. Python has no fixed limit, but every line is padded
/// to the width: `%(h)99999999s` made each access log line a gigabyte (found by fuzz/,
/// access_log), and an overflowing number silently became 0.
const MAX_PAD: usize = 4096;

/// Reads `[flags][width][.precision]s` after `%(key)`.
fn parse_pad(s: &str) -> Result<(Pad, &str), String> {
    let number = |digits: &str| match digits.parse::<usize>() {
        _ if digits.is_empty() => Ok(0),
        Ok(n) if n <= MAX_PAD => Ok(n),
        _ => Err(unsupported(&format!(
            "a width or precision of {digits} (at most {MAX_PAD})"
        ))),
    };
    let mut pad = Pad::default();
    let flags = s.len() - s.trim_start_matches(['-', '+', ' ', '#', '0']).len();
    pad.left = s[..flags].contains('-');
    let s = &s[flags..];
    let digits = s.len() - s.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    pad.width = number(&s[..digits])?;
    let mut s = &s[digits..];
    if let Some(after) = s.strip_prefix('.') {
        let digits = after.len() - after.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        pad.precision = Some(number(&after[..digits])?);
        s = &after[digits..];
    }
    match s.strip_prefix('s') {
        Some(rest) => Ok((pad, rest)),
        None => Err(unsupported(
            "a conversion other than s (atoms are written %(name)s)",
        )),
    }
}

fn unsupported(what: &str) -> String {
    format!("expected a format of %(name)s atoms, found {what}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: Key) -> Atom {
        Atom::Field(key, Pad::default())
    }

    fn lit(s: &str) -> Atom {
        Atom::Literal(s.to_owned())
    }

    #[test]
    fn default_format_parses_into_the_combined_log_atoms() {
        let f = Format::parse(DEFAULT_FORMAT).unwrap();
        assert_eq!(
            f.atoms,
            vec![
                field(Key::RemoteAddr),
                lit(" "),
                field(Key::Ident),
                lit(" "),
                field(Key::User),
                lit(" "),
                field(Key::Time),
                lit(" \""),
                field(Key::RequestLine),
                lit("\" "),
                field(Key::Status),
                lit(" "),
                field(Key::SentClf),
                lit(" \""),
                field(Key::Referer),
                lit("\" \""),
                field(Key::UserAgent),
                lit("\""),
            ]
        );
        assert!(!f.wants_response_headers());
    }

    #[test]
    fn brace_keys_are_case_insensitive_and_letters_are_not() {
        let f = Format::parse("%({X-Req}i)s%({Content-Type}O)s%({REMOTE_PORT}e)s%(S)s%({x}z)s")
            .unwrap();
        assert_eq!(
            f.atoms,
            vec![
                field(Key::RequestHeader("x-req".into())),
                field(Key::ResponseHeader("content-type".into())),
                field(Key::Environ("remote_port".into())),
                field(Key::Unknown),
                field(Key::Unknown),
            ]
        );
        assert!(f.wants_response_headers());
    }

    #[test]
    fn percent_percent_is_a_literal_and_width_flags_parse() {
        let f = Format::parse("100%% %(h)-10s|%(m)5s|%(a).3s").unwrap();
        assert_eq!(
            f.atoms,
            vec![
                lit("100% "),
                Atom::Field(
                    Key::RemoteAddr,
                    Pad {
                        width: 10,
                        left: true,
                        precision: None
                    }
                ),
                lit("|"),
                Atom::Field(
                    Key::Method,
                    Pad {
                        width: 5,
                        left: false,
                        precision: None
                    }
                ),
                lit("|"),
                Atom::Field(
                    Key::UserAgent,
                    Pad {
                        width: 0,
                        left: false,
                        precision: Some(3)
                    }
                ),
            ]
        );
    }

    #[test]
    fn malformed_formats_say_what_was_found() {
        assert_eq!(
            Format::parse("%s").unwrap_err(),
            "expected a format of %(name)s atoms, found a bare % (write %% for a literal %)"
        );
        assert!(Format::parse("%(h").unwrap_err().contains("unclosed"));
        assert!(Format::parse("%(h)d").unwrap_err().contains("conversion"));
        assert!(Format::parse("50%").unwrap_err().contains("bare %"));
        assert!(Format::parse("%(h)4096.4096s").is_ok());
        for huge in [
            "%(h)4097s",
            "%(h).99999999999999999999s",
            "%(h)3333333333333333s",
        ] {
            assert!(
                Format::parse(huge).unwrap_err().contains("at most 4096"),
                "{huge}"
            );
        }
    }
}
