//! A StatsD client with gunicorn's metric names, types, prefix rule and dogstatsd tags
//! (`--statsd-host`, `--statsd-prefix`, `--dogstatsd-tags`).
//!
//! The socket is connected once in the master before the first fork and inherited by every
//! worker. Sends are non-blocking and their errors are dropped (debug-logged at most): a
//! missing or slow StatsD server must never block or fail a request. Formatting functions
//! are pure, so tests check the exact datagrams without a socket.

use std::fmt::{self, Write as _};
use std::io;
use std::net::{ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// gunicorn's default StatsD port, used when the address has none.
const DEFAULT_PORT: u16 = 8125;

/// Where datagrams go: `host:port` (UDP) or `unix://PATH` (a datagram unix socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatsdAddr {
    Udp { host: String, port: u16 },
    Unix(PathBuf),
}

impl StatsdAddr {
    /// gunicorn's `validate_statsd_address`: `unix://PATH` or `unix:PATH`, `[v6]:port`,
    /// `host:port`, `host` (port 8125), `tcp://` ignored. `unix:NUMBER` is host `unix` and that
    /// port, a compatibility rule gunicorn keeps from before release 20.
    pub fn parse(raw: &str) -> Result<StatsdAddr, String> {
        let raw = raw.trim();
        if let Some(rest) = raw.strip_prefix("unix:") {
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                let port = parse_port(rest)?;
                return Ok(StatsdAddr::Udp {
                    host: "unix".to_owned(),
                    port,
                });
            }
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err("expected a socket path after unix://".to_owned());
            }
            return Ok(StatsdAddr::Unix(PathBuf::from(path)));
        }
        let netloc = raw.strip_prefix("tcp://").unwrap_or(raw);
        let (host, port) = if let Some(v6) = netloc.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| "expected ']' after an IPv6 address".to_owned())?;
            // as --bind: brackets hold an IPv6 address and only `:PORT` may follow them, or
            // `[[a]`, say, printed as `[a:8125` that does not read back (found by fuzz/, bind)
            if host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(format!("{host:?} is not an IPv6 address"));
            }
            match after.strip_prefix(':') {
                Some(port) => (host, parse_port(port)?),
                None if after.is_empty() => (host, DEFAULT_PORT),
                None => return Err(format!("unexpected {after:?} after ']'")),
            }
        } else if let Some((host, port)) = netloc.split_once(':') {
            (host, parse_port(port)?)
        } else if netloc.is_empty() {
            ("0.0.0.0", DEFAULT_PORT)
        } else {
            (netloc, DEFAULT_PORT)
        };
        // a name with spaces or control characters resolves nowhere, and leading ones would
        // not survive the trim when the canonical form is read back (found by fuzz/, bind)
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{host:?} is not a host name"));
        }
        Ok(StatsdAddr::Udp {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .map_err(|_| format!("{s:?} is not a valid port number"))
}

/// The canonical spelling, which `parse` reads back unchanged.
impl fmt::Display for StatsdAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatsdAddr::Udp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            StatsdAddr::Udp { host, port } => write!(f, "{host}:{port}"),
            StatsdAddr::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// gunicorn's prefix rule, `re.sub(r"^(.+[^.]+)\.*$", r"\g<1>.", prefix)`: trailing dots are
/// collapsed into one, added when missing, but only when at least two characters remain (so
/// `a` stays `a`, a quirk kept for identical metric names).
pub fn normalize_prefix(prefix: &str) -> String {
    if prefix.contains('\n') {
        // `.` in the regex does not match a newline, so gunicorn leaves such a prefix alone
        return prefix.to_owned();
    }
    let stem = prefix.trim_end_matches('.');
    if stem.chars().count() >= 2 {
        format!("{stem}.")
    } else {
        prefix.to_owned()
    }
}

/// Milliseconds with gunicorn's formatting of `seconds * 1000 + microseconds / 1000` as a
/// Python float: at least one decimal, no trailing zeros (`1.0`, `1.2`, `12.345`).
pub fn format_ms(d: Duration) -> String {
    let micros = d.as_micros();
    let (ms, frac) = (micros / 1000, micros % 1000);
    let mut out = format!("{ms}.{frac:03}");
    while out.ends_with('0') && !out.ends_with(".0") {
        out.pop();
    }
    out
}

/// The kinds of StatsD metric gunicorn sends, with its wire suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `|c|@1.0`: gunicorn always writes the sampling rate.
    Counter,
    Gauge,
    Timer,
}

/// A sink with its prefix and tags; one per process tree.
pub struct Statsd {
    sock: Sink,
    prefix: String,
    tags: String,
}

enum Sink {
    Udp(UdpSocket),
    Unix(UnixDatagram),
}

static GLOBAL: OnceLock<Statsd> = OnceLock::new();

