//! ferricorn's own static file settings (`--static`, `--static-max-age`), listed under
//! "Server Mechanics". gunicorn has no equivalent. The serving itself is `http::static_files`;
//! this file only declares and validates.

use super::{int_in, string_list};
use crate::http::static_files::parse_mounts;
use crate::settings::registry::{Action, Compat, DefaultValue, Section, Setting, Value};

pub const SETTINGS: &[Setting] = &[
    Setting {
        name: "static_map",
        section: Section::ServerMechanics,
        cli: &["--static"],
        meta: "URL=DIR",
        action: Action::Append,
        default: DefaultValue::List(&[]),
        validate: validate_static_map,
        example: "--static /static=/srv/app/static",
        short: "Serve files under DIR at URL from Rust, without calling the app.",
        desc: "Serve files under DIR at URL from Rust, without calling the app.\n\
\n\
Repeatable; when prefixes nest, the longest one wins. A GET or HEAD whose path is under \
URL is answered by the worker's I/O thread from DIR, never by Python: the body goes out \
with sendfile, Content-Type comes from the extension, ETag (size and modification time) \
and Last-Modified answer If-None-Match / If-Modified-Since with 304, a single Range \
gets 206 (a range past the end gets 416; several ranges get the whole file, 200), and \
a precompressed sibling (FILE.br, FILE.gz) is sent with its Content-Encoding when \
Accept-Encoding allows it (brotli first on equal preference; every answer carries \
Vary: Accept-Encoding). Other methods get 405 with Allow: GET, HEAD. Directories are \
404: there are no listings and no index.html. Paths with .. segments, encoded \
slashes or backslashes (%2f, %5c) or NUL are 404, and so is a symlink that leads \
outside DIR (the kernel checks this with openat2 where it exists; absolute symlinks \
are refused even when they point inside). The access log and metrics count these \
responses like any other. DIR must be an existing directory when the settings are \
read; every file below it is public, dotfiles included. A relative one is taken from the directory ferricorn was started in, like \
--chdir. URL may not be / (that would hide the app). No mounts by default. This is \
a ferricorn setting; gunicorn has no equivalent.",
        cost: "One open and one fstat per request on the I/O thread (plus one open per \
acceptable precompressed coding): microseconds from the page cache, but a slow \
filesystem (NFS) stalls the worker's other connections meanwhile. One open directory \
per mount per worker.",
        compat: Compat::Partial("ferricorn's own setting; gunicorn rejects the flag"),
    },
    Setting {
        name: "static_max_age",
        section: Section::ServerMechanics,
        cli: &["--static-max-age"],
        meta: "INT",
        action: Action::Store,
        default: DefaultValue::Int(0),
        validate: |raw| int_in(raw, 0, i64::from(i32::MAX), "a number of seconds from 0"),
        example: "--static-max-age 3600",
        short: "Seconds clients and caches may reuse a --static file without asking.",
        desc: "Seconds clients and caches may reuse a --static file without asking.\n\
\n\
Sent as Cache-Control: public, max-age=N on every file from a --static mount. 0 \
(the default) sends Cache-Control: no-cache instead: caches keep the file but \
revalidate it each time, which costs a request answered 304 with no body and \
never serves a stale file after a deploy. Raise it for files whose names change \
when their content does (hashed asset names). This is a ferricorn setting; \
gunicorn has no equivalent.",
        cost: "None on the server; a high value means clients may keep an old file that \
long.",
        compat: Compat::Partial("ferricorn's own setting; gunicorn rejects the flag"),
    },
];

/// `URL=DIR` items, each checked (the directory must exist) and stored canonical.
fn validate_static_map(raw: Value) -> Result<Value, String> {
    let Value::List(items) = string_list(raw, "URL=DIR, e.g. /static=/srv/app/static")? else {
        return Err("expected URL=DIR".to_owned());
    };
    let mounts = parse_mounts(&items).map_err(|e| e.to_string())?;
    Ok(Value::List(mounts.iter().map(|m| m.spec()).collect()))
}

#[cfg(test)]
mod tests {
    use crate::settings::registry::{find, DefaultValue, Value};
    use crate::test_support::TempDir;

    #[test]
    fn static_map_stores_canonical_mounts() {
        let dir = TempDir::new("static-setting");
        let setting = find("static_map").unwrap();
        let canon = std::fs::canonicalize(&dir.0).unwrap();
        let value = setting
            .check(Value::List(vec![format!("/assets/={}", dir.0.display())]))
            .unwrap();
        assert_eq!(
            value,
            Value::List(vec![format!("/assets={}", canon.display())])
        );
        assert_eq!(
            setting.check(Value::List(vec![])).unwrap(),
            Value::List(vec![])
        );
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_the_setting() {
        let setting = find("static_map").unwrap();
        let err = setting
            .check(Value::Str("/s=/no/such/ferricorn/dir".into()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("--static / static_map = "), "{err}");
        assert!(err.contains("/no/such/ferricorn/dir"), "{err}");
        assert!(err.contains("not a directory"), "{err}");
    }

    #[test]
    fn static_max_age_defaults_to_zero() {
        let setting = find("static_max_age").unwrap();
        assert!(matches!(setting.default, DefaultValue::Int(0)));
        assert_eq!(
            setting.check(Value::Str("3600".into())).unwrap(),
            Value::Int(3600)
        );
        assert!(setting.check(Value::Int(-1)).is_err());
    }
}
