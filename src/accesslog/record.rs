//! What one access log line is made of, gathered by the connection when a response finishes.
//!
//! A plain struct of owned (mostly reference-counted) bytes, so building one costs a few
//! refcount increments and no formatting; rendering happens later, in `render`. Nothing here
//! does I/O except reading the clock and the local UTC offset.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::exchange::ConnInfo;

/// One finished request/response pair.
#[derive(Debug, Clone)]
pub struct Record {
    pub conn: Arc<ConnInfo>,
    /// When the line was logged (gunicorn's `t` is the logging time, not the arrival time).
    pub time: LogTime,
    pub method: Bytes,
    /// The request-target as sent (RAW_URI).
    pub target: Bytes,
    /// The path, still percent-encoded.
    pub path: Bytes,
    pub query: Bytes,
    /// `HTTP/1.1`.
    pub protocol: &'static str,
    /// The request's wsgi.url_scheme is https (a trusted proxy said so).
    pub secure: bool,
    /// Request header fields in arrival order, names as sent.
    pub request_headers: Vec<(Bytes, Bytes)>,
    /// The status line's text as the app gave it, e.g. `200 OK`.
    pub status: Bytes,
    /// Body bytes written to the client.
    pub sent: u64,
    /// The app's response headers as `name: value\r\n` lines; empty unless the format has
    /// `{...}o` atoms.
    pub response_headers: Vec<u8>,
    pub duration: Duration,
    pub pid: u32,
}

/// A point in time with the local UTC offset in force then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogTime {
    /// Seconds since the Unix epoch.
    pub unix: i64,
    /// Seconds east of UTC.
    pub offset: i64,
}

impl LogTime {
    pub fn now() -> LogTime {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        LogTime {
            unix,
            offset: local_offset(unix),
        }
    }
}

/// The local timezone's offset from UTC at `unix`, as `localtime` sees it (honours `TZ`).
fn local_offset(unix: i64) -> i64 {
    let t = unix as libc::time_t;
    // SAFETY: `localtime_r` reads `t` and writes only into our zeroed `tm`; both are locals
    // that outlive the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff as i64
    }
}
