"""--health-path: answered by the server itself, even while the app is busy; 503 when stopping."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

APP = """\
import time

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(3)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"from the app"]
"""


def test_probe_is_answered_without_the_app_even_while_it_is_busy(serve, tmp_path: Path):
    (tmp_path / "busyapp.py").write_text(APP)
    server = serve("busyapp:app", "--health-path", "/healthz", cwd=tmp_path)
    slow = threading.Thread(target=lambda: httpx.get(server.url + "/slow", timeout=10))
    slow.start()
    time.sleep(0.3)  # the only app thread is now asleep
    started = time.monotonic()
    probe = httpx.get(server.url + "/healthz", timeout=10)
    assert time.monotonic() - started < 1.0
    assert (probe.status_code, probe.text) == (200, "OK\n")
    assert probe.headers["cache-control"] == "no-store"
    head = httpx.head(server.url + "/healthz", timeout=10)
    assert head.status_code == 200 and head.content == b""
    slow.join()
    # other paths, and a query string, still go to the app
    assert httpx.get(server.url + "/healthz?x=1", timeout=10).text == "OK\n"
    assert httpx.get(server.url + "/other", timeout=10).text == "from the app"
    assert httpx.post(server.url + "/healthz", content=b"x", timeout=10).text == "from the app"


def test_a_stopping_worker_answers_503(serve, tmp_path: Path):
    (tmp_path / "busyapp.py").write_text(APP)
    server = serve("busyapp:app", "--health-path", "/healthz", cwd=tmp_path)
    slow = threading.Thread(target=lambda: httpx.get(server.url + "/slow", timeout=10))
    slow.start()
    time.sleep(0.3)
    sock = server.connect()
    server.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)  # the worker drains the slow request; the listener is closed by now
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), reply
    slow.join()


def test_health_path_must_be_a_path():
    from conftest import run_ferricorn

    result = run_ferricorn("--health-path", "healthz", "app:app")
    assert result.returncode != 0
    assert "--health-path" in result.stderr and "starting with /" in result.stderr
