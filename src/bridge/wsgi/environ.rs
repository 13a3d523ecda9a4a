//! Builds the PEP 3333 environ for a request, with gunicorn's keys and conventions.
//!
//! The constant entries live in a template dict copied per request (one C-level copy instead of
//! a dozen inserts); keys are interned strings, and `HTTP_*` names are cached per app thread so a
//! steady stream of requests allocates no key strings at all.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use pyo3::{ffi, intern};

use super::input::Input;
use super::streams::{ErrorStream, FileWrapper};
use crate::bridge::name_cache::NameCache;
use crate::exchange::ConnInfo;
use crate::http::request::{RequestHead, Version};

/// What every environ of this worker shares.
pub struct EnvironTemplate {
    dict: Py<PyDict>,
    script_name: String,
}

impl EnvironTemplate {
    pub fn new(py: Python<'_>, multithread: bool, multiprocess: bool) -> PyResult<Self> {
        let script_name = std::env::var("SCRIPT_NAME").unwrap_or_default();
        let d = PyDict::new(py);
        d.set_item(intern!(py, "wsgi.version"), (1, 0))?;
        d.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "http"))?;
        d.set_item(intern!(py, "wsgi.multithread"), multithread)?;
        d.set_item(intern!(py, "wsgi.multiprocess"), multiprocess)?;
        d.set_item(intern!(py, "wsgi.run_once"), false)?;
        d.set_item(intern!(py, "wsgi.input_terminated"), true)?;
        d.set_item(intern!(py, "wsgi.errors"), Py::new(py, ErrorStream)?)?;
        d.set_item(
            intern!(py, "wsgi.file_wrapper"),
            py.get_type::<FileWrapper>(),
        )?;
        d.set_item(
            intern!(py, "SERVER_SOFTWARE"),
            concat!("ferricorn/", env!("CARGO_PKG_VERSION")),
        )?;
        d.set_item(intern!(py, "SCRIPT_NAME"), &script_name)?;
        Ok(EnvironTemplate {
            dict: d.unbind(),
            script_name,
        })
    }
}

/// `HTTP_*` key strings by header name, per app thread.
#[derive(Default)]
pub struct HeaderKeys(NameCache<PyString>);

impl HeaderKeys {
    fn key<'py>(&mut self, py: Python<'py>, name: &[u8]) -> Bound<'py, PyString> {
        self.0.get(py, name, || {
            let mut key = String::with_capacity(5 + name.len());
            key.push_str("HTTP_");
            key.extend(name.iter().map(|&b| match b {
                b'-' => '_',
                b => char::from(b.to_ascii_uppercase()),
            }));
            PyString::intern(py, &key)
        })
    }
}

/// The environ for one request.
pub fn build<'py>(
    py: Python<'py>,
    template: &EnvironTemplate,
    keys: &mut HeaderKeys,
    head: &RequestHead,
    conn: &ConnInfo,
    secure: bool,
    input: Bound<'py, Input>,
) -> PyResult<Bound<'py, PyDict>> {
    let env = template.dict.bind(py).copy()?;
    if secure {
        // the template says http; a trusted front end said https (`http::edge`)
        env.set_item(intern!(py, "wsgi.url_scheme"), intern!(py, "https"))?;
    }
    env.set_item(
        intern!(py, "REQUEST_METHOD"),
        crate::bridge::method_str(py, &head.method),
    )?;
    env.set_item(
        intern!(py, "SERVER_PROTOCOL"),
        match head.version {
            Version::Http11 => intern!(py, "HTTP/1.1"),
            Version::Http10 => intern!(py, "HTTP/1.0"),
            // gunicorn's gthread worker: "HTTP/%s" of its (2, 0) version
            Version::Http2 => intern!(py, "HTTP/2.0"),
        },
    )?;
    env.set_item(intern!(py, "RAW_URI"), latin1(py, &head.target)?)?;
    env.set_item(intern!(py, "QUERY_STRING"), latin1(py, &head.query)?)?;
    let path = percent_encoding::percent_decode(&head.path).collect::<Vec<u8>>();
    let script = template.script_name.as_bytes();
    let path_info = if !script.is_empty() && path.starts_with(script) {
        &path[script.len()..]
    } else {
        &path[..]
    };
    env.set_item(intern!(py, "PATH_INFO"), latin1(py, path_info)?)?;
    env.set_item(intern!(py, "wsgi.input"), input)?;

    let mut host: Option<&[u8]> = None;
    for (name, value) in &head.headers {
        let value_str = latin1(py, value)?;
        let key = if name.eq_ignore_ascii_case(b"content-type") {
            intern!(py, "CONTENT_TYPE").clone()
        } else if name.eq_ignore_ascii_case(b"content-length") {
            intern!(py, "CONTENT_LENGTH").clone()
        } else {
            if name.eq_ignore_ascii_case(b"host") {
                host = Some(value);
            }
            keys.key(py, name)
        };
        // SAFETY: `env` is a valid dict and `key` a valid str; the result is a borrowed
        // reference (or NULL when absent) that we only compare against NULL.
        let present = unsafe { !ffi::PyDict_GetItem(env.as_ptr(), key.as_ptr()).is_null() };
        if present {
            // repeated field: RFC 9110 §5.3 lets a list be joined with commas
            let prev = env
                .get_item(&key)?
                .map(|v| v.extract::<String>())
                .transpose()?
                .unwrap_or_default();
            env.set_item(&key, format!("{prev},{}", value_str.to_str()?))?;
        } else {
            env.set_item(key, value_str)?;
        }
    }

    if head.version == Version::Http2 {
        // gunicorn's gthread worker marks its HTTP/2 requests so, over any
        // client header of that name
        env.set_item(intern!(py, "HTTP_VERSION"), intern!(py, "2"))?;
    }
    match conn.peer {
        Some(peer) => {
            env.set_item(intern!(py, "REMOTE_ADDR"), peer.ip().to_string())?;
            env.set_item(intern!(py, "REMOTE_PORT"), peer.port().to_string())?;
        }
        None => env.set_item(intern!(py, "REMOTE_ADDR"), intern!(py, ""))?,
    }
    if let Some(proxy) = &conn.proxy {
        // gunicorn's proxy_environ: what the PROXY header said besides the client
        env.set_item(intern!(py, "PROXY_PROTOCOL"), proxy.protocol)?;
        env.set_item(intern!(py, "PROXY_ADDR"), proxy.proxy.ip().to_string())?;
        env.set_item(intern!(py, "PROXY_PORT"), proxy.proxy.port().to_string())?;
    }
    if conn.server_port.is_empty() {
        let (name, port) = server_from_host(host, &conn.server_name, secure);
        env.set_item(intern!(py, "SERVER_NAME"), name)?;
        env.set_item(intern!(py, "SERVER_PORT"), port)?;
    } else {
        env.set_item(intern!(py, "SERVER_NAME"), &conn.server_name)?;
        env.set_item(intern!(py, "SERVER_PORT"), &conn.server_port)?;
    }
    if !conn.cgi_vars.is_empty() {
        add_cgi_vars(py, &env, &conn.cgi_vars, &path)?;
    }
    Ok(env)
}

