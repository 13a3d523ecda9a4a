//! One WebSocket session on an upgraded socket: client messages to the app, app messages to the
//! client, server pings, and the closing handshake — until the connection is over.
//!
//! Frames, fragments, UTF-8 and ping answers are tungstenite's; this module owns the policy:
//! which close code ends a failure, backpressure towards a slow app, the keepalive, and how long
//! a closing handshake may take. It never touches Python and never blocks: the app side is two
//! bounded channels.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{Error as WsError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;

use super::{FromClient, Message, Negotiated, ToClient, WsConfig};

/// How long a closing handshake may take: our Close written and the client's answer read.
/// Bounded so that a vanished client cannot hold the connection (uvicorn/websockets wait 10 s;
/// a worker's graceful stop is also waiting on us).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// A Close frame's payload is at most 125 bytes, two of which are the code.
const MAX_CLOSE_REASON: usize = 123;

/// Runs the session on an already-upgraded socket (the caller wrote the `101`) until it closes.
///
/// `leftover` holds the bytes the HTTP layer read past the request head; they are the start of
/// the WebSocket stream. Client messages go to `to_app` — when it is full the socket is not read
/// (backpressure) while app messages keep flowing out. The app ends the session with
/// [`ToClient::Close`], [`ToClient::Failed`] (1011), or by dropping `from_app` (1000). The last
/// thing `to_app` receives is always [`FromClient::Closed`], sent after the socket is closed.
pub async fn run<S>(
    sock: S,
    leftover: BytesMut,
    negotiated: Negotiated,
    cfg: &WsConfig,
    to_app: mpsc::Sender<FromClient>,
    from_app: mpsc::Receiver<ToClient>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // Nothing on the wire depends on the subprotocol, and deflate is never negotiated yet.
    debug_assert!(!negotiated.per_message_deflate);
    // A single frame may not be larger than a whole message either; without this, tungstenite's
    // default 16 MiB frame limit would apply below a larger message limit.
    let config = WebSocketConfig::default()
        .max_message_size(Some(cfg.max_message_size))
        .max_frame_size(Some(cfg.max_message_size));
    let ws =
        WebSocketStream::from_partially_read(sock, leftover.to_vec(), Role::Server, Some(config))
            .await;
    let mut session = Session {
        ws,
        to_app,
        from_app,
        pending: None,
        keepalive: Keepalive::new(cfg),
    };
    let (code, reason) = session.serve().await;
    let Session { ws, to_app, .. } = session;
    // Close the socket before waiting for the app to take the news, which may be never.
    drop(ws);
    let _ = to_app.send(FromClient::Closed { code, reason }).await;
}

struct Session<S> {
    ws: WebSocketStream<S>,
    to_app: mpsc::Sender<FromClient>,
    from_app: mpsc::Receiver<ToClient>,
    /// A client message the app has no room for yet; while set, the socket is not read.
    pending: Option<FromClient>,
    keepalive: Keepalive,
}

