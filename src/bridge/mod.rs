//! The only part of the request path that touches Python: it consumes `exchange::Job`s on app
//! threads and produces `exchange::Reply`s. The I/O side never needs the GIL.

pub mod asgi;
pub mod body;
pub mod head;
pub mod name_cache;
pub mod wsgi;