/// SERVER_NAME and SERVER_PORT on a unix socket: like gunicorn, from the Host header when there
/// is one. Read as latin-1 like every environ string (PEP 3333): a lossy UTF-8 reading put
/// U+FFFD, which latin-1 cannot carry, there (found by fuzz/, wsgi_environ).
fn server_from_host(host: Option<&[u8]>, socket_name: &str, secure: bool) -> (String, String) {
    let Some(h) = host else {
        return (socket_name.to_owned(), String::new());
    };
    let h: String = h.iter().map(|&b| char::from(b)).collect();
    // the port follows the last ':', unless that ':' is inside an IPv6 literal's brackets
    match h.rfind(':').filter(|&i| !h[i..].contains(']')) {
        Some(i) => (h[..i].to_owned(), h[i + 1..].to_owned()),
        None => (h, if secure { "443" } else { "80" }.to_owned()),
    }
}

/// `--protocol uwsgi`: the packet's other vars go into the environ as sent (as uWSGI itself
/// does; gunicorn drops them). A SCRIPT_NAME var is the app's mount point: PATH_INFO loses
/// that prefix, as it does for the SCRIPT_NAME environment variable.
fn add_cgi_vars(
    py: Python<'_>,
    env: &Bound<'_, PyDict>,
    vars: &[(bytes::Bytes, bytes::Bytes)],
    path: &[u8],
) -> PyResult<()> {
    for (key, value) in vars {
        if &key[..] == b"SCRIPT_NAME" {
            let script = value.strip_suffix(b"/").unwrap_or(value);
            if let Some(rest) = path.strip_prefix(script) {
                env.set_item(intern!(py, "PATH_INFO"), latin1(py, rest)?)?;
            }
            env.set_item(intern!(py, "SCRIPT_NAME"), latin1(py, script)?)?;
            continue;
        }
        env.set_item(latin1(py, key)?, latin1(py, value)?)?;
    }
    Ok(())
}

/// Bytes to str one-to-one (PEP 3333's "native strings" carry latin-1).
pub fn latin1<'py>(py: Python<'py>, b: &[u8]) -> PyResult<Bound<'py, PyString>> {
    let len = ffi::Py_ssize_t::try_from(b.len())
        .map_err(|_| pyo3::exceptions::PyOverflowError::new_err("too long"))?;
    // SAFETY: the pointer and length describe `b`, which outlives the call; latin-1 decoding
    // accepts every byte, so NULL means only MemoryError, which from_owned_ptr_or_err raises.
    let obj = unsafe {
        Bound::from_owned_ptr_or_err(
            py,
            ffi::PyUnicode_DecodeLatin1(b.as_ptr().cast(), len, std::ptr::null()),
        )?
    };
    Ok(obj.cast_into::<PyString>()?)
}

#[cfg(test)]
mod tests {
    use super::server_from_host;

    #[test]
    fn a_unix_socket_server_is_named_after_host_in_latin1() {
        let pair = |n: &str, p: &str| (n.to_owned(), p.to_owned());
        assert_eq!(
            server_from_host(Some(b"example.com:8080"), "/s", false),
            pair("example.com", "8080")
        );
        assert_eq!(
            server_from_host(Some(b"[::1]:81"), "/s", true),
            pair("[::1]", "81")
        );
        // the last ':' of a bare IPv6 literal is not a port separator
        assert_eq!(
            server_from_host(Some(b"[::1]"), "/s", true),
            pair("[::1]", "443")
        );
        assert_eq!(
            server_from_host(None, "/run/s.sock", false),
            pair("/run/s.sock", "")
        );
        // obs-text bytes stay one char each, as in every other environ string
        assert_eq!(
            server_from_host(Some(b"caf\xe9"), "/s", false),
            pair("caf\u{e9}", "80")
        );
    }
}
