"""Large and streamed bodies in both directions, and close() when the client goes away."""

from __future__ import annotations

import hashlib
import random
import socket
import struct
import time

import httpx
import pytest
from conftest import recv_until_closed

TEN_MB = 10 * 1024 * 1024


def client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=120)


def seeded_bytes(size: int, seed: int) -> bytes:
    """The same bytes wsgi_apps.download_app produces for ``size`` and ``seed``."""
    rng = random.Random(seed)
    out = []
    left = size
    while left:
        n = min(65536, left)
        out.append(rng.randbytes(n))
        left -= n
    return b"".join(out)


def wait_for_lines(path, line: str, count: int = 1, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        if path.exists():
            seen = path.read_text().splitlines().count(line)
            if seen >= count:
                return seen
        time.sleep(0.02)
    raise AssertionError(f"expected {count} x {line!r} in {path}, saw {seen}")


def read_until(sock: socket.socket, needle: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before {needle!r}; got {data!r}")
        data += chunk
    return data


# --- 10 MB round trips -----------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_ten_megabyte_upload_reaches_app_intact(serve, framing):
    payload = seeded_bytes(TEN_MB, seed=7)
    if framing == "content-length":
        content = payload
    else:
        content = (payload[i : i + 100_000] for i in range(0, len(payload), 100_000))
    server = serve("wsgi_apps:digest_app")
    with client(server) as c:
        r = c.post("/", content=content)
    assert r.status_code == 200, r.text
    assert r.json() == {"length": TEN_MB, "sha256": hashlib.sha256(payload).hexdigest()}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_ten_megabyte_download_arrives_intact(serve, framing):
    server = serve("wsgi_apps:download_app")
    with client(server) as c:
        r = c.get(
            "/",
            params={
                "size": TEN_MB,
                "seed": 11,
                "length": 1 if framing == "content-length" else 0,
            },
        )
    assert r.status_code == 200
    if framing == "content-length":
        assert r.headers["content-length"] == str(TEN_MB)
    else:
        assert r.headers.get("transfer-encoding") == "chunked"
    assert len(r.content) == TEN_MB
    assert (
        hashlib.sha256(r.content).hexdigest()
        == hashlib.sha256(seeded_bytes(TEN_MB, 11)).hexdigest()
    )


def test_ten_megabyte_download_over_http_1_0_ends_at_close(serve):
    server = serve("wsgi_apps:download_app")
    with server.connect() as sock:
        sock.sendall(f"GET /?size={TEN_MB}&seed=3&length=0 HTTP/1.0\r\n\r\n".encode())
        data = recv_until_closed(sock, timeout=60)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0]
    assert b"chunked" not in head.lower()
    assert (
        hashlib.sha256(body).hexdigest()
        == hashlib.sha256(seeded_bytes(TEN_MB, 3)).hexdigest()
    )


def test_upload_and_download_on_one_keep_alive_connection(serve):
    server = serve("wsgi_apps:digest_app")
    payloads = [seeded_bytes(n, seed=n) for n in (0, 1, 65535, 65536, 65537, 3_000_001)]
    with client(server) as c:
        for p in payloads:
            r = c.post("/", content=p)
            assert r.json() == {
                "length": len(p),
                "sha256": hashlib.sha256(p).hexdigest(),
            }


# --- streaming -------------------------------------------------------------------------------


def test_streaming_generator_response_arrives_whole(serve):
    server = serve("wsgi_apps:stream_app")
    with client(server) as c:
        r = c.get("/", params={"n": 2000})
    assert r.status_code == 200
    assert r.text == "".join(f"chunk {i}\n" for i in range(2000))


def test_streamed_blocks_are_sent_before_the_generator_finishes(serve, tmp_path):
    gate = tmp_path / "gate"
    server = serve("wsgi_apps:gated_stream_app")
    with server.connect() as sock:
        sock.sendall(
            f"GET /?gate={gate} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode()
        )
        first = read_until(sock, b"first\n", timeout=5)
        gate.touch()
        rest = recv_until_closed(sock)
    body = first + rest
    assert b"second\n" in body
    assert b"gate timed out" not in body


def test_request_body_is_streamed_to_app_before_it_is_complete(serve):
    first_part = b"hello\n" + b"x" * (100_000 - 6)
    server = serve("wsgi_apps:duplex_app")
    with server.connect() as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: t\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(first_part)
            + first_part
            + b"\r\n"
        )
        # The app echoes the first line while the client still holds back the end of the body;
        # a server that waits for the whole body before calling the app never answers.
        first = read_until(sock, b"first line: hello\n", timeout=5)
        sock.sendall(b"5\r\nworld\r\n0\r\n\r\n")
        rest = recv_until_closed(sock)
    assert b"rest: %d bytes\n" % (len(first_part) - 6 + 5) in first + rest


# --- close() ---------------------------------------------------------------------------------


def test_close_is_called_once_after_a_complete_response(serve, tmp_path):
    record = tmp_path / "record.txt"
    server = serve(
        "wsgi_apps:recording_app", env={"FERRICORN_TEST_RECORD": str(record)}
    )
    with client(server) as c:
        r = c.get("/", params={"count": 3, "delay": 0})
    assert len(r.content) == 3 * 65536
    wait_for_lines(record, "close called", 1)
    time.sleep(0.2)  # give a wrongly repeated close() the chance to show up
    assert record.read_text().splitlines().count("close called") == 1


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_disconnect_mid_response_calls_close(serve, tmp_path, how):
    record = tmp_path / "record.txt"
    server = serve(
        "wsgi_apps:recording_app", env={"FERRICORN_TEST_RECORD": str(record)}
    )
    sock = server.connect()
    sock.sendall(b"GET /?count=0&delay=0.01 HTTP/1.1\r\nHost: t\r\n\r\n")
    received = 0
    sock.settimeout(5)
    while received < 300_000:
        chunk = sock.recv(65536)
        assert chunk, "server closed an endless response"
        received += len(chunk)
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    wait_for_lines(record, "close called", 1, timeout=5)
    # The worker is free again for the next client.
    with client(server) as c:
        r = c.get("/", params={"count": 1, "delay": 0})
    assert len(r.content) == 65536
    wait_for_lines(record, "close called", 2, timeout=5)


def test_client_disconnect_before_reading_anything_calls_close(serve, tmp_path):
    record = tmp_path / "record.txt"
    server = serve(
        "wsgi_apps:recording_app", env={"FERRICORN_TEST_RECORD": str(record)}
    )
    with server.connect() as sock:
        sock.sendall(b"GET /?count=0&delay=0.05 HTTP/1.1\r\nHost: t\r\n\r\n")
    wait_for_lines(record, "close called", 1, timeout=5)
