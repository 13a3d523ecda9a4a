#!/usr/bin/env python3
"""Where a request's instructions go in ferricorn, counted by valgrind's callgrind.

    python3 bench/profile/callgrind_run.py flask_json [--requests-seconds 20] [--keep DIR]

Runs `ferricorn -w 1` from bench/.venv under callgrind twice (one file per thread): once warmed
up with 30 requests and stopped, once warmed up the same way and then driven with `wrk -c4` for a
while. The difference between the two worker profiles is what the loaded requests cost (the
worker's start, imports and exit are in both); it is split per request into: the I/O thread (Rust: tokio, HTTP parsing, framing,
socket calls), the bridge on the app thread (ferricorn's Rust + pyo3 + the CPython C-API calls it
makes itself, e.g. building environ), the Python side (interpreter, framework and app, and the
C extensions they use), and libc/other. Instruction counts repeat under load where wall-clock
times do not; the kernel's share (syscalls) is not counted by callgrind at all.

Needs valgrind (apt-get install -y valgrind) and the bench venv (`python3 bench/run.py` makes it).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.common import APPS, APPS_DIR, ASGI_APPS, HOST, VENV_BIN, app_spec  # noqa: E402
from harness.install import prepare_django_db  # noqa: E402
from harness.measure import check_response, free_port  # noqa: E402
from harness.procfs import session_pids  # noqa: E402
from harness.wrk import parse_wrk  # noqa: E402
from harness.servers import server_table  # noqa: E402
from cgparse import parse  # noqa: E402
from profile_classify import classify, difference, render  # noqa: E402


def server_argv(server: str, app: str, port: int) -> list[str]:
    """The command line under valgrind: ferricorn as below; a peer as the bench runs it
    (harness/servers.py, one worker), started as `python -m <tool>` (valgrind runs no scripts)."""
    if server == "ferricorn":
        kind = ["-k", "asgi", "--asgi-lifespan", "off"] if app in ASGI_APPS else []
        return [
            str(VENV_BIN / "python"), "-m", "ferricorn", "-w", "1", *kind,
            "-b", f"{HOST}:{port}", "--timeout", "600", "--graceful-timeout", "120",
            app_spec(app).target,
        ]
    argv = server_table(1)[server].argv(app, port)
    return [str(VENV_BIN / "python"), "-m", Path(argv[0]).name, *argv[1:]]


def run_once(
    server: str, app: str, seconds: int, conns: int, out: Path, db: Path
) -> tuple[dict[str, int], int, int]:
    """One server life under callgrind: start, warm up, `seconds` of wrk (0: none), stop.
    Returns ferricorn's worker instructions by part (empty for a peer), the instructions of all
    the server's processes together, and the requests wrk counted."""
    out.mkdir(parents=True, exist_ok=True)
    port = free_port()
    # Options for the tool go through VALGRIND_OPTS, not argv: ferricorn writes its process title
    # over the argv area, which under valgrind is valgrind's own command line, and a forked
    # worker re-reads --callgrind-out-file from there.
    env = dict(
        os.environ,
        PYTHONPATH=str(APPS_DIR),
        BENCH_DJANGO_DB=str(db),
        VALGRIND_OPTS="--separate-threads=yes --trace-children=yes "
        f"--callgrind-out-file={out}/cg.%p",
    )
    cmd = ["valgrind", "--tool=callgrind", *server_argv(server, app, port)]
    logf = open(out / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=APPS_DIR, env=env, stdout=logf, stderr=subprocess.STDOUT,
                            start_new_session=True)
    requests = 0
    worker = 0
    try:
        deadline = time.monotonic() + 900
        while True:  # the worker imports the app before it answers
            if proc.poll() is not None:
                raise RuntimeError((out / "server.log").read_text("utf-8", "replace")[-3000:])
            try:
                check_response(app, port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        for _ in range(WARMUP_REQUESTS - 1):
            check_response(app, port)
        if server == "ferricorn":
            worker = next(pid for pid in session_pids(proc.pid) if _ppid(pid) == proc.pid)
        if seconds > 0:
            spec = app_spec(app)
            wrk = ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "--timeout", "60s"]
            if spec.lua is not None:
                wrk += ["-s", str(spec.lua)]
            res = subprocess.run(wrk + [f"http://{HOST}:{port}{spec.path}"], check=True,
                                 capture_output=True, text=True)
            requests = int(parse_wrk(res.stdout)["requests"])
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=300)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
        logf.close()
    everything = sum(parse(f.read_text()).total for f in out.glob("cg.*") if f.stat().st_size)
    if server != "ferricorn":
        return {}, everything, requests
    files = sorted(glob.glob(f"{out}/cg.{worker}-*"))
    if not files:
        raise RuntimeError(f"no callgrind files for worker {worker} in {out}")
    return classify(files), everything, requests


# Requests before counting starts to matter: imports, caches and first-request paths are in both
# runs, so the difference holds only steady-state requests.
WARMUP_REQUESTS = 30


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("app", choices=APPS)
    p.add_argument(
        "--server",
        default="ferricorn",
        choices=["ferricorn", "granian", "granian-asgi", "uvicorn", "gunicorn-gthread"],
        help="a peer gets only the total of all its processes (no split by part)",
    )
    p.add_argument("--seconds", type=int, default=20, help="seconds of load under callgrind")
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--keep", metavar="DIR", help="keep the callgrind files in DIR")
    args = p.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("needs valgrind: apt-get install -y valgrind", file=sys.stderr)
        return 3
    out = Path(args.keep or tempfile.mkdtemp(prefix="ferricorn-cg-"))
    out.mkdir(parents=True, exist_ok=True)
    # Its own database: a bench run may be using bench/.data's at the same time.
    db = out / "django.sqlite3"
    if args.app == "django_orm":
        prepare_django_db(db)
    try:
        idle, idle_all, _ = run_once(args.server, args.app, 0, args.connections, out / "idle", db)
        loaded, loaded_all, requests = run_once(
            args.server, args.app, args.seconds, args.connections, out / "loaded", db
        )
    finally:
        if not args.keep:
            shutil.rmtree(out, ignore_errors=True)
    if loaded:
        print(render(args.app, requests, difference(loaded, idle)))
    print(
        f"{args.server} {args.app}: {(loaded_all - idle_all) / max(1, requests):,.0f} "
        f"instructions per request, all processes of the server ({requests} requests)"
    )
    return 0


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat[stat.rfind(")") + 2 :].split()[1])


if __name__ == "__main__":
    sys.exit(main())
