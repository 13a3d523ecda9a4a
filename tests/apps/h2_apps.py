"""Apps for tests/test_http2.py: one WSGI and one raw ASGI app with the same routes.

Routes: ``/env`` (what the app saw: protocol, path, query, cookie, host), ``/upload``
(sha256 and size of the body), ``/download?n=BYTES`` (deterministic bytes), ``/stream``
(chunks with pauses), ``/slow?s=SECONDS``, ``/boom`` (raises before the response) and
``/hello``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


def pattern(n: int) -> bytes:
    """``n`` deterministic, not trivially compressible bytes."""
    block = bytes(range(256)) * 256
    out = block * (n // len(block)) + block[: n % len(block)]
    return out


def _arg(query: str, name: str, default: str) -> str:
    return parse_qs(query).get(name, [default])[0]


def wsgi(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/env":
        body = json.dumps(
            {
                "protocol": environ["SERVER_PROTOCOL"],
                "http_version": environ.get("HTTP_VERSION"),
                "path": path,
                "query": query,
                "cookie": environ.get("HTTP_COOKIE"),
                "host": environ.get("HTTP_HOST"),
                "scheme": environ["wsgi.url_scheme"],
            }
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/upload":
        h = hashlib.sha256()
        size = 0
        stream = environ["wsgi.input"]
        while chunk := stream.read(65536):
            h.update(chunk)
            size += len(chunk)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({"size": size, "sha256": h.hexdigest()}).encode()]
    if path == "/download":
        data = pattern(int(_arg(query, "n", "1000")))
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [data]
    if path == "/stream":

        def chunks() -> Iterator[bytes]:
            for i in range(5):
                time.sleep(0.02)
                yield f"chunk {i}\n".encode()

        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Connection", "keep-alive")]
        )
        return chunks()
    if path == "/slow":
        time.sleep(float(_arg(query, "s", "1")))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slow done"]
    if path == "/boom":
        raise RuntimeError("boom on purpose")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = scope["query_string"].decode()

    async def respond(body: bytes, ctype: bytes = b"text/plain") -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", ctype)],
            }
        )
        await send({"type": "http.response.body", "body": body})

    if path == "/env":
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        await respond(
            json.dumps(
                {
                    "http_version": scope["http_version"],
                    "path": path,
                    "query": query,
                    "cookie": headers.get("cookie"),
                    "host": headers.get("host"),
                    "scheme": scope["scheme"],
                }
            ).encode(),
            b"application/json",
        )
    elif path == "/upload":
        h = hashlib.sha256()
        size = 0
        more = True
        while more:
            msg = await receive()
            h.update(msg.get("body", b""))
            size += len(msg.get("body", b""))
            more = msg.get("more_body", False)
        await respond(json.dumps({"size": size, "sha256": h.hexdigest()}).encode())
    elif path == "/download":
        await respond(
            pattern(int(_arg(query, "n", "1000"))), b"application/octet-stream"
        )
    elif path == "/stream":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        for i in range(5):
            await asyncio.sleep(0.02)
            await send(
                {
                    "type": "http.response.body",
                    "body": f"chunk {i}\n".encode(),
                    "more_body": True,
                }
            )
        await send({"type": "http.response.body", "body": b""})
    elif path == "/slow":
        await asyncio.sleep(float(_arg(query, "s", "1")))
        await respond(b"slow done")
    elif path == "/wait-disconnect":
        # answers only once the client is gone; records that it saw http.disconnect
        msg = await receive()
        while msg["type"] != "http.disconnect":
            msg = await receive()
        Path(_arg(query, "marker", "/dev/null")).write_text("disconnected")
    elif path == "/boom":
        raise RuntimeError("boom on purpose")
    else:
        await respond(b"hello")
