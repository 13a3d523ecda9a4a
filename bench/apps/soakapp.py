"""The soak benchmark's app (bench/soak.py): benchapps' four apps behind one callable, chosen by
path, so that one wrk run mixes small, JSON, 64 KiB and POST-echo requests on the same workers.

``wsgi`` routes to the WSGI apps, ``asgi`` to their ASGI counterparts; any other path is a 404.
The apps themselves are benchapps' (unchanged), so a request costs what it costs in bench/run.py.
"""

from __future__ import annotations

import benchapps

ROUTES = ("/plaintext", "/json", "/bytes64k", "/echo")

_WSGI = {path: getattr(benchapps, path[1:]) for path in ROUTES}
_ASGI = {path: getattr(benchapps, "asgi_" + path[1:]) for path in ROUTES}
_NOT_FOUND = b"not found"


def wsgi(environ, start_response):
    app = _WSGI.get(environ.get("PATH_INFO", ""))
    if app is None:
        start_response(
            "404 Not Found",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(_NOT_FOUND)))],
        )
        return [_NOT_FOUND]
    return app(environ, start_response)


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    app = _ASGI.get(scope["path"])
    if app is not None:
        await app(scope, receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(_NOT_FOUND)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _NOT_FOUND})
