//! Completions travelling from the I/O thread to the event loop thread.
//!
//! When an ASGI awaitable cannot complete at once (the next body piece has not arrived, the
//! connection's reply channel is full, the app waits for `http.disconnect`), a task on the I/O
//! thread waits for it and then queues a *completion*: a closure that the loop thread runs with
//! the GIL to resolve the app's future. The I/O thread never takes the GIL; the loop thread
//! never blocks. Completions share the job queue's doorbell, so one wake-up of the loop
//! delivers every new request and every completion that piled up meanwhile.

use std::sync::{Arc, Mutex};

use pyo3::Python;

use crate::job_queue::Doorbell;

/// Completions queued before the I/O thread rings without waiting to run out of work.
const RING_BATCH: usize = 16;

pub type Completion = Box<dyn FnOnce(Python<'_>) + Send>;

pub struct Inbox {
    doorbell: Arc<Doorbell>,
    queue: Mutex<Vec<Completion>>,
}

impl Inbox {
    pub fn new(doorbell: Arc<Doorbell>) -> Self {
        Inbox {
            doorbell,
            queue: Mutex::new(Vec::new()),
        }
    }

    /// Queues a completion (I/O thread). The ring itself waits until the I/O thread parks.
    pub fn push(&self, completion: Completion) {
        let len = {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.push(completion);
            q.len()
        };
        self.doorbell.note();
        if len >= RING_BATCH {
            self.doorbell.ring_if_noted();
        }
    }

    /// Everything queued so far (loop thread, after draining the doorbell).
    pub fn take(&self) -> Vec<Completion> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::readable;

    #[test]
    fn completions_wait_for_the_park_unless_a_batch_piles_up() {
        let bell = Arc::new(Doorbell::new().unwrap());
        let inbox = Inbox::new(bell.clone());
        inbox.push(Box::new(|_py| {}));
        assert!(
            !readable(bell.fd()),
            "one completion waits for the I/O thread to park"
        );
        bell.ring_if_noted();
        assert!(readable(bell.fd()));
        bell.drain();
        for _ in 1..RING_BATCH {
            inbox.push(Box::new(|_py| {}));
        }
        assert!(readable(bell.fd()), "a full batch rings at once");
        assert_eq!(inbox.take().len(), RING_BATCH);
        assert!(inbox.take().is_empty());
    }
}
