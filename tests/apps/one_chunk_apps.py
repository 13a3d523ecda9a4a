"""WSGI apps whose iterable is not a list and whose first chunk holds the whole declared body
(what Django's and werkzeug's responses look like), for tests/test_wsgi_one_chunk.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

StartResponse = Callable[..., Any]


def _start(start_response: StartResponse, length: int) -> None:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(length))])


def one_chunk(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """One chunk, then code after the last yield that must still run (middleware timing)."""
    _start(start_response, 5)
    yield b"hello"
    marker = os.environ.get("ONE_CHUNK_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(environ["PATH_INFO"] + "\n")


def past_length(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """Yields more than it declared: the extra bytes must never reach the client."""
    _start(start_response, 5)
    yield b"hello"
    yield b"EXTRA"


def raises_after_body(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """The whole body is out when the iterable raises."""
    _start(start_response, 5)
    yield b"hello"
    raise RuntimeError("after the body")
