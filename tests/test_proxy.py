"""Behind a proxy: trusted front ends (--forwarded-allow-ips, secure_scheme_headers) and the
PROXY protocol (--proxy-protocol, --proxy-allow-from), against the real server, WSGI and ASGI.

gunicorn 27 semantics: only a trusted peer's scheme headers count (contradicting ones: 400);
X-Forwarded-For never changes REMOTE_ADDR; a PROXY header names the client, is refused with 403
from a peer outside --proxy-allow-from and with 400 when malformed.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import struct
import time
from pathlib import Path

import pytest
from conftest import run_ferricorn
from helpers_http import RawConnection, request

WSGI = "edge_apps:wsgi_peer"
ASGI = "edge_apps:asgi_peer"
UNTRUSTING = ("--forwarded-allow-ips", "10.0.0.0/8")
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def get(server, *headers: tuple[str, str], prefix: bytes = b"") -> dict:
    with RawConnection.to(server) as conn:
        conn.send(prefix + request(headers=list(headers)))
        resp = conn.read_response()
        assert resp.status == 200, resp
        return resp.json()


def status_of(server, data: bytes) -> tuple[int, bool]:
    """The status answered to ``data`` and whether the connection was closed after it."""
    with RawConnection.to(server) as conn:
        conn.send(data)
        resp = conn.read_response()
        return resp.status, conn.closed_within(5)


def proxy_v2(client: str, client_port: int, dest: str, dest_port: int, command: int = 1) -> bytes:
    src, dst = ipaddress.ip_address(client), ipaddress.ip_address(dest)
    family = 0x11 if src.version == 4 else 0x21
    body = src.packed + dst.packed + struct.pack(">HH", client_port, dest_port)
    if command == 0:
        family, body = 0, b""
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack(">H", len(body)) + body


# -- scheme headers ------------------------------------------------------------------------


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_trusted_peer_sets_https_and_remote_addr_stays_the_peer(serve, app):
    server = serve(app)  # the default --forwarded-allow-ips trusts 127.0.0.1
    data = get(server, ("X-Forwarded-Proto", "https"), ("X-Forwarded-For", "203.0.113.7"))
    if app == WSGI:
        assert data["wsgi.url_scheme"] == "https"
        assert data["REMOTE_ADDR"] == "127.0.0.1"
        # gunicorn 27 never takes the client from X-Forwarded-For; the app still sees it
        assert data["HTTP_X_FORWARDED_FOR"] == "203.0.113.7"
    else:
        assert data["scheme"] == "https"
        assert data["client"][0] == "127.0.0.1"


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_untrusted_peer_scheme_headers_are_ignored(serve, app):
    server = serve(app, *UNTRUSTING)
    data = get(server, ("X-Forwarded-Proto", "https"), ("X-Forwarded-Ssl", "on"))
    assert data.get("wsgi.url_scheme", data.get("scheme")) == "http"


def test_star_trusts_every_peer_and_no_header_means_http(serve):
    server = serve(WSGI, "--forwarded-allow-ips", "*")
    assert get(server, ("X-Forwarded-Ssl", "on"))["wsgi.url_scheme"] == "https"
    assert get(server)["wsgi.url_scheme"] == "http"
    assert get(server, ("X-Forwarded-Proto", "HTTPS"))["wsgi.url_scheme"] == "http"


def test_cidr_lists_trust_their_networks(serve):
    server = serve(WSGI, "--forwarded-allow-ips", "10.0.0.0/8, 127.0.0.0/8")
    assert get(server, ("X-Forwarded-Proto", "https"))["wsgi.url_scheme"] == "https"


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_contradictory_scheme_headers_from_a_trusted_peer_are_400(serve, app):
    server = serve(app)
    bad = request(headers=[("X-Forwarded-Ssl", "on"), ("X-Forwarded-Proto", "http")])
    assert status_of(server, bad) == (400, True)
    # from an untrusted peer they are simply ignored, as gunicorn does
    server = serve(app, *UNTRUSTING)
    with RawConnection.to(server) as conn:
        conn.send(bad)
        assert conn.read_response().status == 200


def test_secure_scheme_headers_from_the_conf_file(serve, tmp_path: Path):
    conf = tmp_path / "conf.py"
    conf.write_text("secure_scheme_headers = {'X-SCHEME': 'secure'}\n")
    server = serve(WSGI, "-c", str(conf))
    assert get(server, ("X-Scheme", "secure"))["wsgi.url_scheme"] == "https"
    # the defaults are replaced, not extended
    assert get(server, ("X-Forwarded-Proto", "https"))["wsgi.url_scheme"] == "http"


def test_unix_socket_peers_are_trusted(serve, tmp_path: Path):
    path = tmp_path / "s.sock"
    serve(WSGI, *UNTRUSTING, "-b", f"unix:{path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    with RawConnection(sock) as conn:
        conn.send(request(headers=[("X-Forwarded-Proto", "https")]))
        data = conn.read_response().json()
    assert data["wsgi.url_scheme"] == "https"
    assert data["REMOTE_ADDR"] == ""


def test_websocket_scheme_is_wss_behind_a_trusted_proxy(serve):
    server = serve(ASGI)
    upgrade = request(
        headers=[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", "13"),
            ("X-Forwarded-Proto", "https"),
        ]
    )
    with RawConnection.to(server) as conn:
        conn.send(upgrade)
        resp = conn.read_response()
        assert resp.status == 101
        frame = conn._read_exact(2, time.monotonic() + 5, "a frame header")
        assert frame[0] == 0x81
        text = conn._read_exact(frame[1] & 0x7F, time.monotonic() + 5, "text")
    assert json.loads(text)["scheme"] == "wss"


# -- PROXY protocol --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["v1", "auto"])
def test_proxy_v1_names_the_client_for_every_request_of_the_connection(serve, mode):
    server = serve(WSGI, "--proxy-protocol", mode)
    with RawConnection.to(server) as conn:
        conn.send(b"PROXY TCP4 192.0.2.10 198.51.100.1 40000 443\r\n" + request())
        first = conn.read_response().json()
        conn.send(request())
        second = conn.read_response().json()
    for data in (first, second):
        assert (data["REMOTE_ADDR"], data["REMOTE_PORT"]) == ("192.0.2.10", "40000")
        assert data["PROXY_PROTOCOL"] == "TCP4"
        assert (data["PROXY_ADDR"], data["PROXY_PORT"]) == ("198.51.100.1", "443")


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_proxy_v2_names_the_client(serve, app):
    server = serve(app, "--proxy-protocol", "v2")
    data = get(server, prefix=proxy_v2("2001:db8::5", 1234, "2001:db8::1", 443))
    if app == WSGI:
        assert (data["REMOTE_ADDR"], data["REMOTE_PORT"]) == ("2001:db8::5", "1234")
        assert data["PROXY_PROTOCOL"] == "TCP6"
    else:
        assert data["client"] == ["2001:db8::5", 1234]


def test_proxy_v2_local_keeps_the_socket_peer(serve):
    server = serve(WSGI, "--proxy-protocol", "auto")
    data = get(server, prefix=proxy_v2("0.0.0.0", 0, "0.0.0.0", 0, command=0))
    assert data["REMOTE_ADDR"] == "127.0.0.1"
    assert data["PROXY_PROTOCOL"] is None


def test_plain_http_is_still_served_with_the_proxy_protocol_on(serve):
    # the flag alone means auto (as in gunicorn, it must not be followed by the app)
    server = serve(WSGI, "--proxy-protocol", "--keep-alive", "2")
    assert get(server)["REMOTE_ADDR"] == "127.0.0.1"


@pytest.mark.parametrize(
    "header",
    [proxy_v2("192.0.2.1", 1, "192.0.2.2", 2), b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"],
    ids=["v2", "v1"],
)
def test_proxy_header_from_a_peer_outside_proxy_allow_from_is_403(serve, header):
    server = serve(WSGI, "--proxy-protocol", "auto", "--proxy-allow-from", "10.0.0.1")
    assert status_of(server, header + request()) == (403, True)


@pytest.mark.parametrize(
    "header",
    [
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
        b"PROXY TCP4 ::1 192.0.2.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 99999\r\n",
        V2_SIGNATURE + b"\x21\x12\x00\x0c" + bytes(12),  # datagram transport
    ],
)
def test_malformed_proxy_headers_are_400_and_close(serve, header):
    server = serve(WSGI, "--proxy-protocol", "auto")
    assert status_of(server, header + request()) == (400, True)


def test_trust_for_scheme_headers_follows_the_socket_peer_not_the_proxy_client(serve):
    # the PROXY client 10.1.1.1 is in the list, the socket peer 127.0.0.1 is not
    server = serve(WSGI, "--proxy-protocol", "v1", *UNTRUSTING)
    data = get(
        server,
        ("X-Forwarded-Proto", "https"),
        prefix=b"PROXY TCP4 10.1.1.1 10.0.0.2 5 6\r\n",
    )
    assert data["REMOTE_ADDR"] == "10.1.1.1"
    assert data["wsgi.url_scheme"] == "http"


# -- configuration errors ----------------------------------------------------------------------


def test_bad_trust_settings_are_refused_at_startup_naming_the_setting(tmp_path: Path):
    result = run_ferricorn("--forwarded-allow-ips", "192.168.1.1/24", "--check-config", WSGI)
    assert result.returncode == 2
    assert "--forwarded-allow-ips / forwarded_allow_ips" in result.stderr
    assert "192.168.1.0/24" in result.stderr
    conf = tmp_path / "conf.py"
    conf.write_text("secure_scheme_headers = {'X-FORWARDED-PROTO': 1}\n")
    result = run_ferricorn("-c", str(conf), "--check-config", WSGI)
    assert result.returncode != 0
    assert "secure_scheme_headers" in result.stderr


def test_a_proxy_header_split_across_packets_is_reassembled(serve):
    server = serve(WSGI, "--proxy-protocol", "auto")
    header = proxy_v2("192.0.2.77", 4321, "192.0.2.1", 80)
    with RawConnection.to(server) as conn:
        for piece in (header[:5], header[5:14], header[14:]):
            conn.send(piece)
            time.sleep(0.05)
        conn.send(request())
        assert conn.read_response().json()["REMOTE_ADDR"] == "192.0.2.77"


def test_unix_socket_peers_may_send_proxy_headers(serve, tmp_path: Path):
    path = tmp_path / "pp.sock"
    serve(WSGI, "--proxy-protocol", "v1", "--proxy-allow-from", "10.0.0.1", "-b", f"unix:{path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    with RawConnection(sock) as conn:
        conn.send(b"PROXY TCP4 192.0.2.8 192.0.2.9 1000 80\r\n" + request())
        data = conn.read_response().json()
    assert (data["REMOTE_ADDR"], data["REMOTE_PORT"]) == ("192.0.2.8", "1000")


def test_a_stalled_proxy_header_is_cut_off_by_the_header_timeout(serve):
    server = serve(WSGI, "--proxy-protocol", "v1", "--header-timeout", "0.5")
    with RawConnection.to(server) as conn:
        conn.send(b"PROXY TCP4 192.0.2.")
        t0 = time.monotonic()
        assert conn.closed_within(5)
        assert time.monotonic() - t0 < 3


def test_access_log_shows_the_proxy_client_and_scheme(serve):
    server = serve(
        WSGI,
        "--proxy-protocol",
        "v1",
        "--access-logfile",
        "-",
        "--access-logformat",
        "%(h)s %({wsgi.url_scheme}e)s",
    )
    get(
        server,
        ("X-Forwarded-Proto", "https"),
        prefix=b"PROXY TCP4 192.0.2.44 192.0.2.1 999 443\r\n",
    )
    deadline = time.monotonic() + 5
    while "192.0.2.44 https" not in server.stdout_lines and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "192.0.2.44 https" in server.stdout_lines, server.stdout_lines
