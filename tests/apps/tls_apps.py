"""Apps for tests/test_tls.py: they report how the request reached them over TLS.

``wsgi_app`` answers ``/scheme`` with ``wsgi.url_scheme`` and ``REMOTE_ADDR``, ``/digest`` with the sha256 of the
request body, ``/download?size=`` with that many seeded bytes and ``/file?path=`` with a file
through ``wsgi.file_wrapper``; anything else is a short hello. ``asgi_app`` answers http with its
scope's ``scheme`` and ``tls`` extension as JSON, and on a websocket first sends the scope's
scheme, then echoes every message.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}


def wsgi_app(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    path = environ["PATH_INFO"]
    q = _query(environ)
    if path == "/scheme":
        body = json.dumps(
            {"scheme": environ["wsgi.url_scheme"], "remote": environ.get("REMOTE_ADDR")}
        ).encode()
    elif path == "/digest":
        h = hashlib.sha256()
        length = 0
        while chunk := environ["wsgi.input"].read(65536):
            h.update(chunk)
            length += len(chunk)
        body = json.dumps({"length": length, "sha256": h.hexdigest()}).encode()
    elif path == "/download":
        size = int(q["size"])
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(size)),
            ],
        )
        return [random.Random(int(q.get("seed", "0"))).randbytes(size)]
    elif path == "/file":
        size = os.path.getsize(q["path"])
        start_response(
            "200 OK",
            [
                ("Content-Type", "application/octet-stream"),
                ("Content-Length", str(size)),
            ],
        )
        return environ["wsgi.file_wrapper"](open(q["path"], "rb"), 65536)  # type: ignore[no-any-return]
    else:
        body = b"hello over tls\n"
    start_response(
        "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        tls = scope.get("extensions", {}).get("tls")
        body = json.dumps({"scheme": scope["scheme"], "tls": tls}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})
        return
    if scope["type"] != "websocket":
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": scope["scheme"]})
    while True:
        event = await receive()
        if event["type"] == "websocket.disconnect":
            return
        if event.get("text") is not None:
            await send({"type": "websocket.send", "text": event["text"]})
        else:
            await send({"type": "websocket.send", "bytes": event.get("bytes") or b""})
