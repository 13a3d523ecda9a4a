//! `--metrics-bind`: the master answers `GET /metrics` in Prometheus' text format.
//!
//! The master never starts a thread (fork safety, docs/internals.md), so this is not a server
//! task but a few non-blocking sockets the master loop polls next to its signal pipe: accept,
//! read one request head, write one HTTP/1.0 answer, close. A scrape that stalls is dropped
//! after `SCRAPE_TIMEOUT`; nothing here ever blocks the loop. Rendering is a pure function of
//! a `Snapshot`, tested without sockets.

use std::fmt::Write as _;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::shm::{Totals, BUCKETS_US};
use crate::net::poll_io::{accept_ready, pollfd, read_available, Outbox};

/// Longest a scrape may take to send its request and read the answer.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);
/// Scrapes served at once; more wait in the listen backlog.
const MAX_SCRAPES: usize = 8;
/// Longest request head we read.
const MAX_HEAD: usize = 8 * 1024;

/// Everything a scrape reports: the workers' summed counters and the master's own.
pub struct Snapshot {
    pub totals: Totals,
    /// Workers that exited and were replaced (crashes, timeouts, max-requests, reloads).
    pub restarts: u64,
    /// Workers killed for exceeding `--timeout`.
    pub timeouts: u64,
    /// Worker processes alive now.
    pub workers: usize,
}

