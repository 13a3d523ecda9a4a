"""A WSGI app with fixed, known responses for the access log tests.

``/missing`` answers 404, ``/boom`` raises before ``start_response`` (the server answers 500),
a POST echoes its body back, and anything else answers ``hello`` with an ``X-Trace`` header.
"""

from __future__ import annotations


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"nope"]
    if path == "/boom":
        raise RuntimeError("boom")
    if environ["REQUEST_METHOD"] == "POST":
        body = environ["wsgi.input"].read()
        start_response("201 Created", [("Content-Type", "application/octet-stream")])
        return [body]
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Trace", "t-1")])
    return [b"hello"]
