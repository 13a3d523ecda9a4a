//! The error log: gunicorn's line shape `[2026-11-24 10:00:00 +0000] [pid] [LEVEL] message` on
//! stderr or in the `--error-logfile`, behind the `log` facade so every module just calls
//! `log::info!` and friends.
//!
//! With `--statsd-host`, error and warning lines are also counted (`gunicorn.log.error`,
//! `gunicorn.log.warning`), and lines logged with the `EXCEPTION` target count as
//! `gunicorn.log.exception`, as gunicorn's `log.exception` does for a failed request.
//!
//! On a terminal (stderr is a TTY, the log goes to stderr, and `NO_COLOR` is unset or empty,
//! see https://no-color.org) level names and URLs are coloured; files, pipes and syslog
//! always get plain text.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

struct ErrorLog;

/// The `log` target for an error with a traceback (gunicorn's `log.exception`), e.g.
/// `log::error!(target: EXCEPTION, ...)`.
pub const EXCEPTION: &str = "ferricorn::exception";

static LOGGER: ErrorLog = ErrorLog;

/// The `--error-logfile` (path, open file) when it is not `-`; `None` = stderr. Forked
/// workers inherit it.
static FILE: Mutex<Option<(String, File)>> = Mutex::new(None);

/// Installs the error log at `level`, writing to `target` (`-` = stderr, else a file opened
/// for appending). Later calls change the level and the destination.
pub fn init(level: LevelFilter, target: &str) -> io::Result<()> {
    let file = match target {
        "-" => None,
        path => Some((path.to_owned(), open_append(path)?)),
    };
    let color = file.is_none()
        && std::io::IsTerminal::is_terminal(&io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    COLOR.store(color, Ordering::Relaxed);
    *FILE.lock().unwrap_or_else(|p| p.into_inner()) = file;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    Ok(())
}

/// Whether lines get ANSI colours (decided in `init`; forked workers inherit it).
static COLOR: AtomicBool = AtomicBool::new(false);

/// `--capture-output`: stdout and stderr (the app's prints, tracebacks written by C code)
/// go to the error log file. Set once at startup, after daemonizing.
static CAPTURE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Reopens the error log file by name (USR1, after rotation); stderr needs nothing.
pub fn reopen() -> io::Result<()> {
    let mut guard = FILE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((path, file)) = &mut *guard {
        *file = open_append(path)?;
        if CAPTURE.load(std::sync::atomic::Ordering::Relaxed) {
            point_stdio_at(file)?;
        }
    }
    Ok(())
}

/// gunicorn's `--capture-output`: fds 1 and 2 become the error log file, so whatever the app
/// prints lands there too. Without an error log file (`-`) there is nothing to do.
pub fn capture_output() -> io::Result<()> {
    let guard = FILE.lock().unwrap_or_else(|p| p.into_inner());
    let Some((_, file)) = &*guard else {
        return Ok(());
    };
    CAPTURE.store(true, std::sync::atomic::Ordering::Relaxed);
    point_stdio_at(file)
}

fn point_stdio_at(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let _ = io::stdout().flush();
    let _ = io::stderr().flush();
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2 atomically replaces `fd` with a copy of the log file's descriptor,
        // which is open for as long as `file` (borrowed here) is.
        if unsafe { libc::dup2(file.as_raw_fd(), fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn open_append(path: &str) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Log for ErrorLog {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match record.level() {
            Level::Error => "ERROR",
            Level::Warn => "WARNING",
            Level::Info => "INFO",
            Level::Debug | Level::Trace => "DEBUG",
        };
        let line = if COLOR.load(Ordering::Relaxed) {
            let message = highlight_urls(&record.args().to_string());
            format!(
                "[{}] [{}] [{}{level}{RESET}] {message}\n",
                timestamp(),
                std::process::id(),
                level_color(record.level()),
            )
        } else {
            format!(
                "[{}] [{}] [{}] {}\n",
                timestamp(),
                std::process::id(),
                level,
                record.args()
            )
        };
        write_raw(&line);
        if let Some(syslog) = crate::syslog::global() {
            let severity = match record.level() {
                Level::Error => 3,
                Level::Warn => 4,
                Level::Info => 6,
                Level::Debug | Level::Trace => 7,
            };
            // gunicorn's syslog format: no timestamp (syslog adds its own)
            let text = format!("[{}] [{level}] {}", std::process::id(), record.args());
            syslog.send(severity, "error", &text);
        }
        if let Some(statsd) = crate::metrics::statsd::global() {
            if let Some(metric) = metric_for(record.level(), record.target()) {
                statsd.increment(metric);
            }
        }
    }

    fn flush(&self) {
        let _ = io::stderr().flush();
    }
}

const RESET: &str = "\x1b[0m";
/// Underlined cyan: what terminals usually show for a link.
const URL_COLOR: &str = "\x1b[4;36m";

fn level_color(level: Level) -> &'static str {
    match level {
        Level::Error => "\x1b[1;31m",
        Level::Warn => "\x1b[33m",
        Level::Info => "\x1b[32m",
        Level::Debug | Level::Trace => "\x1b[2m",
    }
}

/// Colours every word that is an address a person may click or copy: `http://`, `https://`,
/// `ws://`, `wss://` and `unix:` words (the `Listening at:` lines, `Metrics at:`).
fn highlight_urls(message: &str) -> String {
    const SCHEMES: [&str; 5] = ["http://", "https://", "ws://", "wss://", "unix:"];
    let mut out = String::with_capacity(message.len() + 16);
    for (i, word) in message.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if SCHEMES.iter().any(|s| word.starts_with(s)) {
            out.push_str(URL_COLOR);
            out.push_str(word);
            out.push_str(RESET);
        } else {
            out.push_str(word);
        }
    }
    out
}

/// gunicorn's StatsD logger counts these; info and debug lines are not counted.
fn metric_for(level: Level, target: &str) -> Option<&'static str> {
    match level {
        Level::Error if target == EXCEPTION => Some("gunicorn.log.exception"),
        Level::Error => Some("gunicorn.log.error"),
        Level::Warn => Some("gunicorn.log.warning"),
        _ => None,
    }
}

