"""The ASGI twin of ``fault_apps`` (``fault_apps_asgi:app``) for the faults where an event loop
behaves differently from app threads: a client leaving mid-download or mid-upload (the app
learns it from ``send()`` raising or ``http.disconnect``), a segfault that takes every request
of the worker's loop with it, and HUP/TERM with streams in flight.

Routes and events are those of ``fault_apps`` (same ``$FAULT_APPS_EVENTS`` file): ``/pid``,
``/sleep?s=``, ``/download?mb=&kb=`` (``download.close`` recorded in a ``finally``, however the
stream ends), ``/upload``, ``/stats``, ``/segfault``.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import threading
from typing import Any
from urllib.parse import parse_qs

from fault_apps import CHUNK, record, rss_bytes, say

Scope = dict[str, Any]


async def respond(send, body: bytes, status: int = 200, ctype: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def header(scope: Scope, name: bytes) -> str:
    for k, v in scope["headers"]:
        if k == name:
            return v.decode("latin-1")
    return ""


async def download(scope: Scope, send, total: int) -> None:
    rid = header(scope, b"x-rid")
    record("download.start", rid=rid, total=total)
    sent = 0
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        block = b"d" * CHUNK
        while sent < total:
            piece = block[: min(CHUNK, total - sent)]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:
        pass  # the client went away: send() says so (ASGI 2.4's ClientDisconnected)
    finally:
        record("download.close", rid=rid, sent=sent, total=total)


async def upload(scope: Scope, receive, send) -> None:
    rid = header(scope, b"x-rid")
    record("upload.start", rid=rid)
    got = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            record("upload.end", rid=rid, outcome="error", got=got, error="http.disconnect")
            return
        got += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    record("upload.end", rid=rid, outcome="complete", got=got)
    await respond(send, str(got).encode())


async def app(scope: Scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = {k: v[-1] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/upload":
        await upload(scope, receive, send)
        return
    if path == "/pid":
        await respond(send, str(os.getpid()).encode())
    elif path == "/sleep":
        say("sleep started")
        await asyncio.sleep(float(query.get("s", "1")))
        await respond(send, str(os.getpid()).encode())
    elif path == "/download":
        total = int(query.get("mb", "1")) * 1024 * 1024 + int(query.get("kb", "0")) * 1024
        await download(scope, send, total)
    elif path == "/stats":
        stats = {"pid": os.getpid(), "threads": threading.active_count(), "rss": rss_bytes()}
        await respond(send, json.dumps(stats).encode(), ctype=b"application/json")
    elif path == "/segfault":
        say("about to read address 0")
        ctypes.string_at(0)
    else:
        await respond(send, b"not found", 404)
