//! Per-worker heartbeat slots in memory shared between the master and its forked workers.
//!
//! One anonymous `MAP_SHARED` mapping is made before the first fork, so every worker sees the
//! same pages. A worker writes its slot (last beat, when its oldest running request entered the
//! app, its lifecycle state); the master only reads, except to reset a slot it hands out. All
//! fields are atomics: no locks cross the process boundary.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Most workers alive at once (TTIN beyond this is refused).
pub const MAX_SLOTS: usize = 1024;

/// Lifecycle of a worker as it reports it.
pub mod state {
    pub const FREE: u32 = 0;
    /// Forked, loading the app.
    pub const BOOTING: u32 = 1;
    /// Accepting connections.
    pub const READY: u32 = 2;
    /// Asks to be replaced (max-requests reached); keeps serving until told to stop.
    pub const RETIRE: u32 = 3;
    /// `--reload` saw a source file change: every worker should be replaced.
    pub const RELOAD: u32 = 4;
}

#[repr(C)]
pub struct Slot {
    /// CLOCK_MONOTONIC milliseconds of the last beat.
    beat: AtomicU64,
    /// When the oldest request still inside the app started (ms), 0 when idle.
    busy_since: AtomicU64,
    state: AtomicU32,
}

impl Slot {
    pub fn beat(&self, now: u64, busy_since: u64) {
        self.beat.store(now, Ordering::Relaxed);
        self.busy_since.store(busy_since, Ordering::Relaxed);
    }

    pub fn set_state(&self, s: u32) {
        self.state.store(s, Ordering::Release);
    }

    pub fn state(&self) -> u32 {
        self.state.load(Ordering::Acquire)
    }

    pub fn last_beat(&self) -> u64 {
        self.beat.load(Ordering::Relaxed)
    }

    pub fn busy_since(&self) -> u64 {
        self.busy_since.load(Ordering::Relaxed)
    }
}

/// The shared table of slots; lives for the whole process tree.
pub struct Heartbeats {
    base: NonNull<Slot>,
}

// SAFETY: the mapping is only accessed through atomics in `Slot`, which are Sync, and it is
// never unmapped while a `Heartbeats` exists.
unsafe impl Send for Heartbeats {}
// SAFETY: as above: shared access goes through atomic fields only.
unsafe impl Sync for Heartbeats {}

impl Heartbeats {
    pub fn new() -> io::Result<Self> {
        // zeroed pages are a valid bit pattern for `Slot` (all atomics zero = FREE)
        let base = map_shared(MAX_SLOTS * std::mem::size_of::<Slot>())?.cast::<Slot>();
        Ok(Heartbeats { base })
    }

    pub fn slot(&self, i: usize) -> &Slot {
        assert!(i < MAX_SLOTS, "heartbeat slot out of range");
        // SAFETY: `i` is in bounds of the MAX_SLOTS-long mapping made in `new`, which lives as
        // long as `self`.
        unsafe { &*self.base.as_ptr().add(i) }
    }

    /// Claims a free slot for a new worker, stamped as booting now.
    pub fn allocate(&self, now: u64) -> Option<usize> {
        (0..MAX_SLOTS).find(|&i| {
            let s = self.slot(i);
            let free = s
                .state
                .compare_exchange(
                    state::FREE,
                    state::BOOTING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok();
            if free {
                s.beat(now, 0);
            }
            free
        })
    }

    pub fn release(&self, i: usize) {
        let s = self.slot(i);
        s.beat(0, 0);
        s.set_state(state::FREE);
    }
}

/// `len` bytes of zeroed memory shared with every process forked afterwards (an anonymous
/// `MAP_SHARED` mapping), never unmapped. Pages nobody touches cost address space only.
pub fn map_shared(len: usize) -> io::Result<NonNull<u8>> {
    // SAFETY: an anonymous shared mapping with no address hint and no file: it aliases no
    // memory of ours, and the kernel hands out fresh zeroed pages.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    NonNull::new(ptr.cast::<u8>()).ok_or_else(io::Error::last_os_error)
}

/// CLOCK_MONOTONIC in milliseconds: the same clock in every process of the machine.
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64) * 1000 + (ts.tv_nsec as u64) / 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_shared_with_a_forked_child() {
        let hb = Heartbeats::new().unwrap();
        let i = hb.allocate(now_ms()).unwrap();
        assert_eq!(hb.slot(i).state(), state::BOOTING);
        // SAFETY: the child only touches the shared slot and exits without unwinding.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            hb.slot(i).beat(42, 7);
            hb.slot(i).set_state(state::READY);
            // SAFETY: _exit never returns and runs no destructors in the child.
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waiting for the child we just forked.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(hb.slot(i).last_beat(), 42);
        assert_eq!(hb.slot(i).busy_since(), 7);
        assert_eq!(hb.slot(i).state(), state::READY);
        hb.release(i);
        assert_eq!(hb.slot(i).state(), state::FREE);
    }
}
