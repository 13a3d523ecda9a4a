//! HTTP/1.x: request heads and bodies parsed from bytes, responses serialised to bytes, and the
//! per-connection loop that ties them to a socket; HTTP/2 (`h2`) behind the same job seam.
//! Pure Rust; tests need no Python.

pub mod body;
pub mod conn;
pub mod edge;
pub mod error;
pub mod forwarded;
pub mod h2;
pub mod health;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod socket;
pub mod static_files;
pub mod target;
pub mod tls;
pub mod uwsgi;
