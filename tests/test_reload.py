"""HUP re-reads the configuration, as gunicorn's does: a changed config file takes effect on the
fresh workers, and a broken one is reported while the running configuration is kept."""

from __future__ import annotations

import os
import shutil
import signal
import time

import httpx
from conftest import APPS, Server
from test_master import wait_for_workers


def test_hup_applies_a_changed_config_file_and_keeps_the_old_one_when_broken(tmp_path):
    shutil.copy(APPS / "echo.py", tmp_path / "echo.py")
    conf = tmp_path / "gunicorn.conf.py"
    conf.write_text("workers = 1\n")
    server = Server(["-b", "127.0.0.1:0", "echo:app"], tmp_path, None)
    try:
        server.wait_ready()
        master = server.proc.pid
        wait_for_workers(master, 1)

        conf.write_text("workers = 2\n")
        os.kill(master, signal.SIGHUP)
        wait_for_workers(master, 2)
        assert httpx.get(server.url + "/").status_code == 200

        conf.write_text("workers = 'two'\n")
        os.kill(master, signal.SIGHUP)
        line = server.wait_for_log(r"new configuration is invalid")
        server.wait_for_log(r'workers = "two": expected a positive integer')
        assert "keeping the running one" in line
        time.sleep(0.5)
        wait_for_workers(master, 2)
        assert httpx.get(server.url + "/").status_code == 200
    finally:
        assert server.stop() == 0, server.log
