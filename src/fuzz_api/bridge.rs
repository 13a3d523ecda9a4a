//! Targets for request → WSGI environ and request → ASGI scope: a head from the HTTP/1 or the
//! uwsgi parser, on a TCP or a unix-socket connection, through the real builders, with
//! Python embedded once per process.

use std::sync::OnceLock;

use bytes::BytesMut;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::Cursor;
use crate::bridge::asgi::scope::{self, HeaderNames, ScopeTemplate};
use crate::bridge::wsgi::environ::{self, EnvironTemplate, HeaderKeys};
use crate::bridge::wsgi::Input;
use crate::exchange::{ConnInfo, RequestBody};
use crate::http::edge::ProxyInfo;
use crate::http::request::{parse_head, Framing, Limits, RequestHead};
use crate::http::uwsgi;

/// A request as the connection hands it to a bridge, built from fuzz bytes; `None` when the
/// bytes are not a request either parser takes.
fn request(data: &[u8]) -> Option<(RequestHead, ConnInfo, bool)> {
    let mut c = Cursor::new(data);
    let flags = c.byte();
    let mut buf = BytesMut::from(c.rest());
    let unix = flags & 2 != 0;
    let mut conn = ConnInfo {
        peer: (!unix).then(|| "192.0.2.7:40000".parse().expect("an address")),
        server_name: if unix { "/run/app.sock" } else { "127.0.0.1" }.into(),
        server_port: if unix { "" } else { "8000" }.into(),
        forwarded_trusted: false,
        proxy: (flags & 4 != 0).then(|| ProxyInfo {
            protocol: "TCP6",
            proxy: "[2001:db8::1]:443".parse().expect("an address"),
        }),
        tls: None,
        cgi_vars: Vec::new(),
    };
    let mut secure = flags & 8 != 0;
    let head = if flags & 1 == 0 {
        parse_head(&mut buf, &Limits::default()).ok()??
    } else {
        let packet = uwsgi::parse(&mut buf, &Limits::default()).ok()??;
        conn.peer = packet.client.or(conn.peer);
        conn.server_name = packet.server_name.unwrap_or(conn.server_name);
        conn.server_port = packet.server_port.unwrap_or(conn.server_port);
        conn.cgi_vars = packet.vars;
        secure |= packet.secure;
        packet.head
    };
    Some((head, conn, secure))
}

struct Templates {
    environ: EnvironTemplate,
    http: ScopeTemplate,
    websocket: ScopeTemplate,
    mounted: ScopeTemplate,
}

fn templates(py: Python<'_>) -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| Templates {
        environ: EnvironTemplate::new(py, true, false).expect("an environ template"),
        http: ScopeTemplate::new(py, "http", "").expect("a scope template"),
        websocket: ScopeTemplate::new(py, "websocket", "").expect("a scope template"),
        mounted: ScopeTemplate::new(py, "http", "/api").expect("a scope template"),
    })
}

/// Every string PEP 3333 puts in an environ is a native string of latin-1 code points.
fn latin1_str(v: &Bound<'_, PyAny>, what: &str) -> String {
    let s = v
        .cast::<PyString>()
        .unwrap_or_else(|_| panic!("{what} is not a str: {v:?}"));
    let s = s.to_cow().expect("a str converts").into_owned();
    assert!(
        s.chars().all(|c| u32::from(c) <= 0xff),
        "{what} {s:?} is not latin-1"
    );
    s
}

