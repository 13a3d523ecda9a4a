//! Networking below HTTP: turning `--bind` values into listening sockets.
//!
//! This layer hands `Listener`s to the workers and stops there; accepting,
//! TLS and protocol handling live elsewhere (`poll_io` holds the non-blocking steps
//! of the master's own small servers).

pub mod bind;
mod inherit;
pub mod poll_io;
pub mod tls;

// Until the master and workers are wired up, not every name is used yet.
#[allow(unused_imports)]
pub use bind::{
    bind_with, inherited_listeners, prepare_for_exec, systemd_listeners, BindAddr, BindError,
    BindOptions, Listener, ParseBindError, INHERIT_ENV,
};
