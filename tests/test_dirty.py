"""The dirty worker pool (``--dirty-app``, ``--dirty-workers``, ``ferricorn.dirty``), against
the real server: HTTP workers (WSGI, Flask, ASGI) call dirty apps through the client, and the
master keeps the pool alive (respawn, ``--dirty-timeout`` kills, hooks, stash, bad specs).
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import APPS, Server, run_ferricorn
from test_master import alive, wait_for_exit, wait_until

READY = re.compile(r"Dirty worker \(pid:(\d+)\) ready")


def get(server: Server, path: str, timeout: float = 30.0) -> Any:
    r = httpx.get(server.url + path, timeout=timeout)
    assert r.status_code == 200, r.text
    try:
        return r.json()
    except ValueError:
        return r.text


def dirty_pids(server: Server) -> list[int]:
    """Every dirty worker that reported ready, in order."""
    return [int(m.group(1)) for line in list(server.lines) if (m := READY.search(line))]


def wait_ready_dirty(server: Server, count: int, timeout: float = 20.0) -> list[int]:
    wait_until(
        lambda: len(dirty_pids(server)) >= count,
        timeout,
        f"{count} dirty workers ready",
    )
    return dirty_pids(server)


def start(serve, app: str, *args: str, workers: int = 1, **kw: Any) -> Server:
    server = serve(
        app,
        "--dirty-app",
        "dirty_apps:Counter",
        "--dirty-workers",
        str(workers),
        *args,
        **kw,
    )
    wait_ready_dirty(server, workers)
    return server


def test_dirty_app_keeps_state_across_calls_and_is_initialised_once(serve):
    server = start(serve, "dirty_apps:wsgi", "--threads", "2", "-w", "2")
    results = [get(server, "/incr")["result"] for _ in range(5)]
    assert [r["n"] for r in results] == [1, 2, 3, 4, 5]
    assert {r["pid"] for r in results} == set(dirty_pids(server))
    assert {r["inits"] for r in results} == {1}
    assert server.log.count("Initialized dirty app: dirty_apps:Counter") == 1
    # the app lives in a dirty worker, a child of the master
    assert results[0]["pid"] != server.proc.pid


def test_each_dirty_worker_inits_its_own_instance_once(serve):
    server = start(serve, "dirty_apps:wsgi", "--threads", "4", workers=2)
    seen: dict[int, list[int]] = {}
    for _ in range(12):
        r = get(server, "/incr")["result"]
        seen.setdefault(r["pid"], []).append(r["n"])
        assert r["inits"] == 1
    for counts in seen.values():
        assert counts == list(range(1, len(counts) + 1))
    assert set(seen) <= set(dirty_pids(server))
    assert server.log.count("Initialized dirty app: dirty_apps:Counter") == 2


def test_flask_passes_args_and_kwargs_and_gets_the_return_value(serve):
    server = start(serve, "dirty_flask:app", "--threads", "4")
    r = httpx.post(
        server.url + "/echo",
        json={"args": [1, "two", [3, 4]], "kwargs": {"five": 5.5, "six": None}},
    )
    assert r.status_code == 200
    assert r.json() == {
        "args": [1, "two", [3, 4]],
        "kwargs": {"five": 5.5, "six": None},
        "tuple": True,
    }
    assert httpx.get(server.url + "/incr").json()["n"] == 1


def test_exception_in_the_dirty_app_reaches_the_caller_as_dirty_app_error(serve):
    server = start(serve, "dirty_flask:app")
    r = httpx.get(server.url + "/fail")
    assert r.status_code == 502
    assert r.json() == {
        "error": "DirtyAppError",
        "message": "flask saw it",
        "action": "fail",
    }
    # logged in the dirty worker with its traceback, and the worker keeps serving
    server.wait_for_log(r"Error executing dirty_apps:Counter\.fail: flask saw it")
    assert "ValueError: flask saw it" in server.log
    assert httpx.get(server.url + "/incr").json()["n"] == 1


def test_wsgi_threads_call_at_once_and_unknown_apps_are_refused(serve):
    server = start(serve, "dirty_apps:wsgi", "--threads", "4", "--dirty-threads", "4")
    # four calls sleeping 1 s each, from four app threads at once, end in about 1 s
    t0 = time.monotonic()
    out: list[Any] = []
    threads = [
        threading.Thread(target=lambda: out.append(get(server, "/sleep?s=1")))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out) == 4 and all("result" in o for o in out), out
    assert time.monotonic() - t0 < 3.5
    body = get(server, "/pid?app=nope:Nothing")
    assert body == {
        "error": "DirtyAppNotFoundError",
        "message": "Dirty app not found: nope:Nothing",
    }
    echoed = get(server, "/echo")["result"]
    assert echoed == {
        "args": [1, "two", [3]],
        "kwargs": {"four": 4.0, "five": None},
        "tuple": True,
    }


def test_asgi_app_uses_the_async_client_without_blocking_its_loop(serve):
    server = start(serve, "dirty_apps:asgi", "-k", "asgi")
    assert get(server, "/incr")["result"]["n"] == 1
    slow: list[Any] = []
    t = threading.Thread(target=lambda: slow.append(get(server, "/sleep?s=2")))
    t0 = time.monotonic()
    t.start()
    time.sleep(0.3)
    # the same single event loop answers while the dirty call is in progress
    t1 = time.monotonic()
    assert get(server, "/ping") == "pong"
    assert time.monotonic() - t1 < 1.0
    t.join()
    assert "result" in slow[0] and time.monotonic() - t0 >= 2
    assert get(server, "/fail") == {
        "error": "DirtyAppError",
        "message": "the dirty app failed",
    }


def test_generators_stream_to_the_sync_and_async_clients(serve):
    server = start(serve, "dirty_apps:wsgi", "--dirty-timeout", "2")
    assert get(server, "/stream_count?n=5") == {"result": [0, 1, 2, 3, 4]}
    assert get(server, "/stream_acount?n=3") == {"result": ["a0", "a1", "a2"]}
    # the app raising mid-stream reaches the caller as DirtyAppError
    assert get(server, "/stream_count?n=-1") == {
        "error": "DirtyAppError",
        "message": "negative count",
    }
    # --dirty-timeout bounds each chunk, not the whole stream (5 x 0.6 s > 2 s)
    assert get(server, "/stream_count?n=5&delay=0.6") == {"result": [0, 1, 2, 3, 4]}
    # execute() on a streaming action says what to use instead
    assert get(server, "/count")["error"] == "DirtyError"
    assert "DIRTY WORKER TIMEOUT" not in server.log


def test_asgi_streams_with_the_async_client(serve):
    server = start(serve, "dirty_apps:asgi", "-k", "asgi")
    assert get(server, "/stream_count?n=4") == {"result": [0, 1, 2, 3]}


def test_a_call_past_dirty_timeout_fails_fast_and_its_worker_is_replaced(serve):
    server = start(serve, "dirty_apps:wsgi", "--threads", "4", "--dirty-timeout", "2")
    (first,) = dirty_pids(server)
    result: list[Any] = []
    took: list[float] = []

    def stuck() -> None:
        t0 = time.monotonic()
        result.append(get(server, "/sleep?s=60"))
        took.append(time.monotonic() - t0)

    t = threading.Thread(target=stuck)
    t.start()
    # the HTTP worker keeps answering while its other thread waits on the stuck call
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        t1 = time.monotonic()
        assert get(server, "/ping", timeout=2) == "pong"
        assert time.monotonic() - t1 < 0.5
        time.sleep(0.1)
    t.join(10)
    assert result == [{"error": "DirtyTimeoutError", "message": "Worker timeout"}]
    assert 1.9 <= took[0] < 4.0, took
    server.wait_for_log(rf"DIRTY WORKER TIMEOUT \(pid:{first}\)")
    pids = wait_ready_dirty(server, 2)
    assert pids[-1] != first
    wait_until(lambda: not alive(first), 10, "the stuck dirty worker to die")
    r = get(server, "/incr")["result"]
    assert r == {"pid": pids[-1], "n": 1, "inits": 1}


def test_a_sigkilled_dirty_worker_is_respawned_and_later_calls_succeed(serve):
    server = start(serve, "dirty_apps:wsgi")
    (first,) = dirty_pids(server)
    assert get(server, "/incr")["result"]["n"] == 1
    os.kill(first, signal.SIGKILL)
    server.wait_for_log(rf"Dirty worker \(pid:{first}\) was sent SIGKILL")
    pids = wait_ready_dirty(server, 2)
    r = get(server, "/incr")["result"]
    assert r["pid"] == pids[-1] != first and r["n"] == 1


def test_a_call_whose_dirty_worker_dies_says_so_and_is_not_retried(serve):
    server = start(serve, "dirty_apps:wsgi", "--threads", "2")
    (first,) = dirty_pids(server)
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(get(server, "/sleep?s=30")))
    t.start()
    time.sleep(0.5)
    os.kill(first, signal.SIGKILL)
    t.join(10)
    assert result[0]["error"] == "DirtyWorkerError"
    assert f"pid:{first}" in result[0]["message"]
    assert "not retried" in result[0]["message"]
    wait_ready_dirty(server, 2)
    assert get(server, "/pid")["result"] != first


def test_stash_is_shared_by_http_workers_and_dirty_workers(serve):
    server = start(serve, "dirty_apps:wsgi", "-w", "2", workers=2)
    assert get(server, "/http_stash_put?k=a&v=from-http") == "ok"
    # every dirty worker sees what an HTTP worker stored, and the reverse
    seen = {get(server, "/stash_get?k=a")["result"] for _ in range(6)}
    assert seen == {"from-http"}
    get(server, "/stash_put?k=b&v=from-dirty")
    assert {get(server, "/http_stash_get?k=b") for _ in range(6)} == {"from-dirty"}
    assert get(server, "/http_stash_get?k=missing") is None


def test_the_dirty_hooks_are_called(serve, tmp_path: Path):
    log = tmp_path / "hooks.log"
    conf = tmp_path / "conf.py"
    conf.write_text(
        textwrap.dedent(
            """
            import os

            def _line(*parts):
                with open(os.environ["HOOK_LOG"], "a") as f:
                    f.write(" ".join(str(p) for p in parts) + "\\n")

            def on_dirty_starting(arbiter):
                _line("on_dirty_starting", os.getpid())

            def dirty_post_fork(arbiter, worker):
                _line("dirty_post_fork", worker.pid, ",".join(worker.app_paths))

            def dirty_worker_init(worker):
                _line("dirty_worker_init", worker.pid, os.getpid())

            def dirty_worker_exit(arbiter, worker):
                _line("dirty_worker_exit", worker.pid)
            """
        )
    )
    server = start(
        serve, "dirty_apps:wsgi", "-c", str(conf), env={"HOOK_LOG": str(log)}, workers=1
    )
    (first,) = dirty_pids(server)
    os.kill(first, signal.SIGKILL)
    wait_ready_dirty(server, 2)
    wait_until(
        lambda: log.read_text().count("dirty_worker_init") == 2, 10, "the second init"
    )
    lines = log.read_text().splitlines()
    master = server.proc.pid
    assert lines[0] == f"on_dirty_starting {master}"
    assert f"dirty_post_fork {first} dirty_apps:Counter" in lines
    assert f"dirty_worker_init {first} {first}" in lines
    assert f"dirty_worker_exit {first}" in lines


@pytest.mark.parametrize(
    "spec, reason",
    [
        ("nomodule", "expected module.path:ClassName"),
        ("mod:Cls:0", "at least 1"),
        ("mod:Cls:two", "must be an integer"),
    ],
)
def test_a_bad_dirty_app_spec_is_a_config_error_before_binding(spec: str, reason: str):
    result = run_ferricorn("-b", "127.0.0.1:0", "--dirty-app", spec, "dirty_apps:wsgi")
    assert result.returncode != 0
    assert "--dirty-app / dirty_apps" in result.stderr
    assert reason in result.stderr
    assert "Listening at" not in result.stderr


def test_a_dirty_app_that_cannot_load_stops_the_server_at_boot(serve):
    from conftest import Server as S

    server = S(
        [
            "-b",
            "127.0.0.1:0",
            "--dirty-app",
            "no_such_module:App",
            "--dirty-workers",
            "1",
            "dirty_apps:wsgi",
        ],
        APPS,
        None,
    )
    rc, _ = wait_for_exit(server, 20)
    assert rc == 3
    assert "Dirty app not found: no_such_module:App" in server.log
    assert "Dirty worker" in server.log and "failed to boot" in server.log


def test_an_app_limited_to_n_workers_is_loaded_by_n_of_them(serve):
    """`module:Class:N` (or the class's `workers` attribute) as in gunicorn."""
    server = serve(
        "dirty_apps:wsgi",
        "--dirty-app",
        "dirty_apps:Counter",
        "--dirty-app",
        "dirty_apps:Limited:1",
        "--dirty-app",
        "dirty_apps:Pinned",
        "--dirty-workers",
        "3",
    )
    wait_ready_dirty(server, 3)
    assert server.log.count("Initialized dirty app: dirty_apps:Counter") == 3
    assert server.log.count("Initialized dirty app: dirty_apps:Limited") == 1
    # the class attribute `workers = 2` applies when the spec has no :N
    assert server.log.count("Initialized dirty app: dirty_apps:Pinned") == 2
    pids = {get(server, "/pid?app=dirty_apps:Limited")["result"] for _ in range(4)}
    assert len(pids) == 1 and pids <= set(dirty_pids(server))


def test_term_stops_the_dirty_workers_gracefully(serve):
    server = start(serve, "dirty_apps:wsgi", workers=2)
    pids = dirty_pids(server)
    rc, took = wait_for_exit_after_term(server)
    assert rc == 0 and took < 10
    for pid in pids:
        assert not alive(pid)
    assert server.log.count("exiting") >= 2


def test_term_lets_a_call_in_progress_finish_before_the_dirty_workers_stop(serve):
    server = start(serve, "dirty_apps:wsgi", "--threads", "2")
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(get(server, "/sleep?s=2")))
    t.start()
    time.sleep(0.5)
    rc, _ = wait_for_exit_after_term(server)
    t.join(5)
    # the HTTP worker drains its request, whose dirty call is answered before the pool stops
    assert rc == 0
    assert "result" in result[0], result


