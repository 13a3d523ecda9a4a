//! The only part of the request path that touches Python: it consumes `exchange::Job`s on app
//! threads and produces `exchange::Reply`s. The I/O side never needs the GIL.

pub mod asgi;
pub mod body;
pub mod head;
pub mod name_cache;
pub mod wsgi;

use pyo3::prelude::*;
use pyo3::types::PyString;

/// The request method as a str, interned for the common ones. The parser admits only token
/// characters (ASCII), so any other method decodes the same under latin-1 or UTF-8.
pub fn method_str<'py>(py: Python<'py>, m: &[u8]) -> Bound<'py, PyString> {
    match m {
        b"GET" => pyo3::intern!(py, "GET").clone(),
        b"POST" => pyo3::intern!(py, "POST").clone(),
        b"HEAD" => pyo3::intern!(py, "HEAD").clone(),
        b"PUT" => pyo3::intern!(py, "PUT").clone(),
        b"DELETE" => pyo3::intern!(py, "DELETE").clone(),
        b"PATCH" => pyo3::intern!(py, "PATCH").clone(),
        b"OPTIONS" => pyo3::intern!(py, "OPTIONS").clone(),
        other => PyString::new(py, &String::from_utf8_lossy(other)),
    }
}
