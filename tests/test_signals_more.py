"""Master behaviours beyond the basic signals: USR1 leaves workers alone, USR2 hands the sockets
to a new master, and --max-worker-memory replaces a bloated worker without failing requests."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
from test_master import alive, children, wait_for_workers, wait_until


def test_usr1_leaves_the_workers_running(serve):
    server = serve("wsgi_apps:ok_app", "-w", "2")
    master = server.proc.pid
    workers = wait_for_workers(master, 2)
    os.kill(master, signal.SIGUSR1)
    server.wait_for_log(r"Handling signal: usr1")
    time.sleep(0.5)
    assert children(master) == workers
    assert httpx.get(server.url + "/").status_code == 200


def test_usr2_starts_a_new_master_on_the_same_socket(serve, tmp_path):
    pidfile = tmp_path / "f.pid"
    server = serve("grow_app:app", "-w", "1", "-p", str(pidfile))
    old = server.proc.pid
    os.kill(old, signal.SIGUSR2)
    line = server.wait_for_log(r"Started a new master \(pid: \d+\)")
    new = int(line.rsplit("pid: ", 1)[1].split(")")[0])
    wait_until(lambda: Path(str(pidfile) + ".oldbin").exists(), 5, "the .oldbin pid file")
    wait_until(
        lambda: pidfile.exists() and pidfile.read_text().strip() == str(new), 10, "new pid file"
    )
    wait_until(lambda: len(children(new)) == 1, 10, "the new master's worker")
    # the old master stops its workers (WINCH) and exits (TERM); the new one keeps serving
    os.kill(old, signal.SIGWINCH)
    wait_until(lambda: children(old) == {new}, 10, "old workers to stop (the new master stays)")
    assert httpx.get(server.url + "/").status_code == 200
    os.kill(old, signal.SIGTERM)
    assert server.proc.wait(10) == 0
    assert not Path(str(pidfile) + ".oldbin").exists()
    for _ in range(5):
        assert httpx.get(server.url + "/").status_code == 200
    os.kill(new, signal.SIGTERM)
    wait_until(lambda: not alive(new), 10, "the new master to exit")
    assert not pidfile.exists()


def test_max_worker_memory_replaces_a_bloated_worker(serve):
    server = serve("grow_app:app", "-w", "1", "--max-worker-memory", "100")
    master = server.proc.pid
    (first,) = wait_for_workers(master, 1)
    with httpx.Client(base_url=server.url) as client:
        for _ in range(8):  # 8 x 16 MiB on top of the interpreter
            assert client.get("/grow").status_code == 200
        server.wait_for_log(rf"Worker \(pid:{first}\) uses \d+ MB, over --max-worker-memory 100 MB")
        wait_until(lambda: first not in children(master) and len(children(master)) == 1, 10, "swap")
        for _ in range(5):
            assert client.get("/").status_code == 200
