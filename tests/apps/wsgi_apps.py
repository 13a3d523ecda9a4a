"""Plain WSGI applications that the integration tests serve through ferricorn.

Each app is small and does one thing, so that a failing test points at one server behaviour.
Apps that must report something the HTTP response cannot carry (for example that ``close()``
ran after the client went away) append a line to the file named by the
``FERRICORN_TEST_RECORD`` environment variable of the server process.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
import warnings
from urllib.parse import parse_qs
from wsgiref.validate import WSGIWarning, validator

# The validator reports some problems only as warnings; make them errors so that they turn
# into a 500 and a traceback instead of a line that a test could overlook.
warnings.simplefilter("error", WSGIWarning)

RECORD_ENV = "FERRICORN_TEST_RECORD"
LOG_MARKER_PREFIX = "/__log_marker__/"


def _record(line: str) -> None:
    path = os.environ.get(RECORD_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _query(environ) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def _respond(
    start_response, body: bytes, status: str = "200 OK", ctype: str = "text/plain"
):
    start_response(
        status, [("Content-Type", ctype), ("Content-Length", str(len(body)))]
    )
    return [body]


def _json(start_response, obj, status: str = "200 OK"):
    return _respond(
        start_response, json.dumps(obj).encode(), status, "application/json"
    )


# --- entry points used by the CLI tests -------------------------------------------------------


def application(environ, start_response):
    """Found when the app is given as a bare module name (``ferricorn wsgi_apps``)."""
    return _respond(start_response, b"default application")


def create_app():
    """A factory without arguments: ``wsgi_apps:create_app()``."""

    def app(environ, start_response):
        return _respond(start_response, b"made by create_app")

    return app


def make_app(greeting, n=1):
    """A factory with literal arguments: ``wsgi_apps:make_app('hi', n=2)``."""

    def app(environ, start_response):
        return _respond(start_response, f"{greeting}:{n}".encode())

    return app


NOT_CALLABLE = "this is a string, not a WSGI application"


# --- environ and input -----------------------------------------------------------------------


def _jsonable(value):
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, tuple):
        return list(value)
    return f"<{type(value).__name__}>"


def environ_app(environ, start_response):
    """Answers with the environ as JSON; objects are shown as ``<TypeName>``."""
    data = {key: _jsonable(value) for key, value in environ.items()}
    data["_file_wrapper_callable"] = callable(environ.get("wsgi.file_wrapper"))
    data["_input_methods"] = [
        m
        for m in ("read", "readline", "readlines", "__iter__")
        if hasattr(environ["wsgi.input"], m)
    ]
    data["_errors_methods"] = [
        m
        for m in ("write", "writelines", "flush")
        if hasattr(environ["wsgi.errors"], m)
    ]
    environ["wsgi.input"].read()
    return _json(start_response, data)


def input_app(environ, start_response):
    """Reads the body with the wsgi.input method named by ``?mode=`` and reports the pieces."""
    q = _query(environ)
    mode = q.get("mode", "read")
    n = int(q.get("n", "0"))
    inp = environ["wsgi.input"]
    if mode == "read":
        pieces = [inp.read()]
    elif mode == "read_n":
        pieces = list(iter(lambda: inp.read(n), b""))
    elif mode == "readline":
        pieces = list(iter(inp.readline, b""))
    elif mode == "readline_n":
        pieces = list(iter(lambda: inp.readline(n), b""))
    elif mode == "readlines":
        pieces = inp.readlines()
    elif mode == "iter":
        pieces = list(inp)
    elif mode == "mixed":
        pieces = [inp.readline(), inp.read(3), inp.readline(), inp.read()]
    else:
        return _respond(start_response, b"unknown mode", "400 Bad Request")
    after = inp.read(10)
    if not all(type(p) is bytes for p in [*pieces, after]):
        return _respond(
            start_response,
            b"wsgi.input returned non-bytes",
            "500 Internal Server Error",
        )
    return _json(
        start_response,
        {
            "pieces": [p.decode("latin-1") for p in pieces],
            "after_eof": after.decode("latin-1"),
        },
    )


def digest_app(environ, start_response):
    """Streams the request body through sha256 and reports its length and digest."""
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    length = 0
    while True:
        chunk = inp.read(65536)
        if not chunk:
            break
        h.update(chunk)
        length += len(chunk)
    return _json(start_response, {"length": length, "sha256": h.hexdigest()})


def duplex_app(environ, start_response):
    """Echoes the first body line before reading the rest, to show wsgi.input is streamed."""
    inp = environ["wsgi.input"]
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"first line: " + inp.readline()
        rest = inp.read()
        yield f"rest: {len(rest)} bytes\n".encode()

    return body()


def errors_app(environ, start_response):
    """Writes the ``?msg=`` text to wsgi.errors (write, writelines, flush) and answers ok."""
    msg = _query(environ).get("msg", "no message")
    errors = environ["wsgi.errors"]
    errors.write(msg + "\n")
    errors.writelines([msg + " (writelines)\n"])
    errors.flush()
    return _respond(start_response, b"logged")


# --- response styles -------------------------------------------------------------------------


def write_app(environ, start_response):
    """Sends part of the body through the legacy write() callable, then returns the rest."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"one ")
    write(b"two ")
    return [b"three"]


