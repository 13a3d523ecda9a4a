"""Recording apps for the HTTP/1.1 conformance corpus (tests/test_conformance.py).

``app`` (WSGI) and ``asgi_app`` (ASGI 3) answer every request with JSON describing exactly what
reached them: method, path, raw target, query, protocol version, every header as the interface
hands it over (WSGI ``HTTP_*`` / ``CONTENT_*`` keys; the ASGI scope's header list in order) and
the whole body, read to its end. For HEAD, whose response has no body, the same JSON rides in
an ``X-Seen`` response header.

Each process counts the requests it was called for and those whose body it read completely;
``GET /__count`` answers ``{"calls": n, "completed": m}`` without counting itself, so a test can
prove that a request the server had to refuse never reached (or never completed in) the app.
Run them with ``-w 1`` so one process holds the count.
"""

from __future__ import annotations

import json
import threading

COUNT_PATH = "/__count"

_lock = threading.Lock()
_counts = {"calls": 0, "completed": 0}


def _bump(key: str) -> None:
    with _lock:
        _counts[key] += 1


def _count_reply() -> bytes:
    with _lock:
        return json.dumps(_counts).encode("ascii")


def _headers_for(method: str, payload: bytes) -> list[tuple[str, str]]:
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
    if method == "HEAD":
        headers.append(("X-Seen", payload.decode("ascii")))
    return headers


# -- WSGI -------------------------------------------------------------------------------------


def app(environ, start_response):
    if environ["PATH_INFO"] == COUNT_PATH and environ["REQUEST_METHOD"] == "GET":
        payload = _count_reply()
        start_response("200 OK", _headers_for("GET", payload))
        return [payload]
    _bump("calls")
    body = environ["wsgi.input"].read()  # raises on a corrupt or cut body: never "completed"
    _bump("completed")
    headers = {k: v for k, v in environ.items() if k.startswith("HTTP_")}
    headers.update({k: environ[k] for k in ("CONTENT_TYPE", "CONTENT_LENGTH") if k in environ})
    seen = {
        "method": environ["REQUEST_METHOD"],
        "path": environ["PATH_INFO"],
        "raw": environ.get("RAW_URI"),
        "query": environ["QUERY_STRING"],
        "version": environ["SERVER_PROTOCOL"],
        "headers": headers,
        "body": body.decode("latin-1"),
    }
    payload = json.dumps(seen, sort_keys=True).encode("ascii")
    start_response("200 OK", _headers_for(environ["REQUEST_METHOD"], payload))
    return [payload]


# -- ASGI -------------------------------------------------------------------------------------


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["path"] == COUNT_PATH and scope["method"] == "GET":
        await _asgi_reply(send, "GET", _count_reply())
        return
    _bump("calls")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return  # the body never ended: not completed, nothing to answer
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break
    _bump("completed")
    seen = {
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query": scope["query_string"].decode("latin-1"),
        "version": scope["http_version"],
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body": body.decode("latin-1"),
    }
    await _asgi_reply(send, scope["method"], json.dumps(seen, sort_keys=True).encode("ascii"))


async def _asgi_reply(send, method: str, payload: bytes) -> None:
    headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in _headers_for(method, payload)
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
