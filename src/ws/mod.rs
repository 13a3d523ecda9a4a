//! WebSocket (RFC 6455) for ASGI's `websocket` scope: the opening handshake decided from a parsed
//! [`RequestHead`](crate::http::request::RequestHead), and the session that runs on the socket
//! once the `101` went out. Pure Rust, no Python: the ASGI bridge only sees [`FromClient`] and
//! [`ToClient`] on two channels, and the HTTP loop only calls three functions:
//!
//! ```text
//! upgrade_request(&head)?      -> Some(req): the app decides (websocket.accept / websocket.close)
//! accept_response(&req, ..)?   -> the 101 bytes to write, and what was negotiated
//! run(sock, leftover, ..)      -> until the connection is closed
//! ```
//!
//! It must not write HTTP error pages (the caller owns the connection and answers 400/426/403
//! through `http::response`), and it never blocks the I/O thread.
//!
//! # Why tungstenite's frame codec under our own message layer
//!
//! The brief preferred `tokio-tungstenite` if it did permessage-deflate (RFC 7692). It does not:
//! tungstenite 0.30's features are only `handshake` and TLS, its message layer fails every frame
//! with RSV1 set, and the deflate pull request (snapview/tungstenite-rs #426, after #144, #235,
//! #328) was still open. The other crates were weighed and not taken: `fastwebsockets` has no
//! deflate either; `soketto` has deflate but can only close with code 1000 (ASGI apps choose
//! their close code); `yawc` has deflate but pulls in hyper, hyper-util, url and nom (115 crates
//! for this module alone) and is MPL-2.0.
//!
//! So the split is: tungstenite parses and formats **frame headers** (`FrameHeader`, the fiddly
//! length/mask encoding, the same code axum relies on), and `session.rs` owns the **message
//! layer** — fragment reassembly, control frames, fail-fast UTF-8, the close handshake — which
//! is where every policy decision of an ASGI server sits anyway (close codes, backpressure,
//! keepalive). `deflate.rs` does permessage-deflate with flate2's raw deflate streams (zlib-rs
//! backend, pure Rust, which also honours `server_max_window_bits`). The whole layer is held to
//! the Autobahn|Testsuite by `tests/test_autobahn.py`, compression groups 12 and 13 included.
//! When tungstenite ships deflate, `session.rs` can go back to `WebSocketStream` (this module's
//! first commit did exactly that) without changing the API below.

mod deflate;
mod handshake;
mod session;

use std::time::Duration;

pub use handshake::UpgradeRequest;
pub use handshake::{accept_response, upgrade_request, HandshakeError, Negotiated};
pub use session::run;

/// Per-worker WebSocket settings (uvicorn's `--ws-max-size`, `--ws-ping-interval`, ...).
#[derive(Debug, Clone)]
pub struct WsConfig {
    /// Largest message (after reassembling fragments) a client may send; larger ones close the
    /// connection with 1009.
    pub max_message_size: usize,
    /// How often the server pings an idle-or-not client; `None` = never.
    pub ping_interval: Option<Duration>,
    /// How long a ping may go unanswered before the connection is closed with 1011; `None` =
    /// forever (pings then only keep middleboxes from timing the connection out).
    pub ping_timeout: Option<Duration>,
    /// Negotiate permessage-deflate (RFC 7692) when the client offers it. Costs CPU per message
    /// and up to ~300 KiB of zlib state per connection; saves bandwidth on text-heavy traffic.
    pub per_message_deflate: bool,
}

impl Default for WsConfig {
    /// uvicorn's defaults: 16 MiB messages, a ping every 20 s answered within 20 s.
    fn default() -> Self {
        WsConfig {
            max_message_size: 16 * 1024 * 1024,
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(20)),
            per_message_deflate: true,
        }
    }
}

/// One complete data message, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Text(String),
    Binary(bytes::Bytes),
}

/// What the session tells the app (ASGI `websocket.receive` / `websocket.disconnect`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromClient {
    Message(Message),
    /// The connection is over; always the last event. `code` is the client's close code (1005
    /// when its Close frame had none), the code we closed with (the app's own, or 1002, 1007,
    /// 1009 on a client error, 1011 on a ping timeout), or 1006 when the connection was lost
    /// without a closing handshake.
    Closed {
        code: u16,
        reason: String,
    },
}

/// What the app asks the session to do (ASGI `websocket.send` / `websocket.close`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToClient {
    Message(Message),
    /// Start the closing handshake with this code (ASGI default 1000). A code that may not be
    /// sent on the wire (1005, 1006, 1015, out of range) is replaced by 1000; the reason is cut
    /// to the 123 bytes a Close frame can carry.
    Close {
        code: u16,
        reason: String,
    },
    /// The app raised: close with 1011 (Internal Error). Dropping the sender without `Close`
    /// means the app returned normally and closes with 1000.
    Failed,
}

/// Not a unit test: a WebSocket echo server built from this module alone, so that
/// `tests/test_autobahn.py` can run the Autobahn fuzzing client against the protocol layer
/// before (and independently of) the ASGI bridge. It prints `Listening at: ws://ADDR` and
/// serves until killed.
#[cfg(test)]
mod echo_server {
    use bytes::BytesMut;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;
    use tokio::sync::mpsc;

    use super::{accept_response, run, upgrade_request, FromClient, ToClient, WsConfig};
    use crate::http::request::{parse_head, Limits};

    #[test]
    #[ignore = "a server for tests/test_autobahn.py; runs until killed"]
    fn autobahn_echo_server() -> std::io::Result<()> {
        let addr = std::env::var("FERRICORN_WS_ECHO_ADDR").unwrap_or_else(|_| "127.0.0.1:0".into());
        // the worker's I/O thread is a current-thread runtime too
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind(&addr).await?;
            println!("Listening at: ws://{}", listener.local_addr()?);
            loop {
                let (sock, _) = listener.accept().await?;
                tokio::spawn(serve(sock));
            }
        })
    }

    async fn serve(mut sock: TcpStream) {
        let mut buf = BytesMut::with_capacity(8192);
        let head = loop {
            match parse_head(&mut buf, &Limits::default()) {
                Ok(Some(head)) => break head,
                Ok(None) => {}
                Err(_) => return,
            }
            if !matches!(sock.read_buf(&mut buf).await, Ok(n) if n > 0) {
                return;
            }
        };
        let req = match upgrade_request(&head) {
            Ok(Some(req)) => req,
            Ok(None) | Err(_) => {
                let _ = sock
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
                return;
            }
        };
        let cfg = WsConfig::default();
        let Ok((response, negotiated)) = accept_response(&req, None, &[], &cfg) else {
            return;
        };
        if sock.write_all(&response).await.is_err() {
            return;
        }
        let (to_app, mut rx) = mpsc::channel(8);
        let (tx, from_app) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Some(FromClient::Message(m)) = rx.recv().await {
                if tx.send(ToClient::Message(m)).await.is_err() {
                    return;
                }
            }
        });
        run(sock, buf, negotiated, &cfg, to_app, from_app).await;
    }
}
