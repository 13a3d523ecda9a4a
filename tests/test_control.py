"""The control socket (``--control-socket``): gunicorn's own ``gunicornc`` and ``ferricorn ctl``
drive a running server; every command's effect is checked on the real processes.

The app is ``master_apps:app``: ``/sleep?s=N`` and ``/stuck`` print a line to the error log once
they are inside the app, so a test waits for that line rather than sleeping.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server

GUNICORNC = shutil.which("gunicornc", path=str(Path(sys.executable).parent))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), check=False, capture_output=True, text=True, timeout=30
    )


def ctl(sock: Path, *words: str, as_json: bool = True) -> Any:
    """``ferricorn ctl -s SOCK [-j] WORDS...``; the parsed JSON data (or the text output)."""
    args = [sys.executable, "-m", "ferricorn", "ctl", "-s", str(sock)]
    if as_json:
        args.append("-j")
    out = run(*args, *words)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout) if as_json else out.stdout


def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def pids(sock: Path) -> set[int]:
    return {w["pid"] for w in ctl(sock, "show", "workers")["workers"]}


def booted_pids(sock: Path) -> set[int]:
    return {w["pid"] for w in ctl(sock, "show", "workers")["workers"] if w["booted"]}


def background_get(url: str) -> tuple[threading.Thread, list[httpx.Response]]:
    """GETs ``url`` on a thread; the response lands in the list (nothing if the server went
    away first, which the quick-shutdown test causes on purpose)."""
    got: list[httpx.Response] = []

    def run() -> None:
        try:
            got.append(httpx.get(url, timeout=30))
        except httpx.HTTPError:
            pass

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, got


def raw_call(conn: socket.socket, frame: bytes) -> dict[str, Any]:
    """Sends raw bytes, reads one framed reply."""
    conn.sendall(frame)
    head = recv_exact(conn, 4)
    (length,) = struct.unpack(">I", head)
    reply = json.loads(recv_exact(conn, length))
    assert isinstance(reply, dict)
    return reply


def recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        assert chunk, f"connection closed after {buf!r}"
        buf += chunk
    return buf


def frame(obj: object) -> bytes:
    payload = json.dumps(obj).encode()
    return struct.pack(">I", len(payload)) + payload


@pytest.fixture
def controlled(serve, tmp_path: Path) -> Callable[..., tuple[Server, Path]]:
    def start(
        *args: str, workers: int = 2, sock: Path | None = None
    ) -> tuple[Server, Path]:
        sock = sock or tmp_path / "ctl" / "ferricorn.ctl"
        server = serve(
            "master_apps:app",
            "-w",
            str(workers),
            "--control-socket",
            str(sock),
            "--graceful-timeout",
            "10",
            *args,
        )
        server.wait_for_log("Control socket listening at")
        wait_until(lambda: len(booted_pids(sock)) == workers)
        return server, sock

    return start


@pytest.mark.skipif(
    GUNICORNC is None, reason="gunicornc not installed (pip install gunicorn==27.0.1)"
)
def test_gunicornc_itself_drives_ferricorn(controlled) -> None:
    server, sock = controlled()
    assert GUNICORNC is not None
    out = run(GUNICORNC, "-s", str(sock), "-c", "show workers", "-j")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["count"] == 2
    assert {w["age"] for w in data["workers"]} == {1, 2}
    assert all(w["booted"] and not w["aborted"] for w in data["workers"])
    for w in data["workers"]:
        os.kill(w["pid"], 0)  # live processes
    stats = run(GUNICORNC, "-s", str(sock), "-c", "show stats", "-j")
    assert json.loads(stats.stdout)["pid"] == server.proc.pid
    # gunicornc's number-as-argument form, and its human-readable table
    out = run(GUNICORNC, "-s", str(sock), "-c", "worker add 1")
    assert '"total": 3' in out.stdout, out
    table = run(GUNICORNC, "-s", str(sock), "-c", "show workers")
    assert table.stdout.startswith("PID"), table.stdout
    bad = run(GUNICORNC, "-s", str(sock), "-c", "frobnicate")
    assert bad.returncode == 1
    assert "Unknown command: frobnicate" in bad.stderr


def test_socket_is_made_with_its_mode_and_removed_on_exit(controlled) -> None:
    server, sock = controlled("--control-socket-mode", "0660", workers=1)
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o660
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700  # created for us
    assert server.stop() == 0
    assert not sock.exists()


def test_a_stale_socket_file_is_replaced(serve, tmp_path: Path) -> None:
    sock = tmp_path / "stale.ctl"
    old = socket.socket(socket.AF_UNIX)
    old.bind(str(sock))
    old.close()  # the file stays, nobody listens
    server = serve("master_apps:app", "--control-socket", str(sock))
    server.wait_for_log("Control socket listening at")
    assert ctl(sock, "show", "stats")["pid"] == server.proc.pid


def test_no_control_socket_means_no_socket(serve, tmp_path: Path) -> None:
    sock = tmp_path / "none.ctl"
    server = serve(
        "master_apps:app", "--control-socket", str(sock), "--no-control-socket"
    )
    assert httpx.get(server.url + "/pid").status_code == 200
    assert not sock.exists()
    assert "Control socket" not in server.log


def test_show_commands_have_gunicorns_shapes(controlled) -> None:
    server, sock = controlled()
    config = ctl(sock, "show", "config")
    assert config["workers"] == 2
    assert config["control_socket"] == str(sock)
    assert config["control_socket_disable"] is False
    listeners = ctl(sock, "show", "listeners")
    assert listeners["count"] == 1
    assert listeners["listeners"][0]["address"] == server.url
    assert listeners["listeners"][0]["type"] == "tcp"
    every = ctl(sock, "show", "all")
    assert every["arbiter"] == {
        "pid": server.proc.pid,
        "type": "arbiter",
        "role": "master",
    }
    assert every["web_worker_count"] == 2
    assert every["dirty_arbiter"] is None
    assert ctl(sock, "show", "dirty") == {
        "enabled": False,
        "pid": None,
        "workers": [],
        "apps": [],
    }
    assert ctl(sock, "dirty", "add") == {
        "success": False,
        "error": "Dirty arbiter not running",
    }
    assert ctl(sock, "dirty", "remove", "2")["success"] is False
    commands = ctl(sock, "help")["commands"]
    assert {
        "show workers",
        "worker kill <PID>",
        "show requests",
        "dump stacks [PID]",
    } <= set(commands)
    text = ctl(sock, "show", "stats", as_json=False)
    assert f"PID:              {server.proc.pid}" in text


def test_worker_add_remove_and_kill(controlled) -> None:
    server, sock = controlled()
    before = pids(sock)
    assert ctl(sock, "worker", "add") == {"added": 1, "previous": 2, "total": 3}
    wait_until(lambda: len(booted_pids(sock)) == 3)
    assert ctl(sock, "show", "stats")["workers_target"] == 3

    victim = min(before)
    assert ctl(sock, "worker", "kill", str(victim)) == {
        "success": True,
        "killed": victim,
    }
    server.wait_for_log(rf"Worker exiting \(pid: {victim}\)")

    def replaced() -> set[int] | None:
        now = booted_pids(sock)
        return now if victim not in now and len(now) == 3 else None

    now = wait_until(replaced)
    assert len(now - before) == 2  # the added one and the replacement
    assert ctl(sock, "worker", "kill", "1") == {
        "success": False,
        "error": "Worker 1 not found",
    }

    assert ctl(sock, "worker", "remove", "5") == {
        "removed": 2,
        "previous": 3,
        "total": 1,
    }
    wait_until(lambda: len(pids(sock)) == 1)
    assert ctl(sock, "show", "stats")["workers_killed"] >= 3


def test_reload_replaces_every_worker(controlled) -> None:
    server, sock = controlled()
    before = pids(sock)
    assert ctl(sock, "reload") == {"status": "reloading"}
    server.wait_for_log("Handling signal: hup")

    def renewed() -> bool:
        now = booted_pids(sock)
        return len(now) == 2 and not now & before

    wait_until(renewed)
    assert ctl(sock, "show", "stats")["reloads"] == 1


def test_reopen_reopens_the_access_log(controlled, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server, sock = controlled(
        "--access-logfile", str(log), "--access-logformat", "%(U)s", workers=1
    )
    assert httpx.get(server.url + "/pid").status_code == 200
    wait_until(lambda: log.exists() and log.read_text())
    log.rename(tmp_path / "access.log.1")
    assert ctl(sock, "reopen") == {"status": "reopening"}
    server.wait_for_log("Handling signal: usr1")

    def reopened() -> bool:
        assert httpx.get(server.url + "/import-pid").status_code == 200
        return log.exists() and "/import-pid" in log.read_text()

    wait_until(reopened)


def test_graceful_shutdown_finishes_the_request_in_flight(controlled) -> None:
    server, sock = controlled(workers=1)
    t, got = background_get(server.url + "/sleep?s=2")
    server.wait_for_log("sleep started")
    assert ctl(sock, "shutdown") == {"status": "shutting_down", "mode": "graceful"}
    assert server.proc.wait(20) == 0
    t.join(10)
    assert got and got[0].status_code == 200
    assert not sock.exists()


def test_quick_shutdown_does_not_wait_for_the_app(controlled) -> None:
    server, sock = controlled(workers=1)
    background_get(server.url + "/stuck")
    server.wait_for_log("stuck request started")
    started = time.monotonic()
    assert ctl(sock, "shutdown", "quick")["mode"] == "quick"
    server.proc.wait(20)
    assert time.monotonic() - started < 8
    server.wait_for_log("Handling signal: int")


def test_show_requests_lists_a_slow_request(controlled) -> None:
    server, sock = controlled(workers=1)
    worker = pids(sock).pop()
    t, got = background_get(server.url + "/sleep?s=3&x=1")
    server.wait_for_log("sleep started")
    time.sleep(0.3)
    data = ctl(sock, "show", "requests")
    assert data["count"] == 1, data
    (req,) = data["requests"]
    assert (req["pid"], req["method"], req["path"], req["truncated"]) == (
        worker,
        "GET",
        "/sleep",
        False,
    )
    assert 0.2 <= req["age"] < 3
    table = ctl(sock, "show", "requests", as_json=False)
    assert "GET" in table and "/sleep" in table
    t.join(10)
    assert got[0].status_code == 200
    assert wait_until(lambda: ctl(sock, "show", "requests")["count"] == 0)


def test_dump_stacks_shows_a_sleeping_app_thread_and_keeps_the_worker(
    controlled,
) -> None:
    server, sock = controlled("--threads", "2", workers=1)
    worker = pids(sock).pop()
    background_get(server.url + "/stuck")
    server.wait_for_log("stuck request started")
    data = ctl(sock, "dump", "stacks", str(worker))
    assert data["count"] == 1
    (dump,) = data["workers"]
    assert dump["pid"] == worker and dump["error"] is None
    assert "stuck_in_the_app" in dump["stacks"], dump["stacks"]
    assert "most recent call first" in dump["stacks"]
    # every worker when no pid is given; the worker lives on
    assert [w["pid"] for w in ctl(sock, "dump", "stacks")["workers"]] == [worker]
    assert pids(sock) == {worker}
    text = ctl(sock, "dump", "stacks", as_json=False)
    assert f"=== worker {worker} ===" in text and "stuck_in_the_app" in text
    out = run(
        sys.executable, "-m", "ferricorn", "ctl", "-s", str(sock), "dump", "stacks", "1"
    )
    assert out.returncode == 1 and "Worker 1 not found" in out.stderr


def test_malformed_frames_get_error_replies_and_the_master_keeps_serving(
    controlled,
) -> None:
    server, sock = controlled(workers=1)

    def connect() -> socket.socket:
        c = socket.socket(socket.AF_UNIX)
        c.settimeout(10)
        c.connect(str(sock))
        return c

    # an unknown command is an error reply on a connection that stays usable
    with connect() as c:
        bad = raw_call(c, frame({"id": 5, "command": "frobnicate"}))
        assert bad == {
            "id": 5,
            "status": "error",
            "error": "Invalid argument: Unknown command: frobnicate",
        }
        assert (
            raw_call(c, frame({"id": 6, "command": "worker add", "args": ["x"]}))[
                "status"
            ]
            == "error"
        )
        assert raw_call(c, frame({"id": 7, "command": ""}))["error"] == "Empty command"
        assert raw_call(c, frame({"id": 8, "command": "show stats"}))["status"] == "ok"
    # broken frames: an error reply, then the connection closes
    for junk in [
        struct.pack(">I", 0xFFFFFFFF),  # far over the limit: refused before any payload
        struct.pack(">I", 2 * 1024 * 1024) + b"{" * 1000,
        struct.pack(">I", 8) + b"not json",
        struct.pack(">I", 0),
        struct.pack(">I", 3) + b"[1]",
    ]:
        with connect() as c:
            reply = raw_call(c, junk)
            assert reply["status"] == "error", (junk[:12], reply)
            assert c.recv(1) == b""
    # a client that sends half a frame and goes silent does not stall anyone else
    with connect() as silent:
        silent.sendall(struct.pack(">I", 100) + b'{"id"')
        assert ctl(sock, "show", "stats")["pid"] == server.proc.pid
    assert httpx.get(server.url + "/pid").status_code == 200
    assert server.proc.poll() is None


@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another uid needs root")
def test_a_peer_of_another_uid_is_refused(controlled) -> None:
    # pytest's tmp dirs are private to root: the probe needs a path it may reach
    shared = Path(tempfile.mkdtemp(prefix="ferricorn-ctl-"))
    shared.chmod(0o755)
    try:
        _, sock = controlled(
            "--control-socket-mode", "0o666", workers=1, sock=shared / "open.ctl"
        )
        reply = probe_as_nobody(sock)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
    assert reply["status"] == "error" and "Permission denied" in reply["error"]


def probe_as_nobody(sock: Path) -> dict[str, Any]:
    probe = (
        "import socket, struct, json, sys\n"
        "c = socket.socket(socket.AF_UNIX); c.settimeout(10); c.connect(sys.argv[1])\n"
        "p = json.dumps({'id': 1, 'command': 'show stats'}).encode()\n"
        "try: c.sendall(struct.pack('>I', len(p)) + p)\n"
        "except BrokenPipeError: pass  # refused: the reply is already there\n"
        "n = struct.unpack('>I', c.recv(4))[0]; print(c.recv(n).decode())\n"
    )
    python = shutil.which("python3", path="/usr/bin:/bin")
    if python is None:
        pytest.skip("no system python3 for the unprivileged probe")
    out = subprocess.run(
        [python, "-c", probe, str(sock)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        user=65534,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    assert isinstance(reply, dict)
    return reply


def test_ctl_without_a_command_is_a_prompt(controlled) -> None:
    _, sock = controlled(workers=1)
    out = subprocess.run(
        [sys.executable, "-m", "ferricorn", "ctl", "-s", str(sock)],
        input="help\nshow workers\nbogus\nquit\n",
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert "Available commands:" in out.stdout
    assert "Total: 1 workers" in out.stdout
    assert "Unknown command: bogus" in out.stderr


def test_ctl_reports_an_unreachable_socket(tmp_path: Path) -> None:
    out = run(
        sys.executable,
        "-m",
        "ferricorn",
        "ctl",
        "-s",
        str(tmp_path / "nope.ctl"),
        "help",
    )
    assert out.returncode == 1
    assert out.stderr.startswith("Error: cannot connect to")


def test_show_dirty_and_dirty_add_remove_drive_the_dirty_pool(controlled):
    _, sock = controlled("--dirty-app", "dirty_apps:Counter", "--dirty-workers", "1")

    def booted() -> list[int]:
        data = ctl(sock, "show", "dirty")
        return [w["pid"] for w in data["workers"] if w["booted"] and not w["stopping"]]

    first = wait_until(lambda: booted() if len(booted()) == 1 else None, 20)
    shown = ctl(sock, "show", "dirty")
    assert shown["enabled"] is True
    assert shown["apps"][0]["import_path"] == "dirty_apps:Counter"
    added = ctl(sock, "dirty", "add", "1")
    assert added["success"] is True and added["spawned"] == 1
    assert added["target_workers"] == 2
    both = wait_until(lambda: booted() if len(booted()) == 2 else None, 20)
    assert set(first) < set(both)
    removed = ctl(sock, "dirty", "remove", "1")
    assert removed["success"] is True and removed["removed"] == 1
    wait_until(lambda: len(booted()) == 1, 20)


def test_dirty_commands_say_so_when_there_is_no_dirty_pool(controlled):
    _, sock = controlled()
    assert ctl(sock, "show", "dirty")["enabled"] is False
    reply = ctl(sock, "dirty", "add", "1")
    assert reply == {"success": False, "error": "Dirty arbiter not running"}
