"""ASGI extensions (trailers, pathsend), server hooks and the access log on the ASGI worker."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from conftest import APPS, recv_until_closed


def raw_get(server, path: str, extra: bytes = b"") -> bytes:
    sock = server.connect()
    sock.sendall(
        b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra + b"\r\n"
    )
    return recv_until_closed(sock)


def test_scope_advertises_the_extensions_it_serves(serve):
    server = serve("asgi_extensions:app", "-k", "asgi")
    response = httpx.get(server.url + "/extensions", timeout=10)
    assert response.text == "http.response.pathsend,http.response.trailers"


def test_trailers_follow_a_chunked_body(serve):
    server = serve("asgi_extensions:app", "-k", "asgi")
    raw = raw_get(server, "/trailers", b"TE: trailers\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert body == b"6\r\nhello \r\n5\r\nworld\r\n0\r\nx-checksum: abc\r\nx-count: 2\r\n\r\n"


def test_announced_trailers_never_sent_still_end_the_body(serve):
    server = serve("asgi_extensions:app", "-k", "asgi")
    raw = raw_get(server, "/trailers-never-sent")
    assert raw.endswith(b"8\r\ncomplete\r\n0\r\n\r\n")
    assert "Exception" not in server.log


def test_trailers_are_dropped_on_http_1_0(serve):
    server = serve("asgi_extensions:app", "-k", "asgi")
    sock = server.connect()
    sock.sendall(b"GET /trailers HTTP/1.0\r\n\r\n")
    raw = recv_until_closed(sock)
    assert raw.startswith(b"HTTP/1.0 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\nhello world")


def test_pathsend_sends_the_file_with_its_length(serve):
    server = serve("asgi_extensions:app", "-k", "asgi")
    response = httpx.get(server.url + "/pathsend", timeout=10)
    expected = (APPS / "asgi_extensions.py").read_bytes()
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(expected))
    assert response.content == expected


def test_request_hooks_run_for_asgi_requests(serve, tmp_path: Path):
    record = tmp_path / "hooks.txt"
    conf = tmp_path / "hooks.conf.py"
    conf.write_text(
        f"RECORD = {str(record)!r}\n"
        "def pre_request(worker, req):\n"
        "    open(RECORD, 'a').write(f'pre {req.method} {req.path}\\n')\n"
        "    if req.path == '/refused':\n"
        "        raise RuntimeError('refused by the hook')\n"
        "def post_request(worker, req, environ, resp):\n"
        "    open(RECORD, 'a').write(f'post {req.path} {resp.status}\\n')\n"
    )
    server = serve("asgi_extensions:app", "-k", "asgi", "-c", str(conf))
    assert httpx.get(server.url + "/hooked", timeout=10).status_code == 201
    assert httpx.get(server.url + "/refused", timeout=10).status_code == 500
    server.wait_for_log("refused by the hook")
    # post_request runs once the response is out, so its line may land just after the client
    # has its answer
    deadline = time.monotonic() + 10
    while len(record.read_text().splitlines()) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert record.read_text().splitlines() == [
        "pre GET /hooked",
        "post /hooked 201 Created",
        "pre GET /refused",
        "post /refused 500 Internal Server Error",
    ]


def test_access_log_records_asgi_requests(serve, tmp_path: Path):
    log = tmp_path / "access.log"
    server = serve(
        "asgi_extensions:app",
        "-k",
        "asgi",
        "--access-logfile",
        str(log),
        "--access-logformat",
        "%(m)s %(U)s %(s)s %(b)s",
    )
    httpx.get(server.url + "/hooked", timeout=10)
    httpx.get(server.url + "/nowhere", timeout=10)
    server.stop()
    assert log.read_text().splitlines() == ["GET /hooked 201 4", "GET /nowhere 404 9"]
