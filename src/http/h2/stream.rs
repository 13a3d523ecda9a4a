//! One HTTP/2 stream, start to end: its head becomes a `Job` on the same queue HTTP/1 uses (or
//! is answered here: a refusal, `--health-path`, a `--static` file, 503), its DATA frames feed
//! the app's input on demand, and the app's `Reply` events go out as HEADERS/DATA/trailers
//! within the client's flow-control window.
//!
//! Backpressure both ways: request DATA is acknowledged (its window released) only once it has
//! entered the app's bounded input channel, so a slow reader stops the client; response data
//! waits for send capacity, so a slow client stops the app through its bounded reply channel.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::head;
use crate::exchange::{
    BodyStream, ConnInfo, FileBody, Hangup, Job, Reply, RequestBody, Responder, ResponseHead,
};
use crate::http::conn::log_start::LogStart;
use crate::http::conn::{ConnConfig, InFlight};
use crate::http::error::RequestError;
use crate::http::response::error_response;
use crate::http::static_files::AnswerBody;

/// Replies in flight per stream before the app waits (as on HTTP/1).
const REPLY_CAPACITY: usize = 8;
/// Body pieces queued for the app before we stop acknowledging DATA.
const BODY_CAPACITY: usize = 4;
/// Largest body piece handed to the app: DATA frames already received are merged up to this.
const BODY_PIECE: usize = 256 * 1024;
/// How much of a file is read per step (no sendfile through HTTP/2 framing).
const FILE_PIECE: usize = 64 * 1024;

/// Serves one stream; runs as its own task beside the connection.
pub(super) async fn run(
    req: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    info: Arc<ConnInfo>,
    cfg: Arc<ConnConfig>,
    shutdown: watch::Receiver<bool>,
) {
    let (parts, mut body) = req.into_parts();
    let mut w = Writer::new(respond);
    let head = match head::request_head(&parts, body.is_end_stream(), &cfg.limits) {
        Ok(h) => h,
        Err(e) => return w.refuse(&info, &e),
    };
    w.is_head = head.is_head();
    if crate::http::health::is_probe(&head, cfg.health_path.as_deref()) {
        let (rh, page) = crate::http::health::response(*shutdown.borrow());
        let _ = w
            .on_reply(Reply::Complete(rh, Bytes::from_static(page)))
            .await;
        return;
    }
    // edge: scheme (a trusted peer's :scheme counts too, as in gunicorn), body limit
    let secure = match cfg.edge.admit(&info, &head) {
        Ok(s) => s || (info.forwarded_trusted && parts.uri.scheme_str() == Some("https")),
        Err(e) => return w.refuse(&info, &e),
    };
    let log_start = cfg
        .access_log
        .as_ref()
        .map(|_| LogStart::new(&head, secure));
    let metrics = cfg.metrics.map(crate::metrics::RequestMetrics::begin);
    if let Some(answer) = cfg.static_files.as_ref().and_then(|f| f.answer(&head)) {
        let _ = match answer.body {
            AnswerBody::Empty => w.on_reply(Reply::Complete(answer.head, Bytes::new())).await,
            AnswerBody::Page(p) => w.on_reply(Reply::Complete(answer.head, p)).await,
            AnswerBody::File(f) => w.send_file_whole(answer.head, f).await,
        };
        return w.finish(&cfg, &info, log_start, metrics);
    }
    let Some(_in_flight) = InFlight::enter(&cfg.in_flight, cfg.max_in_flight) else {
        log::warn!(
            "{} requests in progress (--worker-connections): answering 503",
            cfg.max_in_flight
        );
        let (rh, page) = error_page(
            503,
            "Service Unavailable",
            "The server is at its concurrency limit.",
        );
        let _ = w.on_reply(Reply::Complete(rh, page)).await;
        return;
    };

    let (request_body, pump) = take_body(&mut body).await;
    let (pump_err_tx, mut pump_err) = oneshot::channel();
    if let Some((demand, tx)) = pump {
        let limit = cfg.edge.limit_request_body;
        let idle = cfg.edge.body_timeout;
        let already = match &request_body {
            RequestBody::Stream(s) => s.prefix.len() as u64,
            _ => 0,
        };
        tokio::spawn(async move {
            if let Err(e) =
                pump_body(body, demand, tx, limit.saturating_sub(already), limit, idle).await
            {
                let _ = pump_err_tx.send(e);
            }
        });
    }
    let (reply_tx, mut reply_rx) = mpsc::channel(REPLY_CAPACITY);
    let hangup = cfg.watch_hangup.then(|| Arc::new(Hangup::default()));
    let job = Job {
        head,
        conn: info.clone(),
        secure,
        body: request_body,
        reply: Responder::new(reply_tx),
        hangup: hangup.clone(),
        websocket: None,
    };
    if cfg.jobs.push(job).is_err() {
        let _ = w.on_reply(Reply::Abort).await;
        return;
    }
    // tells the app when it is over, however it ends
    let _over = hangup.as_ref().map(|h| SetOnDrop(h.clone()));
    let mut pump_failed = false;
    loop {
        tokio::select! {
            biased;
            // a body over --limit-request-body, cut short, or too slow: answer it ourselves
            // when no head went out yet (never a 200 built on a truncated body). Before the
            // replies: the app's answer to the failed read (a 500) is often already queued.
            e = &mut pump_err, if !pump_failed => {
                pump_failed = true;
                if let Ok(e) = e {
                    if !w.head_sent() {
                        w.refuse(&info, &e);
                        break;
                    }
                }
            }
            reply = reply_rx.recv() => {
                match w.on_reply(reply.unwrap_or(Reply::Abort)).await {
                    Ok(false) => {}
                    Ok(true) => break,
                    Err(e) => {
                        log::debug!("HTTP/2 stream ended: {e}");
                        break;
                    }
                }
            }
            // the client cancelled the stream: ASGI's http.disconnect; WSGI's writes fail
            // once `reply_rx` is gone
            _ = poll_fn(|cx| w.poll_reset(cx)) => {
                if let Some(h) = &hangup {
                    h.set();
                }
                w.clean = false;
                break;
            }
        }
    }
    drop(reply_rx);
    w.finish(&cfg, &info, log_start, metrics);
}

