"""--log-syslog sends the error and access logs to a syslog socket, framed as gunicorn's."""

from __future__ import annotations

import re
import socket
import time

import httpx
from conftest import run_ferricorn


def collect(sock: socket.socket, until: str, timeout: float = 10.0) -> list[str]:
    got: list[str] = []
    deadline = time.monotonic() + timeout
    sock.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(65536).decode())
        except TimeoutError:
            pass
        if any(until in g for g in got):
            return got
    raise AssertionError(f"{until!r} never came; got {got}")


def test_error_and_access_lines_reach_a_udp_syslog(serve):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = serve(
            "wsgi_apps:application",
            "--log-syslog",
            "--log-syslog-to",
            f"udp://127.0.0.1:{port}",
            "--log-syslog-facility",
            "local0",
            "--log-syslog-prefix",
            "shop",
            "--access-logfile",
            "-",
        )
        got = collect(sock, "Booting worker")
        booting = next(g for g in got if "Booting worker" in g)
        # local0 (16) * 8 + info (6) = 134; gunicorn's prefix and format; NUL-terminated
        assert re.fullmatch(
            r"<134>gunicorn\.shop\.error: \[\d+\] \[INFO\] Booting worker with pid: \d+\x00",
            booting,
        )
        httpx.get(server.url + "/", timeout=10)
        access = next(g for g in collect(sock, "gunicorn.shop.access") if ".access:" in g)
        assert access.startswith("<134>gunicorn.shop.access: 127.0.0.1 - - [")
        assert '"GET / HTTP/1.1" 200' in access


def test_access_lines_can_stay_out_of_syslog(serve):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = serve(
            "wsgi_apps:application",
            "--log-syslog",
            "--log-syslog-to",
            f"udp://127.0.0.1:{port}",
            "--disable-redirect-access-to-syslog",
            "--access-logfile",
            "-",
        )
        collect(sock, "Booting worker")
        httpx.get(server.url + "/", timeout=10)
        time.sleep(0.5)
        sock.settimeout(0.2)
        rest = []
        try:
            while True:
                rest.append(sock.recv(65536).decode())
        except TimeoutError:
            pass
        assert not any(".access:" in r for r in rest), rest


def test_a_bad_syslog_address_stops_before_binding():
    result = run_ferricorn(
        "--log-syslog", "--log-syslog-to", "carrier-pigeon", "wsgi_apps:application"
    )
    assert result.returncode == 1
    assert "--log-syslog-to / syslog_addr" in result.stderr
    assert "Listening at" not in result.stderr
