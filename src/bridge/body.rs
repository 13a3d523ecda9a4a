//! Response bodies out of Python without copying the large ones.
//!
//! A `bytes` object is immutable and its buffer lives exactly as long as the object, so the I/O
//! thread can write straight from it while we hold a reference. That saves a copy of every
//! large body (a 64 KiB response is otherwise copied once more before the socket write). Small
//! bodies are still copied: a copy is cheaper than the reference and its allocation.

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// Bodies at least this large are lent, not copied.
const LEND_AT: usize = 16 * 1024;

/// A Python `bytes` object seen as a byte slice from any thread.
struct Lent {
    _obj: Py<PyBytes>,
    ptr: *const u8,
    len: usize,
}

// SAFETY: `ptr`/`len` point into the buffer of the immutable bytes object that `_obj` keeps
// alive; nothing writes to it and it does not move, so reading it from another thread is sound.
// Dropping `_obj` there without the GIL is deferred by PyO3 until a thread holds the GIL.
unsafe impl Send for Lent {}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: see the Send impl: a live, immutable buffer of exactly `len` bytes.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

/// The body of `b` as `Bytes`: lent for large objects, copied for small ones.
pub fn bytes_of(b: &Bound<'_, PyBytes>) -> Bytes {
    let data = b.as_bytes();
    if data.len() < LEND_AT {
        return Bytes::copy_from_slice(data);
    }
    Bytes::from_owner(Lent {
        _obj: b.clone().unbind(),
        ptr: data.as_ptr(),
        len: data.len(),
    })
}