/// A status page like HTTP/1's refusals.
fn error_page(code: u16, reason: &str, detail: &str) -> (ResponseHead, Bytes) {
    let mut raw = Vec::new();
    error_response(&mut raw, code, reason, detail);
    // take the body of the HTTP/1 rendering: the page is the same on both protocols
    let body = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(Bytes::new(), |i| Bytes::copy_from_slice(&raw[i + 4..]));
    let head = ResponseHead {
        code,
        status: Bytes::from(format!("{code} {reason}")),
        headers: b"Content-Type: text/html\r\n".to_vec(),
        content_length: None,
        close: false,
    };
    (head, body)
}

type Pump = (
    oneshot::Receiver<()>,
    mpsc::Sender<Result<Bytes, RequestError>>,
);

/// The body as the app gets it: whatever DATA already arrived (all of it, for the common
/// small request, which then needs no pump), and the pump's channel for the rest.
async fn take_body(body: &mut RecvStream) -> (RequestBody, Option<Pump>) {
    if body.is_end_stream() {
        return (RequestBody::Empty, None);
    }
    let mut prefix = BytesMut::new();
    while prefix.len() < BODY_PIECE {
        match ready_data(body).await {
            Some(Ok(d)) => {
                let _ = body.flow_control().release_capacity(d.len());
                prefix.extend_from_slice(&d);
            }
            // an error shows up again when the pump reads
            Some(Err(_)) | None => break,
        }
    }
    if body.is_end_stream() {
        return (RequestBody::Full(prefix.freeze()), None);
    }
    let (tx, rx) = mpsc::channel(BODY_CAPACITY);
    let (demand_tx, demand_rx) = oneshot::channel();
    let stream = BodyStream {
        prefix,
        chunks: rx,
        demand: Some(demand_tx),
    };
    (RequestBody::Stream(stream), Some((demand_rx, tx)))
}