def write_only_app(environ, start_response):
    """Sends the whole body through write() and returns an empty iterable."""
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    for i in range(5):
        write(f"line {i}\n".encode())
    return []


class _ReadOnlyBlob:
    """A file-like object with read() and close() but no fileno(): no sendfile shortcut."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = len(self._data) - self._pos
        chunk = self._data[self._pos : self._pos + size]
        self._pos += len(chunk)
        return chunk

    def close(self) -> None:
        _record("blob closed")


def file_app(environ, start_response):
    """Serves the file named by ``?path=`` through wsgi.file_wrapper (a real file object)."""
    path = _query(environ)["path"]
    size = os.path.getsize(path)
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))],
    )
    return environ["wsgi.file_wrapper"](open(path, "rb"), 8192)


def file_no_length_app(environ, start_response):
    """Like file_app but without Content-Length, so the server must frame the body itself."""
    path = _query(environ)["path"]
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](open(path, "rb"))


def blob_app(environ, start_response):
    """wsgi.file_wrapper around an object without fileno(); the server must fall back to read()."""
    data = b"".join(f"blob line {i}\n".encode() for i in range(2000))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](_ReadOnlyBlob(data), 1000)


def stream_app(environ, start_response):
    """A generator response of ``?n=`` numbered lines, without Content-Length."""
    n = int(_query(environ).get("n", "100"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (f"chunk {i}\n".encode() for i in range(n))


def gated_stream_app(environ, start_response):
    """Yields a first block, then waits (up to 10 s) for the file ``?gate=`` before the second.

    The client creates the gate file only after it has received the first block, so the test
    passes only if the server sends blocks as they are produced.
    """
    gate = _query(environ)["gate"]
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"first\n"
        deadline = time.monotonic() + 10
        while not os.path.exists(gate):
            if time.monotonic() > deadline:
                yield b"gate timed out\n"
                return
            time.sleep(0.02)
        yield b"second\n"

    return body()


def download_app(environ, start_response):
    """``?size=&seed=`` bytes of seeded pseudo-random data, in 64 KiB blocks.

    ``&length=0`` leaves out Content-Length so the body goes out chunked.
    """
    q = _query(environ)
    size = int(q["size"])
    rng = random.Random(int(q.get("seed", "0")))
    headers = [("Content-Type", "application/octet-stream")]
    if q.get("length", "1") == "1":
        headers.append(("Content-Length", str(size)))
    start_response("200 OK", headers)

    def body():
        left = size
        while left:
            n = min(65536, left)
            yield rng.randbytes(n)
            left -= n

    return body()


class _RecordingBody:
    """A response iterable that records ``close()``; ``count=0`` means endless."""

    def __init__(self, count: int, block: bytes, delay: float) -> None:
        self.count = count
        self.block = block
        self.delay = delay

    def __iter__(self):
        i = 0
        while self.count == 0 or i < self.count:
            if i and self.delay:
                time.sleep(self.delay)
            yield self.block
            i += 1

    def close(self) -> None:
        _record("close called")


def recording_app(environ, start_response):
    """``?count=N`` blocks of 64 KiB (0 = endless) whose close() is recorded."""
    q = _query(environ)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return _RecordingBody(
        int(q.get("count", "0")), b"x" * 65536, float(q.get("delay", "0.01"))
    )


def status_app(environ, start_response):
    """Answers with the status line given in ``?status=`` verbatim."""
    status = _query(environ)["status"]
    return _respond(start_response, b"status body", status)


# --- start_response and exc_info ------------------------------------------------------------


def exc_info_replace_app(environ, start_response):
    """Replaces its headers through exc_info before any body was sent (allowed by PEP 3333)."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-First-Call", "yes")])
    try:
        raise ValueError("handled before the body")
    except ValueError:
        start_response(
            "503 Service Unavailable",
            [("Content-Type", "text/plain"), ("X-Replaced", "yes")],
            sys.exc_info(),
        )
    return [b"custom error page"]


