"""Apps for the proxy and limits tests: each reports what the server told it about the client.

``wsgi_peer`` / ``asgi_peer`` read the whole body (so body limits and timeouts apply) and answer
JSON with the peer facts; ``asgi_ws_peer`` accepts a WebSocket and sends its scope's scheme and
client as one text message.
"""

from __future__ import annotations

import json


def wsgi_peer(environ, start_response):
    try:
        body = environ["wsgi.input"].read()
    except OSError as exc:  # the server refused the body (413) or the client stalled (408)
        body = b""
        environ["wsgi.errors"].write(f"body read failed: {exc}\n")
    keys = ("REMOTE_ADDR", "REMOTE_PORT", "wsgi.url_scheme", "PROXY_PROTOCOL", "PROXY_ADDR")
    data = {k: environ.get(k) for k in keys}
    data["PROXY_PORT"] = environ.get("PROXY_PORT")
    data["SERVER_PORT"] = environ.get("SERVER_PORT")
    data["HTTP_X_FORWARDED_FOR"] = environ.get("HTTP_X_FORWARDED_FOR")
    data["body_len"] = len(body)
    out = json.dumps(data).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(out)))]
    )
    return [out]


async def _body(receive) -> bytes:
    body = b""
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            return body
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


async def asgi_peer(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        client = list(scope["client"]) if scope["client"] else None
        text = json.dumps({"scheme": scope["scheme"], "client": client})
        await send({"type": "websocket.send", "text": text})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = await _body(receive)
    client = list(scope["client"]) if scope["client"] else None
    out = json.dumps({"scheme": scope["scheme"], "client": client, "body_len": len(body)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": out})