/// The next DATA frame if it is already here; `None` when none is (or the body ended).
async fn ready_data(body: &mut RecvStream) -> Option<Result<Bytes, h2::Error>> {
    poll_fn(|cx| match body.poll_data(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Feeds the app's input once it asks for body, a piece at a time. A piece's window is
/// released only when the piece entered the app's (bounded) channel.
async fn pump_body(
    mut body: RecvStream,
    demand: oneshot::Receiver<()>,
    tx: mpsc::Sender<Result<Bytes, RequestError>>,
    mut allowance: u64,
    limit: u64,
    idle: Option<std::time::Duration>,
) -> Result<(), RequestError> {
    if demand.await.is_err() {
        return Ok(()); // the app finished without reading: h2 resets the rest of the stream
    }
    loop {
        let Ok(permit) = tx.reserve().await else {
            return Ok(()); // the app dropped its input
        };
        let deadline = idle.map(|t| tokio::time::Instant::now() + t);
        let first = match crate::http::edge::before(deadline, body.data()).await {
            None => Err(RequestError::Timeout),
            Some(None) => return Ok(()), // end of stream: dropping `tx` ends the app's input
            Some(Some(Ok(d))) => Ok(d),
            Some(Some(Err(_))) => Err(RequestError::IncompleteBody),
        };
        let mut piece = match first {
            Ok(d) => d,
            Err(e) => {
                permit.send(Err(e.clone()));
                return Err(e);
            }
        };
        // merge what else already arrived, so a large upload is a few wake-ups of the app
        if piece.len() < BODY_PIECE {
            let mut merged = BytesMut::from(&piece[..]);
            while merged.len() < BODY_PIECE {
                match ready_data(&mut body).await {
                    Some(Ok(d)) => merged.extend_from_slice(&d),
                    _ => break,
                }
            }
            piece = merged.freeze();
        }
        let n = piece.len();
        if limit > 0 {
            if n as u64 > allowance {
                let e = RequestError::BodyTooLarge { limit };
                permit.send(Err(e.clone()));
                return Err(e);
            }
            allowance -= n as u64;
        }
        permit.send(Ok(piece));
        let _ = body.flow_control().release_capacity(n);
    }
}

/// Sets a request's hangup flag when its stream ends, on every path out.
struct SetOnDrop(Arc<Hangup>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

/// The response side of a stream, and what the access log needs of it.
struct Writer {
    respond: SendResponse<Bytes>,
    /// Set once a head went out with a body to follow.
    send: Option<SendStream<Bytes>>,
    is_head: bool,
    head_sent: bool,
    /// END_STREAM went out (with the head of a bodiless response); later events are ignored.
    ended: bool,
    /// Body bytes still allowed under the app's Content-Length.
    remaining: Option<u64>,
    clean: bool,
    early_error: bool,
    sent: u64,
    status: Bytes,
    response_headers: Vec<u8>,
}

impl Writer {
    fn new(respond: SendResponse<Bytes>) -> Self {
        Writer {
            respond,
            send: None,
            is_head: false,
            head_sent: false,
            ended: false,
            remaining: None,
            clean: false,
            early_error: false,
            sent: 0,
            status: Bytes::new(),
            response_headers: Vec::new(),
        }
    }

    fn head_sent(&self) -> bool {
        self.head_sent
    }

    /// Answers a request refused before (or while) it reached the app.
    fn refuse(&mut self, info: &ConnInfo, e: &RequestError) {
        let (code, reason) = e.status();
        log::debug!(
            "invalid HTTP/2 request from {}: {e}",
            info.peer
                .map_or_else(|| "unix socket".to_owned(), |p| p.to_string())
        );
        let (head, page) = error_page(code, reason, &e.to_string());
        if self
            .send_head(&head, Some(page.len() as u64), page.is_empty())
            .is_ok()
        {
            if let Some(s) = &mut self.send {
                // a refusal is small: it fits any window h2 buffers for us
                let _ = s.send_data(page, true);
            }
        }
    }

    /// Waits for the client to reset the stream.
    fn poll_reset(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let r = match (&mut self.send, self.ended) {
            (_, true) => return Poll::Pending,
            (Some(s), _) => s.poll_reset(cx),
            (None, _) => self.respond.poll_reset(cx),
        };
        r.map(|_| ())
    }

    fn send_head(
        &mut self,
        head: &ResponseHead,
        known: Option<u64>,
        end: bool,
    ) -> Result<(), h2::Error> {
        let bodiless =
            self.is_head || head.code == 204 || head.code == 304 || (100..200).contains(&head.code);
        let resp = head::response(head, known);
        self.status = head.status.clone();
        self.response_headers.clone_from(&head.headers);
        self.head_sent = true;
        self.remaining = head.content_length;
        if bodiless || end {
            self.respond.send_response(resp, true)?;
            self.ended = true;
        } else {
            self.send = Some(self.respond.send_response(resp, false)?);
        }
        Ok(())
    }

    /// Applies one reply event. Returns true once the response is over.
    async fn on_reply(&mut self, reply: Reply) -> Result<bool, h2::Error> {
        match reply {
            Reply::Complete(head, body) => {
                let body = match head.content_length {
                    Some(n) => {
                        body.slice(..body.len().min(usize::try_from(n).unwrap_or(usize::MAX)))
                    }
                    None => body,
                };
                let short = head.content_length.is_some_and(|n| n > body.len() as u64);
                self.send_head(&head, Some(body.len() as u64), body.is_empty() && !short)?;
                if !self.ended {
                    // the last DATA frame carries END_STREAM: no empty frame after it
                    self.send_body(body, !short).await?;
                    if short {
                        // the app promised more than it gave: the client must not take the
                        // body for whole
                        self.reset();
                    }
                }
                self.clean = !short;
                Ok(true)
            }
            Reply::Head(head) => {
                self.send_head(&head, None, false)?;
                Ok(false)
            }
            Reply::Chunk(data) => {
                if !self.head_sent {
                    return self.abort();
                }
                self.send_body(data, false).await?;
                Ok(false)
            }
            Reply::File(file) => {
                if !self.head_sent {
                    return self.abort();
                }
                self.send_file(file).await?;
                Ok(false)
            }
            Reply::End | Reply::Trailers(_) => {
                if !self.head_sent {
                    return self.abort();
                }
                if !self.ended {
                    match (reply, self.remaining) {
                        // the app promised more than it gave: the client must not take the
                        // body for whole
                        (_, Some(n)) if n > 0 => return self.abort(),
                        (Reply::Trailers(lines), _) if !lines.is_empty() => {
                            if let Some(s) = &mut self.send {
                                s.send_trailers(head::trailers(&lines))?;
                            }
                        }
                        _ => self.end_body()?,
                    }
                }
                self.clean = true;
                Ok(true)
            }
            Reply::Abort | Reply::Accept { .. } => {
                if self.head_sent && !self.ended {
                    // RST_STREAM drops the stream's DATA still queued in h2; give the
                    // connection task one turn to write what the app already produced, so the
                    // client gets the partial body (then the reset) as an HTTP/1 client would
                    tokio::task::yield_now().await;
                }
                self.abort()
            }
        }
    }

    /// The app failed: 500 before any head; after it, RST_STREAM(INTERNAL_ERROR), which is
    /// how an HTTP/2 client learns the body is incomplete.
    fn abort(&mut self) -> Result<bool, h2::Error> {
        self.clean = false;
        if !self.head_sent {
            let (head, page) =
                error_page(500, "Internal Server Error", "The server failed to answer.");
            self.early_error = true;
            if self
                .send_head(&head, Some(page.len() as u64), false)
                .is_ok()
            {
                if let Some(s) = &mut self.send {
                    let _ = s.send_data(page, true);
                }
            }
        } else {
            self.reset();
        }
        Ok(true)
    }

    /// RST_STREAM(INTERNAL_ERROR) on a response whose head went out, unless it already ended.
    fn reset(&mut self) {
        if let (Some(s), false) = (&mut self.send, self.ended) {
            s.send_reset(Reason::INTERNAL_ERROR);
        }
        self.ended = true;
    }

    fn end_body(&mut self) -> Result<(), h2::Error> {
        if let Some(s) = &mut self.send {
            s.send_data(Bytes::new(), true)?;
        }
        self.ended = true;
        Ok(())
    }

    /// Sends body bytes as the client's window allows, never more than a Content-Length;
    /// `end`: they are the last ones.
    async fn send_body(&mut self, mut data: Bytes, end: bool) -> Result<(), h2::Error> {
        if self.ended {
            return Ok(());
        }
        if data.is_empty() && end {
            return self.end_body();
        }
        if let Some(left) = &mut self.remaining {
            data.truncate(usize::try_from(*left).unwrap_or(usize::MAX));
            *left -= data.len() as u64;
        }
        let Some(s) = &mut self.send else {
            return Ok(());
        };
        while !data.is_empty() {
            s.reserve_capacity(data.len());
            let cap = loop {
                let c = s.capacity();
                if c > 0 {
                    break c;
                }
                match poll_fn(|cx| s.poll_capacity(cx)).await {
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Err(Reason::CANCEL.into()),
                }
            };
            let piece = data.split_to(cap.min(data.len()));
            self.sent += piece.len() as u64;
            s.send_data(piece, end && data.is_empty())?;
        }
        self.ended |= end;
        Ok(())
    }

    /// A file body, read a window's worth at a time (no sendfile inside HTTP/2 frames).
    async fn send_file(&mut self, file: FileBody) -> Result<(), h2::Error> {
        use std::os::unix::fs::FileExt;
        let mut offset = file.offset;
        let end = file.offset.saturating_add(file.len);
        while offset < end && !self.ended {
            let want = usize::try_from(end - offset)
                .unwrap_or(FILE_PIECE)
                .min(FILE_PIECE);
            let mut buf = vec![0; want];
            // a local regular file: a short, bounded read on the I/O thread
            let n = match file.file.read_at(&mut buf, offset) {
                Ok(0) | Err(_) => return Err(Reason::INTERNAL_ERROR.into()),
                Ok(n) => n,
            };
            buf.truncate(n);
            offset += n as u64;
            self.send_body(Bytes::from(buf), false).await?;
        }
        Ok(())
    }

    /// A static file answer: head with its length, the file, the end.
    async fn send_file_whole(
        &mut self,
        head: ResponseHead,
        file: FileBody,
    ) -> Result<bool, h2::Error> {
        let len = file.len;
        self.send_head(&head, Some(len), len == 0)?;
        self.send_file(file).await?;
        if !self.ended {
            self.end_body()?;
        }
        self.clean = true;
        Ok(true)
    }

    /// Access log and metrics, as HTTP/1 reports them: finished responses and our own 500s.
    fn finish(
        &mut self,
        cfg: &ConnConfig,
        info: &Arc<ConnInfo>,
        log_start: Option<LogStart>,
        metrics: Option<crate::metrics::InFlight>,
    ) {
        if !(self.clean || self.early_error) {
            return;
        }
        if let Some(m) = metrics {
            m.finish(&self.status);
        }
        if let (Some(log), Some(start)) = (&cfg.access_log, log_start) {
            let headers = if log.wants_response_headers() {
                std::mem::take(&mut self.response_headers)
            } else {
                Vec::new()
            };
            log.log(&start.finish_with(
                info.clone(),
                std::mem::take(&mut self.status),
                self.sent,
                headers,
            ));
        }
    }
}
