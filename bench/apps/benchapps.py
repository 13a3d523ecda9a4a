"""The pinned apps that bench/run.py loads into every server, so that all of them run the same code.

Each WSGI callable sets Content-Length itself (no chunked framing, no server-side buffering
choices) and does only the work its name says, so the figures measure the server, not the app:

- ``plaintext``: ``Hello, World!`` as text/plain, the fixed per-request cost of a server.
- ``json``: a small dict serialised with ``json.dumps`` on every request.
- ``bytes64k``: a prebuilt 64 KiB body, the cost of moving a larger response out.
- ``echo``: reads the whole POST body from ``wsgi.input`` and sends it back (bench uses 1 MiB).

``asgi_*`` are the same four apps for ASGI servers (ferricorn -k asgi, uvicorn, granian --interface
asgi), plus ``asgi_ws_echo``: a websocket that accepts and sends every text or binary message back
until the client disconnects (bench/ws-load drives it). Do not change these apps without noting it in
bench/README.md: results taken before and after are no longer comparable.
"""

from __future__ import annotations

import json as _json

_HELLO = b"Hello, World!"
_BIG = b"x" * 65536

_TEXT_HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(_HELLO)))]
_BIG_HEADERS = [
    ("Content-Type", "application/octet-stream"),
    ("Content-Length", str(len(_BIG))),
]


def plaintext(environ, start_response):
    start_response("200 OK", list(_TEXT_HEADERS))
    return [_HELLO]


def json(environ, start_response):
    body = _json.dumps({"message": "Hello, World!"}).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]


def bytes64k(environ, start_response):
    start_response("200 OK", list(_BIG_HEADERS))
    return [_BIG]


def echo(environ, start_response):
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    start_response(
        "200 OK",
        [
            ("Content-Type", "application/octet-stream"),
            ("Content-Length", str(len(body))),
        ],
    )
    return [body]


# --- ASGI counterparts (optional servers only) -------------------------------------------------


async def _asgi_reply(send, content_type: bytes, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def asgi_plaintext(scope, receive, send):
    if scope["type"] == "http":
        await _asgi_reply(send, b"text/plain", _HELLO)


async def asgi_json(scope, receive, send):
    if scope["type"] == "http":
        body = _json.dumps({"message": "Hello, World!"}).encode()
        await _asgi_reply(send, b"application/json", body)


async def asgi_bytes64k(scope, receive, send):
    if scope["type"] == "http":
        await _asgi_reply(send, b"application/octet-stream", _BIG)


async def asgi_echo(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    await _asgi_reply(send, b"application/octet-stream", b"".join(chunks))


async def asgi_ws_echo(scope, receive, send):
    """Accept a websocket and echo each message, text as text and bytes as bytes, until it closes."""
    if scope["type"] != "websocket":
        return
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] != "websocket.receive":
            return  # websocket.disconnect
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
