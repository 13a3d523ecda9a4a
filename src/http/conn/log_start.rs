//! What the access log needs of a request, taken before the head goes to the app.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::Outcome;
use crate::accesslog::{LogTime, Record};
use crate::exchange::ConnInfo;
use crate::http::request::RequestHead;

/// The request side of an access log record, taken before the head goes to the app. Every
/// byte field is a refcounted slice of the request buffer: no copies.
pub(crate) struct LogStart {
    started: Instant,
    method: Bytes,
    target: Bytes,
    path: Bytes,
    query: Bytes,
    protocol: &'static str,
    secure: bool,
    headers: Vec<(Bytes, Bytes)>,
}

impl LogStart {
    pub(crate) fn new(head: &RequestHead, secure: bool) -> Self {
        LogStart {
            started: Instant::now(),
            method: head.method.clone(),
            target: head.target.clone(),
            path: head.path.clone(),
            query: head.query.clone(),
            protocol: head.version.as_str(),
            secure,
            headers: head.headers.clone(),
        }
    }

    pub(super) fn finish(self, conn: Arc<ConnInfo>, out: &mut Outcome) -> Record {
        let status = std::mem::take(&mut out.status);
        let headers = std::mem::take(&mut out.response_headers);
        self.finish_with(conn, status, out.sent, headers)
    }

    /// The record, from the response's status line, body bytes sent and headers (if kept).
    pub(crate) fn finish_with(
        self,
        conn: Arc<ConnInfo>,
        status: Bytes,
        sent: u64,
        response_headers: Vec<u8>,
    ) -> Record {
        Record {
            conn,
            time: LogTime::now(),
            method: self.method,
            target: self.target,
            path: self.path,
            query: self.query,
            protocol: self.protocol,
            secure: self.secure,
            request_headers: self.headers,
            status,
            sent,
            response_headers,
            duration: self.started.elapsed(),
            pid: std::process::id(),
        }
    }
}