/// The Prometheus text exposition (format 0.0.4).
pub fn render(s: &Snapshot) -> String {
    let mut out = String::with_capacity(2048);
    let t = &s.totals;
    out.push_str(
        "# HELP ferricorn_requests_total Requests answered, by HTTP status code.\n\
         # TYPE ferricorn_requests_total counter\n",
    );
    for (code, &n) in t.status.iter().enumerate().filter(|(_, &n)| n > 0) {
        let _ = writeln!(out, "ferricorn_requests_total{{code=\"{code}\"}} {n}");
    }
    out.push_str(
        "# HELP ferricorn_request_duration_seconds Time from a request's head to the end of \
         its response.\n\
         # TYPE ferricorn_request_duration_seconds histogram\n",
    );
    let mut cumulative = 0;
    for (i, &n) in t.buckets.iter().enumerate() {
        cumulative += n;
        let le = match BUCKETS_US.get(i) {
            Some(&us) => seconds(us),
            None => "+Inf".to_owned(),
        };
        let _ = writeln!(
            out,
            "ferricorn_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "ferricorn_request_duration_seconds_sum {}\n\
         ferricorn_request_duration_seconds_count {cumulative}",
        seconds(t.latency_sum_us)
    );
    let _ = write!(
        out,
        "# HELP ferricorn_requests_in_flight Requests being answered now.\n\
         # TYPE ferricorn_requests_in_flight gauge\n\
         ferricorn_requests_in_flight {}\n\
         # HELP ferricorn_worker_restarts_total Worker processes that exited and were replaced.\n\
         # TYPE ferricorn_worker_restarts_total counter\n\
         ferricorn_worker_restarts_total {}\n\
         # HELP ferricorn_worker_timeouts_total Workers killed for exceeding --timeout.\n\
         # TYPE ferricorn_worker_timeouts_total counter\n\
         ferricorn_worker_timeouts_total {}\n\
         # HELP ferricorn_workers Worker processes alive.\n\
         # TYPE ferricorn_workers gauge\n\
         ferricorn_workers {}\n",
        t.in_flight, s.restarts, s.timeouts, s.workers
    );
    out
}

/// Microseconds as decimal seconds without float noise: `5000` → `0.005`, `2500000` → `2.5`.
fn seconds(us: u64) -> String {
    let mut s = format!("{}.{:06}", us / 1_000_000, us % 1_000_000);
    while s.ends_with('0') && !s.ends_with(".0") {
        s.pop();
    }
    s
}

/// The answer to one request head: the metrics, or 404/405 for anything else.
pub fn respond(head: &[u8], body: impl FnOnce() -> String) -> Vec<u8> {
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let mut words = line.split(|&b| b == b' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    let (status, ctype, body) = match (method, path) {
        (b"GET" | b"HEAD", Some(b"/metrics")) => {
            ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body())
        }
        (b"GET" | b"HEAD", _) => ("404 Not Found", "text/plain", "Not Found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "Method Not Allowed\n".to_owned(),
        ),
    };
    let mut out = format!(
        "HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != b"HEAD" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// One scrape in progress.
struct Scrape {
    stream: TcpStream,
    head: Vec<u8>,
    /// The answer, once the head is complete.
    answer: Option<Outbox>,
    deadline: Instant,
}

/// The listening socket and the scrapes in progress, driven by the master loop.
pub struct MetricsServer {
    listener: TcpListener,
    scrapes: Vec<Scrape>,
}

impl MetricsServer {
    /// Binds `addr` (`HOST:PORT`), non-blocking. SO_REUSEPORT lets the new master started by
    /// USR2 bind the same address while the old one still serves it; a port held by any
    /// other socket still fails.
    pub fn bind(addr: &str) -> io::Result<MetricsServer> {
        use std::net::ToSocketAddrs;
        let addr = addr
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::other("the host name has no address"))?;
        let sock = socket2::Socket::new(
            socket2::Domain::for_address(addr),
            socket2::Type::STREAM,
            None,
        )?;
        sock.set_reuse_address(true)?;
        sock.set_reuse_port(true)?;
        sock.bind(&addr.into())?;
        sock.listen(64)?;
        sock.set_nonblocking(true)?;
        let listener = TcpListener::from(sock);
        Ok(MetricsServer {
            listener,
            scrapes: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }

    /// The descriptors the master loop should wake for, next to its signal pipe.
    pub fn poll_fds(&self, out: &mut Vec<libc::pollfd>) {
        if self.scrapes.len() < MAX_SCRAPES {
            out.push(pollfd(self.listener.as_raw_fd(), libc::POLLIN));
        }
        for s in &self.scrapes {
            let events = if s.answer.is_some() {
                libc::POLLOUT
            } else {
                libc::POLLIN
            };
            out.push(pollfd(s.stream.as_raw_fd(), events));
        }
    }

    /// Makes whatever progress is possible without blocking: accept, read heads, write
    /// answers, drop finished or stalled scrapes. `body` renders the metrics when a
    /// `GET /metrics` head is complete.
    pub fn service(&mut self, body: &mut dyn FnMut() -> String) {
        let room = MAX_SCRAPES.saturating_sub(self.scrapes.len());
        accept_ready(&self.listener, room, "metrics", |stream| {
            self.scrapes.push(Scrape {
                stream,
                head: Vec::new(),
                answer: None,
                deadline: Instant::now() + SCRAPE_TIMEOUT,
            })
        });
        let now = Instant::now();
        self.scrapes
            .retain_mut(|s| now < s.deadline && advance(s, &mut *body));
    }
}

/// Moves one scrape forward; false once it is finished or failed (then it is dropped, which
/// closes the connection).
fn advance(s: &mut Scrape, body: &mut dyn FnMut() -> String) -> bool {
    if s.answer.is_none() {
        if !matches!(
            read_available(&mut s.stream, &mut s.head, MAX_HEAD),
            Ok(true)
        ) || s.head.len() > MAX_HEAD
        {
            return false;
        }
        let complete =
            s.head.windows(4).any(|w| w == b"\r\n\r\n") || s.head.windows(2).any(|w| w == b"\n\n");
        if !complete {
            return true;
        }
        let mut answer = Outbox::default();
        answer.push(&respond(&s.head, body));
        s.answer = Some(answer);
    }
    let Some(answer) = &mut s.answer else {
        return false;
    };
    // still open only while the answer is partly written
    matches!(answer.flush(&mut s.stream), Ok(false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn snapshot() -> Snapshot {
        let mut totals = Totals::default();
        totals.status[200] = 3;
        totals.status[404] = 1;
        totals.buckets[0] = 2;
        totals.buckets[3] = 1;
        totals.buckets[BUCKETS_US.len()] = 1;
        totals.latency_sum_us = 12_503_000;
        totals.in_flight = 2;
        Snapshot {
            totals,
            restarts: 4,
            timeouts: 1,
            workers: 2,
        }
    }

    #[test]
    fn text_format_has_counters_cumulative_buckets_and_gauges() {
        let text = render(&snapshot());
        for line in [
            "# TYPE ferricorn_requests_total counter",
            "ferricorn_requests_total{code=\"200\"} 3",
            "ferricorn_requests_total{code=\"404\"} 1",
            "# TYPE ferricorn_request_duration_seconds histogram",
            "ferricorn_request_duration_seconds_bucket{le=\"0.005\"} 2",
            "ferricorn_request_duration_seconds_bucket{le=\"0.025\"} 2",
            "ferricorn_request_duration_seconds_bucket{le=\"0.05\"} 3",
            "ferricorn_request_duration_seconds_bucket{le=\"10.0\"} 3",
            "ferricorn_request_duration_seconds_bucket{le=\"+Inf\"} 4",
            "ferricorn_request_duration_seconds_sum 12.503",
            "ferricorn_request_duration_seconds_count 4",
            "ferricorn_requests_in_flight 2",
            "ferricorn_worker_restarts_total 4",
            "ferricorn_worker_timeouts_total 1",
            "ferricorn_workers 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in\n{text}"
            );
        }
        assert!(!text.contains("code=\"500\""), "zero counts are left out");
        assert!(text.ends_with('\n'));
    }

    #[test]
    fn seconds_print_exactly() {
        assert_eq!(seconds(0), "0.0");
        assert_eq!(seconds(5_000), "0.005");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(10_000_000), "10.0");
        assert_eq!(seconds(1), "0.000001");
    }

    #[test]
    fn only_get_metrics_gets_the_metrics() {
        let ok = respond(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", || {
            "m 1\n".into()
        });
        let ok = String::from_utf8(ok).unwrap();
        assert!(ok.starts_with("HTTP/1.0 200 OK\r\n"));
        assert!(ok.contains("Content-Length: 4\r\n"));
        assert!(ok.ends_with("\r\n\r\nm 1\n"));
        let q = respond(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n", || "m\n".into());
        assert!(q.starts_with(b"HTTP/1.0 200 OK"));
        let head = respond(b"HEAD /metrics HTTP/1.0\r\n\r\n", || "m 1\n".into());
        assert!(head.ends_with(b"\r\n\r\n"));
        let missing = respond(b"GET / HTTP/1.0\r\n\r\n", || unreachable!());
        assert!(missing.starts_with(b"HTTP/1.0 404 Not Found"));
        let post = respond(b"POST /metrics HTTP/1.0\r\n\r\n", || unreachable!());
        assert!(post.starts_with(b"HTTP/1.0 405"));
        let bare = respond(b"GET /metrics\r\n\r\n", || "m\n".into());
        assert!(bare.starts_with(b"HTTP/1.0 200 OK"));
        let junk = respond(b"\r\n\r\n", || unreachable!());
        assert!(junk.starts_with(b"HTTP/1.0 405"));
    }

    #[test]
    fn a_scrape_is_answered_without_blocking_and_closed() {
        let mut server = MetricsServer::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).unwrap();
        client.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut got = Vec::new();
        let mut body = || "ferricorn_workers 1\n".to_owned();
        // drive the server as the master loop would, until the client sees EOF
        client.set_nonblocking(true).unwrap();
        loop {
            server.service(&mut body);
            let mut buf = [0u8; 512];
            match client.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
            assert!(Instant::now() < deadline, "no answer");
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = String::from_utf8(got).unwrap();
        assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
        assert!(text.ends_with("ferricorn_workers 1\n"));
        assert!(server.scrapes.is_empty());
    }
}
