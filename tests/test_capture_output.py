"""--capture-output: what the app prints goes to the --error-logfile, as in gunicorn."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import Server

APP = """\
import sys

def app(environ, start_response):
    print("printed by the app", flush=True)
    sys.stderr.write("written to stderr by the app\\n")
    sys.stderr.flush()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def wait_for_text(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}:\n{content}")


@pytest.fixture
def logged_server(tmp_path: Path) -> Iterator:
    """Starts ferricorn with its error log in a file (so no readiness line on stderr): the
    port is chosen here and readiness read from the file."""
    started: list[Server] = []

    def start(*args: str) -> Server:
        (tmp_path / "printer.py").write_text(APP)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = Server(["-b", f"127.0.0.1:{port}", *args, "printer:app"], tmp_path, None)
        started.append(server)
        server.host, server.port = "127.0.0.1", port
        wait_for_text(tmp_path / "error.log", "Booting worker")
        return server

    yield start
    for server in started:
        server.stop()


def test_prints_land_in_the_error_log_file(logged_server, tmp_path: Path):
    log = tmp_path / "error.log"
    server = logged_server("--capture-output", "--error-logfile", str(log))
    assert httpx.get(server.url, timeout=10).text == "ok"
    content = wait_for_text(log, "written to stderr by the app")
    assert "printed by the app" in content
    assert "Booting worker" in content
    # USR1 reopens the log where it is now, and stdio follows it
    log.rename(tmp_path / "error.log.1")
    server.proc.send_signal(signal.SIGUSR1)
    time.sleep(0.5)
    httpx.get(server.url, timeout=10)
    assert "printed by the app" in wait_for_text(log, "printed by the app")


def test_without_the_flag_prints_stay_on_stdout(logged_server, tmp_path: Path):
    log = tmp_path / "error.log"
    server = logged_server("--error-logfile", str(log))
    httpx.get(server.url, timeout=10)
    deadline = time.monotonic() + 5
    while "printed by the app" not in server.stdout_lines and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "printed by the app" in server.stdout_lines
    assert "printed by the app" not in log.read_text()
