//! Serves one HTTP/1.x connection: reads heads, hands jobs to the app threads, pumps request
//! bodies on demand and writes the replies, request after request (keep-alive, pipelining).
//!
//! It runs on the I/O thread and never blocks it; it never touches Python. A request is taken
//! off the socket only after the previous response is finished, so pipelined responses come out
//! in order without any reordering machinery.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) mod log_start;
mod pump;
mod static_serve;
mod uwsgi;
mod websocket;

use log_start::LogStart;
use pump::{pump_step, BodyTx, Pump, PumpEvent};

use super::body::{Decoder, Step};
use super::error::RequestError;
use super::h2::Sniff;
use super::request::{parse_head, Framing, Limits, RequestHead, Version};
use super::response::{choose_framing, chunk_header, encode_head, error_response, BodyFraming};
use super::socket::{read_more, send_file, write_all, Socket};
use crate::accesslog::AccessLog;
use crate::exchange::{
    BodyStream, ConnInfo, Hangup, Job, Reply, RequestBody, Responder, ResponseHead,
};

/// Most request body handed to the app in one piece; also how much the pump reads at once.
/// Large pieces mean fewer thread wake-ups per megabyte of upload.
const BODY_PIECE: usize = 256 * 1024;
/// Replies in flight per connection before the app thread waits (response backpressure).
const REPLY_CAPACITY: usize = 8;
/// Body pieces in flight before the connection stops reading the socket.
const BODY_CAPACITY: usize = 4;
/// Unread body we are willing to read and discard to keep a connection alive.
const MAX_DRAIN: u64 = 1024 * 1024;
/// Read buffer capacity a connection may keep between requests.
const IDLE_BUFFER_LIMIT: usize = 64 * 1024;
/// How long an idle keep-alive connection may still bring a request once a graceful stop began.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);
/// How long and how much we read from a client after our last response, while closing.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;
/// Larger chunks are written straight from the app's buffer instead of copied.
const COPY_LIMIT: usize = 16 * 1024;

/// What every connection of a worker shares.
pub struct ConnConfig {
    pub limits: Limits,
    /// Idle time allowed between requests; zero disables keep-alive.
    pub keepalive: Duration,
    pub jobs: Arc<crate::job_queue::JobQueue>,
    /// `None` when `--access-logfile` is unset: then nothing is gathered per request.
    pub access_log: Option<Arc<AccessLog>>,
    /// `None` unless `--statsd-host` or `--metrics-bind` is set.
    pub metrics: Option<crate::metrics::RequestMetrics>,
    /// This worker's entries for the control socket's `show requests`; `None` without one.
    pub requests: Option<&'static crate::master::control::requests::WorkerRequests>,
    /// Watch for clients hanging up mid-request and tell the app (ASGI's `http.disconnect`).
    pub watch_hangup: bool,
    /// Requests allowed in the app at once before new ones get 503 (0 = no limit).
    pub max_in_flight: usize,
    /// Requests in the app now (all connections of this worker).
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// Accept WebSocket upgrades with these settings (ASGI); `None`: upgrades are ordinary
    /// requests.
    pub websocket: Option<crate::ws::WsConfig>,
    /// `--health-path`: answered here, without the app.
    pub health_path: Option<String>,
    /// `--static` mounts, answered on this thread without the app; `None` when there are none.
    pub static_files: Option<crate::http::static_files::StaticFiles>,
    /// Trusted proxies, PROXY protocol, body limit, slow-client timeouts (`http::edge`).
    pub edge: super::edge::EdgeOptions,
    /// `--certfile`: every connection is TLS (`http::tls`), with this worker's config.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ConnConfig {
    pub fn new(
        limits: Limits,
        keepalive: Duration,
        jobs: Arc<crate::job_queue::JobQueue>,
        access_log: Option<Arc<AccessLog>>,
    ) -> Self {
        ConnConfig {
            limits,
            keepalive,
            jobs,
            access_log,
            watch_hangup: false,
            max_in_flight: 0,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            websocket: None,
            health_path: None,
            metrics: None,
            requests: None,
            static_files: None,
            edge: super::edge::EdgeOptions::default(),
            tls: None,
        }
    }
}