impl<S> Session<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Serves until the connection is over; returns the code and reason to tell the app.
    async fn serve(&mut self) -> (u16, String) {
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            // Pings and pong deadlines only run while we read: a pong sitting unread behind a
            // message the app has no room for is not the client's fault.
            let deadline = self.keepalive.deadline().filter(|_| self.pending.is_none());
            if deadline != armed {
                if let Some(d) = deadline {
                    timer.as_mut().reset(d);
                }
                armed = deadline;
            }
            tokio::select! {
                biased;
                () = &mut timer, if armed.is_some() => {
                    armed = None;
                    match self.keepalive.fire() {
                        Fire::Ping => {
                            if let Err(e) = self.ws.send(WsMessage::Ping(Bytes::new())).await {
                                return lost(&e);
                            }
                        }
                        Fire::TimedOut => {
                            log::debug!("websocket: no pong within the ping timeout");
                            return self.close(1011, "keepalive ping timeout", false).await;
                        }
                    }
                }
                out = self.from_app.recv() => match out {
                    Some(ToClient::Message(m)) => {
                        if let Err(e) = self.ws.send(to_wire(m)).await {
                            return lost(&e);
                        }
                    }
                    Some(ToClient::Close { code, reason }) => {
                        return self.close(sendable(code), &reason, true).await;
                    }
                    Some(ToClient::Failed) => return self.close(1011, "", true).await,
                    None => return self.close(1000, "", true).await,
                },
                // an owned permit, so that the branch's output borrows nothing of `self`
                permit = self.to_app.clone().reserve_owned(), if self.pending.is_some() => {
                    if let (Ok(permit), Some(event)) = (permit, self.pending.take()) {
                        permit.send(event);
                    }
                    // an app that stopped listening drops the message; it ends through from_app
                    self.pending = None;
                    self.keepalive.resumed();
                }
                incoming = self.ws.next(), if self.pending.is_none() => match incoming {
                    Some(Ok(WsMessage::Text(t))) => {
                        self.deliver(Message::Text(t.as_str().to_owned()));
                    }
                    Some(Ok(WsMessage::Binary(b))) => self.deliver(Message::Binary(b)),
                    Some(Ok(WsMessage::Ping(_))) => {
                        // tungstenite queued the pong; send it now rather than with our next
                        // write, which may be a while
                        if let Err(e) = self.ws.flush().await {
                            return lost(&e);
                        }
                    }
                    Some(Ok(WsMessage::Pong(_))) => self.keepalive.pong(),
                    Some(Ok(WsMessage::Close(frame))) => {
                        let (code, reason) = frame.map_or((1005, String::new()), |f| {
                            (u16::from(f.code), f.reason.as_str().to_owned())
                        });
                        // tungstenite queued the echo of the client's Close; flush it. Then the
                        // server closes TCP first (RFC 6455 §7.1.1) by returning.
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.ws.flush()).await;
                        return (code, reason);
                    }
                    // only ever written, never read
                    Some(Ok(WsMessage::Frame(_))) => {}
                    Some(Err(e)) => return self.fail(e).await,
                    None => return (1006, String::new()),
                },
            }
        }
    }

    fn deliver(&mut self, message: Message) {
        match self.to_app.try_send(FromClient::Message(message)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.pending = Some(event),
            // the app stopped listening; it ends the session through from_app
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Fails the connection on a read error with the code RFC 6455 §7.4.1 gives it.
    async fn fail(&mut self, e: WsError) -> (u16, String) {
        let (code, reason) = match &e {
            WsError::Capacity(_) => (1009, "message too big"),
            WsError::Utf8(_) => (1007, "invalid UTF-8"),
            WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => return lost(&e),
            WsError::Protocol(_) => (1002, "protocol error"),
            WsError::ConnectionClosed | WsError::AlreadyClosed | WsError::Io(_) => return lost(&e),
            _ => (1011, "internal error"),
        };
        log::debug!("websocket: closing with {code}: {e}");
        // After a framing error the rest of the stream cannot be trusted: do not wait for the
        // client's Close, which could only be found by parsing it.
        self.close(code, reason, false).await
    }

    /// Sends our Close and, if `wait`, reads until the client's answer (dropping data still in
    /// flight), all within [`CLOSE_TIMEOUT`].
    async fn close(&mut self, code: u16, reason: &str, wait: bool) -> (u16, String) {
        let reason = truncate(reason, MAX_CLOSE_REASON);
        let frame = CloseFrame {
            code: CloseCode::from(code),
            reason: reason.to_owned().into(),
        };
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let sent = tokio::time::timeout_at(deadline, self.ws.close(Some(frame))).await;
        if wait && matches!(sent, Ok(Ok(()))) {
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
                if m.is_close() {
                    break;
                }
            }
        }
        (code, reason.to_owned())
    }
}

/// The connection went away without a closing handshake (RFC 6455 §7.1.5: code 1006).
fn lost(e: &WsError) -> (u16, String) {
    log::debug!("websocket: connection lost: {e}");
    (1006, String::new())
}

fn to_wire(m: Message) -> WsMessage {
    match m {
        Message::Text(s) => WsMessage::Text(s.into()),
        Message::Binary(b) => WsMessage::Binary(b),
    }
}

