//! Request metrics: gunicorn's StatsD datagrams (`statsd`) and ferricorn's Prometheus endpoint
//! (`shm` counters written by workers, `prometheus` rendered and served by the master).
//!
//! A connection gets a `RequestMetrics` only when one of them is on; otherwise it holds `None`
//! and pays nothing per request. Both sinks are created in the master before the first fork
//! and live for the whole process, hence the `'static` references.

pub mod prometheus;
pub mod shm;
pub mod statsd;

use std::time::{Duration, Instant};

use shm::Counters;
use statsd::Statsd;

/// What a worker's connections report each answered request to. `Copy`: two references.
#[derive(Clone, Copy)]
pub struct RequestMetrics {
    statsd: Option<&'static Statsd>,
    counters: Option<&'static Counters>,
}

impl RequestMetrics {
    /// The sinks this worker (heartbeat slot `slot`) reports to; `None` when none is on.
    pub fn for_worker(slot: usize) -> Option<RequestMetrics> {
        let m = RequestMetrics {
            statsd: statsd::global(),
            counters: shm::shared().map(|t| t.slot(slot)),
        };
        (m.statsd.is_some() || m.counters.is_some()).then_some(m)
    }

    /// A request entered the app: it counts as in flight until the returned guard drops.
    pub fn begin(self) -> InFlight {
        if let Some(c) = self.counters {
            c.begin();
        }
        InFlight {
            metrics: self,
            started: Instant::now(),
        }
    }
}

/// One request in flight. Dropping it without `finish` (the response was cut short) only
/// ends the in-flight count, as gunicorn does not count such requests either.
pub struct InFlight {
    metrics: RequestMetrics,
    started: Instant,
}

impl InFlight {
    /// The response went out: report its status line (`200 OK`) and its duration.
    pub fn finish(self, status: &[u8]) {
        let took = self.started.elapsed();
        let code = status_code(status);
        self.report(code, took);
    }

    fn report(&self, code: u16, took: Duration) {
        if let Some(c) = self.metrics.counters {
            c.record(code, took);
        }
        if let Some(s) = self.metrics.statsd {
            s.request(code, took);
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(c) = self.metrics.counters {
            c.end();
        }
    }
}

/// The leading three digits of a status line; 0 if it has none (the app's status is
/// validated before it gets here, so that does not happen in practice).
pub fn status_code(status: &[u8]) -> u16 {
    match status {
        [a, b, c, ..] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_come_from_the_first_three_digits() {
        assert_eq!(status_code(b"200 OK"), 200);
        assert_eq!(status_code(b"404"), 404);
        assert_eq!(status_code(b"599 Custom Thing"), 599);
        assert_eq!(status_code(b""), 0);
        assert_eq!(status_code(b"OK 200"), 0);
    }
}
