//! HTTP/1.x: request heads and bodies parsed from bytes, responses serialised to bytes, and the
//! per-connection loop that ties them to a socket. Pure Rust; tests need no Python.

pub mod body;
pub mod conn;
pub mod edge;
pub mod error;
pub mod forwarded;
pub mod health;
pub mod proxy_protocol;
pub mod request;
pub mod response;
pub mod socket;
pub mod static_files;
pub mod uwsgi;