/// The process tree's StatsD client, if `--statsd-host` is set (installed before the first fork).
pub fn global() -> Option<&'static Statsd> {
    GLOBAL.get()
}

/// Connects to `addr` and makes it the client `global` returns. gunicorn carries on without
/// metrics when the address cannot be reached at startup; so do we, with a warning.
pub fn install(addr: &StatsdAddr, prefix: &str, tags: &str) {
    match Statsd::connect(addr, prefix, tags) {
        Ok(s) => {
            let _ = GLOBAL.set(s);
        }
        Err(e) => log::warn!("--statsd-host {addr}: cannot send metrics there: {e}"),
    }
}

impl Statsd {
    pub fn connect(addr: &StatsdAddr, prefix: &str, tags: &str) -> io::Result<Statsd> {
        let sock = match addr {
            StatsdAddr::Udp { host, port } => {
                let target = (host.as_str(), *port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| io::Error::other("the host name has no address"))?;
                let local = if target.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let sock = UdpSocket::bind(local)?;
                sock.connect(target)?;
                sock.set_nonblocking(true)?;
                Sink::Udp(sock)
            }
            StatsdAddr::Unix(path) => {
                let sock = UnixDatagram::unbound()?;
                sock.connect(path)?;
                sock.set_nonblocking(true)?;
                Sink::Unix(sock)
            }
        };
        Ok(Statsd {
            sock,
            prefix: normalize_prefix(prefix),
            tags: tags.to_owned(),
        })
    }

    /// One datagram: `<prefix><name>:<value>|<type>[|#<tags>]`.
    pub fn format(&self, name: &str, value: &str, kind: Kind, out: &mut String) {
        format_metric(&self.prefix, &self.tags, name, value, kind, out);
    }

    pub fn send(&self, name: &str, value: &str, kind: Kind) {
        let mut msg = String::with_capacity(64);
        self.format(name, value, kind, &mut msg);
        let sent = match &self.sock {
            Sink::Udp(s) => s.send(msg.as_bytes()),
            Sink::Unix(s) => s.send(msg.as_bytes()),
        };
        if let Err(e) = sent {
            // never `log::warn!` here: warnings are themselves counted through this client
            log::debug!("statsd: dropped {msg:?}: {e}");
        }
    }

    pub fn increment(&self, name: &str) {
        self.send(name, "1", Kind::Counter);
    }

    /// gunicorn's per-request trio, sent as three datagrams in its order. (Measured: about
    /// 10 µs of kernel time per request on loopback; batching the three with sendmmsg saved
    /// only ~5%, so they stay three plain sends.)
    pub fn request(&self, status: u16, duration: Duration) {
        self.send(
            "gunicorn.request.duration",
            &format_ms(duration),
            Kind::Timer,
        );
        self.increment("gunicorn.requests");
        let mut name = String::with_capacity(32);
        let _ = write!(name, "gunicorn.request.status.{status}");
        self.increment(&name);
    }
}

