//! One WebSocket session on an upgraded socket: client messages to the app, app messages to the
//! client, server pings, and the closing handshake — until the connection is over.
//!
//! Frame headers are parsed and written by tungstenite's `FrameHeader`; the message layer is
//! ours (see the `ws` module doc for why): reassembling fragments, answering pings, checking
//! UTF-8 as it arrives, permessage-deflate, and the policy — which close code ends a failure,
//! backpressure towards a slow app, the keepalive, how long a closing handshake may take. It
//! never touches Python and never blocks: the app side is two bounded channels.

use std::io::Cursor;
use std::ops::ControlFlow;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tungstenite::protocol::frame::coding::{CloseCode, Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use super::deflate::{Codec, InflateError};
use super::{FromClient, Message, Negotiated, ToClient, WsConfig};

/// How long a closing handshake may take: our Close written and the client's answer read.
/// Bounded so that a vanished client cannot hold the connection (uvicorn/websockets wait 10 s;
/// a worker's graceful stop is also waiting on us).
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// A Close frame's payload is at most 125 bytes, two of which are the code.
const MAX_CLOSE_REASON: usize = 123;
/// Control frames carry at most 125 bytes (RFC 6455 §5.5).
const MAX_CONTROL: u64 = 125;
/// Payloads up to this size are copied behind their header and written in one call.
const COPY_LIMIT: usize = 16 * 1024;

/// How a session ended: the code and reason the app is told.
type End = (u16, String);

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
    // one task owns both halves, so split's internal lock is never contended
    let (rd, wr) = tokio::io::split(sock);
    let mut session = Session {
        rd,
        wr,
        rbuf: leftover,
        wbuf: Vec::with_capacity(256),
        max_message: cfg.max_message_size,
        partial: None,
        deflate: negotiated.deflate.map(Codec::new),
        to_app,
        from_app,
        pending: None,
        keepalive: Keepalive::new(cfg),
    };
    let (code, reason) = session.serve().await;
    let Session { rd, wr, to_app, .. } = session;
    // Close the socket before waiting for the app to take the news, which may be never.
    drop((rd, wr));
    let _ = to_app.send(FromClient::Closed { code, reason }).await;
}

/// A data message whose final fragment has not arrived yet.
struct Partial {
    text: bool,
    compressed: bool,
    payload: BytesMut,
    /// Length of the prefix already known to be valid UTF-8 (uncompressed text only).
    valid_utf8: usize,
}

struct Session<S> {
    rd: ReadHalf<S>,
    wr: WriteHalf<S>,
    /// Bytes read and not yet parsed into frames.
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    max_message: usize,
    partial: Option<Partial>,
    deflate: Option<Codec>,
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
    async fn serve(&mut self) -> End {
        let timer = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(timer);
        let mut armed = None;
        loop {
            // frames already buffered (the leftover, or several per read) come before more I/O
            if self.pending.is_none() {
                if let ControlFlow::Break(end) = self.process_buffered().await {
                    return end;
                }
            }
            // Pings and pong deadlines only run while we read: a pong sitting unread behind a
            // message the app has no room for is not the client's fault.
            let deadline = self.keepalive.deadline().filter(|_| self.pending.is_none());
            // read in large pieces: a BytesMut without spare room would be read 64 bytes at a time
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(16 * 1024);
            }
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
                            if self.write_frame(OpCode::Control(Control::Ping), false, b"").await.is_err() {
                                return lost();
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
                        if self.send_message(m).await.is_err() {
                            return lost();
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
                n = self.rd.read_buf(&mut self.rbuf), if self.pending.is_none() => {
                    if !matches!(n, Ok(n) if n > 0) {
                        return lost();
                    }
                }
            }
        }
    }

