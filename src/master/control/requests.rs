//! `show requests`: each worker's requests in the app right now, in a `MAP_SHARED` table the
//! master maps before the first fork (indexed by heartbeat slot, like `metrics::shm`).
//!
//! A worker's I/O thread claims an entry when a request enters the app and frees it when the
//! request leaves: one compare-and-swap, a few relaxed stores of the method and a truncated
//! path, one release store; no lock, no allocation. The time comes from the coarse monotonic
//! clock (a few ns instead of tens; ages are shown in milliseconds anyway). The master reads
//! entries seqlock-style (the stamp before and after; it carries a per-entry generation, so a
//! reuse within the same millisecond still changes it) and drops any it caught being
//! rewritten. When all entries of a worker are busy the rest are only counted.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::master::heartbeat::{map_shared, MAX_SLOTS};

/// Requests shown per worker; more in flight are counted in `untracked`.
pub const PER_WORKER: usize = 64;
/// Bytes of the path kept (longer paths are cut, and say so).
pub const PATH_BYTES: usize = 112;
const PATH_WORDS: usize = PATH_BYTES / 8;
/// `started` while the entry is being written.
const WRITING: u64 = u64::MAX;

#[repr(C)]
struct Entry {
    /// 0 = free; else `ms << 16 | generation`, ms being CLOCK_MONOTONIC_COARSE milliseconds
    /// when the request entered.
    started: AtomicU64,
    /// Claims of this entry so far (only its owner writes it).
    generation: AtomicU64,
    /// Up to 8 bytes of the method, NUL-padded.
    method: AtomicU64,
    /// The full path length (may exceed what `path` holds).
    path_len: AtomicU64,
    path: [AtomicU64; PATH_WORDS],
}

/// One worker's entries.
#[repr(C)]
pub struct WorkerRequests {
    entries: [Entry; PER_WORKER],
    untracked: AtomicU64,
}

/// A request shown while it runs. Dropping it frees the entry.
pub struct Shown<'a> {
    entry: Option<&'a Entry>,
    untracked: &'a AtomicU64,
}

impl WorkerRequests {
    /// A request entered the app (called by the connection, on the I/O thread).
    pub fn enter(&self, method: &[u8], path: &[u8]) -> Shown<'_> {
        let entry = self.entries.iter().find(|e| {
            e.started.load(Ordering::Relaxed) == 0
                && e.started
                    .compare_exchange(0, WRITING, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
        });
        match entry {
            Some(e) => {
                e.method.store(pack(method), Ordering::Relaxed);
                e.path_len.store(path.len() as u64, Ordering::Relaxed);
                for (word, chunk) in e.path.iter().zip(path.chunks(8)) {
                    word.store(pack(chunk), Ordering::Relaxed);
                }
                let generation = e.generation.load(Ordering::Relaxed).wrapping_add(1);
                e.generation.store(generation, Ordering::Relaxed);
                let stamp = ((now_ms() << 16) | (generation & 0xffff)).max(1);
                e.started.store(stamp, Ordering::Release);
            }
            None => {
                self.untracked.fetch_add(1, Ordering::Relaxed);
            }
        }
        Shown {
            entry,
            untracked: &self.untracked,
        }
    }

    /// The requests of this worker now, oldest first (master side).
    pub fn snapshot(&self, now_ms: u64) -> (Vec<InFlight>, u64) {
        let mut out: Vec<InFlight> = self
            .entries
            .iter()
            .filter_map(|e| read(e, now_ms))
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.age_ms));
        (out, self.untracked.load(Ordering::Relaxed))
    }

    /// In the master, once the worker owning this slot is gone: nothing of it is in flight.
    pub fn clear(&self) {
        for e in &self.entries {
            e.started.store(0, Ordering::Release);
        }
        self.untracked.store(0, Ordering::Relaxed);
    }
}

