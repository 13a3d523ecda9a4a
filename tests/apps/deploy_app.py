"""The app the deployment recipes (docs/deploy/) are tested with, in both interfaces.

HTTP: any path answers JSON describing what the app saw (scheme, client, forwarded headers, the
body's length and sha256); ``/slow?seconds=N`` sleeps first, the in-flight request of graceful
stop tests. ASGI only: a WebSocket at any path echoes every message.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

Message = dict[str, Any]


def _seconds(query: str) -> float:
    return float(parse_qs(query).get("seconds", ["0"])[0])


def wsgi(
    environ: dict[str, Any], start_response: Callable[..., Any]
) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/slow":
        time.sleep(_seconds(environ.get("QUERY_STRING", "")))
    digest = hashlib.sha256()
    length = 0
    stream = environ["wsgi.input"]
    while chunk := stream.read(1 << 16):
        digest.update(chunk)
        length += len(chunk)
    body = json.dumps(
        {
            "scheme": environ["wsgi.url_scheme"],
            "client": environ.get("REMOTE_ADDR", ""),
            "host": environ.get("HTTP_HOST", ""),
            "x_forwarded_for": environ.get("HTTP_X_FORWARDED_FOR"),
            "x_forwarded_proto": environ.get("HTTP_X_FORWARDED_PROTO"),
            "length": length,
            "sha256": digest.hexdigest(),
        }
    ).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while (event := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while (event := await receive())["type"] == "websocket.receive":
            if event.get("text") is not None:
                await send({"type": "websocket.send", "text": event["text"]})
            else:
                await send({"type": "websocket.send", "bytes": event["bytes"]})
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(_seconds(scope["query_string"].decode()))
    digest = hashlib.sha256()
    length = 0
    while True:
        event = await receive()
        chunk = event.get("body", b"")
        digest.update(chunk)
        length += len(chunk)
        if not event.get("more_body"):
            break
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    client = scope.get("client")
    body = json.dumps(
        {
            "scheme": scope["scheme"],
            "client": client[0] if client else "",
            "host": headers.get("host", ""),
            "x_forwarded_for": headers.get("x-forwarded-for"),
            "x_forwarded_proto": headers.get("x-forwarded-proto"),
            "length": length,
            "sha256": digest.hexdigest(),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
