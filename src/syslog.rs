//! `--log-syslog`: error log lines (and access log lines, unless
//! `--disable-redirect-access-to-syslog`) also go to syslog, in the shape gunicorn's
//! `SysLogHandler` gives them: `<PRI>gunicorn.PREFIX.error: [pid] [LEVEL] message\0`.
//!
//! The socket is opened in the master before the first fork; workers inherit it. Sends never
//! block and their failures are dropped: logging must not stall or fail a request.

use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::sync::{Mutex, OnceLock};

/// Where the lines go.
enum Sink {
    Udp(UdpSocket),
    Tcp(Mutex<TcpStream>),
    UnixDgram(UnixDatagram),
    UnixStream(Mutex<UnixStream>),
}

pub struct Syslog {
    sink: Sink,
    facility: u8,
    /// `gunicorn.PREFIX`, to which `.error` or `.access` is added.
    prefix: String,
    pub access_too: bool,
}

static SYSLOG: OnceLock<Syslog> = OnceLock::new();

/// The configured syslog, if any.
pub fn global() -> Option<&'static Syslog> {
    SYSLOG.get()
}

/// Why `--log-syslog` cannot start; names the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum SyslogError {
    #[error("--log-syslog-to / syslog_addr = {0:?}: expected udp://HOST:PORT, tcp://HOST:PORT or unix://PATH[#dgram|#stream]")]
    Address(String),
    #[error("--log-syslog-facility / syslog_facility = {0:?}: unknown facility (e.g. user, daemon, local0)")]
    Facility(String),
    #[error("--log-syslog-to / syslog_addr = {addr:?}: {source}")]
    Connect { addr: String, source: io::Error },
}

/// Opens the syslog socket and makes it the process's (inherited by forked workers).
pub fn init(addr: &str, facility: &str, prefix: &str, access_too: bool) -> Result<(), SyslogError> {
    let facility = facility_code(facility).ok_or_else(|| SyslogError::Facility(facility.into()))?;
    let connect = |source| SyslogError::Connect {
        addr: addr.to_owned(),
        source,
    };
    let sink = match parse_address(addr).ok_or_else(|| SyslogError::Address(addr.into()))? {
        Address::Udp(host, port) => {
            let target = (host.as_str(), port)
                .to_socket_addrs()
                .map_err(connect)?
                .next()
                .ok_or_else(|| connect(io::Error::other("no address")))?;
            let bind = if target.is_ipv4() {
                "0.0.0.0:0"
            } else {
                "[::]:0"
            };
            let sock = UdpSocket::bind(bind).map_err(connect)?;
            sock.connect(target).map_err(connect)?;
            sock.set_nonblocking(true).map_err(connect)?;
            Sink::Udp(sock)
        }
        Address::Tcp(host, port) => {
            let sock = TcpStream::connect((host.as_str(), port)).map_err(connect)?;
            sock.set_nonblocking(true).map_err(connect)?;
            Sink::Tcp(Mutex::new(sock))
        }
        Address::Unix(path, stream) => {
            // like Python's SysLogHandler: a datagram socket unless told, then a stream
            let dgram = (!stream)
                .then(|| {
                    let s = UnixDatagram::unbound().ok()?;
                    s.connect(&path).ok()?;
                    s.set_nonblocking(true).ok()?;
                    Some(s)
                })
                .flatten();
            match dgram {
                Some(s) => Sink::UnixDgram(s),
                None => {
                    let s = UnixStream::connect(&path).map_err(connect)?;
                    s.set_nonblocking(true).map_err(connect)?;
                    Sink::UnixStream(Mutex::new(s))
                }
            }
        }
    };
    let _ = SYSLOG.set(Syslog {
        sink,
        facility,
        prefix: format!("gunicorn.{prefix}"),
        access_too,
    });
    Ok(())
}