/// Writes text to the error log's stream as is (`wsgi.errors`), in one write.
pub fn write_raw(text: &str) {
    let file = FILE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, file)) = &*file {
        let _ = (&*file).write_all(text.as_bytes());
        return;
    }
    drop(file);
    let mut err = io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
    let _ = err.flush();
}

/// Local time as `%Y-%m-%d %H:%M:%S %z`, the way gunicorn's default log format prints it.
fn timestamp() -> String {
    // SAFETY: `time(NULL)` only reads the clock; `localtime_r` writes into our own `tm`, and
    // `strftime` writes at most `buf.len()` bytes into our buffer and returns how many.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return String::from("-");
        }
        let mut buf = [0u8; 64];
        let n = libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%Y-%m-%d %H:%M:%S %z".as_ptr(),
            &tm,
        );
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_url_words_are_highlighted() {
        assert_eq!(
            highlight_urls("Listening at: http://127.0.0.1:8000 (12)"),
            "Listening at: \x1b[4;36mhttp://127.0.0.1:8000\x1b[0m (12)"
        );
        assert_eq!(
            highlight_urls("at: unix:/run/a.sock"),
            "at: \x1b[4;36munix:/run/a.sock\x1b[0m"
        );
        assert_eq!(highlight_urls("no address here"), "no address here");
    }

    #[test]
    fn errors_warnings_and_exceptions_map_to_gunicorns_log_counters() {
        assert_eq!(
            metric_for(Level::Error, "ferricorn::master"),
            Some("gunicorn.log.error")
        );
        assert_eq!(
            metric_for(Level::Error, EXCEPTION),
            Some("gunicorn.log.exception")
        );
        assert_eq!(metric_for(Level::Warn, "x"), Some("gunicorn.log.warning"));
        assert_eq!(metric_for(Level::Info, "x"), None);
        assert_eq!(metric_for(Level::Debug, EXCEPTION), None);
    }
}
