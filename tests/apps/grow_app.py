"""An app whose /grow route keeps 16 MiB more memory alive per call (for --max-worker-memory)."""

import os

_hoard = []


def app(environ, start_response):
    if environ["PATH_INFO"] == "/grow":
        _hoard.append(bytearray(16 * 1024 * 1024))
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