impl Syslog {
    /// Sends one line. `severity` is syslog's (3 error, 4 warning, 6 info, 7 debug); `log` is
    /// `error` or `access`.
    pub fn send(&self, severity: u8, log: &str, line: &str) {
        let msg = format!(
            "<{}>{}.{log}: {}\0",
            u16::from(self.facility) * 8 + u16::from(severity),
            self.prefix,
            line.trim_end_matches('\n')
        );
        let bytes = msg.as_bytes();
        let _ = match &self.sink {
            Sink::Udp(s) => s.send(bytes).map(drop),
            Sink::UnixDgram(s) => s.send(bytes).map(drop),
            Sink::Tcp(s) => s.lock().map_or(Ok(()), |mut s| s.write_all(bytes)),
            Sink::UnixStream(s) => s.lock().map_or(Ok(()), |mut s| s.write_all(bytes)),
        };
    }
}

enum Address {
    Udp(String, u16),
    Tcp(String, u16),
    /// Path, and whether `#stream` was asked for.
    Unix(String, bool),
}

/// gunicorn's `parse_syslog_address`.
fn parse_address(addr: &str) -> Option<Address> {
    if let Some(rest) = addr.strip_prefix("unix://") {
        let (path, kind) = rest.split_once('#').unwrap_or((rest, ""));
        return (!path.is_empty()).then(|| Address::Unix(path.to_owned(), kind == "stream"));
    }
    let (rest, udp) = if let Some(r) = addr.strip_prefix("udp://") {
        (r, true)
    } else {
        (addr.strip_prefix("tcp://")?, false)
    };
    let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
        let (host, after) = v6.split_once(']')?;
        (host.to_owned(), after.strip_prefix(':'))
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (rest.to_owned(), None),
        }
    };
    let host = if host.is_empty() {
        "localhost".to_owned()
    } else {
        host.to_ascii_lowercase()
    };
    let port = match port {
        Some(p) => p.parse().ok()?,
        None => 514,
    };
    Some(if udp {
        Address::Udp(host, port)
    } else {
        Address::Tcp(host, port)
    })
}

fn facility_code(name: &str) -> Option<u8> {
    let code = match name.to_ascii_lowercase().as_str() {
        "kern" => 0,
        "user" => 1,
        "mail" => 2,
        "daemon" => 3,
        "auth" | "security" => 4,
        "syslog" => 5,
        "lpr" => 6,
        "news" => 7,
        "uucp" => 8,
        "cron" => 9,
        "authpriv" => 10,
        "ftp" => 11,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => return None,
    };
    Some(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_as_gunicorn_parses_them() {
        assert!(
            matches!(parse_address("udp://localhost:514"), Some(Address::Udp(h, 514)) if h == "localhost")
        );
        assert!(matches!(parse_address("udp://"), Some(Address::Udp(h, 514)) if h == "localhost"));
        assert!(
            matches!(parse_address("tcp://[::1]:6514"), Some(Address::Tcp(h, 6514)) if h == "::1")
        );
        assert!(
            matches!(parse_address("unix:///dev/log"), Some(Address::Unix(p, false)) if p == "/dev/log")
        );
        assert!(matches!(
            parse_address("unix:///dev/log#stream"),
            Some(Address::Unix(_, true))
        ));
        assert!(parse_address("udp://host:port").is_none());
        assert!(parse_address("syslog.example.com").is_none());
    }

    #[test]
    fn facilities_by_name() {
        assert_eq!(facility_code("user"), Some(1));
        assert_eq!(facility_code("LOCAL7"), Some(23));
        assert_eq!(facility_code("nope"), None);
    }

    #[test]
    fn lines_are_framed_as_python_sysloghandler_frames_them() {
        let (a, b) = UnixDatagram::pair().unwrap();
        let log = Syslog {
            sink: Sink::UnixDgram(a),
            facility: 16,
            prefix: "gunicorn.myapp".into(),
            access_too: true,
        };
        log.send(3, "error", "[12] [ERROR] boom\n");
        let mut buf = [0u8; 256];
        let n = b.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"<131>gunicorn.myapp.error: [12] [ERROR] boom\0");
    }
}
