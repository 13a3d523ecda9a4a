"""ASGI extensions and server features beyond the core protocol: trailers, pathsend."""

import os

HERE = os.path.dirname(os.path.abspath(__file__))


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/extensions":
        body = ",".join(sorted(scope.get("extensions", {}))).encode()
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body})
    elif path == "/trailers":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "trailers": True,
                "headers": [(b"trailer", b"x-checksum, x-count")],
            }
        )
        await send({"type": "http.response.body", "body": b"hello ", "more_body": True})
        await send({"type": "http.response.body", "body": b"world"})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", b"abc")],
                "more_trailers": True,
            }
        )
        await send({"type": "http.response.trailers", "headers": [(b"x-count", b"2")]})
    elif path == "/trailers-never-sent":
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"complete"})
    elif path == "/pathsend":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/x-python")],
            }
        )
        await send({"type": "http.response.pathsend", "path": os.path.join(HERE, __name__ + ".py")})
    elif path == "/hooked":
        await send({"type": "http.response.start", "status": 201, "headers": [(b"x-a", b"1")]})
        await send({"type": "http.response.body", "body": b"made"})
    else:
        await send({"type": "http.response.start", "status": 404})
        await send({"type": "http.response.body", "body": b"not found"})
