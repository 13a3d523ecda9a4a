"""Shared fixtures: start the real ``ferricorn`` process on a free port and talk to it.

Every integration test goes through :func:`serve`, which runs ``python -m ferricorn`` as a
subprocess bound to port 0, waits for the ``Listening at: http(s)://HOST:PORT`` readiness line on
stderr (never a sleep) and collects the error log so tests can assert on it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
APPS = TESTS / "apps"
READY = re.compile(r"Listening at: https?://([^\s:]+|\[[^\]]+\]):(\d+)")


class Server:
    """A running ferricorn process and its collected error log."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str] | None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        if env:
            full_env.update(env)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ferricorn", *args],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._ready = threading.Event()
        self.host = ""
        self.port = 0
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        threading.Thread(target=self._pump_stdout, daemon=True).start()

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            m = READY.search(line)
            if m and not self._ready.is_set():
                self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
                self._ready.set()
        self._ready.set()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.stdout_lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def wait_ready(self, timeout: float = 30.0) -> None:
        if not self._ready.wait(timeout) or not self.port:
            self.stop()
            raise RuntimeError("ferricorn did not become ready:\n" + self.log)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for_log(self, pattern: str, timeout: float = 10.0) -> str:
        """Wait until a line matching ``pattern`` (a regex) is in the error log; return it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if rx.search(line):
                    return line
            time.sleep(0.02)
        raise AssertionError(f"no log line matching {pattern!r} in:\n{self.log}")

    def connect(self, timeout: float = 10.0) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        return sock

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


@pytest.fixture
def serve() -> Iterator:
    """``serve("module:app", "--threads", "2", cwd=..., env=...)`` starts ferricorn and waits."""
    started: list[Server] = []

    def start(app: str, *args: str, cwd: Path = APPS, env: dict[str, str] | None = None) -> Server:
        server = Server(["-b", "127.0.0.1:0", *args, app], cwd, env)
        started.append(server)
        server.wait_ready()
        return server

    yield start
    for server in started:
        server.stop()


def run_ferricorn(
    *args: str,
    cwd: Path = APPS,
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ferricorn to completion (for --help, --version, bad configuration). ``env``, when
    given, is the whole environment of the process."""
    return subprocess.run(
        [sys.executable, "-m", "ferricorn", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def recv_until_closed(sock: socket.socket, timeout: float = 10.0) -> bytes:
    """Read everything until the peer closes; raises if it stays open past ``timeout``."""
    sock.settimeout(timeout)
    chunks = []
    while True:
        data = sock.recv(65536)
        if not data:
            return b"".join(chunks)
        chunks.append(data)
