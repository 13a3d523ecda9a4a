"""Raw ASGI 3 apps (no framework) for the protocol tests in tests/test_asgi*.py.

Apps that must tell the test what happened *inside* the app append one JSON line per event to
the file named by ``$ASGI_EVENTS`` (see :func:`record`); every line carries the worker's pid.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from urllib.parse import parse_qs

EVENTS_ENV = "ASGI_EVENTS"


def record(event: str, **fields) -> None:
    """Append ``{"event": ..., "pid": ..., **fields}`` to ``$ASGI_EVENTS`` (if set)."""
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    line = json.dumps({"event": event, "pid": os.getpid(), "t": time.time(), **fields})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def tag(value):
    """JSON-encode an ASGI value keeping its types: bytes and tuples are tagged, not flattened."""
    if isinstance(value, bytes):
        return {"__bytes__": value.decode("latin-1")}
    if isinstance(value, tuple):
        return {"__tuple__": [tag(v) for v in value]}
    if isinstance(value, list):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        return {str(k): tag(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return {"__repr__": type(value).__name__}


async def drain(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(send, status: int, body: bytes, content_type: bytes = b"text/plain") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def respond_json(send, obj, status: int = 200) -> None:
    await respond(send, status, json.dumps(obj).encode(), b"application/json")


async def lifespan_storing_state(scope, receive, send) -> None:
    """Startup puts a marker into the lifespan state that requests then see in scope["state"]."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            record("lifespan.startup", scope=tag({k: v for k, v in scope.items() if k != "state"}))
            if "state" in scope:
                scope["state"]["started_by"] = "lifespan"
                scope["state"]["worker_pid"] = os.getpid()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            record("lifespan.shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


# -- http scope and bodies -------------------------------------------------------------------


async def scope_app(scope, receive, send) -> None:
    """Answers every request with its scope (types tagged), plus the body it read."""
    if scope["type"] == "lifespan":
        await lifespan_storing_state(scope, receive, send)
        return
    body = await drain(receive)
    await respond_json(send, {"scope": tag(scope), "body_length": len(body)})


# /sleep: requests asleep in the app right now, and the most there ever were at once
SLEEPING = {"now": 0, "peak": 0}


async def body_app(scope, receive, send) -> None:
    """Request and response bodies.

    - ``/echo``: streams every received piece straight back (no Content-Length: the server
      frames it), so the response starts before the request body has ended;
    - ``/count``: answers how many ``http.request`` messages there were, their sizes and
      the SHA-256 of the whole body;
    - ``/stream?n=N&gap=S``: N chunks ``chunk-i\\n``, S seconds apart;
    - ``/fixed``: a body with the app's own Content-Length (also used for HEAD);
    - ``/pid``: the worker's pid.
    """
    if scope["type"] == "lifespan":
        await lifespan_storing_state(scope, receive, send)
        return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    if path == "/echo":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            more = message.get("more_body", False)
            chunk = message.get("body", b"")
            if chunk or not more:
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
            if not more:
                return
    if path == "/count":
        sizes, digest = [], hashlib.sha256()
        while True:
            message = await receive()
            assert message["type"] == "http.request", message
            sizes.append(len(message.get("body", b"")))
            digest.update(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await respond_json(
            send, {"messages": len(sizes), "sizes": sizes, "sha256": digest.hexdigest()}
        )
        return
    if path == "/stream":
        await drain(receive)
        n, gap = int(query.get("n", "3")), float(query.get("gap", "0"))
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"x-streamed", b"yes")]}
        )
        for i in range(n):
            if i and gap:
                await asyncio.sleep(gap)
            await send({"type": "http.response.body", "body": b"chunk-%d\n" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    if path == "/fixed":
        await drain(receive)
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-length", b"11"),
                    (b"x-custom", b"one"),
                    (b"x-custom", b"two"),
                    (b"content-type", b"text/plain; charset=utf-8"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        await send({"type": "http.response.body", "body": b" world"})
        return
    if path == "/pid":
        await drain(receive)
        seen = tag(scope.get("state"))
        if isinstance(scope.get("state"), dict):
            scope["state"]["added_by_a_request"] = True  # must not leak into the next request
        await respond_json(send, {"pid": os.getpid(), "state": seen})
        return
    if path == "/sleep":
        await drain(receive)
        SLEEPING["now"] += 1
        SLEEPING["peak"] = max(SLEEPING["peak"], SLEEPING["now"])
        try:
            await asyncio.sleep(float(query.get("s", "1")))
        finally:
            SLEEPING["now"] -= 1
        slept = float(query.get("s", "1"))
        await respond_json(send, {"slept": slept, "pid": os.getpid(), "peak": SLEEPING["peak"]})
        return
    if path == "/loop":
        await drain(receive)
        loop = asyncio.get_running_loop()
        await respond_json(send, {"module": type(loop).__module__, "name": type(loop).__name__})
        return
    if path == "/empty-pieces":
        await drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"", b"a", b"", b"", b"b", b""):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"c", "more_body": False})
        return
    if path == "/block":
        await drain(receive)
        time.sleep(float(query.get("s", "10")))  # blocks the event loop on purpose
        await respond(send, 200, b"unblocked")
        return
    if path == "/pathsend":
        await drain(receive)
        if "http.response.pathsend" not in scope.get("extensions", {}):
            await respond(send, 501, b"no pathsend extension")
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")],
            }
        )
        await send({"type": "http.response.pathsend", "path": os.environ["ASGI_PATHSEND_FILE"]})
        return
    if path == "/no-read":
        # answers without ever calling receive(): the server deals with the unread body
        await respond(send, 200, b"did not read")
        return
    if path == "/big":
        await drain(receive)
        size = int(query.get("mb", "8")) * 1024 * 1024
        piece = bytes(range(256)) * 256  # 64 KiB
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(size).encode())],
            }
        )
        for _ in range(size // len(piece)):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path in ("/short-length", "/long-length"):
        await drain(receive)
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )
        body = b"12345" if path == "/short-length" else b"123456789012345"
        try:
            await send({"type": "http.response.body", "body": body})
        except Exception as exc:
            record("send-raised", path=path, error=type(exc).__name__)
            raise
        return
    if path == "/no-content-with-body":
        await drain(receive)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b"must not be sent"})
        return
    if path == "/close-header":
        await drain(receive)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"connection", b"close"), (b"content-length", b"3")],
            }
        )
        await send({"type": "http.response.body", "body": b"bye"})
        return
    if path == "/receive-after-response":
        await drain(receive)
        await respond(send, 200, b"done")
        t0 = time.monotonic()
        try:
            message = await asyncio.wait_for(receive(), 5)
            record("after-response", type=message["type"], waited=time.monotonic() - t0)
        except asyncio.TimeoutError:
            record("after-response", type="timeout", waited=time.monotonic() - t0)
        return
    await respond(send, 404, b"no such path")


