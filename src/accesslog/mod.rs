//! Gunicorn's access log (`--access-logfile`, `--access-logformat`), formatted and written in
//! Rust on the I/O thread: Python threads never see it.
//!
//! The format is parsed once at startup (`format`); a connection fills a `Record` when a
//! response finishes, and `AccessLog::log` renders and writes it (`render`, `writer`). When
//! the log is off the connection holds `None` and builds nothing. With `--access-log-json`
//! the same record is written as one JSON object (`json`) instead of the format line.

pub mod format;
pub mod json;
pub mod record;
pub mod render;
pub mod writer;

use std::io;

pub use format::{Format, DEFAULT_FORMAT};
pub use record::{LogTime, Record};
use writer::Writer;

/// An open access log: its parsed format and its destination.
pub struct AccessLog {
    format: Format,
    /// `--access-log-json`: write JSON objects; `format` is then unused.
    json: bool,
    writer: Writer,
    /// PATH_INFO (`U`) leaves this prefix out, as the WSGI environ does.
    script_name: String,
}

impl AccessLog {
    /// Opens `target` (`-` = stdout) for lines in `format`, which the settings layer has
    /// already validated, or for JSON objects when `json` is set.
    pub fn open(target: &str, format: &str, json: bool) -> io::Result<AccessLog> {
        let format = Format::parse(format).map_err(io::Error::other)?;
        Ok(AccessLog {
            format,
            json,
            writer: Writer::open(target)?,
            script_name: std::env::var("SCRIPT_NAME").unwrap_or_default(),
        })
    }

    /// Whether records need the response headers (the format has `{...}o` atoms).
    pub fn wants_response_headers(&self) -> bool {
        !self.json && self.format.wants_response_headers()
    }

    /// Renders `rec` and writes it as one line.
    pub fn log(&self, rec: &Record) {
        let mut line = String::with_capacity(256);
        if self.json {
            json::render(rec, &self.script_name, &mut line);
        } else {
            render::render(&self.format, rec, &self.script_name, &mut line);
        }
        line.push('\n');
        self.writer.write_line(line.as_bytes());
    }

    /// Reopens the file by name after rotation (USR1).
    pub fn reopen(&self) -> io::Result<()> {
        self.writer.reopen()
    }
}
