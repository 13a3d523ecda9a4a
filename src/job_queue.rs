//! The job queue between the I/O thread and the app threads, with batched wake-ups.
//!
//! Waking a parked app thread for every request makes the two threads ping-pong: on a busy
//! core each hand-off is a context switch. Instead the I/O thread queues jobs silently and
//! wakes the app threads once, when it runs out of ready work (tokio's `on_thread_park`) or
//! when a batch has piled up; app threads drain the queue back to back and park only when it
//! is empty.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;

use crossbeam_channel::{Receiver, Sender};

use crate::exchange::Job;

/// Jobs queued before the I/O thread wakes the app threads without waiting to park.
const WAKE_BATCH: usize = 16;

/// The app threads are gone.
#[derive(Debug)]
pub struct Closed;

pub struct JobQueue {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    /// App threads parked in `pop`.
    idle: Mutex<usize>,
    cv: Condvar,
    /// Jobs were queued since the last wake.
    unannounced: AtomicBool,
    closed: AtomicBool,
    /// For an app thread that waits in an event loop instead of on `cv` (ASGI).
    doorbell: Option<std::sync::Arc<Doorbell>>,
}

/// Wakes an event loop thread from the I/O thread: a socket pair whose read end the loop
/// watches. Rings are coalesced like job wake-ups: `note` marks work, `ring_if_noted` (called
/// when the I/O thread runs out of ready work) writes one byte for all of it.
pub struct Doorbell {
    rx: UnixStream,
    tx: UnixStream,
    noted: AtomicBool,
}

impl Doorbell {
    pub fn new() -> std::io::Result<Self> {
        let (rx, tx) = UnixStream::pair()?;
        rx.set_nonblocking(true)?;
        tx.set_nonblocking(true)?;
        Ok(Doorbell {
            rx,
            tx,
            noted: AtomicBool::new(false),
        })
    }

    /// The fd the loop watches for readability.
    pub fn fd(&self) -> RawFd {
        self.rx.as_raw_fd()
    }

    pub fn note(&self) {
        self.noted.store(true, Ordering::Release);
    }

    pub fn ring_if_noted(&self) {
        if self.noted.swap(false, Ordering::AcqRel) {
            self.ring();
        }
    }

    pub fn ring(&self) {
        // WouldBlock means unread bytes are pending already: the loop will wake anyway
        let _ = (&self.tx).write(&[1]);
    }

    /// Called by the loop before it looks for work, so a ring after this is never lost.
    pub fn drain(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.rx).read(&mut buf), Ok(n) if n == buf.len()) {}
    }
}

impl Default for JobQueue {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        JobQueue {
            tx,
            rx,
            idle: Mutex::new(0),
            cv: Condvar::new(),
            unannounced: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            doorbell: None,
        }
    }
}

impl JobQueue {
    /// A queue whose consumer is an event loop woken through `doorbell`.
    pub fn with_doorbell(doorbell: std::sync::Arc<Doorbell>) -> Self {
        JobQueue {
            doorbell: Some(doorbell),
            ..JobQueue::default()
        }
    }

    pub fn doorbell(&self) -> Option<&std::sync::Arc<Doorbell>> {
        self.doorbell.as_ref()
    }

    /// Queues a job (I/O thread). Wakes the app threads only if a batch has built up.
    /// Fails (dropping the job, which aborts its response) once the queue is closed.
    pub fn push(&self, job: Job) -> Result<(), Closed> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Closed);
        }
        self.tx.send(job).map_err(|_| Closed)?;
        self.unannounced.store(true, Ordering::Release);
        if self.rx.len() >= WAKE_BATCH {
            self.wake();
        }
        Ok(())
    }

    /// Wakes parked app threads if jobs arrived since the last wake (the I/O thread calls
    /// this before it parks).
    pub fn wake(&self) {
        if let Some(bell) = &self.doorbell {
            if self.unannounced.swap(false, Ordering::AcqRel) {
                bell.note();
            }
            bell.ring_if_noted();
            return;
        }
        if self.unannounced.swap(false, Ordering::AcqRel) {
            let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if *idle > 0 {
                self.cv.notify_all();
            }
        }
    }

    /// No more jobs will come; parked threads return.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        if let Some(bell) = &self.doorbell {
            bell.ring();
        }
        let _idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        self.cv.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// A job if one is queued, without blocking.
    pub fn try_pop(&self) -> Option<Job> {
        self.rx.try_recv().ok()
    }

    /// Blocks until a job is queued (Some) or the queue is closed and empty (None).
    /// Call without holding the GIL.
    pub fn pop_blocking(&self) -> Option<Job> {
        loop {
            if let Ok(job) = self.rx.try_recv() {
                return Some(job);
            }
            if self.closed.load(Ordering::Acquire) {
                return None;
            }
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            *idle += 1;
            while self.rx.is_empty() && !self.closed.load(Ordering::Acquire) {
                idle = self.cv.wait(idle).unwrap_or_else(|e| e.into_inner());
            }
            *idle -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::readable;

    #[test]
    fn doorbell_rings_once_for_many_notes_and_drains() {
        let bell = Doorbell::new().unwrap();
        assert!(!readable(bell.fd()));
        bell.note();
        bell.note();
        bell.ring_if_noted();
        bell.ring_if_noted(); // nothing new noted: no second byte
        assert!(readable(bell.fd()));
        bell.drain();
        assert!(!readable(bell.fd()));
    }

    #[test]
    fn a_queue_with_a_doorbell_rings_on_wake_and_on_close() {
        let bell = std::sync::Arc::new(Doorbell::new().unwrap());
        let q = JobQueue::with_doorbell(bell.clone());
        q.wake();
        assert!(!readable(bell.fd()), "nothing queued, nothing to ring for");
        q.close();
        assert!(readable(bell.fd()));
        assert!(q.is_closed());
    }
}