# -- disconnects -----------------------------------------------------------------------------


async def disconnect_app(scope, receive, send) -> None:
    """``/wait``: reads the body, then waits for ``http.disconnect`` and records it.
    ``/upload``: reads the body and records whether it completed or the client went away.
    ``/stream-forever``: streams until the client goes away, watching for ``http.disconnect``
    in a task beside the sends (as Starlette's StreamingResponse does), and records how it
    stopped."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/wait":
        body = await drain(receive)
        record("body", length=len(body))
        message = await receive()
        record("after-body", type=message["type"])
        return
    if scope["path"] == "/upload":
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                record("upload-ended", how="http.disconnect", received=received)
                return
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                record("upload-ended", how="complete", received=received)
                await respond(send, 200, b"complete")
                return
    if scope["path"] == "/stream-unwatched":
        # never calls receive(): only a raising send() can tell it the client left
        await drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        sent, started = 0, time.monotonic()
        try:
            while time.monotonic() - started < 20:
                await send({"type": "http.response.body", "body": b"y" * 1024, "more_body": True})
                sent += 1
                await asyncio.sleep(0.01)
            record("unwatched-stopped", how="gave up after 20 s", chunks=sent)
        except Exception as exc:
            record(
                "unwatched-stopped",
                how="send raised",
                error=type(exc).__name__,
                is_oserror=isinstance(exc, OSError),
                chunks=sent,
            )
        return
    if scope["path"] == "/stream-forever":
        await drain(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})

        async def watch() -> str:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return "http.disconnect"

        watcher = asyncio.ensure_future(watch())
        sent = 0
        try:
            while not watcher.done():
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                sent += 1
                await asyncio.sleep(0.01)
            record("stream-stopped", how=watcher.result(), chunks=sent)
        except Exception as exc:  # a send on a closed connection may raise (spec 2.4: OSError)
            record("stream-stopped", how="send raised", error=type(exc).__name__, chunks=sent)
            watcher.cancel()
        return
    await respond(send, 404, b"no such path")


# -- misbehaving apps ------------------------------------------------------------------------


async def misbehaving_app(scope, receive, send) -> None:
    """Apps that break the ASGI message order; each records what its bad ``send`` did."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    await drain(receive)

    async def bad_send(message) -> None:
        try:
            await send(message)
        except Exception as exc:
            record("send-raised", path=path, error=type(exc).__name__, message=str(exc))
            raise
        record("send-accepted", path=path)

    if path == "/body-before-start":
        await bad_send({"type": "http.response.body", "body": b"too early"})
    elif path == "/start-twice":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await bad_send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"after second start"})
    elif path == "/send-after-complete":
        await respond(send, 200, b"complete")
        await bad_send({"type": "http.response.body", "body": b"extra"})
    elif path == "/return-without-response":
        return
    elif path == "/raise-before-start":
        raise RuntimeError("boom before start")
    elif path == "/raise-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("boom after start")
    elif path == "/bad-status":
        await bad_send({"type": "http.response.start", "status": "200", "headers": []})
    elif path == "/crlf-header":
        await bad_send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-injected", b"a\r\nset-cookie: evil=1")],
            }
        )
        await send({"type": "http.response.body", "body": b"split"})
    elif path == "/str-header":
        await bad_send({"type": "http.response.start", "status": 200, "headers": [("a", "b")]})
    else:
        await respond(send, 200, b"fine")