/// The datagram text, apart from the socket so tests see exact bytes.
pub fn format_metric(
    prefix: &str,
    tags: &str,
    name: &str,
    value: &str,
    kind: Kind,
    out: &mut String,
) {
    out.push_str(prefix);
    out.push_str(name);
    out.push(':');
    out.push_str(value);
    out.push_str(match kind {
        Kind::Counter => "|c|@1.0",
        Kind::Gauge => "|g",
        Kind::Timer => "|ms",
    });
    if !tags.is_empty() {
        out.push_str("|#");
        out.push_str(tags);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(host: &str, port: u16) -> StatsdAddr {
        StatsdAddr::Udp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn addresses_parse_as_gunicorn_reads_them() {
        assert_eq!(
            StatsdAddr::parse("localhost:9125").unwrap(),
            udp("localhost", 9125)
        );
        assert_eq!(
            StatsdAddr::parse("Metrics.Local").unwrap(),
            udp("metrics.local", 8125)
        );
        assert_eq!(StatsdAddr::parse("[::1]:9000").unwrap(), udp("::1", 9000));
        assert_eq!(StatsdAddr::parse("[::1]").unwrap(), udp("::1", 8125));
        assert_eq!(
            StatsdAddr::parse("tcp://10.0.0.1:1").unwrap(),
            udp("10.0.0.1", 1)
        );
        assert_eq!(StatsdAddr::parse("").unwrap(), udp("0.0.0.0", 8125));
        assert_eq!(
            StatsdAddr::parse("unix:///run/statsd.sock").unwrap(),
            StatsdAddr::Unix("/run/statsd.sock".into())
        );
        assert_eq!(
            StatsdAddr::parse("unix:relative.sock").unwrap(),
            StatsdAddr::Unix("relative.sock".into())
        );
        // gunicorn's pre-20 compatibility: a host called "unix"
        assert_eq!(StatsdAddr::parse("unix:8125").unwrap(), udp("unix", 8125));
    }

    #[test]
    fn bad_ports_and_empty_unix_paths_are_refused() {
        assert!(StatsdAddr::parse("host:http").is_err());
        assert!(StatsdAddr::parse("host:70000").is_err());
        assert!(StatsdAddr::parse("unix://").is_err());
        assert!(StatsdAddr::parse("[::1").is_err());
        assert!(StatsdAddr::parse("[[,1]").is_err());
        assert!(StatsdAddr::parse("[::1]x").is_err());
        assert!(StatsdAddr::parse("[localhost]:1").is_err());
        assert!(StatsdAddr::parse("tcp://\u{b}host").is_err());
        assert!(StatsdAddr::parse("a b:1").is_err());
    }

    #[test]
    fn display_reads_back_as_the_same_address() {
        for raw in ["localhost:9125", "[::1]:9000", "unix:///tmp/s.sock"] {
            let addr = StatsdAddr::parse(raw).unwrap();
            assert_eq!(addr.to_string(), raw);
            assert_eq!(StatsdAddr::parse(&addr.to_string()).unwrap(), addr);
        }
    }

    #[test]
    fn prefix_gets_one_trailing_dot_like_gunicorns_regex() {
        assert_eq!(normalize_prefix(""), "");
        assert_eq!(normalize_prefix("app"), "app.");
        assert_eq!(normalize_prefix("app."), "app.");
        assert_eq!(normalize_prefix("app..."), "app.");
        assert_eq!(normalize_prefix("my.app"), "my.app.");
        // fewer than two characters before the dots: the regex does not match
        assert_eq!(normalize_prefix("a"), "a");
        assert_eq!(normalize_prefix("a."), "a.");
        assert_eq!(normalize_prefix("."), ".");
    }

    #[test]
    fn durations_print_as_python_floats_of_milliseconds() {
        assert_eq!(format_ms(Duration::from_micros(0)), "0.0");
        assert_eq!(format_ms(Duration::from_micros(1000)), "1.0");
        assert_eq!(format_ms(Duration::from_micros(1200)), "1.2");
        assert_eq!(format_ms(Duration::from_micros(12_345)), "12.345");
        assert_eq!(format_ms(Duration::from_micros(7)), "0.007");
        assert_eq!(format_ms(Duration::from_millis(2500)), "2500.0");
    }

    #[test]
    fn datagrams_carry_prefix_type_and_tags() {
        let mut out = String::new();
        format_metric(
            "app.",
            "",
            "gunicorn.requests",
            "1",
            Kind::Counter,
            &mut out,
        );
        assert_eq!(out, "app.gunicorn.requests:1|c|@1.0");
        out.clear();
        format_metric(
            "",
            "env:prod,team:web",
            "gunicorn.request.duration",
            "1.5",
            Kind::Timer,
            &mut out,
        );
        assert_eq!(out, "gunicorn.request.duration:1.5|ms|#env:prod,team:web");
        out.clear();
        format_metric("", "", "gunicorn.workers", "3", Kind::Gauge, &mut out);
        assert_eq!(out, "gunicorn.workers:3|g");
    }

    #[test]
    fn a_request_sends_gunicorns_three_datagrams_in_order() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let port = rx.local_addr().unwrap().port();
        let s = Statsd::connect(&udp("127.0.0.1", port), "svc", "a:b").unwrap();
        s.request(404, Duration::from_micros(2_500));
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        for _ in 0..3 {
            let n = rx.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(
            got,
            [
                "svc.gunicorn.request.duration:2.5|ms|#a:b",
                "svc.gunicorn.requests:1|c|@1.0|#a:b",
                "svc.gunicorn.request.status.404:1|c|@1.0|#a:b",
            ]
        );
    }

    #[test]
    fn unix_datagrams_arrive_whole_and_a_vanished_reader_never_fails_the_caller() {
        let tmp = crate::test_support::TempDir::new("statsd");
        let path = tmp.0.join("s.sock");
        let reader = UnixDatagram::bind(&path).unwrap();
        let s = Statsd::connect(&StatsdAddr::Unix(path.clone()), "", "").unwrap();
        s.increment("gunicorn.log.error");
        let mut buf = [0u8; 128];
        let n = reader.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"gunicorn.log.error:1|c|@1.0");
        s.request(200, Duration::from_millis(3));
        let mut got = Vec::new();
        for _ in 0..3 {
            let n = reader.recv(&mut buf).unwrap();
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        assert_eq!(
            got,
            [
                "gunicorn.request.duration:3.0|ms",
                "gunicorn.requests:1|c|@1.0",
                "gunicorn.request.status.200:1|c|@1.0",
            ]
        );
        drop(reader);
        let _ = std::fs::remove_file(&path);
        // the reader is gone: the send fails inside, the caller sees nothing
        s.increment("gunicorn.requests");
    }
}