def exc_info_after_body_app(environ, start_response):
    """Calls start_response with exc_info after a block was sent; the server must re-raise."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"first part\n"
        try:
            raise ValueError("original-failure-marker")
        except ValueError:
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/plain")],
                sys.exc_info(),
            )
        yield b"must not be sent\n"

    return body()


# --- faulty applications ---------------------------------------------------------------------


def raise_app(environ, start_response):
    raise RuntimeError("kaboom-from-raise-app")


def raise_in_first_block_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        raise RuntimeError("kaboom-before-first-block")
        yield b"never"

    return body()


def raise_after_block_app(environ, start_response):
    """Sends a first block (no Content-Length, so HTTP/1.1 is chunked) and then raises."""
    start_response("200 OK", [("Content-Type", "text/plain")])

    def body():
        yield b"partial body\n"
        raise RuntimeError("kaboom-after-first-block")

    return body()


def raise_after_block_with_length_app(environ, start_response):
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", "1000")]
    )

    def body():
        yield b"partial body\n"
        raise RuntimeError("kaboom-after-first-block-with-length")

    return body()


def str_body_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["a str, not bytes"]


def none_body_app(environ, start_response):
    """Falls off the end, so the server gets None instead of an iterable."""
    start_response("200 OK", [("Content-Type", "text/plain")])


def no_start_response_app(environ, start_response):
    return [b"body without a status"]


BAD_HEADERS = {
    "bytes-name": (b"X-Bytes-Name", "v"),
    "int-value": ("X-Int-Value", 5),
    "crlf-value": ("X-Crlf", "a\r\nInjected: yes"),
    "lf-value": ("X-Lf", "a\nInjected: yes"),
    "crlf-name": ("X-Bad\r\nInjected", "yes"),
    "space-name": ("Bad Name", "v"),
    "colon-name": ("Bad:Name", "v"),
}


def bad_header_app(environ, start_response):
    name, value = BAD_HEADERS[_query(environ)["case"]]
    start_response("200 OK", [("Content-Type", "text/plain"), (name, value)])
    return [b"should not be sent"]


def double_start_response_app(environ, start_response):
    """Calls start_response twice without exc_info; the second call must raise."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"second call was accepted"]


class _CloseRaises:
    def __iter__(self):
        yield b"body ok"

    def close(self):
        raise RuntimeError("close-failed-marker")


def close_raises_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "7")])
    return _CloseRaises()


def ok_app(environ, start_response):
    return _respond(start_response, b"ok")


# --- apps wrapped in wsgiref.validate.validator -----------------------------------------------


def _marker_aware(app):
    """Lets a test write a unique marker to wsgi.errors, to know the log has caught up."""

    def wrapped(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith(LOG_MARKER_PREFIX):
            environ["wsgi.errors"].write(path[len(LOG_MARKER_PREFIX) :] + "\n")
            environ["wsgi.errors"].flush()
            return _respond(start_response, b"marked")
        return app(environ, start_response)

    return wrapped


def _echo(environ, start_response):
    inp = environ["wsgi.input"]
    h = hashlib.sha256()
    length = 0
    while True:
        chunk = inp.read(65536)
        if not chunk:
            break
        h.update(chunk)
        length += len(chunk)
    return _json(
        start_response,
        {
            "method": environ["REQUEST_METHOD"],
            "path": environ["PATH_INFO"],
            "query": environ["QUERY_STRING"],
            "length": length,
            "sha256": h.hexdigest(),
        },
    )


def _lines(environ, start_response):
    inp = environ["wsgi.input"]
    first = inp.readline()
    second = inp.readline(4)
    rest = inp.readlines()
    out = [first, second, *rest]
    return _json(start_response, [p.decode("latin-1") for p in out])


def _generator(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return (f"line {i}\n".encode() for i in range(50))


def _empty(environ, start_response):
    start_response("204 No Content", [])
    return []


validated_echo = validator(_marker_aware(_echo))
validated_lines = validator(_marker_aware(_lines))
validated_generator = validator(_marker_aware(_generator))
validated_write = validator(_marker_aware(write_app))
validated_file = validator(_marker_aware(file_app))
validated_empty = validator(_marker_aware(_empty))
