"""The WSGI app of the fault-injection tests (``fault_apps:app``, tests/test_faults.py).

Well-behaved routes answer quickly and name the worker that answered; faulty routes misbehave
in one precise way each. Events that happen *inside* a worker (a download's iterable closed, an
upload cut short) are appended as JSON lines to the file named by ``$FAULT_APPS_EVENTS``, so a
test sees every worker's events, including those of workers that have since exited.

Well-behaved:

- ``/pid``                   the serving process's pid
- ``/sleep?s=SECONDS``       sleeps (logs "sleep started" first), then the pid
- ``/download?mb=N&kb=K``    N MiB (plus K KiB) streamed in 64 KiB chunks, no Content-Length;
                             ``download.start`` / ``download.close`` events (the iterable's
                             close() is where the second one comes from)
- ``/upload``                reads the whole body in 64 KiB reads and answers its length;
                             ``upload.start`` then ``upload.end`` with ``outcome`` "complete"
                             (and the length read) or "error" (the read raised)
- ``/close-raises?cl=0|1``   a 3-chunk body whose iterable's close() raises RuntimeError; with
                             ``cl=1`` the body has a Content-Length, otherwise it is chunked
- ``/stats``                 this worker's pid, thread count and resident memory (JSON)

Faulty:

- ``/segfault``   reads address 0 through ctypes: the worker dies of SIGSEGV
- ``/hang``       sleeps 60 s inside :func:`hanging_in_the_app` (logs "hang started")
- ``/leak?mb=N``  keeps N more MiB alive for the rest of the worker's life, then answers
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import parse_qs

EVENTS_ENV = "FAULT_APPS_EVENTS"
CHUNK = 64 * 1024

_leaked: list[bytes] = []

StartResponse = Callable[..., object]


def record(event: str, **fields: object) -> None:
    """Append ``{"event": ..., "pid": ..., **fields}`` to ``$FAULT_APPS_EVENTS`` (if set)."""
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **fields})
    # one short O_APPEND write per event: lines from several workers and threads never mix
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def say(message: str) -> None:
    # one write: under PYTHONUNBUFFERED, print() writes the text and its newline separately,
    # and another process's line can land between them
    sys.stderr.write(f"fault_apps[{os.getpid()}]: {message}\n")
    sys.stderr.flush()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _text(start_response: StartResponse, body: str, status: str = "200 OK") -> list[bytes]:
    data = body.encode()
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))])
    return [data]


class Download:
    """A streamed body whose close() is recorded: a client that leaves mid-way must still get
    close() called (PEP 3333), or the app would leak whatever the iterable holds."""

    def __init__(self, total: int, rid: str) -> None:
        self.total = total
        self.rid = rid
        self.sent = 0
        record("download.start", rid=rid, total=total)

    def __iter__(self) -> Iterator[bytes]:
        block = b"d" * CHUNK
        while self.sent < self.total:
            piece = block[: min(CHUNK, self.total - self.sent)]
            self.sent += len(piece)
            yield piece

    def close(self) -> None:
        record("download.close", rid=self.rid, sent=self.sent, total=self.total)


class CloseRaises:
    """Three chunks, then a close() that raises: the response is already complete by then."""

    def __init__(self) -> None:
        self.chunks = [b"first;", b"second;", b"third."]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.chunks)

    def close(self) -> None:
        raise RuntimeError("close() failed on purpose")


def hanging_in_the_app() -> None:
    """A distinctive frame name for the stack dump that precedes the timeout kill."""
    say("hang started")
    time.sleep(60)


def upload(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    rid = environ.get("HTTP_X_RID", "")
    record("upload.start", rid=rid)
    stream = environ["wsgi.input"]
    length = int(environ["CONTENT_LENGTH"]) if environ.get("CONTENT_LENGTH") else None
    got = 0
    try:
        while True:
            want = CHUNK if length is None else min(CHUNK, length - got)
            if want <= 0:
                break
            piece = stream.read(want)
            if not piece:
                break
            got += len(piece)
    except OSError as e:
        # the client left mid-body: wsgi.input says so instead of pretending the body ended
        record("upload.end", rid=rid, outcome="error", got=got, error=str(e))
        return _text(start_response, "incomplete body", "400 Bad Request")
    record("upload.end", rid=rid, outcome="complete", got=got)
    return _text(start_response, str(got))


def app(environ: dict, start_response: StartResponse) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/sleep":
        say("sleep started")
        time.sleep(float(query.get("s", "1")))
        return _text(start_response, str(os.getpid()))
    if path == "/download":
        total = int(query.get("mb", "1")) * 1024 * 1024 + int(query.get("kb", "0")) * 1024
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return Download(total, environ.get("HTTP_X_RID", ""))
    if path == "/upload":
        return upload(environ, start_response)
    if path == "/close-raises":
        headers = [("Content-Type", "text/plain")]
        if query.get("cl") == "1":
            headers.append(("Content-Length", str(len(b"first;second;third."))))
        start_response("200 OK", headers)
        return CloseRaises()
    if path == "/stats":
        stats = {"pid": os.getpid(), "threads": threading.active_count(), "rss": rss_bytes()}
        data = json.dumps(stats).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [data]
    if path == "/segfault":
        say("about to read address 0")
        ctypes.string_at(0)
        return _text(start_response, "survived a segfault?")
    if path == "/hang":
        hanging_in_the_app()
        return _text(start_response, "woke up")
    if path == "/leak":
        mb = int(query.get("mb", "4"))
        # bytes built by repetition are written, so every page is resident
        _leaked.append(b"L" * (mb * 1024 * 1024))
        return _text(start_response, str(os.getpid()))
    return _text(start_response, "not found", "404 Not Found")
