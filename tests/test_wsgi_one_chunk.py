"""A non-list iterable whose first chunk fills Content-Length goes out as one reply (head and
body together, like a list), and nothing the iterable does afterwards may leak into the
connection's next response."""

from __future__ import annotations

import http.client
import os
import time
from pathlib import Path


def _get_twice(server, path: str = "/") -> list[tuple[int, bytes]]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        out = []
        for _ in range(2):
            conn.request("GET", path)
            resp = conn.getresponse()
            out.append((resp.status, resp.read()))
        return out
    finally:
        conn.close()


def test_single_chunk_iterable_answers_whole_and_still_runs_to_its_end(serve, tmp_path: Path):
    marker = tmp_path / "done"
    server = serve("one_chunk_apps:one_chunk", env={**os.environ, "ONE_CHUNK_MARKER": str(marker)})
    assert _get_twice(server, "/a") == [(200, b"hello"), (200, b"hello")]
    # the generator's code after its last yield ran for both requests (the answer goes out as
    # soon as the first chunk fills it, so the second run may end just after the client has it)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if marker.exists() and len(marker.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    assert marker.read_text().splitlines() == ["/a", "/a"]


def test_bytes_past_content_length_never_reach_the_next_response(serve):
    server = serve("one_chunk_apps:past_length")
    assert _get_twice(server) == [(200, b"hello"), (200, b"hello")]


def test_an_error_after_the_whole_body_keeps_the_response_and_the_connection(serve):
    server = serve("one_chunk_apps:raises_after_body")
    assert _get_twice(server) == [(200, b"hello"), (200, b"hello")]
    server.wait_for_log("after the body")
