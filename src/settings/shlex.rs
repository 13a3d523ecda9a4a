//! Splits `GUNICORN_CMD_ARGS` into words the way gunicorn does, with
//! Python's `shlex.split` (POSIX mode, no comments).
//!
//! Only splitting lives here: no variable expansion, no globbing, as in
//! Python. It must stay byte-for-byte compatible with `shlex.split`, because
//! the same variable is read by gunicorn in mixed deployments.

/// Why a string could not be split; Python's wording.
#[derive(Debug, PartialEq, Eq)]
pub enum SplitError {
    NoClosingQuotation,
    NoEscapedCharacter,
}

impl std::fmt::Display for SplitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SplitError::NoClosingQuotation => "No closing quotation",
            SplitError::NoEscapedCharacter => "No escaped character",
        })
    }
}

/// Python's `shlex.split(s)`.
pub fn split(s: &str) -> Result<Vec<String>, SplitError> {
    let mut words = Vec::new();
    let mut word = String::new();
    // A word is started by any non-space, including an empty quoted string.
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            // Python's shlex.whitespace.
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(q) => word.push(q),
                        None => return Err(SplitError::NoClosingQuotation),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        // Inside double quotes a backslash escapes only `"`
                        // and itself; before anything else it is literal.
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => return Err(SplitError::NoClosingQuotation),
                        },
                        Some(q) => word.push(q),
                        None => return Err(SplitError::NoClosingQuotation),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(e) => word.push(e),
                    None => return Err(SplitError::NoEscapedCharacter),
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Vec<String> {
        split(s).unwrap()
    }

    // Expected values are what Python 3.11's shlex.split returns.
    #[test]
    fn splits_on_whitespace_runs() {
        assert_eq!(ok("  -w 3\t--bind=:8000\n"), ["-w", "3", "--bind=:8000"]);
        assert!(ok("").is_empty());
        assert!(ok("   ").is_empty());
    }

    #[test]
    fn quotes_group_words_and_may_be_empty() {
        assert_eq!(ok("--name 'my app' x"), ["--name", "my app", "x"]);
        assert_eq!(ok(r#"a"b c"d"#), ["ab cd"]);
        assert_eq!(ok("'' \"\""), ["", ""]);
        assert_eq!(ok(r#"'a\b'"#), [r"a\b"]);
    }

    #[test]
    fn backslashes_follow_posix_rules() {
        assert_eq!(ok(r"a\ b"), ["a b"]);
        assert_eq!(ok(r#""a\"b\\c\d""#), [r#"a"b\c\d"#]);
        assert_eq!(ok(r"\#x"), ["#x"]);
    }

    #[test]
    fn unbalanced_input_is_an_error() {
        assert_eq!(split("'abc"), Err(SplitError::NoClosingQuotation));
        assert_eq!(split("\"abc"), Err(SplitError::NoClosingQuotation));
        assert_eq!(split("abc\\"), Err(SplitError::NoEscapedCharacter));
    }
}
