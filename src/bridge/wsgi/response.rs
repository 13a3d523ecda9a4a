//! Turns what the app returned into reply events: one `Complete` for a list or tuple (the
//! common case, one channel message per request), sendfile for `wsgi.file_wrapper` over a real
//! file, otherwise a stream of chunks sent as the iterable yields them.

use std::os::fd::{AsRawFd, BorrowedFd};

use bytes::{Bytes, BytesMut};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use super::body_bytes;
use super::start_response::StartResponse;
use super::streams::FileWrapper;
use crate::exchange::{FileBody, Reply};

/// Sends the response; `Err` is an app fault (the caller logs it and answers 500 or aborts).
/// A client that went away is not an error: sending simply stops.
pub fn send(
    py: Python<'_>,
    sr: &Bound<'_, StartResponse>,
    result: &Bound<'_, PyAny>,
    is_head: bool,
) -> PyResult<()> {
    if let Ok(list) = result.cast::<PyList>() {
        return send_whole(py, sr, list.iter());
    }
    if let Ok(tuple) = result.cast::<PyTuple>() {
        return send_whole(py, sr, tuple.iter());
    }
    if let Ok(wrapper) = result.cast::<FileWrapper>() {
        if let Some(file) = real_file(py, wrapper.get())? {
            return send_file(py, sr, file, is_head);
        }
    }
    send_stream(py, sr, result)
}

/// A sequence is complete already: join it and send head and body as one reply.
fn send_whole<'py>(
    py: Python<'py>,
    sr: &Bound<'py, StartResponse>,
    items: impl ExactSizeIterator<Item = Bound<'py, PyAny>>,
) -> PyResult<()> {
    let body = if items.len() == 1 {
        let mut items = items;
        items
            .next()
            .map(|i| body_bytes(&i))
            .transpose()?
            .unwrap_or_default()
    } else {
        let mut buf = BytesMut::new();
        for item in items {
            buf.extend_from_slice(&body_bytes(&item)?);
        }
        buf.freeze()
    };
    let mut sr = sr.borrow_mut();
    if sr.head_sent() {
        // the app used write() and then returned the rest
        let _ = sr
            .send(py, Reply::Chunk(body))
            .and_then(|()| sr.send(py, Reply::End));
        return Ok(());
    }
    let Some(head) = sr.take_pending() else {
        return Err(never_started());
    };
    let _ = sr.send_complete(py, Reply::Complete(head, body));
    Ok(())
}

fn send_stream(
    py: Python<'_>,
    sr: &Bound<'_, StartResponse>,
    result: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // The whole declared body went out with the head; what the iterable still yields is past
    // Content-Length, dropped as gunicorn drops it (the iterable still runs to its end).
    let mut complete = false;
    for item in result.try_iter()? {
        let data = body_bytes(&item?)?;
        if complete {
            continue;
        }
        let mut srm = sr.borrow_mut();
        // gunicorn's rule: the head waits for the first non-empty chunk, so an app may still
        // change its mind (start_response with exc_info) until then
        if data.is_empty() && !srm.head_sent() {
            continue;
        }
        if !srm.head_sent() && covers_declared_length(&mut srm, &data) {
            // One chunk holding the whole body (Django's and werkzeug's responses are such
            // iterables): head and body as one reply, like a list. As two messages, the I/O
            // thread woke for the head alone and wrote head and body in two syscalls.
            let Some(head) = srm.take_pending() else {
                return Err(never_started());
            };
            complete = true;
            if srm.send_complete(py, Reply::Complete(head, data)).is_err() {
                log::debug!("client went away; stopping the response");
                return Ok(());
            }
            continue;
        }
        if srm.send_head(py)?.is_err() || srm.send(py, Reply::Chunk(data)).is_err() {
            log::debug!("client went away; stopping the response");
            return Ok(());
        }
    }
    if complete {
        return Ok(());
    }
    let mut srm = sr.borrow_mut();
    if srm.head_sent() {
        let _ = srm.send(py, Reply::End);
        return Ok(());
    }
    let Some(head) = srm.take_pending() else {
        return Err(never_started());
    };
    let _ = srm.send_complete(py, Reply::Complete(head, Bytes::new()));
    Ok(())
}

/// The pending head declares a Content-Length that `data` alone fills.
fn covers_declared_length(sr: &mut StartResponse, data: &[u8]) -> bool {
    sr.pending_mut()
        .and_then(|head| head.content_length)
        .is_some_and(|n| data.len() as u64 >= n)
}

fn send_file(
    py: Python<'_>,
    sr: &Bound<'_, StartResponse>,
    file: FileBody,
    is_head: bool,
) -> PyResult<()> {
    let mut srm = sr.borrow_mut();
    if !srm.has_pending() && !srm.head_sent() {
        return Err(never_started());
    }
    if let Some(head) = srm.pending_mut() {
        head.content_length.get_or_insert(file.len);
    }
    if srm.send_head(py)?.is_err() {
        return Ok(());
    }
    if !is_head && file.len > 0 && srm.send(py, Reply::File(file)).is_err() {
        return Ok(());
    }
    let _ = srm.send(py, Reply::End);
    Ok(())
}

/// The wrapped object's open file, from its current position to its end, when it is a
/// regular file with a descriptor; otherwise None and the wrapper is iterated like any other.
fn real_file(py: Python<'_>, wrapper: &FileWrapper) -> PyResult<Option<FileBody>> {
    let filelike = wrapper.filelike.bind(py);
    if !filelike.hasattr("fileno")? {
        return Ok(None);
    }
    let Ok(fd) = filelike
        .call_method0("fileno")
        .and_then(|f| f.extract::<i32>())
    else {
        return Ok(None);
    };
    // flush Python-side buffers so the descriptor's position is the logical position
    if filelike.hasattr("flush")? {
        let _ = filelike.call_method0("flush");
    }
    let offset = match filelike
        .call_method0("tell")
        .and_then(|t| t.extract::<u64>())
    {
        Ok(o) => o,
        Err(_) => return Ok(None),
    };
    // SAFETY: `fd` belongs to `filelike`, which stays alive (and open) for this whole call;
    // we only duplicate it, and the duplicate is owned by the returned File.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let Ok(owned) = borrowed.try_clone_to_owned() else {
        return Ok(None);
    };
    let file = std::fs::File::from(owned);
    let Ok(meta) = file.metadata() else {
        return Ok(None);
    };
    if !meta.is_file() || file.as_raw_fd() < 0 {
        return Ok(None);
    }
    let len = meta.len().saturating_sub(offset);
    Ok(Some(FileBody { file, offset, len }))
}

fn never_started() -> PyErr {
    pyo3::exceptions::PyAssertionError::new_err(
        "the application returned without calling start_response()",
    )
}
