//! Builds ASGI connection scopes (http and websocket) from a parsed request head.
//!
//! Constant entries come from a template dict copied per request; lower-cased header names
//! are cached as bytes objects, so a steady stream of requests allocates no name objects.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::bridge::name_cache::NameCache;
use crate::exchange::ConnInfo;
use crate::http::request::{RequestHead, Version};

/// The constant part of every scope of one type.
pub struct ScopeTemplate {
    dict: Py<PyDict>,
    root_path: String,
}

impl ScopeTemplate {
    /// `kind` is "http" or "websocket".
    pub fn new(py: Python<'_>, kind: &str, root_path: &str) -> PyResult<Self> {
        let d = PyDict::new(py);
        d.set_item(intern!(py, "type"), kind)?;
        let asgi = PyDict::new(py);
        asgi.set_item("version", "3.0")?;
        asgi.set_item("spec_version", "2.4")?;
        d.set_item(intern!(py, "asgi"), asgi)?;
        d.set_item(
            intern!(py, "scheme"),
            if kind == "http" { "http" } else { "ws" },
        )?;
        d.set_item(intern!(py, "root_path"), root_path)?;
        let ext = PyDict::new(py);
        if kind == "http" {
            ext.set_item("http.response.pathsend", PyDict::new(py))?;
            ext.set_item("http.response.trailers", PyDict::new(py))?;
        } else {
            ext.set_item("websocket.http.response", PyDict::new(py))?;
        }
        d.set_item(intern!(py, "extensions"), ext)?;
        Ok(ScopeTemplate {
            dict: d.unbind(),
            root_path: root_path.to_owned(),
        })
    }
}

/// Lower-cased header names as bytes objects, by name as sent.
#[derive(Default)]
pub struct HeaderNames(NameCache<PyBytes>);

impl HeaderNames {
    fn get<'py>(&mut self, py: Python<'py>, name: &[u8]) -> Bound<'py, PyBytes> {
        self.0
            .get(py, name, || PyBytes::new(py, &name.to_ascii_lowercase()))
    }
}

/// `--protocol uwsgi` with a SCRIPT_NAME var: that is the app's `root_path`, and `path` /
/// `raw_path` include it (the front end's PATH_INFO normally already does).
fn mount(
    py: Python<'_>,
    scope: &Bound<'_, PyDict>,
    script: &[u8],
    raw: &[u8],
    decoded: &str,
) -> PyResult<()> {
    let script = script.strip_suffix(b"/").unwrap_or(script);
    let root = String::from_utf8_lossy(script);
    scope.set_item(intern!(py, "root_path"), &*root)?;
    if decoded.starts_with(&*root) {
        scope.set_item(intern!(py, "path"), decoded)?;
        scope.set_item(intern!(py, "raw_path"), PyBytes::new(py, raw))?;
    } else {
        scope.set_item(intern!(py, "path"), format!("{root}{decoded}"))?;
        scope.set_item(
            intern!(py, "raw_path"),
            PyBytes::new(py, &[script, raw].concat()),
        )?;
    }
    Ok(())
}

/// The scope for one request. `state` is the lifespan state, shallow-copied per request as
/// the spec asks; `subprotocols` makes it a websocket scope (which has no method).
pub fn build<'py>(
    py: Python<'py>,
    template: &ScopeTemplate,
    names: &mut HeaderNames,
    head: &RequestHead,
    // the connection, and whether a trusted front end said the request is secure
    (conn, secure): (&ConnInfo, bool),
    state: Option<&Py<PyDict>>,
    subprotocols: Option<&[String]>,
) -> PyResult<Bound<'py, PyDict>> {
    let scope = template.dict.bind(py).copy()?;
    if secure {
        // the template says http / ws; a trusted front end said https (`http::edge`)
        let scheme = match subprotocols {
            Some(_) => intern!(py, "wss"),
            None => intern!(py, "https"),
        };
        scope.set_item(intern!(py, "scheme"), scheme)?;
    }
    scope.set_item(
        intern!(py, "http_version"),
        match head.version {
            Version::Http11 => intern!(py, "1.1"),
            Version::Http10 => intern!(py, "1.0"),
            Version::Http2 => intern!(py, "2"),
        },
    )?;
    match subprotocols {
        Some(protocols) => scope.set_item(intern!(py, "subprotocols"), protocols)?,
        None => scope.set_item(
            intern!(py, "method"),
            crate::bridge::method_str(py, &head.method),
        )?,
    }
    let decoded = percent_encoding::percent_decode(&head.path).decode_utf8_lossy();
    let path = if template.root_path.is_empty() {
        PyString::new(py, &decoded)
    } else {
        // uvicorn's reading of the spec: `path` (and `raw_path`) include `root_path`
        PyString::new(py, &format!("{}{decoded}", template.root_path))
    };
    scope.set_item(intern!(py, "path"), path)?;
    let raw_path = if template.root_path.is_empty() {
        PyBytes::new(py, &head.path)
    } else {
        PyBytes::new(py, &[template.root_path.as_bytes(), &head.path].concat())
    };
    scope.set_item(intern!(py, "raw_path"), raw_path)?;
    scope.set_item(intern!(py, "query_string"), PyBytes::new(py, &head.query))?;
    let headers = PyList::empty(py);
    for (name, value) in &head.headers {
        let pair = PyTuple::new(
            py,
            [
                names.get(py, name).into_any(),
                PyBytes::new(py, value).into_any(),
            ],
        )?;
        headers.append(pair)?;
    }
    scope.set_item(intern!(py, "headers"), headers)?;
    match conn.peer {
        Some(peer) => {
            scope.set_item(intern!(py, "client"), (peer.ip().to_string(), peer.port()))?
        }
        None => scope.set_item(intern!(py, "client"), py.None())?,
    }
    match conn.server_port.parse::<u16>() {
        Ok(port) => scope.set_item(intern!(py, "server"), (&conn.server_name, port))?,
        Err(_) => scope.set_item(intern!(py, "server"), py.None())?,
    }
    if let Some((_, script)) = conn.cgi_vars.iter().find(|(k, _)| &k[..] == b"SCRIPT_NAME") {
        mount(py, &scope, script, &head.path, &decoded)?;
    }
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.bind(py).copy()?)?;
    }
    if let Some(tls) = &conn.tls {
        add_tls_extension(py, &scope, tls)?;
    }
    Ok(scope)
}

/// The ASGI TLS extension (`scope["extensions"]["tls"]`), only on TLS connections. The
/// certificate name fields are None: ferricorn does not parse X.509 subjects, and a client
/// certificate that fails verification never gets past the handshake.
fn add_tls_extension(
    py: Python<'_>,
    scope: &Bound<'_, PyDict>,
    tls: &crate::http::tls::TlsInfo,
) -> PyResult<()> {
    let Some(shared) = scope.get_item(intern!(py, "extensions"))? else {
        return Ok(());
    };
    // the template's dict is shared by every scope: copy before adding
    let ext = shared.cast::<PyDict>()?.copy()?;
    let d = PyDict::new(py);
    d.set_item("server_cert", py.None())?;
    let chain: Vec<String> = tls
        .client_chain
        .iter()
        .map(|der| crate::http::tls::pem_certificate(der))
        .collect();
    d.set_item("client_cert_chain", chain)?;
    d.set_item("client_cert_name", py.None())?;
    d.set_item("client_cert_error", py.None())?;
    d.set_item("tls_version", tls.version)?;
    d.set_item("cipher_suite", tls.cipher_suite)?;
    ext.set_item("tls", d)?;
    scope.set_item(intern!(py, "extensions"), ext)
}
