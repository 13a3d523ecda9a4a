"""Apps for the uwsgi protocol tests, one WSGI (Flask) and one ASGI, with the same routes.

``/env`` answers JSON with what the server told the app (client, scheme, host, the CGI vars a
front end passes on, the body's length and sha256); ``/big?mb=N`` answers N MiB of a fixed
pattern with a Content-Length; ``/stream`` answers five chunks with no Content-Length.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator

from flask import Flask, Response, jsonify, request

CHUNKS = [b"chunk-%d;" % i for i in range(5)]
ENV_KEYS = (
    "REMOTE_ADDR",
    "REMOTE_PORT",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "RAW_URI",
    "REQUEST_URI",
    "DOCUMENT_ROOT",
    "APP_SETTING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "HTTP_HOST",
    "HTTP_X_CUSTOM",
    "wsgi.url_scheme",
)


def big_body(mb: int) -> bytes:
    return bytes(range(256)) * (4096 * mb)


flask_app = Flask(__name__)


@flask_app.route("/env", methods=["GET", "POST"])
def env():
    body = request.get_data()
    data = {k: request.environ.get(k) for k in ENV_KEYS}
    data["body_len"] = len(body)
    data["body_sha256"] = hashlib.sha256(body).hexdigest()
    data["url"] = request.url
    return jsonify(data)


@flask_app.get("/big")
def big():
    return Response(big_body(int(request.args.get("mb", "1"))), mimetype="application/octet-stream")


@flask_app.get("/stream")
def stream():
    def gen() -> Iterator[bytes]:
        yield from CHUNKS

    return Response(gen(), mimetype="text/plain")


def wsgi_stream(environ, start_response):
    """A plain WSGI streaming response (no Content-Length), for the raw-packet tests."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    return iter(CHUNKS)


async def _body(receive) -> bytes:
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


async def asgi_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"][len(scope["root_path"]) :]
    start = {"type": "http.response.start", "status": 200}
    if path == "/big":
        mb = int(scope["query_string"].decode().partition("=")[2] or "1")
        payload = big_body(mb)
        await send({**start, "headers": [(b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})
        return
    if path == "/stream":
        await send({**start, "headers": [(b"content-type", b"text/plain")]})
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = await _body(receive)
    headers = {k.decode(): v.decode() for k, v in scope["headers"]}
    out = {
        "client": list(scope["client"]) if scope["client"] else None,
        "server": list(scope["server"]) if scope["server"] else None,
        "scheme": scope["scheme"],
        "method": scope["method"],
        "http_version": scope["http_version"],
        "path": scope["path"],
        "root_path": scope["root_path"],
        "query_string": scope["query_string"].decode(),
        "headers": headers,
        "body_len": len(body),
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }
    payload = json.dumps(out).encode()
    await send({**start, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": payload})