/// Counts a request as in the app for as long as it lives (HTTP/1 and HTTP/2 alike).
pub(crate) struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    /// `None` when `limit` (if not 0) requests are already in.
    pub(crate) fn enter(counter: &'a std::sync::atomic::AtomicUsize, limit: usize) -> Option<Self> {
        use std::sync::atomic::Ordering;
        let now = counter.fetch_add(1, Ordering::Relaxed);
        if limit != 0 && now >= limit {
            counter.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(InFlight(counter))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Serves `sock` until the client leaves, an error closes it, or shutdown is requested.
pub async fn serve<S: Socket>(
    sock: S,
    info: Arc<ConnInfo>,
    cfg: Arc<ConnConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let (reply_tx, reply_rx) = mpsc::channel(REPLY_CAPACITY);
    let mut conn = Conn {
        sock,
        info,
        cfg,
        shutdown,
        rbuf: BytesMut::with_capacity(8 * 1024),
        wbuf: Vec::with_capacity(8 * 1024),
        reply_tx,
        reply_rx,
        served: 0,
    };
    // edge: the PROXY protocol preamble, before the first request
    match super::edge::open(
        &conn.sock,
        &mut conn.rbuf,
        conn.info.clone(),
        &conn.cfg.edge,
    )
    .await
    {
        Ok(info) => conn.info = info,
        Err(super::edge::OpenError::Refused(e)) => {
            let _ = conn.refuse(e).await;
            return conn.linger().await;
        }
        Err(e) => return log::debug!("connection closed: {e}"),
    }
    // --http2-cleartext: once per connection, never per request
    let sniff = conn.cfg.edge.http2.sniff(conn.info.forwarded_trusted);
    if sniff != Sniff::Off {
        use super::h2::detect::{sniff as read_preface, Preface, Rewind};
        match read_preface(&conn.sock, &mut conn.rbuf, &conn.cfg.edge).await {
            Ok(Preface::Match) => {
                let Conn {
                    sock,
                    info,
                    cfg,
                    shutdown,
                    rbuf,
                    ..
                } = conn;
                let io = Rewind::new(rbuf.freeze(), sock);
                return super::h2::serve(io, info, cfg, shutdown).await;
            }
            Ok(_) if conn.rbuf.is_empty() => return,
            Ok(Preface::Mismatch) if sniff == Sniff::Either => {}
            // a prior-knowledge-only port expects HTTP/2 from this peer (gunicorn: 400)
            Ok(_) => {
                let _ = conn.refuse(RequestError::NotHttp2).await;
                return conn.linger().await;
            }
            Err(e) => return log::debug!("connection closed: {e}"),
        }
    }
    // --protocol uwsgi: packets instead of HTTP heads (decided per connection, not per request)
    let served = if conn.cfg.edge.uwsgi.is_some() {
        conn.run_uwsgi().await.map(|()| None)
    } else {
        conn.run().await
    };
    match served {
        Ok(Some(session)) => return websocket::run_session(conn, session).await,
        Ok(None) => {}
        Err(e) => log::debug!("connection closed: {e}"),
    }
    conn.linger().await;
}

struct Conn<S> {
    sock: S,
    info: Arc<ConnInfo>,
    cfg: Arc<ConnConfig>,
    shutdown: watch::Receiver<bool>,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    reply_tx: mpsc::Sender<Reply>,
    reply_rx: mpsc::Receiver<Reply>,
    /// Requests answered on this connection so far.
    served: u64,
}

/// Why a connection ended early; only logged at debug level.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    #[error("refused request: {0}")]
    Refused(RequestError),
    #[error("the application stopped accepting work")]
    AppGone,
    #[error("refused WebSocket upgrade: {0}")]
    Upgrade(crate::ws::HandshakeError),
}

/// How the response in progress is being written.
#[derive(Clone, Copy)]
struct Writing {
    framing: BodyFraming,
    /// Body bytes still allowed under a Content-Length.
    remaining: u64,
    keep_alive: bool,
}

impl<S: Socket> Conn<S> {
    /// Serves requests until the connection should close; `Some` when it became a WebSocket.
    async fn run(&mut self) -> Result<Option<websocket::Session>, ConnError> {
        loop {
            let Some(head) = self.read_head().await? else {
                return Ok(None);
            };
            if super::health::is_probe(&head, self.cfg.health_path.as_deref()) {
                if !self.answer_probe(&head).await? {
                    return Ok(None);
                }
                continue;
            }
            // edge: scheme from a trusted proxy, Content-Length against --limit-request-body
            let secure = match self.cfg.edge.admit(&self.info, &head) {
                Ok(secure) => secure,
                Err(e) => return Err(self.refuse(e).await),
            };
            if self.cfg.websocket.is_some() {
                match crate::ws::upgrade_request(&head) {
                    Ok(None) => {}
                    Ok(Some(req)) => return self.websocket(head, req, secure).await,
                    Err(e) => return Err(self.refuse_upgrade(e).await),
                }
            }
            // --static: answered here, before (and instead of) a job for the app
            let answer = self.cfg.static_files.as_ref().and_then(|f| f.answer(&head));
            let keep_alive = match answer {
                Some(answer) => self.serve_static(head, answer, secure).await?,
                None => {
                    let version = head.version;
                    self.exchange(head, secure, version).await?
                }
            };
            self.served += 1;
            // an upload grew the read buffer; an idle connection should not keep that memory
            if self.rbuf.is_empty() && self.rbuf.capacity() > IDLE_BUFFER_LIMIT {
                self.rbuf = BytesMut::with_capacity(8 * 1024);
            }
            // A response that went out without `Connection: close` promised the client this
            // connection: even if a graceful stop began meanwhile, the next head is read
            // (`read_message` gives it a short grace then) rather than the socket closed under
            // a request the client may already be sending.
            if !keep_alive {
                return Ok(None);
            }
        }
    }

    /// Answers a `--health-path` probe; returns whether the connection stays open.
    async fn answer_probe(&mut self, head: &RequestHead) -> Result<bool, ConnError> {
        let keep = head.keep_alive && !self.cfg.keepalive.is_zero();
        self.wbuf.clear();
        super::health::answer(&mut self.wbuf, head, *self.shutdown.borrow(), keep);
        self.flush().await?;
        self.served += 1;
        Ok(keep && !*self.shutdown.borrow())
    }

    /// Reads until a full head is buffered; `None` when the client closed or idled out.
    async fn read_head(&mut self) -> Result<Option<RequestHead>, ConnError> {
        self.read_message(parse_head).await
    }

    /// `read_head` for any message format (`parse` is `parse_head` or `uwsgi::parse`).
    async fn read_message<T, P>(&mut self, parse: P) -> Result<Option<T>, ConnError>
    where
        P: Fn(&mut BytesMut, &Limits) -> Result<Option<T>, RequestError>,
    {
        // edge: --header-timeout runs from the connection's start or the next head's first byte
        let mut deadline = None;
        loop {
            match parse(&mut self.rbuf, &self.cfg.limits) {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) => {}
                Err(e) => return Err(self.refuse(e).await),
            }
            let n = if self.rbuf.is_empty() && self.served > 0 {
                // between requests: wait at most the keep-alive time, and not at all once a
                // shutdown has begun (a fresh connection still gets its first request read)
                let mut shutdown = self.shutdown.clone();
                if *shutdown.borrow() {
                    return self.read_already_sent(&parse).await;
                }
                tokio::select! {
                    r = tokio::time::timeout(self.cfg.keepalive, read_more(&self.sock, &mut self.rbuf)) => match r {
                        Ok(r) => r?,
                        Err(_) => return Ok(None),
                    },
                    _ = shutdown.changed() => return self.read_already_sent(&parse).await,
                }
            } else {
                let until = *deadline.get_or_insert_with(|| self.cfg.edge.head_deadline());
                match super::edge::before(until, read_more(&self.sock, &mut self.rbuf)).await {
                    Some(r) => r?,
                    // nothing sent at all: nobody to answer
                    None if self.rbuf.is_empty() => return Ok(None),
                    None => return Err(self.refuse(RequestError::Timeout).await),
                }
            };
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// Closes gracefully: FIN first, then read (and drop) what the client still sends, briefly.
    /// Closing a socket with unread input makes the kernel send RST, which can destroy our last
    /// response (a 400, say) before the client reads it.
    async fn linger(&mut self) {
        self.sock.shutdown_write().await;
        let mut budget = LINGER_BYTES;
        let drain = async {
            loop {
                self.rbuf.clear();
                match read_more(&self.sock, &mut self.rbuf).await {
                    Ok(n) if n > 0 && n <= budget => budget -= n,
                    _ => return,
                }
            }
        };
        let _ = tokio::time::timeout(LINGER_TIME, drain).await;
    }

    /// Shutting down with an idle keep-alive connection. The client may be about to reuse it
    /// (it saw no `Connection: close`), so give it a short grace: a request that arrives is
    /// answered with `Connection: close`; silence closes the connection. Closing at once
    /// would race the client's next request and fail it.
    async fn read_already_sent<T, P>(&mut self, parse: &P) -> Result<Option<T>, ConnError>
    where
        P: Fn(&mut BytesMut, &Limits) -> Result<Option<T>, RequestError>,
    {
        loop {
            let more = tokio::time::timeout(
                SHUTDOWN_GRACE.min(self.cfg.keepalive.max(Duration::from_millis(100))),
                read_more(&self.sock, &mut self.rbuf),
            )
            .await;
            if !matches!(more, Ok(Ok(n)) if n > 0) {
                return Ok(None);
            }
            match parse(&mut self.rbuf, &self.cfg.limits) {
                Ok(Some(head)) => return Ok(Some(head)),
                Ok(None) => {}
                Err(e) => return Err(self.refuse(e).await),
            }
        }
    }

    /// Writes the error response for a refused request; the connection then closes.
    async fn refuse(&mut self, err: RequestError) -> ConnError {
        let (code, reason) = err.status();
        log::debug!("invalid request from {}: {err}", self.peer());
        self.wbuf.clear();
        error_response(&mut self.wbuf, code, reason, &err.to_string());
        if let Err(e) = write_all(&self.sock, &self.wbuf).await {
            return ConnError::Io(e);
        }
        ConnError::Refused(err)
    }

    fn peer(&self) -> String {
        self.info
            .peer
            .map_or_else(|| "unix socket".to_owned(), |p| p.to_string())
    }

    /// Runs one request through the app and writes its response, framed for `version` (the
    /// request's; HTTP/1.0 for uwsgi, whose responses are never chunked). Returns whether the
    /// connection may carry another request.
    async fn exchange(
        &mut self,
        head: RequestHead,
        secure: bool,
        version: Version,
    ) -> Result<bool, ConnError> {
        let cfg = self.cfg.clone();
        let Some(_in_flight) = self.enter_or_refuse(&cfg).await? else {
            return Ok(false);
        };
        let mut decoder = Decoder::with_limit(head.framing, cfg.edge.limit_request_body);
        let (body, mut pump) = match self.take_body(&head, &mut decoder) {
            Ok(b) => b,
            Err(e) => return Err(self.refuse(e).await),
        };
        let req = RequestFacts {
            version,
            is_head: head.is_head(),
            // gunicorn: --keep-alive 0 turns keep-alive off
            keep_alive: head.keep_alive && !self.cfg.keepalive.is_zero(),
        };
        let expect_continue = head.expect_continue;
        let log_start = self
            .cfg
            .access_log
            .as_ref()
            .map(|_| LogStart::new(&head, secure));
        let hangup = self.cfg.watch_hangup.then(|| Arc::new(Hangup::default()));
        let in_flight = self.cfg.metrics.map(crate::metrics::RequestMetrics::begin);
        let _shown = cfg.requests.map(|t| t.enter(&head.method, &head.path));
        let job = Job {
            head,
            conn: self.info.clone(),
            secure,
            body,
            reply: Responder::new(self.reply_tx.clone()),
            hangup: hangup.clone(),
            websocket: None,
        };
        self.cfg.jobs.push(job).map_err(|_| ConnError::AppGone)?;
        // tells the app when it is over, however it ends (including an error return)
        let _over = hangup.as_ref().map(|h| SetOnDrop(h.clone()));

        let mut out = Outcome::default();
        let mut demanded = false;
        let mut client_gone = false;
        let mut watching = hangup.is_some();
        let idle = cfg.edge.body_timeout;
        loop {
            tokio::select! {
                biased;
                reply = self.reply_rx.recv() => {
                    let mut done = self.on_reply(reply.unwrap_or(Reply::Abort), &req, &mut out).await?;
                    // coalesce whatever else is already queued into the same write
                    while !done {
                        let Ok(reply) = self.reply_rx.try_recv() else { break };
                        done = self.on_reply(reply, &req, &mut out).await?;
                    }
                    self.flush().await?;
                    if done {
                        break;
                    }
                }
                step = pump_step(&self.sock, &mut self.rbuf, &mut decoder, &mut pump, watching, idle) => {
                    match step {
                        Ok(PumpEvent::Hangup) => {
                            watching = false;
                            client_gone = true;
                            if let Some(h) = &hangup {
                                h.set();
                            }
                        }
                        Ok(PumpEvent::MoreInput) => watching = false,
                        Ok(PumpEvent::Demanded) => {
                            demanded = true;
                            if expect_continue && out.writing.is_none() {
                                write_all(&self.sock, b"HTTP/1.1 100 Continue\r\n\r\n").await?;
                            }
                        }
                        Ok(PumpEvent::Progress) => {}
                        // never let the app's answer to a truncated body go out as if whole
                        Err(ConnError::Refused(e)) if out.writing.is_none() => {
                            return Err(self.refuse(e).await)
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        // metrics count what the access log logs; a dropped `in_flight` only ends the gauge
        if let Some(m) = in_flight.filter(|_| out.clean || out.early_error) {
            m.finish(&out.status);
        }
        if let (Some(log), Some(start)) = (&self.cfg.access_log, log_start) {
            // gunicorn logs finished responses and its own 500s, not responses cut short
            if out.clean || out.early_error {
                log.log(&start.finish(self.info.clone(), &mut out));
            }
        }
        let keep_alive = out.clean && !client_gone && out.writing.is_some_and(|w| w.keep_alive);
        drop(pump);
        if !keep_alive {
            return Ok(false);
        }
        if decoder.is_done() {
            return Ok(true);
        }
        if expect_continue && !demanded {
            // the client waits for a 100 that will never come and may or may not send the
            // body, so where the next request starts is unknown
            return Ok(false);
        }
        // the app left part of its body unread; the next request starts after it
        self.drain(&mut decoder).await
    }

    /// Counts a request (or websocket) in; past `--worker-connections` answers 503 instead and
    /// returns `None`, after which the connection closes.
    async fn enter_or_refuse<'a>(
        &mut self,
        cfg: &'a ConnConfig,
    ) -> Result<Option<InFlight<'a>>, ConnError> {
        if let Some(guard) = InFlight::enter(&cfg.in_flight, cfg.max_in_flight) {
            return Ok(Some(guard));
        }
        log::warn!(
            "{} requests in progress (--worker-connections): answering 503",
            cfg.max_in_flight
        );
        self.wbuf.clear();
        error_response(
            &mut self.wbuf,
            503,
            "Service Unavailable",
            "The server is at its concurrency limit.",
        );
        write_all(&self.sock, &self.wbuf).await?;
        Ok(None)
    }

    /// Splits off the body already in the buffer; decides whether the rest must be pumped.
    fn take_body(
        &mut self,
        head: &RequestHead,
        decoder: &mut Decoder,
    ) -> Result<(RequestBody, Pump), RequestError> {
        if head.framing == Framing::Empty {
            return Ok((RequestBody::Empty, Pump::Off));
        }
        if let Framing::Length(n) = head.framing {
            if self.rbuf.len() as u64 >= n {
                *decoder = Decoder::new(Framing::Empty);
                let whole = self.rbuf.split_to(n as usize).freeze();
                return Ok((RequestBody::Full(whole), Pump::Off));
            }
        }
        let mut prefix = BytesMut::new();
        loop {
            match decoder.decode(&mut self.rbuf, usize::MAX)? {
                Step::Data(d) => prefix.extend_from_slice(&d),
                Step::NeedMore => break,
                Step::Done => return Ok((RequestBody::Full(prefix.freeze()), Pump::Off)),
            }
        }
        let (tx, rx) = mpsc::channel(BODY_CAPACITY);
        let (demand_tx, demand_rx) = oneshot::channel();
        let stream = BodyStream {
            prefix,
            chunks: rx,
            demand: Some(demand_tx),
        };
        Ok((
            RequestBody::Stream(stream),
            Pump::AwaitDemand(demand_rx, BodyTx::new(tx)),
        ))
    }

    /// Applies one reply event to the write buffer. Returns true once the response is over.
    async fn on_reply(
        &mut self,
        reply: Reply,
        req: &RequestFacts,
        out: &mut Outcome,
    ) -> Result<bool, ConnError> {
        let shutting_down = *self.shutdown.borrow();
        match reply {
            Reply::Complete(head, body) => {
                let known = Some(body.len() as u64);
                let framing = choose_framing(&head, req.version, req.is_head, known);
                let mut keep = req.keep_alive && !head.close && !shutting_down;
                let body = match framing {
                    BodyFraming::Length(n) => {
                        // an app that promised more than it gave leaves the client waiting
                        // for bytes: closing is the only honest end
                        keep &= body.len() as u64 >= n;
                        body.slice(..body.len().min(usize::try_from(n).unwrap_or(usize::MAX)))
                    }
                    BodyFraming::None => Bytes::new(),
                    _ => body,
                };
                self.note_head(&head, out);
                out.sent += body.len() as u64;
                encode_head(&mut self.wbuf, req.version, &head, framing, known, keep);
                self.append(&body).await?;
                out.writing = Some(Writing {
                    framing,
                    remaining: 0,
                    keep_alive: keep,
                });
                out.clean = true;
                Ok(true)
            }
            Reply::Head(head) => {
                let framing = choose_framing(&head, req.version, req.is_head, None);
                let keep = req.keep_alive
                    && !head.close
                    && !shutting_down
                    && framing != BodyFraming::UntilClose;
                self.note_head(&head, out);
                encode_head(&mut self.wbuf, req.version, &head, framing, None, keep);
                let remaining = match framing {
                    BodyFraming::Length(n) => n,
                    _ => 0,
                };
                out.writing = Some(Writing {
                    framing,
                    remaining,
                    keep_alive: keep,
                });
                Ok(false)
            }
            Reply::Chunk(data) => {
                let Some(mut w) = out.writing else {
                    return self.abort_before_head(out);
                };
                match w.framing {
                    BodyFraming::None => {}
                    BodyFraming::Length(_) => {
                        let n = data
                            .len()
                            .min(usize::try_from(w.remaining).unwrap_or(usize::MAX));
                        w.remaining -= n as u64;
                        out.sent += n as u64;
                        self.append(&data[..n]).await?;
                    }
                    // an empty chunk would end the body early
                    BodyFraming::Chunked if data.is_empty() => {}
                    BodyFraming::Chunked => {
                        out.sent += data.len() as u64;
                        chunk_header(&mut self.wbuf, data.len());
                        self.append(&data).await?;
                        self.wbuf.extend_from_slice(b"\r\n");
                    }
                    BodyFraming::UntilClose => {
                        out.sent += data.len() as u64;
                        self.append(&data).await?
                    }
                }
                out.writing = Some(w);
                Ok(false)
            }
            Reply::File(file) => {
                let Some(mut w) = out.writing else {
                    return self.abort_before_head(out);
                };
                let len = match w.framing {
                    BodyFraming::None => 0,
                    BodyFraming::Length(_) => file.len.min(w.remaining),
                    _ => file.len,
                };
                if len > 0 {
                    if w.framing == BodyFraming::Chunked {
                        chunk_header(&mut self.wbuf, usize::try_from(len).unwrap_or(usize::MAX));
                    }
                    self.flush().await?;
                    send_file(&self.sock, &file.file, file.offset, len).await?;
                    out.sent += len;
                    if w.framing == BodyFraming::Chunked {
                        self.wbuf.extend_from_slice(b"\r\n");
                    }
                    if let BodyFraming::Length(_) = w.framing {
                        w.remaining -= len;
                    }
                }
                out.writing = Some(w);
                Ok(false)
            }
            Reply::End | Reply::Trailers(_) => {
                let Some(mut w) = out.writing else {
                    return self.abort_before_head(out);
                };
                match (w.framing, reply) {
                    (BodyFraming::Chunked, Reply::Trailers(fields)) => {
                        self.wbuf.extend_from_slice(b"0\r\n");
                        self.wbuf.extend_from_slice(&fields);
                        self.wbuf.extend_from_slice(b"\r\n");
                    }
                    // only a chunked body can carry trailers; otherwise they are dropped
                    (BodyFraming::Chunked, _) => self.wbuf.extend_from_slice(b"0\r\n\r\n"),
                    (BodyFraming::Length(_), _) if w.remaining > 0 => w.keep_alive = false,
                    _ => {}
                }
                out.writing = Some(w);
                out.clean = true;
                Ok(true)
            }
            // only a websocket exchange may accept an upgrade
            Reply::Accept { .. } if out.writing.is_none() => self.abort_before_head(out),
            Reply::Accept { .. } | Reply::Abort => {
                if out.writing.is_none() {
                    return self.abort_before_head(out);
                }
                // The head is out: closing without the chunked terminator (or short of the
                // Content-Length) is how the client learns the body is incomplete.
                out.clean = false;
                Ok(true)
            }
        }
    }

    /// The app side gave up before any head: answer 500 and close.
    fn abort_before_head(&mut self, out: &mut Outcome) -> Result<bool, ConnError> {
        error_response(
            &mut self.wbuf,
            500,
            "Internal Server Error",
            "The server failed to answer.",
        );
        out.writing = Some(Writing {
            framing: BodyFraming::None,
            remaining: 0,
            keep_alive: false,
        });
        out.clean = false;
        out.early_error = true;
        out.status = Bytes::from_static(b"500 Internal Server Error");
        out.response_headers.clear();
        Ok(true)
    }

    /// Keeps what the access log and metrics need of the response head (nothing when both
    /// are off).
    fn note_head(&self, head: &ResponseHead, out: &mut Outcome) {
        if self.cfg.metrics.is_some() {
            out.status = head.status.clone();
        }
        if let Some(log) = &self.cfg.access_log {
            out.status = head.status.clone();
            if log.wants_response_headers() {
                out.response_headers.clone_from(&head.headers);
            }
        }
    }

    /// Queues body bytes, writing large pieces straight from the app's buffer.
    async fn append(&mut self, data: &[u8]) -> io::Result<()> {
        if data.len() <= COPY_LIMIT {
            self.wbuf.extend_from_slice(data);
            return Ok(());
        }
        self.flush().await?;
        write_all(&self.sock, data).await
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.wbuf.is_empty() {
            write_all(&self.sock, &self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Reads and discards the rest of an unread body, within a budget, to keep the connection.
    async fn drain(&mut self, decoder: &mut Decoder) -> Result<bool, ConnError> {
        let mut budget = MAX_DRAIN;
        loop {
            match decoder.decode(&mut self.rbuf, usize::MAX) {
                Ok(Step::Data(d)) => {
                    let Some(left) = budget.checked_sub(d.len() as u64) else {
                        return Ok(false);
                    };
                    budget = left;
                }
                Ok(Step::Done) => return Ok(true),
                Ok(Step::NeedMore) => {
                    let read = tokio::time::timeout(
                        self.cfg.keepalive,
                        read_more(&self.sock, &mut self.rbuf),
                    )
                    .await;
                    if !matches!(read, Ok(Ok(n)) if n > 0) {
                        return Ok(false);
                    }
                }
                Err(_) => return Ok(false),
            }
        }
    }
}

/// Sets a request's hangup flag when its exchange ends, on every path out.
struct SetOnDrop(Arc<Hangup>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// What the response writer needs to know of the request.
struct RequestFacts {
    version: Version,
    is_head: bool,
    keep_alive: bool,
}

/// Progress of the response in flight.
#[derive(Default)]
struct Outcome {
    /// Set once the head is queued.
    writing: Option<Writing>,
    /// The response ended as framed (not aborted).
    clean: bool,
    /// We answered 500 because the app failed before its head.
    early_error: bool,
    /// Body bytes written (framing excluded).
    sent: u64,
    /// Status and (if the format wants them) headers, kept only for the access log.
    status: Bytes,
    response_headers: Vec<u8>,
}
