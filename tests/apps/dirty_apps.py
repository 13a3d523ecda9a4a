"""Dirty apps and the HTTP apps that call them (tests/test_dirty.py).

``Counter`` keeps state across calls; ``init()`` counts how often it ran in this process.
``wsgi`` is a plain WSGI app, ``asgi`` a raw ASGI app using the async client; each answers
``/<action>`` with the JSON of ``{"result": ...}`` or ``{"error": class name, "message": ...}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qsl

from ferricorn.dirty import (
    DirtyApp,
    DirtyError,
    get_dirty_client,
    get_dirty_client_async,
    stash,
)

COUNTER = "dirty_apps:Counter"


class Counter(DirtyApp):
    inits = 0

    def init(self) -> None:
        Counter.inits += 1
        self.n = 0

    def incr(self, by: int = 1) -> dict[str, int]:
        self.n += by
        return {"pid": os.getpid(), "n": self.n, "inits": Counter.inits}

    def echo(self, *args: Any, **kwargs: Any) -> Any:
        return {"args": list(args), "kwargs": kwargs, "tuple": isinstance(args, tuple)}

    def fail(self, message: str) -> None:
        raise ValueError(message)

    def sleep(self, seconds: float) -> dict[str, int]:
        time.sleep(seconds)
        return {"pid": os.getpid()}

    def pid(self) -> int:
        return os.getpid()

    def count(self, n: int, delay: float = 0.0) -> Iterator[int]:
        for i in range(n):
            if delay:
                time.sleep(delay)
            yield i
        if n < 0:
            raise ValueError("negative count")

    async def acount(self, n: int) -> AsyncIterator[str]:
        for i in range(n):
            await asyncio.sleep(0)
            yield f"a{i}"

    def stash_put(self, key: str, value: Any) -> int:
        stash.put("shared", key, value)
        return os.getpid()

    def stash_get(self, key: str) -> Any:
        return stash.get("shared", key)


class Limited(DirtyApp):
    def pid(self) -> int:
        return os.getpid()


class Pinned(DirtyApp):
    """Loaded by two dirty workers only: gunicorn's ``workers`` class attribute."""

    workers = 2

    def pid(self) -> int:
        return os.getpid()


def _call(query: dict[str, str], action: str) -> tuple[str, Any]:
    """The dirty call a path names, as (method, args, kwargs)."""
    if action == "echo":
        return "echo", ((1, "two", [3]), {"four": 4.0, "five": None})
    if action == "incr":
        return "incr", ((), {"by": int(query.get("by", "1"))})
    if action == "fail":
        return "fail", (("the dirty app failed",), {})
    if action == "sleep":
        return "sleep", ((float(query.get("s", "1")),), {})
    if action in ("count", "acount"):
        return action, (
            (int(query.get("n", "3")),),
            {"delay": float(query.get("delay", "0"))},
        )
    if action == "stash_put":
        return "stash_put", ((query["k"], query["v"]), {})
    if action == "stash_get":
        return "stash_get", ((query["k"],), {})
    return action, ((), {})


def _outcome(run: Any) -> bytes:
    try:
        body: dict[str, Any] = {"result": run()}
    except DirtyError as e:
        body = {"error": type(e).__name__, "message": e.message}
    return json.dumps(body).encode()


def wsgi(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    path = environ["PATH_INFO"].strip("/")
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "ping":
        body = b"pong"
    elif path == "http_stash_put":
        stash.put("shared", query["k"], query["v"])
        body = b"ok"
    elif path == "http_stash_get":
        body = json.dumps(stash.get("shared", query["k"])).encode()
    elif path.startswith("stream_"):
        method, (args, kwargs) = _call(query, path[len("stream_") :])
        if method == "acount":
            kwargs = {}
        body = _outcome(
            lambda: list(get_dirty_client().stream(COUNTER, method, *args, **kwargs))
        )
    else:
        app = query.get("app", COUNTER)
        method, (args, kwargs) = _call(query, path)
        body = _outcome(
            lambda: get_dirty_client().execute(app, method, *args, **kwargs)
        )
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"].strip("/")
    query = dict(parse_qsl(scope["query_string"].decode()))
    if path == "ping":
        body = b"pong"
    elif path == "stream_count":
        client = await get_dirty_client_async()
        n = int(query.get("n", "3"))
        body = json.dumps(
            {"result": [c async for c in client.stream_async(COUNTER, "count", n)]}
        )
        body = body.encode()
    else:
        method, (args, kwargs) = _call(query, path)
        client = await get_dirty_client_async()
        try:
            result = await client.execute_async(COUNTER, method, *args, **kwargs)
            body = json.dumps({"result": result}).encode()
        except DirtyError as e:
            body = json.dumps(
                {"error": type(e).__name__, "message": e.message}
            ).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})
