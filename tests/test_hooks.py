"""Server hooks from a gunicorn conf file: each one is called where and when gunicorn calls it,
with gunicorn's arguments, and a hook that raises is logged with its traceback.

The conf file below defines every hook the way real configs do (``server.log``,
``worker.pid``, ``req.method``, ``resp.status``...) and appends one line per call to the file
named by ``$HOOK_LOG``: ``name key=value ...``. Master and workers append to the same file
with single ``O_APPEND`` writes, so the file's order is the order of the calls.
"""

from __future__ import annotations

import os
import signal
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest
from test_master import alive, master_pid, wait_for_exit, wait_until

APP = """
    import time

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/sleep":
            time.sleep(30)
        if environ["PATH_INFO"] == "/crash":
            raise RuntimeError("the app failed")
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])])
        return [environ["PATH_INFO"].encode()]
"""

CONF = """
    import os

    def _line(*parts):
        fd = os.open(os.environ["HOOK_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (" ".join(str(p) for p in parts) + "\\n").encode())
        finally:
            os.close(fd)

    def on_starting(server):
        server.log.info("hooks: on_starting in %s", server.pid)
        _line("on_starting", f"pid={server.pid}", f"workers={server.cfg.workers}",
             f"bind={server.cfg.bind}", f"app={server.app_uri}", f"name={server.proc_name}")

    def when_ready(server):
        _line("when_ready", f"pid={server.pid}", f"num_workers={server.num_workers}")

    def on_reload(server):
        _line("on_reload", f"pid={server.pid}")

    def pre_fork(server, worker):
        _line("pre_fork", f"age={worker.age}", f"ppid={worker.ppid}", f"pid={worker.pid}")

    def post_fork(server, worker):
        _line("post_fork", f"age={worker.age}", f"pid={worker.pid}", f"getpid={os.getpid()}")

    def post_worker_init(worker):
        _line("post_worker_init", f"pid={worker.pid}", f"booted={worker.booted}")

    def worker_int(worker):
        _line("worker_int", f"pid={worker.pid}")

    def worker_abort(worker):
        _line("worker_abort", f"pid={worker.pid}", f"alive={worker.alive}")

    def pre_exec(server):
        _line("pre_exec", f"pid={server.pid}")

    def pre_request(worker, req):
        _line("pre_request", f"pid={worker.pid}", req.method, req.path, f"q={req.query}",
             f"uri={req.uri}", f"v={req.version}", dict(req.headers).get("X-TAG"))
        if req.path == "/refused":
            raise ValueError("pre_request refuses /refused")

    def post_request(worker, req, environ, resp):
        _line("post_request", f"pid={worker.pid}", req.method, req.path,
             resp.status_code if resp else None, repr(resp.status if resp else None),
             environ.get("PATH_INFO"), dict(resp.headers).get("X-Path") if resp else None)

    def child_exit(server, worker):
        _line("child_exit", f"pid={worker.pid}", f"age={worker.age}")

    def worker_exit(server, worker):
        _line("worker_exit", f"pid={worker.pid}", f"getpid={os.getpid()}", f"alive={worker.alive}")

    def nworkers_changed(server, new_value, old_value):
        _line("nworkers_changed", new_value, old_value)

    def on_exit(server):
        _line("on_exit", f"pid={server.pid}")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    (tmp_path / "hooks.conf.py").write_text(textwrap.dedent(CONF))
    return tmp_path


def calls(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    return [line.split(" ") for line in path.read_text().splitlines()]


def named(path: Path, name: str) -> list[list[str]]:
    return [c for c in calls(path) if c[0] == name]


def wait_calls(
    path: Path, name: str, count: int, timeout: float = 15.0
) -> list[list[str]]:
    wait_until(
        lambda: len(named(path, name)) >= count,
        timeout,
        f"{count} {name} calls in {calls(path)}",
    )
    return named(path, name)


def field(call: list[str], key: str) -> str:
    return next(p.split("=", 1)[1] for p in call if p.startswith(key + "="))


def start(serve, project: Path, *args: str):
    log = project / "hooks.log"
    server = serve(
        "app:app", "-c", "hooks.conf.py", *args, cwd=project, env={"HOOK_LOG": str(log)}
    )
    return server, log


def test_every_hook_is_called_in_gunicorns_order_with_its_arguments(serve, project):
    server, log = start(serve, project, "-w", "2")
    master = master_pid(server)
    inits = wait_calls(log, "post_worker_init", 2)
    first_workers = {field(c, "pid") for c in inits}
    assert all(field(c, "booted") == "False" for c in inits)

    seq = calls(log)
    # gunicorn's Arbiter.setup sets num_workers (nworkers_changed(2, None)) before on_starting
    assert seq[0] == ["nworkers_changed", "2", "None"]
    assert seq[1][0] == "on_starting"
    assert field(seq[1], "pid") == str(master)
    assert field(seq[1], "workers") == "2"
    assert field(seq[1], "bind") == "['127.0.0.1:0']"
    assert field(seq[1], "app") == "app:app"
    server.wait_for_log(rf"hooks: on_starting in {master}")
    # when_ready: sockets bound, before the first fork
    assert seq[2] == ["when_ready", f"pid={master}", "num_workers=2"]
    forks = named(log, "pre_fork")
    assert [field(c, "age") for c in forks[:2]] == ["1", "2"]
    assert all(
        field(c, "ppid") == str(master) and field(c, "pid") == "None" for c in forks
    )
    for c in named(log, "post_fork"):
        assert field(c, "pid") == field(c, "getpid")
        # pre_fork for that age came first, post_worker_init for that pid comes after
        names = [" ".join(x) for x in seq]
        pre = names.index(
            next(n for n in names if n.startswith(f"pre_fork age={field(c, 'age')} "))
        )
        post = names.index(" ".join(c))
        init = next(
            i
            for i, x in enumerate(seq)
            if x[0] == "post_worker_init" and field(x, "pid") == field(c, "pid")
        )
        assert pre < post < init
    assert {field(c, "pid") for c in named(log, "post_fork")} == first_workers

    # requests: pre_request then post_request, in the worker that served them
    r = httpx.get(server.url + "/hello?x=1", headers={"X-Tag": "t1"})
    assert r.status_code == 201
    r = httpx.post(server.url + "/form", content=b"abc", headers={"X-Tag": "t2"})
    assert r.status_code == 201
    posts = wait_calls(log, "post_request", 2)
    pres = named(log, "pre_request")
    assert pres[0][2:] == [
        "GET",
        "/hello",
        "q=x=1",
        "uri=/hello?x=1",
        "v=(1,",
        "1)",
        "t1",
    ]
    assert pres[1][2:4] == ["POST", "/form"]
    assert posts[0][2:] == [
        "GET",
        "/hello",
        "201",
        "'201",
        "Created'",
        "/hello",
        "/hello",
    ]
    assert posts[1][2:5] == ["POST", "/form", "201"]
    assert (
        field(pres[0], "pid") == field(posts[0], "pid")
        and field(pres[0], "pid") in first_workers
    )

    # HUP: on_reload, fresh workers forked, the old ones exit (worker_exit in them, child_exit here)
    os.kill(master, signal.SIGHUP)
    wait_calls(log, "on_reload", 1)
    wait_calls(log, "post_worker_init", 4)
    exits = wait_calls(log, "child_exit", 2)
    assert {field(c, "pid") for c in exits} == first_workers
    wait_calls(log, "worker_exit", 2)
    for c in named(log, "worker_exit"):
        assert field(c, "pid") == field(c, "getpid") and field(c, "alive") == "False"
    seq = calls(log)
    reload_at = seq.index(named(log, "on_reload")[0])
    assert [field(c, "age") for c in seq[reload_at:] if c[0] == "pre_fork"] == [
        "3",
        "4",
    ]

    # TTIN: nworkers_changed(3, 2) and a third worker
    os.kill(master, signal.SIGTTIN)
    assert wait_calls(log, "nworkers_changed", 2)[-1] == ["nworkers_changed", "3", "2"]
    wait_calls(log, "post_worker_init", 5)
    live = {field(c, "pid") for c in named(log, "post_worker_init")} - first_workers

    # TERM: every worker exits (worker_exit there, child_exit here), on_exit is the last call
    os.kill(master, signal.SIGTERM)
    rc, _ = wait_for_exit(server, 20)
    assert rc == 0
    seq = calls(log)
    assert seq[-1] == ["on_exit", f"pid={master}"]
    assert {field(c, "pid") for c in named(log, "worker_exit")} >= live
    assert {field(c, "pid") for c in named(log, "child_exit")} == live | first_workers
    assert not named(log, "worker_int") and not named(log, "worker_abort")
    assert "Exception in" not in server.log


def test_int_calls_worker_int_then_worker_exit_in_each_worker(serve, project):
    server, log = start(serve, project, "-w", "2")
    master = master_pid(server)
    pids = {field(c, "pid") for c in wait_calls(log, "post_worker_init", 2)}
    os.kill(master, signal.SIGINT)
    wait_for_exit(server, 20)
    ints = named(log, "worker_int")
    assert {field(c, "pid") for c in ints} == pids
    for pid in pids:
        seq = [c[0] for c in calls(log) if len(c) > 1 and c[1] == f"pid={pid}"]
        assert (
            seq.index("worker_int") < seq.index("worker_exit") < seq.index("child_exit")
        )
    assert calls(log)[-1][0] == "on_exit"


def test_timeout_calls_worker_abort_and_still_prints_the_stacks(serve, project):
    server, log = start(serve, project, "-w", "1", "-t", "1")
    pid = field(wait_calls(log, "post_worker_init", 1)[0], "pid")

    def hang() -> None:
        try:
            httpx.get(server.url + "/sleep", timeout=20)
        except httpx.HTTPError:
            pass

    threading.Thread(target=hang, daemon=True).start()
    abort = wait_calls(log, "worker_abort", 1, timeout=20)[0]
    assert field(abort, "pid") == pid and field(abort, "alive") == "False"
    server.wait_for_log(rf"WORKER TIMEOUT \(pid:{pid}\)")
    server.wait_for_log(r"in app")  # faulthandler's stack of the sleeping thread
    server.wait_for_log(rf"Worker \(pid:{pid}\) was sent SIGABRT")
    wait_calls(log, "post_worker_init", 2)
    assert httpx.get(server.url + "/after").status_code == 201


def test_a_raising_hook_is_logged_with_its_traceback_and_the_server_keeps_serving(
    serve, project
):
    conf = project / "hooks.conf.py"
    conf.write_text(
        conf.read_text()
        + textwrap.dedent(
            """
            def on_reload(server):
                raise RuntimeError("on_reload broke")

            def post_worker_init(worker):
                _line("post_worker_init", f"pid={worker.pid}")
            """
        )
    )
    server, log = start(serve, project, "-w", "1")
    master = master_pid(server)
    wait_calls(log, "post_worker_init", 1)
    # pre_request raising fails that request with a 500, as in gunicorn; post_request still runs
    r = httpx.get(server.url + "/refused")
    assert r.status_code == 500
    server.wait_for_log(r"Exception in the pre_request hook")
    server.wait_for_log(r"ValueError: pre_request refuses /refused")
    post = wait_calls(log, "post_request", 1)[0]
    assert post[2:5] == ["GET", "/refused", "500"]
    # an app error: post_request sees the 500 the client got
    assert httpx.get(server.url + "/crash").status_code == 500
    assert wait_calls(log, "post_request", 2)[1][2:5] == ["GET", "/crash", "500"]
    assert httpx.get(server.url + "/fine").status_code == 201
    # a master hook raising: logged, the reload goes on
    os.kill(master, signal.SIGHUP)
    server.wait_for_log(r"Exception in the on_reload hook")
    server.wait_for_log(r"RuntimeError: on_reload broke")
    assert "line " in server.log and "Traceback (most recent call last)" in server.log
    wait_calls(log, "post_worker_init", 2)
    assert httpx.get(server.url + "/still").status_code == 201


@pytest.mark.parametrize("hook", ["on_starting", "when_ready"])
def test_a_raising_on_starting_or_when_ready_stops_the_server_as_in_gunicorn(
    project, hook
):
    from test_config import ferricorn

    conf = project / "hooks.conf.py"
    conf.write_text(
        conf.read_text()
        + textwrap.dedent(
            f"""
            def {hook}(server):
                raise RuntimeError("{hook} broke")
            """
        )
    )
    started = time.monotonic()
    out = ferricorn(
        "-b",
        "127.0.0.1:0",
        "-c",
        "hooks.conf.py",
        "app:app",
        cwd=project,
        env={"HOOK_LOG": str(project / "hooks.log")},
    )
    assert out.returncode != 0
    assert f"RuntimeError: {hook} broke" in out.stderr
    assert f"the {hook} hook raised an exception" in out.stderr
    assert not named(project / "hooks.log", "pre_fork")
    assert time.monotonic() - started < 30


def test_usr2_calls_pre_exec_in_the_new_master_before_it_execs(serve, project):
    server, log = start(serve, project, "-w", "1")
    old = master_pid(server)
    wait_calls(log, "post_worker_init", 1)
    os.kill(old, signal.SIGUSR2)
    line = server.wait_for_log(r"Started a new master \(pid: \d+\)")
    new = int(line.rsplit("pid: ", 1)[1].split(")")[0])
    try:
        # the new master runs the conf file again: its own on_starting, with its own pid
        wait_until(
            lambda: any(field(c, "pid") == str(new) for c in named(log, "on_starting")),
            15,
            "the new master's on_starting",
        )
        seq = calls(log)
        pre_exec = seq.index(["pre_exec", f"pid={old}"])
        assert seq[pre_exec + 1 :].count(["nworkers_changed", "1", "None"]) == 1
    finally:
        os.kill(new, signal.SIGTERM)
        wait_until(lambda: not alive(new), 30, "the new master to exit")
