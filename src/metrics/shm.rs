//! Per-worker request counters for `--metrics-bind`, in one `MAP_SHARED` anonymous mapping made
//! by the master before the first fork (like the heartbeat slots, and indexed by the same slot
//! number).
//!
//! A worker's I/O thread only adds to its own slot, with relaxed atomics (no locks cross the
//! process boundary). The master reads every slot when scraped and, when it reaps a worker,
//! folds that slot into its private `Totals` and zeroes it for the next worker, so counters
//! never go backwards across restarts. Nothing here exists unless `--metrics-bind` is set.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use crate::master::heartbeat::{map_shared, MAX_SLOTS};

/// Upper bounds of the latency histogram in microseconds (Prometheus' default buckets,
/// 5 ms to 10 s); one more bucket counts everything slower (`+Inf`).
pub const BUCKETS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];
/// Status codes are three digits (start_response checks), so a table indexed by code is
/// simpler than a map and costs 8 KB of mostly untouched shared pages per slot.
pub const CODES: usize = 1000;

/// One worker's counters.
#[repr(C)]
pub struct Counters {
    in_flight: AtomicU64,
    /// Requests answered, by status code.
    status: [AtomicU64; CODES],
    /// Requests per latency bucket (not cumulative; rendering accumulates).
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
}

impl Counters {
    pub fn begin(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn end(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Counts one answered request. `code` outside 0..1000 (never produced by the server) is
    /// counted as 0 rather than lost.
    pub fn record(&self, code: u16, took: Duration) {
        let code = usize::from(code);
        let code = if code < CODES { code } else { 0 };
        self.status[code].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_US.partition_point(|&bound| bound < us);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Adds this slot's counts into `into` (in-flight too: a live worker's gauge).
    fn add_to(&self, into: &mut Totals) {
        for (sum, c) in into.status.iter_mut().zip(&self.status) {
            *sum += c.load(Ordering::Relaxed);
        }
        for (sum, c) in into.buckets.iter_mut().zip(&self.buckets) {
            *sum += c.load(Ordering::Relaxed);
        }
        into.latency_sum_us += self.latency_sum_us.load(Ordering::Relaxed);
        into.in_flight += self.in_flight.load(Ordering::Relaxed);
    }

    fn reset(&self) {
        self.in_flight.store(0, Ordering::Relaxed);
        for c in self.status.iter().chain(&self.buckets) {
            c.store(0, Ordering::Relaxed);
        }
        self.latency_sum_us.store(0, Ordering::Relaxed);
    }
}

/// Plain sums, owned by the master: retired workers' counts, or a scrape's snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals {
    pub status: Vec<u64>,
    pub buckets: [u64; BUCKETS_US.len() + 1],
    pub latency_sum_us: u64,
    pub in_flight: u64,
}

impl Default for Totals {
    fn default() -> Self {
        Totals {
            status: vec![0; CODES],
            buckets: [0; BUCKETS_US.len() + 1],
            latency_sum_us: 0,
            in_flight: 0,
        }
    }
}

/// The shared table of `Counters`, one per heartbeat slot.
pub struct SharedCounters {
    base: NonNull<Counters>,
}

// SAFETY: the mapping is only accessed through the atomics in `Counters`, and it is never
// unmapped (it lives in a process-wide `OnceLock`).
unsafe impl Send for SharedCounters {}
// SAFETY: as above: every shared access goes through atomic fields.
unsafe impl Sync for SharedCounters {}

static SHARED: OnceLock<SharedCounters> = OnceLock::new();

/// Maps the table (once, in the master, before the first fork); workers inherit the mapping.
pub fn install() -> io::Result<&'static SharedCounters> {
    if let Some(s) = SHARED.get() {
        return Ok(s);
    }
    let table = SharedCounters::new()?;
    Ok(SHARED.get_or_init(|| table))
}

/// The table, if `--metrics-bind` mapped it.
pub fn shared() -> Option<&'static SharedCounters> {
    SHARED.get()
}

impl SharedCounters {
    fn new() -> io::Result<Self> {
        // zeroed pages are a valid `Counters` (all atomics zero); untouched slots cost
        // address space, not memory
        let base = map_shared(MAX_SLOTS * std::mem::size_of::<Counters>())?.cast::<Counters>();
        Ok(SharedCounters { base })
    }

    pub fn slot(&self, i: usize) -> &Counters {
        assert!(i < MAX_SLOTS, "metrics slot out of range");
        // SAFETY: `i` is within the MAX_SLOTS-long mapping made in `new`, never unmapped.
        unsafe { &*self.base.as_ptr().add(i) }
    }

    /// In the master, after reaping the worker that owned slot `i`: keep its counts (not its
    /// in-flight gauge: a dead worker has nothing in flight) and clear the slot for reuse.
    pub fn retire(&self, i: usize, into: &mut Totals) {
        let in_flight = into.in_flight;
        self.slot(i).add_to(into);
        into.in_flight = in_flight;
        self.slot(i).reset();
    }

    /// Retired totals plus every live slot in `live`.
    pub fn snapshot(&self, retired: &Totals, live: impl Iterator<Item = usize>) -> Totals {
        let mut t = retired.clone();
        t.in_flight = 0;
        for i in live {
            self.slot(i).add_to(&mut t);
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_at_or_above_it() {
        let table = SharedCounters::new().unwrap();
        let c = table.slot(3);
        c.record(200, Duration::from_micros(5_000)); // le 0.005: inclusive bound
        c.record(200, Duration::from_micros(5_001));
        c.record(404, Duration::from_secs(11));
        let t = table.snapshot(&Totals::default(), [3].into_iter());
        assert_eq!(t.buckets[0], 1);
        assert_eq!(t.buckets[1], 1);
        assert_eq!(t.buckets[BUCKETS_US.len()], 1);
        assert_eq!(t.status[200], 2);
        assert_eq!(t.status[404], 1);
        assert_eq!(t.latency_sum_us, 11_010_001);
    }

    #[test]
    fn counts_written_by_a_forked_child_survive_its_retirement() {
        let table = SharedCounters::new().unwrap();
        // SAFETY: the child only touches the shared slot and exits without unwinding.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            table.slot(0).begin();
            table.slot(0).record(500, Duration::from_millis(1));
            // SAFETY: _exit never returns and runs no destructors in the child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child we just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let live = table.snapshot(&Totals::default(), [0].into_iter());
        assert_eq!((live.status[500], live.in_flight), (1, 1));

        let mut retired = Totals::default();
        table.retire(0, &mut retired);
        assert_eq!((retired.status[500], retired.in_flight), (1, 0));
        table.slot(0).record(200, Duration::ZERO);
        let t = table.snapshot(&retired, [0].into_iter());
        assert_eq!((t.status[500], t.status[200], t.in_flight), (1, 1, 0));
    }
}
