"""WSGI apps that report what the server handed them, for the HTTP/1 and parser tests.

``app`` is the echo contract the tests rely on: the response body is JSON holding every
environ entry whose value is a ``str``, ``int`` or ``bool``, plus ``"body"``, the request body
decoded as latin-1 (so every byte value survives the round trip). The other callables are small
variants that each change one thing about the response.

When ``FERRICORN_TEST_CALL_LOG`` names a file, every app appends one JSON line per event to it:
``{"event": "call", ...}`` when the app is entered and ``{"event": "body", ...}`` once it has
read the whole request body. Tests use it to prove the app was never reached by a request the
server had to refuse (a separate file, so the proof does not depend on any response).
"""

from __future__ import annotations

import json
import os

CALL_LOG_ENV = "FERRICORN_TEST_CALL_LOG"


def _log(event: str, environ: dict, **extra: object) -> None:
    path = os.environ.get(CALL_LOG_ENV)
    if not path:
        return
    record = {
        "event": event,
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO"),
        "raw_uri": environ.get("RAW_URI"),
        **extra,
    }
    # One short write per line on an O_APPEND file: lines from concurrent threads don't interleave.
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def _read_body(environ: dict) -> bytes:
    body = environ["wsgi.input"].read()
    _log("body", environ, length=len(body))
    return body


def _snapshot(environ: dict, body: bytes) -> bytes:
    data = {k: v for k, v in environ.items() if isinstance(v, (str, int, bool))}
    data["body"] = body.decode("latin-1")
    return json.dumps(data, sort_keys=True).encode("ascii")


def _json_headers(payload: bytes) -> list[tuple[str, str]]:
    return [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]


def app(environ, start_response):
    """Echo: JSON of the environ's plain entries plus the latin-1 decoded body."""
    _log("call", environ)
    payload = _snapshot(environ, _read_body(environ))
    start_response("200 OK", _json_headers(payload))
    return [payload]


STREAM_PARTS = [b"alpha\n", b"", b"beta\n", b"gamma\n"]


def stream(environ, start_response):
    """No Content-Length: a generator of parts, one of them empty (it must not end the body)."""
    _log("call", environ)
    start_response("200 OK", [("Content-Type", "text/plain")])

    def parts():
        yield from STREAM_PARTS

    return parts()


def close_app(environ, start_response):
    """Echo, but the app itself asks for the connection to be closed."""
    _log("call", environ)
    payload = _snapshot(environ, _read_body(environ))
    start_response("200 OK", [*_json_headers(payload), ("Connection", "close")])
    return [payload]


LAZY_REPLY = b"answered without reading the body"


def lazy(environ, start_response):
    """Reads the body (and echoes) only for ``/read``; any other path answers without reading."""
    _log("call", environ)
    if environ.get("PATH_INFO") == "/read":
        payload = _snapshot(environ, _read_body(environ))
        start_response("200 OK", _json_headers(payload))
        return [payload]
    start_response(
        "200 OK",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(LAZY_REPLY)))],
    )
    return [LAZY_REPLY]
