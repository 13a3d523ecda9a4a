"""``--protocol uwsgi``: requests as uwsgi packets (what nginx's ``uwsgi_pass`` sends), answered
as plain HTTP/1.x responses, never chunked.

First raw packets over TCP against the WSGI and ASGI apps of ``apps/uwsgi_apps.py``, then a
real nginx (skipped when it is not installed) with ``uwsgi_pass`` to ferricorn on a unix socket.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apps.uwsgi_apps import CHUNKS, big_body
from conftest import APPS, Server
from helpers_http import RawConnection, Response
from helpers_nginx import NGINX, SKIP_REASON, Nginx, free_port

WSGI = "uwsgi_apps:flask_app"
ASGI = "uwsgi_apps:asgi_app"


def packet(vars: list[tuple[str, str]], modifier1: int = 0) -> bytes:
    block = b""
    for key, value in vars:
        k, v = key.encode("latin-1"), value.encode("latin-1")
        block += len(k).to_bytes(2, "little") + k + len(v).to_bytes(2, "little") + v
    return bytes([modifier1]) + len(block).to_bytes(2, "little") + b"\0" + block


def nginx_vars(
    method: str = "GET", uri: str = "/env", body: bytes = b"", **extra: str
) -> list[tuple[str, str]]:
    """The vars nginx's stock uwsgi_params send, plus the request's headers."""
    path, _, query = uri.partition("?")
    out = [
        ("QUERY_STRING", query),
        ("REQUEST_METHOD", method),
        ("CONTENT_TYPE", "text/plain" if body else ""),
        ("CONTENT_LENGTH", str(len(body)) if body else ""),
        ("REQUEST_URI", uri),
        ("PATH_INFO", path),
        ("DOCUMENT_ROOT", "/srv/www"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_SCHEME", "http"),
        ("REMOTE_ADDR", "203.0.113.7"),
        ("REMOTE_PORT", "40123"),
        ("SERVER_PORT", "8443"),
        ("SERVER_NAME", "app.example"),
        ("HTTP_HOST", "app.example:8443"),
        ("HTTP_X_CUSTOM", "yes"),
    ]
    return out + list(extra.items())


def exchange(server: Server, data: bytes) -> tuple[Response, RawConnection]:
    conn = RawConnection.to(server)
    conn.send(data)
    return conn.read_response(), conn


@pytest.fixture(params=[WSGI, ASGI])
def app(request) -> str:
    return request.param


def uwsgi_server(serve, app: str, *args: str) -> Server:
    return serve(app, "--protocol", "uwsgi", *args)


# -- raw packets ---------------------------------------------------------------------------


def test_get_with_query_reaches_the_app_with_the_packets_facts(serve, app):
    server = uwsgi_server(serve, app)
    resp, conn = exchange(server, packet(nginx_vars(uri="/env?a=1&b=two%20words")))
    conn.close()
    assert resp.status == 200, resp
    assert "Transfer-Encoding" not in resp.raw_head.decode()
    data = resp.json()
    if app == WSGI:
        assert data["REMOTE_ADDR"] == "203.0.113.7"
        assert data["REMOTE_PORT"] == "40123"
        assert data["SERVER_NAME"] == "app.example"
        assert data["SERVER_PORT"] == "8443"
        assert data["QUERY_STRING"] == "a=1&b=two%20words"
        assert data["PATH_INFO"] == "/env"
        assert data["RAW_URI"] == "/env?a=1&b=two%20words"
        assert data["HTTP_HOST"] == "app.example:8443"
        assert data["HTTP_X_CUSTOM"] == "yes"
        assert data["DOCUMENT_ROOT"] == "/srv/www"
        assert data["REQUEST_URI"] == "/env?a=1&b=two%20words"
        assert data["wsgi.url_scheme"] == "http"
        assert data["url"] == "http://app.example:8443/env?a=1&b=two%20words"
    else:
        assert data["client"] == ["203.0.113.7", 40123]
        assert data["server"] == ["app.example", 8443]
        assert data["path"] == "/env"
        assert data["query_string"] == "a=1&b=two%20words"
        assert data["headers"]["host"] == "app.example:8443"
        assert data["headers"]["x-custom"] == "yes"
        assert data["scheme"] == "http"


def test_post_body_follows_the_packet(serve, app):
    server = uwsgi_server(serve, app)
    body = b"x" * 300_000 + b"end"
    resp, conn = exchange(server, packet(nginx_vars("POST", body=body)) + body)
    conn.close()
    assert resp.status == 200, resp
    data = resp.json()
    assert data["body_len"] == len(body)
    assert data["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_custom_vars_and_script_name_reach_the_environ(serve):
    server = uwsgi_server(serve, WSGI)
    extra = {"SCRIPT_NAME": "/mount", "APP_SETTING": "blue", "HTTPS": "on"}
    resp, conn = exchange(server, packet(nginx_vars(uri="/mount/env", **extra)))
    conn.close()
    data = resp.json()
    assert data["SCRIPT_NAME"] == "/mount"
    assert data["PATH_INFO"] == "/env"
    assert data["APP_SETTING"] == "blue"
    assert data["wsgi.url_scheme"] == "https"
    assert data["url"] == "https://app.example:8443/mount/env"


def test_script_name_is_the_asgi_root_path(serve):
    server = uwsgi_server(serve, ASGI)
    extra = {"SCRIPT_NAME": "/mount", "UWSGI_SCHEME": "https"}
    resp, conn = exchange(server, packet(nginx_vars(uri="/mount/env", **extra)))
    conn.close()
    data = resp.json()
    assert data["root_path"] == "/mount"
    assert data["path"] == "/mount/env"
    assert data["scheme"] == "https"


def test_a_streaming_response_is_close_delimited_not_chunked(serve, app):
    server = uwsgi_server(serve, app)
    resp, conn = exchange(server, packet(nginx_vars(uri="/stream")))
    assert resp.status == 200, resp
    assert resp.framing == "close"
    assert resp.body == b"".join(CHUNKS)
    assert conn.closed_within(2)
    conn.close()


def test_requests_with_a_length_keep_the_connection(serve):
    server = uwsgi_server(serve, WSGI)
    conn = RawConnection.to(server)
    for i in range(3):
        conn.send(packet(nginx_vars(uri=f"/env?n={i}")))
        resp = conn.read_response()
        assert resp.framing == "length"
        assert resp.json()["QUERY_STRING"] == f"n={i}"
    conn.close()


def test_plain_wsgi_stream_then_the_worker_still_serves(serve):
    server = uwsgi_server(serve, "uwsgi_apps:wsgi_stream")
    for _ in range(2):
        resp, conn = exchange(server, packet([("PATH_INFO", "/")]))
        assert resp.body == b"".join(CHUNKS)
        conn.close()


def test_forwarded_proto_headers_do_not_change_the_scheme(serve):
    # the HTTP_* vars are the end client's headers, passed through by the front end: only the
    # packet's own HTTPS / scheme vars count, as in gunicorn
    server = uwsgi_server(serve, WSGI)
    vars = nginx_vars(HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_SSL="on")
    resp, conn = exchange(server, packet(vars))
    conn.close()
    assert resp.json()["wsgi.url_scheme"] == "http"


def test_a_body_over_limit_request_body_is_refused(serve):
    server = uwsgi_server(serve, WSGI, "--limit-request-body", "10")
    body = b"y" * 11
    resp, conn = exchange(server, packet(nginx_vars("POST", body=body)) + body)
    conn.close()
    assert resp.status == 413, resp


def test_the_access_log_names_the_packets_client(serve):
    server = uwsgi_server(serve, WSGI, "--access-logfile", "-")
    resp, conn = exchange(server, packet(nginx_vars(uri="/env?z=9")))
    conn.close()
    assert resp.status == 200
    deadline = time.monotonic() + 5
    while not any("/env?z=9" in line for line in server.stdout_lines):
        assert time.monotonic() < deadline, server.stdout_lines
        time.sleep(0.02)
    line = next(line for line in server.stdout_lines if "/env?z=9" in line)
    assert line.startswith("203.0.113.7 "), line
    assert '"GET /env?z=9 HTTP/1.1" 200' in line, line


def test_health_path_is_answered_without_the_app(serve):
    server = uwsgi_server(serve, WSGI, "--health-path", "/healthz")
    resp, conn = exchange(server, packet(nginx_vars(uri="/healthz")))
    assert (resp.status, resp.body) == (200, b"OK\n")
    conn.send(packet(nginx_vars()))
    assert conn.read_response().json()["PATH_INFO"] == "/env"
    conn.close()


BAD_PACKETS = {
    # (bytes, expected status); each closes the connection
    "truncated header": (b"\x00\x10", 400),
    "datasize beyond the data": (b"\x00\xff\x00\x00" + b"\x04\x00PATH", 400),
    "key length overflowing the block": (b"\x00\x06\x00\x00\x40\x00ABCD", 400),
    "value length overflowing the block": (
        b"\x00\x0b\x00\x00\x04\x00PATH\x40\x00/ab",
        400,
    ),
    "bad modifier1": (packet([("PATH_INFO", "/")], modifier1=5), 501),
    "content length not a number": (packet([("CONTENT_LENGTH", "ten")]), 400),
    "line break in a header var": (packet([("HTTP_X_A", "a\r\nb")]), 400),
}


@pytest.mark.parametrize("case", BAD_PACKETS, ids=list(BAD_PACKETS))
def test_malformed_packets_are_refused_and_the_worker_lives_on(serve, app, case):
    data, status = BAD_PACKETS[case]
    server = uwsgi_server(serve, app)
    conn = RawConnection.to(server)
    conn.send(data)
    # truncations only show once the front end stops sending
    conn.shutdown_write()
    resp = conn.read_response()
    assert resp.status == status, resp
    assert resp.has_token("Connection", "close")
    assert conn.closed_within(2)
    conn.close()
    resp, conn = exchange(server, packet(nginx_vars()))
    conn.close()
    assert resp.status == 200, resp


def test_a_peer_outside_uwsgi_allow_from_is_refused(serve):
    server = uwsgi_server(serve, WSGI, "--uwsgi-allow-from", "10.0.0.0/8")
    conn = RawConnection.to(server)
    conn.send(packet(nginx_vars()))
    resp = conn.read_response()
    assert resp.status == 403, resp
    assert conn.closed_within(2)
    conn.close()
    server.wait_for_log(r"not in --uwsgi-allow-from")


def test_the_allow_list_admits_a_listed_peer(serve):
    server = uwsgi_server(serve, WSGI, "--uwsgi-allow-from", "10.0.0.0/8,127.0.0.1")
    resp, conn = exchange(server, packet(nginx_vars()))
    conn.close()
    assert resp.status == 200, resp


def test_unix_socket_peers_are_always_allowed():
    # gunicorn checks --uwsgi-allow-from only for peers with an IP address
    short = Path(tempfile.mkdtemp(prefix="fuw", dir="/tmp"))
    sock_path = short / "f.sock"
    server = Server(
        [
            "-b",
            f"unix:{sock_path}",
            "--protocol",
            "uwsgi",
            "--uwsgi-allow-from",
            "10.0.0.0/8",
            WSGI,
        ],
        APPS,
        None,
    )
    try:
        server.wait_for_log(r"Listening at: unix:", timeout=30)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(10)
        sock.connect(str(sock_path))
        with RawConnection(sock) as conn:
            conn.send(packet(nginx_vars()))
            resp = conn.read_response()
        assert resp.status == 200, resp
        assert resp.json()["REMOTE_ADDR"] == "203.0.113.7"
    finally:
        server.stop()
        shutil.rmtree(short, ignore_errors=True)


# -- a real nginx in front -----------------------------------------------------------------

SERVER_BLOCK = """
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        location / {{
            include {params};
            uwsgi_param APP_SETTING from-nginx;
            uwsgi_pass unix:{sock};
        }}
    }}