impl Drop for Shown<'_> {
    fn drop(&mut self) {
        match self.entry {
            Some(e) => e.started.store(0, Ordering::Release),
            None => {
                self.untracked.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// What the master reads of one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub method: String,
    /// Cut at `PATH_BYTES`; `truncated` says so.
    pub path: String,
    pub truncated: bool,
    pub age_ms: u64,
}

fn read(e: &Entry, now_ms: u64) -> Option<InFlight> {
    let before = e.started.load(Ordering::Acquire);
    if before == 0 || before == WRITING {
        return None;
    }
    let method = e.method.load(Ordering::Relaxed).to_ne_bytes();
    let len = e.path_len.load(Ordering::Relaxed) as usize;
    let mut path = Vec::with_capacity(PATH_BYTES);
    for w in &e.path[..len.min(PATH_BYTES).div_ceil(8)] {
        path.extend_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
    }
    path.truncate(len.min(PATH_BYTES));
    // the reads above happen before the re-check: a changed stamp means a torn copy
    fence(Ordering::Acquire);
    if e.started.load(Ordering::Relaxed) != before {
        return None;
    }
    let method_len = method.iter().position(|&b| b == 0).unwrap_or(8);
    Some(InFlight {
        method: String::from_utf8_lossy(&method[..method_len]).into_owned(),
        path: String::from_utf8_lossy(&path).into_owned(),
        truncated: len > PATH_BYTES,
        age_ms: now_ms.saturating_sub(before >> 16),
    })
}

/// Up to 8 bytes into one word, NUL-padded.
fn pack(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    let n = bytes.len().min(8);
    word[..n].copy_from_slice(&bytes[..n]);
    u64::from_ne_bytes(word)
}

/// CLOCK_MONOTONIC_COARSE in milliseconds: the same clock in every process of the machine,
/// read in user space without touching the TSC (jiffy resolution, a few ms).
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts);
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

/// The table of every worker's entries.
pub struct RequestTable {
    base: NonNull<WorkerRequests>,
}

// SAFETY: the mapping is only accessed through atomics and never unmapped (it lives in a
// process-wide `OnceLock`).
unsafe impl Send for RequestTable {}
// SAFETY: as above: every shared access goes through atomic fields.
unsafe impl Sync for RequestTable {}

static TABLE: OnceLock<RequestTable> = OnceLock::new();

/// Maps the table (in the master, before the first fork); workers inherit it.
pub fn install() -> io::Result<&'static RequestTable> {
    if let Some(t) = TABLE.get() {
        return Ok(t);
    }
    let table = RequestTable::new()?;
    Ok(TABLE.get_or_init(|| table))
}

/// The table, when the control socket mapped it.
pub fn table() -> Option<&'static RequestTable> {
    TABLE.get()
}

/// What the worker in heartbeat slot `slot` writes to; `None` without a control socket.
pub fn for_worker(slot: usize) -> Option<&'static WorkerRequests> {
    table().map(|t| t.slot(slot))
}

impl RequestTable {
    fn new() -> io::Result<Self> {
        // zeroed pages are valid (every entry free); untouched ones cost address space only
        let len = MAX_SLOTS * std::mem::size_of::<WorkerRequests>();
        Ok(RequestTable {
            base: map_shared(len)?.cast::<WorkerRequests>(),
        })
    }

    pub fn slot(&self, i: usize) -> &WorkerRequests {
        assert!(i < MAX_SLOTS, "request table slot out of range");
        // SAFETY: `i` is within the MAX_SLOTS-long mapping made in `new`, never unmapped.
        unsafe { &*self.base.as_ptr().add(i) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_show_method_path_and_age_until_dropped() {
        let t = RequestTable::new().unwrap();
        let w = t.slot(5);
        let a = w.enter(b"GET", b"/slow");
        let long = vec![b'x'; PATH_BYTES + 10];
        let b = w.enter(b"PROPFIND", &long);
        let (now, untracked) = w.snapshot(now_ms() + 1_000);
        assert_eq!(untracked, 0);
        assert_eq!(now.len(), 2);
        let slow = now.iter().find(|r| r.path == "/slow").unwrap();
        assert_eq!(slow.method, "GET");
        assert!(slow.age_ms >= 1_000);
        let cut = now.iter().find(|r| r.method == "PROPFIND").unwrap();
        assert_eq!((cut.path.len(), cut.truncated), (PATH_BYTES, true));
        drop(a);
        assert_eq!(w.snapshot(now_ms()).0.len(), 1);
        drop(b);
        assert!(w.snapshot(now_ms()).0.is_empty());
    }

    #[test]
    fn requests_past_the_table_are_counted() {
        let t = RequestTable::new().unwrap();
        let w = t.slot(0);
        let held: Vec<_> = (0..PER_WORKER + 3).map(|_| w.enter(b"GET", b"/")).collect();
        let (shown, untracked) = w.snapshot(now_ms());
        assert_eq!((shown.len(), untracked), (PER_WORKER, 3));
        drop(held);
        assert_eq!(w.snapshot(now_ms()), (Vec::new(), 0));
    }

    #[test]
    fn a_forked_worker_s_entries_are_seen_by_the_master() {
        let t = RequestTable::new().unwrap();
        // SAFETY: the child only touches the shared table and exits without unwinding.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            std::mem::forget(t.slot(1).enter(b"POST", b"/upload"));
            // SAFETY: _exit never returns and runs no destructors in the child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child we just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let (shown, _) = t.slot(1).snapshot(now_ms());
        assert_eq!(shown[0].method, "POST");
        assert_eq!(shown[0].path, "/upload");
        t.slot(1).clear();
        assert!(t.slot(1).snapshot(now_ms()).0.is_empty());
    }
}