/// WSGI environ: every key is a str and every CGI value a latin-1 str; the keys PEP 3333
/// requires are there; HTTP_* keys are upper case with `_` for `-`; wsgi.url_scheme is http
/// or https as the connection decided; wsgi.input is our stream.
pub fn wsgi_environ(data: &[u8]) {
    let Some((head, conn, secure)) = request(data) else {
        return;
    };
    Python::initialize();
    Python::attach(|py| {
        let t = templates(py);
        let input =
            Bound::new(py, Input::new(RequestBody::Empty, Framing::Empty)).expect("a wsgi.input");
        let mut keys = HeaderKeys::default();
        let env = environ::build(py, &t.environ, &mut keys, &head, &conn, secure, input)
            .expect("the environ builds");
        for (k, v) in env.iter() {
            let key = latin1_str(&k, "a key");
            if key.starts_with("wsgi.") {
                continue;
            }
            let value = latin1_str(&v, &key);
            if let Some(name) = key.strip_prefix("HTTP_") {
                let from_header = head.headers.iter().any(|(n, _)| {
                    n.len() == name.len()
                        && n.iter()
                            .zip(name.bytes())
                            .all(|(&a, b)| a.to_ascii_uppercase() == b || (a == b'-' && b == b'_'))
                });
                assert!(
                    from_header
                        || conn.cgi_vars.iter().any(|(n, _)| n[..] == *key.as_bytes())
                        || key == "HTTP_VERSION",
                    "{key} = {value:?} comes from no header"
                );
            }
        }
        for required in [
            "REQUEST_METHOD",
            "SCRIPT_NAME",
            "PATH_INFO",
            "QUERY_STRING",
            "SERVER_NAME",
            "SERVER_PORT",
            "SERVER_PROTOCOL",
            "wsgi.input",
            "wsgi.errors",
        ] {
            assert!(
                env.contains(required).expect("a dict lookup"),
                "no {required}"
            );
        }
        let scheme = env
            .get_item("wsgi.url_scheme")
            .expect("a dict lookup")
            .expect("wsgi.url_scheme");
        let want = if secure { "https" } else { "http" };
        assert_eq!(latin1_str(&scheme, "wsgi.url_scheme"), want);
        let input = env
            .get_item("wsgi.input")
            .expect("a lookup")
            .expect("input");
        assert!(input.is_instance_of::<Input>());
    });
}

/// ASGI scope (http and websocket): the types the spec gives every key, lower-case header
/// names, `path` and `raw_path` starting with `root_path`, query_string the raw bytes.
pub fn asgi_scope(data: &[u8]) {
    let Some((head, conn, secure)) = request(data) else {
        return;
    };
    let kind = data.first().map_or(0, |f| f >> 4) % 3;
    Python::initialize();
    Python::attach(|py| {
        let t = templates(py);
        let chat = ["chat".to_owned()];
        let (template, subprotocols, root) = match kind {
            0 => (&t.http, None, ""),
            1 => (&t.mounted, None, "/api"),
            _ => (&t.websocket, Some(&chat[..]), ""),
        };
        let mut names = HeaderNames::default();
        let scope = scope::build(
            py,
            template,
            &mut names,
            &head,
            (&conn, secure),
            None,
            subprotocols,
        )
        .expect("the scope builds");
        let get = |k: &str| {
            scope
                .get_item(k)
                .expect("a dict lookup")
                .unwrap_or_else(|| panic!("no {k}"))
        };
        let string = |k: &str| get(k).extract::<String>().expect(k);
        let bytes = |k: &str| get(k).cast::<PyBytes>().expect(k).as_bytes().to_vec();
        let version = string("http_version");
        assert!(["1.0", "1.1", "2"].contains(&version.as_str()), "{version}");
        let scheme = string("scheme");
        let want = match (subprotocols.is_some(), secure) {
            (false, false) => "http",
            (false, true) => "https",
            (true, false) => "ws",
            (true, true) => "wss",
        };
        assert_eq!(scheme, want);
        if subprotocols.is_none() {
            let method = string("method");
            assert!(method.bytes().all(|b| !b.is_ascii_lowercase()), "{method}");
        }
        let root_path = string("root_path");
        let path = string("path");
        assert!(
            path.starts_with(&root_path),
            "{path:?} outside {root_path:?}"
        );
        if conn.cgi_vars.is_empty() {
            // a uwsgi SCRIPT_NAME may be matched decoded; raw_path then stays as sent
            assert_eq!(root_path, root);
            assert!(bytes("raw_path").starts_with(root_path.as_bytes()));
        }
        assert_eq!(bytes("query_string"), head.query.to_vec());
        let headers = get("headers");
        let headers = headers.cast::<PyList>().expect("headers is a list");
        assert_eq!(headers.len(), head.headers.len());
        for pair in headers.iter() {
            let pair = pair.cast::<PyTuple>().expect("a header is a tuple");
            assert_eq!(pair.len(), 2);
            let name = pair.get_item(0).expect("a name");
            let name = name.cast::<PyBytes>().expect("names are bytes").as_bytes();
            assert!(!name.iter().any(u8::is_ascii_uppercase), "{name:?}");
            assert!(pair
                .get_item(1)
                .expect("a value")
                .is_instance_of::<PyBytes>());
        }
        for k in ["client", "server"] {
            let v = get(k);
            assert!(
                v.is_none() || v.extract::<(String, u16)>().is_ok(),
                "{k} = {v:?}"
            );
        }
        assert!(get("asgi").is_instance_of::<PyDict>());
    });
}