def test_hup_replaces_the_dirty_workers(serve):
    server = start(serve, "dirty_apps:wsgi")
    (first,) = dirty_pids(server)
    assert get(server, "/incr")["result"]["n"] == 1
    server.proc.send_signal(signal.SIGHUP)
    pids = wait_ready_dirty(server, 2)
    wait_until(lambda: not alive(first), 10, "the old dirty worker to stop")
    # a fresh instance: its state starts over
    assert get(server, "/incr")["result"] == {"pid": pids[-1], "n": 1, "inits": 1}


def wait_for_exit_after_term(server: Server) -> tuple[int, float]:
    server.proc.send_signal(signal.SIGTERM)
    return wait_for_exit(server, 20)


def test_public_api_matches_gunicorn_dirty():
    from gunicorn_sdist import extract_tree

    try:
        tree = extract_tree("gunicorn/dirty")
    except Exception as exc:  # noqa: BLE001 - can't fetch = can't compare, not "ferricorn is wrong"
        pytest.skip(f"gunicorn sdist unavailable: {exc}")
    module = ast.parse((tree / "__init__.py").read_text())
    names: list[str] = []
    for node in module.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            names = list(ast.literal_eval(node.value))
    assert names
    import ferricorn.dirty

    missing = [n for n in names if not hasattr(ferricorn.dirty, n)]
    assert missing == []
    assert set(names) <= set(ferricorn.dirty.__all__)
    stash_api = [
        "put",
        "get",
        "delete",
        "keys",
        "clear",
        "info",
        "ensure",
        "exists",
        "delete_table",
        "tables",
        "table",
    ]
    assert all(callable(getattr(ferricorn.dirty.stash, n)) for n in stash_api)
    assert json.loads(
        json.dumps(ferricorn.dirty.DirtyTimeoutError("x", 3).to_dict())
    ) == {"error_type": "DirtyTimeoutError", "message": "x", "details": {"timeout": 3}}
