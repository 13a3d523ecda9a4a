"""A raw ASGI 3 WebSocket app for tests/test_websocket.py, routed on the path.

- ``/echo``: accepts, echoes every text or binary message, records the client's close;
- ``/subprotocol``: accepts with the first of ``chat.v2``, ``chat.v1`` the client offers
  (and none if it offers neither) and sends the chosen one and the offer as JSON;
- ``/scope``: accepts and sends its scope as JSON (types tagged like asgi_raw.tag);
- ``/close?code=C&reason=R``: accepts, then closes with that code and reason;
- ``/deny``: closes before accepting (the server must answer the handshake with 403);
- ``/deny-response``: refuses with the ``websocket.http.response`` extension: 401, a header
  and a two-part body;
- ``/accept-headers``: accepts with an extra response header;
- ``/raise-before-accept``, ``/raise-after-accept``: the app fails at either point;
- ``/send-forever``: sends without receiving and records how its sending ended.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import parse_qs

from asgi_raw import record, tag


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if "state" in scope:
                    scope["state"]["ws_marker"] = "from-lifespan"
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"plain http"})
        return
    assert scope["type"] == "websocket", scope["type"]
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}

    connect = await receive()
    assert connect["type"] == "websocket.connect", connect

    if path == "/deny":
        await send({"type": "websocket.close"})
        return
    if path == "/deny-response":
        if "websocket.http.response" not in scope.get("extensions", {}):
            record("no-http-response-extension")
            await send({"type": "websocket.close"})
            return
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"x-denied-by", b"app")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"go ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"away"})
        return
    if path == "/raise-before-accept":
        raise RuntimeError("websocket app failed before accept")
    if path == "/raise-after-accept":
        await send({"type": "websocket.accept"})
        await receive()  # the client's first message
        raise RuntimeError("websocket app failed after accept")
    if path == "/send-forever":
        # sends without ever calling receive(): only a raising send() says the client left
        await send({"type": "websocket.accept"})
        sent, started = 0, time.monotonic()
        try:
            while time.monotonic() - started < 20:
                await send({"type": "websocket.send", "text": "tick"})
                sent += 1
                await asyncio.sleep(0.01)
            record("send-forever-stopped", how="gave up after 20 s", sent=sent)
        except Exception as exc:
            record(
                "send-forever-stopped",
                how="send raised",
                error=type(exc).__name__,
                is_oserror=isinstance(exc, OSError),
                sent=sent,
            )
        return
    if path == "/subprotocol":
        offered = list(scope.get("subprotocols", []))
        chosen = next((p for p in ("chat.v2", "chat.v1") if p in offered), None)
        await send({"type": "websocket.accept", "subprotocol": chosen})
        await send({"type": "websocket.send", "text": json.dumps({"offered": offered})})
        await receive_until_disconnect(receive)
        return
    if path == "/accept-headers":
        await send({"type": "websocket.accept", "headers": [(b"x-accepted-by", b"app")]})
        await send({"type": "websocket.send", "text": "hello"})
        await receive_until_disconnect(receive)
        return
    if path == "/scope":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": json.dumps(tag(scope))})
        await receive_until_disconnect(receive)
        return
    if path == "/close":
        await send({"type": "websocket.accept"})
        await send(
            {
                "type": "websocket.close",
                "code": int(query.get("code", "1000")),
                "reason": query.get("reason", ""),
            }
        )
        return
    # /echo and anything else
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record("disconnect", code=message.get("code"), reason=message.get("reason"))
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def receive_until_disconnect(receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record("disconnect", code=message.get("code"), reason=message.get("reason"))
            return
