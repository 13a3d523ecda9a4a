//! Writes a `--static` answer (`http::static_files`) on the connection: no job, no app thread,
//! no Python. It frames, sends the file with sendfile, logs and counts the response like any
//! other, and keeps the connection alive when the request allows.

use super::{Conn, ConnError, LogStart, Outcome};
use crate::http::body::Decoder;
use crate::http::request::RequestHead;
use crate::http::response::{choose_framing, encode_head, BodyFraming};
use crate::http::socket::{send_file, Socket};
use crate::http::static_files::{Answer, AnswerBody};

impl<S: Socket> Conn<S> {
    /// Writes `answer` to `head`. Returns whether the connection may carry another request.
    pub(super) async fn serve_static(
        &mut self,
        head: RequestHead,
        answer: Answer,
        secure: bool,
    ) -> Result<bool, ConnError> {
        let log_start = self
            .cfg
            .access_log
            .as_ref()
            .map(|_| LogStart::new(&head, secure));
        let in_flight = self.cfg.metrics.map(crate::metrics::RequestMetrics::begin);
        let keep_alive =
            head.keep_alive && !self.cfg.keepalive.is_zero() && !*self.shutdown.borrow();
        let known = answer.body_len();
        let framing = choose_framing(&answer.head, head.version, head.is_head(), known);
        let mut out = Outcome::default();
        self.note_head(&answer.head, &mut out);
        encode_head(
            &mut self.wbuf,
            head.version,
            &answer.head,
            framing,
            known,
            keep_alive,
        );
        match (framing, answer.body) {
            (BodyFraming::Length(_), AnswerBody::Page(page)) => {
                out.sent = page.len() as u64;
                self.wbuf.extend_from_slice(&page);
            }
            (BodyFraming::Length(_), AnswerBody::File(file)) => {
                self.flush().await?;
                send_file(&self.sock, &file.file, file.offset, file.len).await?;
                out.sent = file.len;
            }
            _ => {}
        }
        self.flush().await?;
        out.clean = true;
        if let Some(m) = in_flight {
            m.finish(&out.status);
        }
        if let (Some(log), Some(start)) = (&self.cfg.access_log, log_start) {
            log.log(&start.finish(self.info.clone(), &mut out));
        }
        if !keep_alive {
            return Ok(false);
        }
        // a GET may carry a body; nobody reads it, so skip it to find the next request
        let mut decoder = Decoder::new(head.framing);
        if decoder.is_done() {
            return Ok(true);
        }
        if head.expect_continue {
            // the client waits for a 100 that will not come: where its next request starts
            // is unknown
            return Ok(false);
        }
        self.drain(&mut decoder).await
    }
}