# -- lifespan --------------------------------------------------------------------------------


async def lifespan_recording_app(scope, receive, send) -> None:
    """Records lifespan events; startup takes ``$ASGI_STARTUP_DELAY`` seconds. Requests answer
    whether startup had completed in this worker and what the state holds."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                record("startup.begin", state_present="state" in scope)
                await asyncio.sleep(float(os.environ.get("ASGI_STARTUP_DELAY", "0")))
                _started.append(os.getpid())
                if "state" in scope:
                    scope["state"]["db"] = "connected"
                record("startup.complete")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                record("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
        return
    await drain(receive)
    record("request", path=scope["path"])
    await respond_json(send, {"started": os.getpid() in _started, "state": tag(scope.get("state"))})


_started: list[int] = []


async def lifespan_failing_app(scope, receive, send) -> None:
    """Startup fails with ``lifespan.startup.failed`` and a message."""
    if scope["type"] == "lifespan":
        message = await receive()
        assert message["type"] == "lifespan.startup"
        record("startup.failing")
        await send({"type": "lifespan.startup.failed", "message": "database unreachable: ECONN"})
        return
    await drain(receive)
    await respond(send, 200, b"should never be served")


async def lifespan_shutdown_failing_app(scope, receive, send) -> None:
    """Starts fine; shutdown fails with ``lifespan.shutdown.failed`` and a message."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                record("shutdown.failing")
                await send({"type": "lifespan.shutdown.failed", "message": "flush lost: EPIPE"})
                return
    await drain(receive)
    await respond(send, 200, b"up")


async def lifespan_unsupported_app(scope, receive, send) -> None:
    """An app that does not speak lifespan (raises on it), as many small apps do."""
    if scope["type"] != "http":
        record("lifespan.refused")
        raise ValueError(f"unsupported scope type {scope['type']}")
    await drain(receive)
    await respond(send, 200, b"served without lifespan")


async def lifespan_raising_startup_app(scope, receive, send) -> None:
    """Receives the startup event, then raises instead of answering it."""
    if scope["type"] == "lifespan":
        await receive()
        record("startup.raising")
        raise RuntimeError("startup crashed: config missing")
    await drain(receive)
    await respond(send, 200, b"served")


# -- ASGI 2 ----------------------------------------------------------------------------------


class Asgi2App:
    """An ASGI 2 "double callable": ``Asgi2App(scope)`` returns the coroutine-taking instance."""

    def __init__(self, scope) -> None:
        self.scope = scope

    async def __call__(self, receive, send) -> None:
        if self.scope["type"] != "http":
            return
        await drain(receive)
        await respond(send, 200, b"asgi2 says hi to " + self.scope["path"].encode())


asgi2_app = Asgi2App


class WsgiClassApp:
    """A WSGI app written as a class (PEP 3333 allows it): ``WsgiClassApp(environ,
    start_response)`` is the iterable. ``--interface auto`` must not take it for ASGI 2."""

    def __init__(self, environ, start_response) -> None:
        self.path = environ["PATH_INFO"]
        start_response("200 OK", [("Content-Type", "text/plain")])

    def __iter__(self):
        yield b"wsgi class at " + self.path.encode()