    /// Handles every complete frame in the read buffer, stopping early when a message waits for
    /// room in the app's channel.
    async fn process_buffered(&mut self) -> ControlFlow<End> {
        while self.pending.is_none() {
            let (header, payload) = match self.parse_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err((code, reason)) => return ControlFlow::Break(self.fail(code, reason).await),
            };
            self.on_frame(header, payload).await?;
        }
        ControlFlow::Continue(())
    }

    /// Takes one complete frame off the read buffer, unmasked. Sizes are checked from the header
    /// alone, so an oversized frame is refused before its payload is buffered.
    fn parse_frame(&mut self) -> Result<Option<(FrameHeader, BytesMut)>, (u16, &'static str)> {
        let mut cursor = Cursor::new(&self.rbuf[..]);
        let Some((header, len)) =
            FrameHeader::parse(&mut cursor).map_err(|_| (1002, "invalid frame header"))?
        else {
            return Ok(None);
        };
        let header_len = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
        if matches!(header.opcode, OpCode::Control(_)) {
            if len > MAX_CONTROL {
                return Err((1002, "control frame too long"));
            }
        } else {
            let so_far = self.partial.as_ref().map_or(0, |p| p.payload.len()) as u64;
            if so_far.saturating_add(len) > self.max_message as u64 {
                return Err((1009, "message too big"));
            }
        }
        // len fits in usize: checked against max_message or 125 above
        let total = header_len.saturating_add(len as usize);
        if self.rbuf.len() < total {
            self.rbuf.reserve(total - self.rbuf.len());
            return Ok(None);
        }
        let mut payload = self.rbuf.split_to(total).split_off(header_len);
        // RFC 6455 §5.1: a server must fail a connection on an unmasked client frame
        let Some(mask) = header.mask else {
            return Err((1002, "unmasked client frame"));
        };
        unmask(&mut payload, mask);
        Ok(Some((header, payload)))
    }

    async fn on_frame(&mut self, header: FrameHeader, payload: BytesMut) -> ControlFlow<End> {
        if header.rsv2 || header.rsv3 {
            return ControlFlow::Break(self.fail(1002, "reserved bit set").await);
        }
        let data = match header.opcode {
            OpCode::Control(control) => {
                if !header.is_final || header.rsv1 {
                    return ControlFlow::Break(self.fail(1002, "invalid control frame").await);
                }
                return self.on_control(control, payload).await;
            }
            OpCode::Data(data) => data,
        };
        let starts = match data {
            Data::Text | Data::Binary => true,
            Data::Continue => false,
            Data::Reserved(_) => {
                return ControlFlow::Break(self.fail(1002, "reserved opcode").await)
            }
        };
        if starts == self.partial.is_some() {
            let why = if starts {
                "new message inside a fragmented one"
            } else {
                "continuation without a message"
            };
            return ControlFlow::Break(self.fail(1002, why).await);
        }
        // RSV1 marks a compressed message, on its first frame only (RFC 7692 §6)
        if header.rsv1 && (!starts || self.deflate.is_none()) {
            return ControlFlow::Break(self.fail(1002, "unexpected RSV1").await);
        }
        let partial = match &mut self.partial {
            Some(p) => {
                p.payload.extend_from_slice(&payload);
                p
            }
            None => self.partial.insert(Partial {
                text: data == Data::Text,
                compressed: header.rsv1,
                payload,
                valid_utf8: 0,
            }),
        };
        // fail fast on invalid UTF-8 rather than after the whole message (Autobahn 6.4)
        if partial.text && !partial.compressed {
            match std::str::from_utf8(&partial.payload[partial.valid_utf8..]) {
                Ok(_) => partial.valid_utf8 = partial.payload.len(),
                // error_len() is None when the input merely ends inside a character
                Err(e) if e.error_len().is_none() => partial.valid_utf8 += e.valid_up_to(),
                Err(_) => return ControlFlow::Break(self.fail(1007, "invalid UTF-8").await),
            }
        }
        if !header.is_final {
            return ControlFlow::Continue(());
        }
        let Some(message) = self.partial.take() else {
            return ControlFlow::Continue(());
        };
        let bytes = match (message.compressed, &mut self.deflate) {
            (true, Some(codec)) => match codec.decompress(&message.payload, self.max_message) {
                Ok(inflated) => BytesMut::from(&inflated[..]),
                Err(InflateError::TooBig(_)) => {
                    return ControlFlow::Break(self.fail(1009, "message too big").await)
                }
                Err(InflateError::Corrupt) => {
                    return ControlFlow::Break(self.fail(1007, "invalid deflate data").await)
                }
            },
            _ => message.payload,
        };
        let message = if message.text {
            match String::from_utf8(Vec::from(bytes)) {
                Ok(s) => Message::Text(s),
                Err(_) => return ControlFlow::Break(self.fail(1007, "invalid UTF-8").await),
            }
        } else {
            Message::Binary(bytes.freeze())
        };
        self.deliver(message);
        ControlFlow::Continue(())
    }

    async fn on_control(&mut self, control: Control, payload: BytesMut) -> ControlFlow<End> {
        match control {
            Control::Ping => {
                if self
                    .write_frame(OpCode::Control(Control::Pong), false, &payload)
                    .await
                    .is_err()
                {
                    return ControlFlow::Break(lost());
                }
            }
            Control::Pong => self.keepalive.pong(),
            Control::Close => return ControlFlow::Break(self.on_close(&payload).await),
            Control::Reserved(_) => {
                return ControlFlow::Break(self.fail(1002, "reserved opcode").await)
            }
        }
        ControlFlow::Continue(())
    }

    /// The client started the closing handshake: echo its code, then the server closes TCP
    /// first (RFC 6455 §7.1.1) by returning.
    async fn on_close(&mut self, payload: &[u8]) -> End {
        let (code, reason) = match payload {
            [] => (1005, String::new()),
            [_] => return self.fail(1002, "one-byte close payload").await,
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !CloseCode::from(code).is_allowed() {
                    return self.fail(1002, "invalid close code").await;
                }
                match std::str::from_utf8(reason) {
                    Ok(r) => (code, r.to_owned()),
                    Err(_) => return self.fail(1007, "invalid UTF-8 in close reason").await,
                }
            }
        };
        // the echo repeats the client's code and reason (an empty payload for 1005)
        let reply = self.write_frame(OpCode::Control(Control::Close), false, payload);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, reply).await;
        (code, reason)
    }

    fn deliver(&mut self, message: Message) {
        match self.to_app.try_send(FromClient::Message(message)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.pending = Some(event),
            // the app stopped listening; it ends the session through from_app
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7) with the code §7.4.1 gives the problem. After a
    /// framing error the rest of the stream cannot be trusted, so the client's Close is not
    /// awaited: it could only be found by parsing further.
    async fn fail(&mut self, code: u16, reason: &str) -> End {
        log::debug!("websocket: closing with {code}: {reason}");
        self.close(code, reason, false).await
    }

    /// Sends our Close and, if `wait`, reads until the client's answer (dropping data still in
    /// flight), all within [`CLOSE_TIMEOUT`].
    async fn close(&mut self, code: u16, reason: &str, wait: bool) -> End {
        let reason = truncate(reason, MAX_CLOSE_REASON);
        let mut payload = code.to_be_bytes().to_vec();
        payload.extend_from_slice(reason.as_bytes());
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let write = self.write_frame(OpCode::Control(Control::Close), false, &payload);
        let sent = tokio::time::timeout_at(deadline, write).await;
        if wait && matches!(sent, Ok(Ok(()))) {
            let _ = tokio::time::timeout_at(deadline, self.await_close()).await;
        }
        (code, reason.to_owned())
    }

    /// Reads frames until the client's Close, the end of the stream or a framing error.
    async fn await_close(&mut self) {
        loop {
            loop {
                match self.parse_frame() {
                    Ok(Some((h, _))) if h.opcode == OpCode::Control(Control::Close) => return,
                    Ok(Some((h, _))) => {
                        // keep fragment bookkeeping right so sizes stay checked while draining
                        if let OpCode::Data(_) = h.opcode {
                            self.partial = None;
                        }
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            self.rbuf.reserve(4096);
            if !matches!(self.rd.read_buf(&mut self.rbuf).await, Ok(n) if n > 0) {
                return;
            }
        }
    }

    async fn send_message(&mut self, message: Message) -> std::io::Result<()> {
        let (opcode, data) = match &message {
            Message::Text(s) => (Data::Text, s.as_bytes()),
            Message::Binary(b) => (Data::Binary, &b[..]),
        };
        match &mut self.deflate {
            Some(codec) => {
                let packed = codec.compress(data);
                self.write_frame(OpCode::Data(opcode), true, &packed).await
            }
            None => self.write_frame(OpCode::Data(opcode), false, data).await,
        }
    }

    /// Writes one unfragmented, unmasked frame (servers never mask, RFC 6455 §5.1).
    async fn write_frame(
        &mut self,
        opcode: OpCode,
        rsv1: bool,
        payload: &[u8],
    ) -> std::io::Result<()> {
        let header = FrameHeader {
            is_final: true,
            rsv1,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
        };
        self.wbuf.clear();
        header
            .format(payload.len() as u64, &mut self.wbuf)
            .map_err(std::io::Error::other)?;
        if payload.len() <= COPY_LIMIT {
            self.wbuf.extend_from_slice(payload);
            self.wr.write_all(&self.wbuf).await?;
        } else {
            self.wr.write_all(&self.wbuf).await?;
            self.wr.write_all(payload).await?;
        }
        self.wr.flush().await
    }
}

/// XORs the client's mask over a payload, eight bytes at a time (even unoptimised test builds
/// then keep up with Autobahn's 16 MiB messages).
fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = payload.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u64::from_ne_bytes(word) ^ wide).to_ne_bytes());
    }
    // the chunks cover a multiple of 4 bytes, so the tail starts at mask byte 0 again
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// The connection went away without a closing handshake (RFC 6455 §7.1.5: code 1006).
fn lost() -> End {
    log::debug!("websocket: connection lost");
    (1006, String::new())
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
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

    use crate::ws::deflate::{Codec, DeflateParams};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use tokio_tungstenite::WebSocketStream;

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
            let got = app.await.expect("app");
            assert!(
                matches!(got, FromClient::Closed { code: 1002, .. }),
                "{what}: {got:?}"
            );
        }
    }

    #[tokio::test]
    async fn malformed_client_close_frames_are_answered_as_rfc_6455_says() {
        let cases: [(&[u8], u16); 4] = [
            (&[0x03], 1002),                   // a code needs two bytes
            (&[0x03, 0xed], 1002),             // 1005 may not be sent
            (&[0x03, 0xe7], 1002),             // 999 is not a close code
            (&[0x03, 0xe8, 0xff, 0xfe], 1007), // reason not UTF-8
        ];
        for (payload, code) in cases {
            let (mut client_io, server_io) = tokio::io::duplex(64 * 1024);
            let app = echo(spawn_session(server_io, BytesMut::new(), quiet(), 4));
            let mut frame = vec![0x88, 0x80 | payload.len() as u8, 0, 0, 0, 0];
            frame.extend_from_slice(payload);
            client_io.write_all(&frame).await.expect("write");
            let mut client = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
            assert_eq!(close_of(&next(&mut client).await).0, code, "{payload:?}");
            let got = app.await.expect("app");
            assert!(
                matches!(got, FromClient::Closed { code: c, .. } if c == code),
                "{payload:?}: {got:?}"
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
        assert_eq!(
            app.await.expect("app"),
            closed(1002, "unmasked client frame")
        );
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

    #[test]
    fn unmask_matches_the_byte_by_byte_definition() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..40 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow, "length {len}");
        }
    }

    /// A masked frame with any first byte, for hand-made compressed frames.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![first];
        match payload.len() {
            n @ 0..=125 => f.push(0x80 | n as u8),
            n => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
        }
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    fn deflate_session(cfg: WsConfig) -> (DuplexStream, tokio::task::JoinHandle<FromClient>) {
        let (client_io, server_io) = tokio::io::duplex(256 * 1024);
        let (to_app, rx) = mpsc::channel(4);
        let (tx, from_app) = mpsc::channel(8);
        let negotiated = Negotiated {
            subprotocol: None,
            deflate: Some(DeflateParams::default()),
        };
        let server = tokio::spawn(async move {
            run(
                server_io,
                BytesMut::new(),
                negotiated,
                &cfg,
                to_app,
                from_app,
            )
            .await;
        });
        let app = echo(App {
            rx,
            tx: Some(tx),
            server,
        });
        (client_io, app)
    }

    /// Reads one unmasked server frame: (first byte, payload).
    async fn server_frame(io: &mut DuplexStream) -> (u8, Vec<u8>) {
        let first = io.read_u8().await.expect("frame");
        let len = match io.read_u8().await.expect("length") {
            126 => usize::from(io.read_u16().await.expect("length")),
            127 => usize::try_from(io.read_u64().await.expect("length")).expect("fits"),
            n => usize::from(n),
        };
        let mut payload = vec![0; len];
        io.read_exact(&mut payload).await.expect("payload");
        (first, payload)
    }

    #[tokio::test]
    async fn compressed_messages_are_inflated_and_echoes_are_compressed() {
        let (mut io, app) = deflate_session(quiet());
        let mut client = Codec::new(DeflateParams::default());
        let text = "ferricorn speaks deflate ".repeat(40);
        // twice: the second message reuses the first one's LZ77 context
        for _ in 0..2 {
            let packed = client.compress(text.as_bytes());
            io.write_all(&masked(0xC1, &packed)).await.expect("write");
            let (first, payload) = server_frame(&mut io).await;
            assert_eq!(first, 0xC1, "FIN + RSV1 + text");
            assert!(payload.len() < text.len() / 5);
            let echoed = client.decompress(&payload, 1 << 20).expect("inflates");
            assert_eq!(echoed, text.as_bytes());
        }
        // uncompressed messages stay allowed once deflate is on (RFC 7692 §6)
        io.write_all(&masked(0x82, b"raw")).await.expect("write");
        let (first, payload) = server_frame(&mut io).await;
        assert_eq!(first, 0xC2);
        assert_eq!(client.decompress(&payload, 100).expect("inflates"), b"raw");
        io.write_all(&masked(0x88, &1000u16.to_be_bytes()))
            .await
            .expect("close");
        assert_eq!(app.await.expect("app"), closed(1000, ""));
    }

    #[tokio::test]
    async fn deflate_bomb_closes_1009_and_rsv1_on_continuation_closes_1002() {
        let cfg = WsConfig {
            max_message_size: 64 * 1024,
            ..quiet()
        };
        let (mut io, app) = deflate_session(cfg.clone());
        let bomb = Codec::new(DeflateParams::default()).compress(&vec![b'a'; 1 << 20]);
        io.write_all(&masked(0xC2, &bomb)).await.expect("write");
        let (first, payload) = server_frame(&mut io).await;
        assert_eq!((first, &payload[..2]), (0x88, &1009u16.to_be_bytes()[..]));
        assert_eq!(app.await.expect("app"), closed(1009, "message too big"));

        let (mut io, app) = deflate_session(cfg);
        io.write_all(&masked(0x42, &[0x00])).await.expect("write");
        io.write_all(&masked(0xC0, &[0x00])).await.expect("write");
        let (first, payload) = server_frame(&mut io).await;
        assert_eq!((first, &payload[..2]), (0x88, &1002u16.to_be_bytes()[..]));
        assert_eq!(app.await.expect("app"), closed(1002, "unexpected RSV1"));
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
