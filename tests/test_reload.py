"""HUP re-reads the configuration, as gunicorn's does: a changed config file takes effect on the
fresh workers, and a broken one is reported while the running configuration is kept."""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import httpx
from conftest import APPS, Server


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _wait_children(pid: int, n: int, timeout: float = 10.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(pid)
        if len(kids) == n:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"expected {n} workers of {pid}, have {_children(pid)}")


def test_hup_applies_a_changed_config_file_and_keeps_the_old_one_when_broken(tmp_path):
    shutil.copy(APPS / "echo.py", tmp_path / "echo.py")
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("workers = 1\n")
    server = Server(["-b", "127.0.0.1:0", "echo:app"], tmp_path, None)
    try:
        server.wait_ready()
        master = server.proc.pid
        _wait_children(master, 1)

        conf.write_text("workers = 2\n")
        os.kill(master, signal.SIGHUP)
        _wait_children(master, 2)
        assert httpx.get(server.url + "/").status_code == 200

        conf.write_text("workers = 'two'\n")
        os.kill(master, signal.SIGHUP)
        line = server.wait_for_log(r"new configuration is invalid")
        server.wait_for_log(r'workers = "two": expected a positive integer')
        assert "keeping the running one" in line
        time.sleep(0.5)
        _wait_children(master, 2)
        assert httpx.get(server.url + "/").status_code == 200
    finally:
        assert server.stop() == 0, server.log