"""
UWSGI_PARAMS = Path("/etc/nginx/uwsgi_params")


@pytest.fixture
def nginx_uwsgi(tmp_path: Path) -> Iterator:
    """``start(app)`` runs ferricorn (uwsgi, on a unix socket) behind nginx; returns the port
    nginx listens on."""
    if NGINX is None:
        pytest.skip(SKIP_REASON)
    if not UWSGI_PARAMS.exists():
        pytest.skip(f"{UWSGI_PARAMS} is missing (it ships with the nginx-common package)")
    # unix socket paths are short (108 bytes): not under pytest's long tmp_path
    short = Path(tempfile.mkdtemp(prefix="fuw", dir="/tmp"))
    nginx = Nginx(tmp_path)
    servers: list[Server] = []

    def start(app: str) -> int:
        sock = short / f"ferricorn{len(servers)}.sock"
        server = Server(["-b", f"unix:{sock}", "--protocol", "uwsgi", app], APPS, None)
        servers.append(server)
        server.wait_for_log(r"Listening at: unix:", timeout=30)
        port = free_port()
        block = SERVER_BLOCK.format(port=port, params=UWSGI_PARAMS, sock=sock)
        nginx.start(block, port)
        return port

    yield start
    nginx.stop()
    for server in servers:
        server.stop()
    shutil.rmtree(short, ignore_errors=True)


def fetch(port: int, method: str, target: str, body=None, headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    all_headers = {"Host": "shop.example", **(headers or {})}
    conn.request(method, target, body=body, headers=all_headers, encode_chunked=chunked)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp, data


def test_behind_nginx_the_app_sees_the_client_and_host(nginx_uwsgi, app):
    port = nginx_uwsgi(app)
    resp, data = fetch(port, "GET", "/env?q=1", headers={"X-Custom": "hi"})
    assert resp.status == 200, data
    info = json.loads(data)
    if app == WSGI:
        assert info["REMOTE_ADDR"] == "127.0.0.1"
        assert info["HTTP_HOST"] == "shop.example"
        assert info["HTTP_X_CUSTOM"] == "hi"
        assert info["QUERY_STRING"] == "q=1"
        assert info["wsgi.url_scheme"] == "http"
        assert info["APP_SETTING"] == "from-nginx"
        assert info["SERVER_PORT"] == str(port)
        assert info["url"] == "http://shop.example/env?q=1"
    else:
        assert info["client"][0] == "127.0.0.1"
        assert info["headers"]["host"] == "shop.example"
        assert info["scheme"] == "http"
        assert info["server"][1] == port


def nginx_errors(tmp_path: Path) -> list[str]:
    log = tmp_path / "error.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line for line in lines if "[error]" in line or "[crit]" in line]


def test_behind_nginx_post_large_and_streaming_responses(nginx_uwsgi, app, tmp_path):
    port = nginx_uwsgi(app)
    body = bytes(range(256)) * 8192  # 2 MiB
    resp, data = fetch(port, "POST", "/env", body=body)
    assert resp.status == 200, data
    assert json.loads(data)["body_sha256"] == hashlib.sha256(body).hexdigest()

    # a chunked upload: nginx buffers it and sends CONTENT_LENGTH
    parts = [b"first;", b"second;" * 1000, b"third"]
    resp, data = fetch(port, "POST", "/env", body=iter(parts), chunked=True)
    assert resp.status == 200, data
    assert json.loads(data)["body_sha256"] == hashlib.sha256(b"".join(parts)).hexdigest()

    resp, data = fetch(port, "GET", "/big?mb=4")
    assert resp.status == 200
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(big_body(4)).hexdigest()

    resp, data = fetch(port, "GET", "/stream")
    assert resp.status == 200
    assert data == b"".join(CHUNKS)
    assert nginx_errors(tmp_path) == []


def test_behind_nginx_head_and_an_escaped_path(nginx_uwsgi, app):
    port = nginx_uwsgi(app)
    resp, data = fetch(port, "HEAD", "/big?mb=1")
    assert resp.status == 200
    assert data == b""
    resp, data = fetch(port, "GET", "/env?x=%C3%A9")
    assert resp.status == 200
    info = json.loads(data)
    assert info.get("QUERY_STRING", info.get("query_string")) == "x=%C3%A9"


def test_behind_nginx_many_requests_never_see_a_502(nginx_uwsgi, app, tmp_path):
    port = nginx_uwsgi(app)
    statuses = set()
    for i in range(40):
        target = ["/env", "/stream", "/big?mb=1"][i % 3]
        resp, _ = fetch(port, "GET", target)
        statuses.add(resp.status)
    assert statuses == {200}
    assert nginx_errors(tmp_path) == []