/// A close code the app may put on the wire; 1005/1006/1015 and unassigned ranges may not be
/// sent (RFC 6455 §7.4), so they become a normal closure rather than a protocol violation.
fn sendable(code: u16) -> u16 {
    if CloseCode::from(code).is_allowed() {
        code
    } else {
        1000
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The server's ping schedule: a ping every `interval`, a pong due within `timeout`.
struct Keepalive {
    interval: Option<Duration>,
    timeout: Option<Duration>,
    next_ping: Option<Instant>,
    /// When the pong for the ping in flight is due.
    pong_due: Option<Instant>,
}

enum Fire {
    Ping,
    TimedOut,
}

impl Keepalive {
    fn new(cfg: &WsConfig) -> Self {
        Keepalive {
            interval: cfg.ping_interval,
            timeout: cfg.ping_timeout,
            next_ping: cfg.ping_interval.map(|i| Instant::now() + i),
            pong_due: None,
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.pong_due.or(self.next_ping)
    }

    fn fire(&mut self) -> Fire {
        let now = Instant::now();
        if self.pong_due.is_some_and(|due| due <= now) {
            return Fire::TimedOut;
        }
        self.next_ping = self.interval.map(|i| now + i);
        self.pong_due = self.timeout.map(|t| now + t);
        Fire::Ping
    }

    fn pong(&mut self) {
        self.pong_due = None;
    }

    /// Reading resumes after backpressure: give a pong that may be waiting unread a fresh
    /// chance instead of timing out on it at once.
    fn resumed(&mut self) {
        let now = Instant::now();
        if let (Some(due), Some(t)) = (self.pong_due, self.timeout) {
            if due <= now {
                self.pong_due = Some(now + t);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    use super::*;
    use crate::http::request::{parse_head, Limits};
    use crate::ws::{accept_response, upgrade_request};

    type Client = WebSocketStream<DuplexStream>;

    struct App {
        rx: mpsc::Receiver<FromClient>,
        tx: Option<mpsc::Sender<ToClient>>,
        server: tokio::task::JoinHandle<()>,
    }

    /// A server session on one end of a duplex pipe (handshake skipped) and a tungstenite client
    /// on the other. `app_capacity` is the size of the channel towards the app.
    async fn start(cfg: WsConfig, app_capacity: usize, pipe: usize) -> (Client, App) {
        let (client_io, server_io) = tokio::io::duplex(pipe);
        let app = spawn_session(server_io, BytesMut::new(), cfg, app_capacity);
        let client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        (client, app)
    }

    fn spawn_session(io: DuplexStream, leftover: BytesMut, cfg: WsConfig, cap: usize) -> App {
        let (to_app, rx) = mpsc::channel(cap);
        let (tx, from_app) = mpsc::channel(8);
        let server = tokio::spawn(async move {
            run(io, leftover, Negotiated::default(), &cfg, to_app, from_app).await;
        });
        App {
            rx,
            tx: Some(tx),
            server,
        }
    }

    fn quiet() -> WsConfig {
        WsConfig {
            ping_interval: None,
            ..WsConfig::default()
        }
    }

    /// The app side of an echo server: every message goes straight back.
    fn echo(mut app: App) -> tokio::task::JoinHandle<FromClient> {
        tokio::spawn(async move {
            let tx = app.tx.take().expect("sender");
            while let Some(event) = app.rx.recv().await {
                match event {
                    FromClient::Message(m) => {
                        let _ = tx.send(ToClient::Message(m)).await;
                    }
                    closed @ FromClient::Closed { .. } => {
                        let _ = app.server.await;
                        return closed;
                    }
                }
            }
            panic!("session ended without Closed");
        })
    }

    async fn next(client: &mut Client) -> WsMessage {
        tokio::time::timeout(Duration::from_secs(60), client.next())
            .await
            .expect("client read timed out")
            .expect("stream open")
            .expect("valid frame")
    }

    fn close_of(m: &WsMessage) -> (u16, String) {
        match m {
            WsMessage::Close(Some(f)) => (u16::from(f.code), f.reason.as_str().to_owned()),
            other => panic!("expected a Close frame, got {other:?}"),
        }
    }

    fn closed(code: u16, reason: &str) -> FromClient {
        FromClient::Closed {
            code,
            reason: reason.to_owned(),
        }
    }

    async fn client_close(client: &mut Client, code: u16, reason: &str) {
        client
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.to_owned().into(),
            }))
            .await
            .expect("close sent");
    }

    #[tokio::test]
    async fn text_and_binary_are_echoed_and_client_close_is_reported() {
        let (mut client, app) = start(quiet(), 4, 64 * 1024).await;
        let app = echo(app);
        client.send(WsMessage::text("héllo")).await.expect("send");
        assert_eq!(next(&mut client).await, WsMessage::text("héllo"));
        client
            .send(WsMessage::binary(vec![0u8, 1, 255]))
            .await
            .expect("send");
        assert_eq!(
            next(&mut client).await,
            WsMessage::binary(vec![0u8, 1, 255])
        );
        client_close(&mut client, 4000, "bye").await;
        assert_eq!(close_of(&next(&mut client).await), (4000, "bye".into()));
        assert_eq!(app.await.expect("app"), closed(4000, "bye"));
    }

    #[tokio::test]
    async fn fragmented_message_is_reassembled_around_a_ping() {
        let (mut client, app) = start(quiet(), 4, 64 * 1024).await;
        let app = echo(app);
        let frames = [
            Frame::message("frag", OpCode::Data(Data::Text), false),
            Frame::ping(b"mid".to_vec()),
            Frame::message("mented ", OpCode::Data(Data::Continue), false),
            Frame::message("ü", OpCode::Data(Data::Continue), true),
        ];
        for f in frames {
            client.send(WsMessage::Frame(f)).await.expect("send");
        }
        // the ping in the middle is answered at once, before the message is complete
        assert_eq!(
            next(&mut client).await,
            WsMessage::Pong(b"mid".to_vec().into())
        );
        assert_eq!(next(&mut client).await, WsMessage::text("fragmented ü"));
        client_close(&mut client, 1000, "").await;
        assert_eq!(app.await.expect("app"), closed(1000, ""));
    }

    #[tokio::test]
    async fn ping_is_answered_with_its_payload() {
        let (mut client, app) = start(quiet(), 4, 64 * 1024).await;
        let _app = echo(app);
        client
            .send(WsMessage::Ping(b"are you there".to_vec().into()))
            .await
            .expect("send");
        assert_eq!(
            next(&mut client).await,
            WsMessage::Pong(b"are you there".to_vec().into())
        );
    }

    #[tokio::test]
    async fn close_without_code_reports_1005() {
        let (mut client, app) = start(quiet(), 4, 64 * 1024).await;
        let app = echo(app);
        client.close(None).await.expect("close");
        assert_eq!(app.await.expect("app"), closed(1005, ""));
    }

    #[tokio::test]
    async fn lost_connection_reports_1006() {
        let (client, app) = start(quiet(), 4, 64 * 1024).await;
        let app = echo(app);
        drop(client);
        assert_eq!(app.await.expect("app"), closed(1006, ""));
    }

    #[tokio::test]
    async fn app_close_sends_its_code_and_waits_for_the_answer() {
        let (mut client, mut app) = start(quiet(), 4, 64 * 1024).await;
        let tx = app.tx.take().expect("sender");
        tx.send(ToClient::Message(Message::Text("last".into())))
            .await
            .expect("send");
        tx.send(ToClient::Close {
            code: 4001,
            reason: "done".into(),
        })
        .await
        .expect("send");
        assert_eq!(next(&mut client).await, WsMessage::text("last"));
        assert_eq!(close_of(&next(&mut client).await), (4001, "done".into()));
        // reading on lets tungstenite answer the Close; the server then ends the connection
        assert!(client.next().await.is_none());
        assert_eq!(app.rx.recv().await, Some(closed(4001, "done")));
        app.server.await.expect("server");
    }

    #[tokio::test]
    async fn app_that_returns_closes_1000_and_app_that_fails_closes_1011() {
        for (failed, code) in [(false, 1000), (true, 1011)] {
            let (mut client, mut app) = start(quiet(), 4, 64 * 1024).await;
            let tx = app.tx.take().expect("sender");
            if failed {
                tx.send(ToClient::Failed).await.expect("send");
            }
            drop(tx);
            assert_eq!(close_of(&next(&mut client).await).0, code);
            assert!(client.next().await.is_none());
            assert_eq!(app.rx.recv().await, Some(closed(code, "")));
        }
    }

    #[tokio::test]
    async fn unsendable_app_close_code_becomes_1000_and_long_reason_is_cut() {
        let (mut client, mut app) = start(quiet(), 4, 64 * 1024).await;
        let tx = app.tx.take().expect("sender");
        tx.send(ToClient::Close {
            code: 1006,
            reason: "é".repeat(100),
        })
        .await
        .expect("send");
        let (code, reason) = close_of(&next(&mut client).await);
        assert_eq!(code, 1000);
        assert_eq!(reason, "é".repeat(61)); // 122 bytes: 123 would split a character
    }

    #[tokio::test]
    async fn oversized_message_closes_1009() {
        let cfg = WsConfig {
            max_message_size: 1024,
            ..quiet()
        };
        let (mut client, app) = start(cfg, 4, 64 * 1024).await;
        let app = echo(app);
        client
            .send(WsMessage::binary(vec![7u8; 1025]))
            .await
            .expect("send");
        assert_eq!(close_of(&next(&mut client).await).0, 1009);
        assert_eq!(app.await.expect("app"), closed(1009, "message too big"));
    }

    #[tokio::test]
    async fn oversized_fragmented_message_closes_1009() {
        let cfg = WsConfig {
            max_message_size: 1024,
            ..quiet()
        };
        let (mut client, app) = start(cfg, 4, 64 * 1024).await;
        let app = echo(app);
        let part = vec![b'a'; 600];
        client
            .send(WsMessage::Frame(Frame::message(
                part.clone(),
                OpCode::Data(Data::Text),
                false,
            )))
            .await
            .expect("send");
        client
            .send(WsMessage::Frame(Frame::message(
                part,
                OpCode::Data(Data::Continue),
                true,
            )))
            .await
            .expect("send");
        assert_eq!(close_of(&next(&mut client).await).0, 1009);
        assert_eq!(app.await.expect("app"), closed(1009, "message too big"));
    }

    #[tokio::test]
    async fn invalid_utf8_text_closes_1007() {
        let (mut client, app) = start(quiet(), 4, 64 * 1024).await;
        let app = echo(app);
        client
            .send(WsMessage::Frame(Frame::message(
                vec![b'o', b'k', 0xff, 0xfe],
                OpCode::Data(Data::Text),
                true,
            )))
            .await
            .expect("send");
        assert_eq!(close_of(&next(&mut client).await).0, 1007);
        assert_eq!(app.await.expect("app"), closed(1007, "invalid UTF-8"));
    }

    /// A masked frame as a client writes it; the all-zero mask keeps the payload readable.
    fn raw_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut f = vec![first, 0x80 | payload.len() as u8, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    #[tokio::test]
    async fn protocol_errors_close_1002() {
        let cases: [(&str, Vec<u8>); 4] = [
            // RSV1 is permessage-deflate's bit, and deflate was not negotiated
            ("rsv1 without extension", raw_frame(0xC1, b"x")),
            ("reserved opcode", raw_frame(0x83, b"x")),
            ("continuation without start", raw_frame(0x80, b"x")),
            // control frames may not be fragmented
            ("fragmented ping", raw_frame(0x09, b"x")),
        ];
        for (what, bytes) in cases {
            let (mut client_io, server_io) = tokio::io::duplex(64 * 1024);
            let app = echo(spawn_session(server_io, BytesMut::new(), quiet(), 4));
            client_io.write_all(&bytes).await.expect("write");
            let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
            assert_eq!(close_of(&next(&mut client).await).0, 1002, "{what}");
            assert_eq!(
                app.await.expect("app"),
                closed(1002, "protocol error"),
                "{what}"
            );
        }
    }

    #[tokio::test]
    async fn unmasked_client_frame_closes_1002() {
        let (mut client_io, server_io) = tokio::io::duplex(64 * 1024);
        let app = echo(spawn_session(server_io, BytesMut::new(), quiet(), 4));
        client_io.write_all(b"\x81\x02hi").await.expect("write");
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        assert_eq!(close_of(&next(&mut client).await).0, 1002);
        assert_eq!(app.await.expect("app"), closed(1002, "protocol error"));
    }

    #[tokio::test(start_paused = true)]
    async fn server_pings_and_closes_1011_when_no_pong_comes() {
        let cfg = WsConfig {
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(10)),
            ..WsConfig::default()
        };
        let (mut client, mut app) = start(cfg, 4, 64 * 1024).await;
        let started = Instant::now();
        // the client does not read, so tungstenite never answers the ping
        assert_eq!(
            app.rx.recv().await,
            Some(closed(1011, "keepalive ping timeout"))
        );
        assert_eq!(started.elapsed(), Duration::from_secs(30));
        // raw bytes: a reading tungstenite client would try to answer the ping on a closed pipe
        let mut wire = Vec::new();
        client.get_mut().read_to_end(&mut wire).await.expect("read");
        assert_eq!(wire[..2], [0x89, 0x00], "an empty ping");
        assert_eq!(wire[2], 0x88, "then a close frame");
        assert_eq!(wire[4..6], 1011u16.to_be_bytes());
    }

    #[tokio::test(start_paused = true)]
    async fn answered_pings_keep_the_connection_open() {
        let cfg = WsConfig {
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(10)),
            ..WsConfig::default()
        };
        let (mut client, app) = start(cfg, 4, 64 * 1024).await;
        let app = echo(app);
        // reading makes tungstenite answer each ping with a pong
        for _ in 0..5 {
            assert!(matches!(next(&mut client).await, WsMessage::Ping(_)));
        }
        client
            .send(WsMessage::text("still here"))
            .await
            .expect("send");
        loop {
            match next(&mut client).await {
                WsMessage::Ping(_) => {}
                m => {
                    assert_eq!(m, WsMessage::text("still here"));
                    break;
                }
            }
        }
        client_close(&mut client, 1000, "").await;
        assert_eq!(app.await.expect("app"), closed(1000, ""));
    }

    #[tokio::test]
    async fn slow_app_stops_socket_reads_but_not_app_writes() {
        // one message of room towards the app, and a pipe that holds about four messages
        let (mut client, mut app) = start(quiet(), 1, 4 * 1024).await;
        let tx = app.tx.take().expect("sender");
        let payload = vec![b'x'; 1000];
        let sent = tokio::time::timeout(Duration::from_millis(300), async {
            for _ in 0..50 {
                client
                    .send(WsMessage::binary(payload.clone()))
                    .await
                    .expect("send");
            }
        })
        .await;
        assert!(
            sent.is_err(),
            "the server kept reading for an app that did not"
        );
        // the app can still talk while its inbox is full
        tx.send(ToClient::Message(Message::Text("busy".into())))
            .await
            .expect("send");
        assert_eq!(next(&mut client).await, WsMessage::text("busy"));
        // once the app reads, everything arrives, in order and complete
        let mut got = 0;
        while got < 5 {
            match app.rx.recv().await {
                Some(FromClient::Message(Message::Binary(b))) => {
                    assert_eq!(b.len(), 1000);
                    got += 1;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn handshake_then_first_frame_in_leftover_bytes() {
        // The client sends its request and a first frame in one write, so the HTTP layer reads
        // both: the frame must reach the session through `leftover`.
        let (mut client_io, mut server_io) = tokio::io::duplex(64 * 1024);
        let mut request = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: echo\r\n\r\n"
            .to_vec();
        request.extend_from_slice(&raw_frame(0x81, b"early"));
        client_io.write_all(&request).await.expect("write");

        let mut buf = BytesMut::with_capacity(4096);
        while server_io.read_buf(&mut buf).await.expect("read") > 0 {
            if buf.len() >= request.len() {
                break;
            }
        }
        let head = parse_head(&mut buf, &Limits::default())
            .expect("valid")
            .expect("complete");
        let req = upgrade_request(&head).expect("valid").expect("upgrade");
        let cfg = quiet();
        let (resp, negotiated) = accept_response(&req, Some("echo"), &[], &cfg).expect("accept");
        server_io.write_all(&resp).await.expect("101");
        let (to_app, rx) = mpsc::channel(4);
        let (tx, from_app) = mpsc::channel(8);
        let server = tokio::spawn(async move {
            run(server_io, buf, negotiated, &cfg, to_app, from_app).await;
        });
        let app = echo(App {
            rx,
            tx: Some(tx),
            server,
        });

        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(client_io.read_u8().await.expect("101 byte"));
        }
        let head = String::from_utf8(head).expect("ascii");
        assert!(head.starts_with("HTTP/1.1 101 "));
        assert!(head.contains("Sec-WebSocket-Protocol: echo\r\n"));
        let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
        assert_eq!(next(&mut client).await, WsMessage::text("early"));
        client_close(&mut client, 1001, "going").await;
        assert_eq!(app.await.expect("app"), closed(1001, "going"));
    }
}
