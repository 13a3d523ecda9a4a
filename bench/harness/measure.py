"""One measurement: start a server, check one response, warm up, load it, sample it, stop it.

Everything it starts runs in its own session and is killed by session before it returns.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.common import APPS_DIR, DJANGO_DB, HOST, REAL_APPS, app_spec, base_app, is_ws
from harness.procfs import CLK_TCK, core_ticks, cpu_seconds, memory_mb, session_pids
from harness.servers import Server
from harness.wrk import parse_wrk, pinned, run_wrk, wrk_argv
from harness.wsload import parse_ws_load, ws_check, ws_load_argv


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Running:
    """A started server: its process group, log file and port. Stop it with stop()."""

    def __init__(self, argv: list[str], port: int, cpu: str | None) -> None:
        self.port = port
        # Outlives this method: the server writes to it until stop() closes and removes it.
        self.logf = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="bench-server-", suffix=".log", delete=False
        )
        env = dict(os.environ)
        env["PYTHONPATH"] = str(APPS_DIR) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        env["BENCH_DJANGO_DB"] = str(DJANGO_DB)
        env.pop("GUNICORN_CMD_ARGS", None)
        env.pop("FERRICORN_CMD_ARGS", None)
        self.proc = subprocess.Popen(
            pinned(argv, cpu),
            cwd=APPS_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def sid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        self.logf.flush()
        try:
            text = Path(self.logf.name).read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(
            f"port {self.port} not open after {timeout:g}s:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        # Workers that outlived their master (same session, maybe another group) are ours too.
        for _ in range(50):
            left = session_pids(self.proc.pid)
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)
        self.logf.close()
        try:
            os.unlink(self.logf.name)
        except OSError:
            pass


def lua_body(lua: Path) -> bytes:
    """The `wrk.body = '...'` of a wrk script, so that the check sends what the load sends."""
    m = re.search(r"^wrk\.body\s*=\s*'([^']*)'", lua.read_text(), re.MULTILINE)
    if not m:
        raise ValueError(f"{lua}: no single-quoted wrk.body line")
    return m.group(1).encode()


def _real_ok(app: str, body: bytes) -> bool:
    """What a correct answer of each real app looks like (bench/apps/)."""
    if app == "flask_json":
        return json.loads(body) == {"message": "Hello, World!"}
    if app == "flask_jinja":
        return body.count(b'<tr class="') == 20 and b"<p>20 items</p>" in body
    if app == "django_orm":
        items = json.loads(body)["items"]
        return len(items) == 20 and items[0]["name"] == "Item number 1"
    if app == "fastapi_post":
        return json.loads(body) == {
            "name": "Widget",
            "quantity": 4,
            "total": 10.0,
            "tags": ["blue", "small"],
        }
    raise ValueError(f"no check for {app}")


def _check_real(app: str, port: int) -> None:
    spec = app_spec(app)
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        if spec.lua is not None:
            conn.request(
                "POST",
                spec.path,
                body=lua_body(spec.lua),
                headers={"Content-Type": "application/json"},
            )
        else:
            conn.request("GET", spec.path)
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200 or not _real_ok(app, body):
        raise RuntimeError(f"{app}: status {resp.status}, body {body[:200]!r}")


def check_response(app: str, port: int) -> None:
    """One request by hand before any load: a server that answers wrongly is not benchmarked."""
    if is_ws(app):
        ws_check(port)
        return
    if app in REAL_APPS:
        _check_real(app, port)
        return
    app = base_app(app)
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        if app == "echo":
            payload = os.urandom(1024) * 64  # 64 KiB, arbitrary bytes
            conn.request(
                "POST",
                "/",
                body=payload,
                headers={"Content-Type": "application/octet-stream"},
            )
        else:
            payload = b""
            conn.request("GET", "/")
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    if resp.status != 200:
        raise RuntimeError(f"{app}: status {resp.status}, body {body[:200]!r}")
    # Only the app's own check runs: a random echo payload may start with "{" (1 in 256), and
    # json.loads on it would raise instead of comparing.
    checks = {
        "plaintext": lambda: body == b"Hello, World!",
        "json": lambda: body.startswith(b"{")
        and json.loads(body) == {"message": "Hello, World!"},
        "bytes64k": lambda: body == b"x" * 65536,
        "echo": lambda: body == payload,
    }
    ok = checks[app]()
    if not ok:
        raise RuntimeError(f"{app}: unexpected body ({len(body)} bytes): {body[:80]!r}")
    if app == "plaintext" and not (resp.getheader("Content-Type") or "").startswith(
        "text/plain"
    ):
        raise RuntimeError(
            f"plaintext: Content-Type {resp.getheader('Content-Type')!r}"
        )


@dataclass
class Sample:
    rps: float
    p50: float
    p90: float
    p99: float
    errors: float
    requests: float
    rss_mb: float
    pss_mb: float
    max_proc_rss_mb: float
    peak_rss_mb: float
    procs: int
    server_cpu: float  # fraction of one core over the measured run
    wrk_cpu: float  # the load generator's: wrk, or ws-load on the websocket rows
    steal: float  # fraction of the measured CPUs' time stolen by the hypervisor
    other_cpu: float  # cores busy with neither the server, wrk nor this script (share of a core)


@dataclass(frozen=True)
class Placement:
    """Where a run's processes may go: `taskset -c` lists (None: not pinned), and the cores whose
    busy time is sampled for the `other` column."""

    server: str | None
    wrk: str | None
    cpus: tuple[int, ...]


def measure(
    server: Server, app: str, conns: int, args: argparse.Namespace, where: Placement
) -> Sample:
    port = free_port()
    argv = server.argv(app, port)
    run = Running(argv, port, where.server)
    try:
        run.wait_ready(args.start_timeout)
        check_response(app, port)
        ws = is_ws(app)

        def load_argv(seconds: int) -> list[str]:
            if ws:
                return ws_load_argv(args, conns, seconds, port)
            return wrk_argv(args, app, conns, seconds, port)

        if args.warmup > 0:
            run_wrk(pinned(load_argv(args.warmup), where.wrk))
        peak = [0.0]
        done = threading.Event()

        def sample_peak() -> None:
            while not done.wait(1.0):
                peak[0] = max(peak[0], memory_mb(run.sid)[0])

        cpus = list(where.cpus)

        sampler = threading.Thread(target=sample_peak, daemon=True)
        cpu0 = cpu_seconds(run.sid)
        st0 = core_ticks(cpus)
        self0 = time.process_time()
        t0 = time.monotonic()
        sampler.start()
        out, _wall, wrk_cpu_s = run_wrk(pinned(load_argv(args.duration), where.wrk))
        wall = time.monotonic() - t0
        cpu1 = cpu_seconds(run.sid)
        st1 = core_ticks(cpus)
        self_cpu = (time.process_time() - self0) / wall
        done.set()
        sampler.join()
        if run.proc.poll() is not None:
            raise RuntimeError(f"server died under load:\n{run.log_tail()}")
        rss, pss, max_rss, procs = memory_mb(run.sid)
        res = parse_ws_load(out) if ws else parse_wrk(out)
        return Sample(
            rps=res["rps"],
            p50=res["p50"],
            p90=res["p90"],
            p99=res["p99"],
            errors=res["errors"],
            requests=res["requests"],
            rss_mb=rss,
            pss_mb=pss,
            max_proc_rss_mb=max_rss,
            peak_rss_mb=max(peak[0], rss),
            procs=procs,
            server_cpu=(cpu1 - cpu0) / wall,
            wrk_cpu=wrk_cpu_s / wall,
            steal=(st1[1] - st0[1]) / max(1, st1[2] - st0[2]),
            other_cpu=max(
                0.0,
                (st1[0] - st0[0]) / CLK_TCK / wall
                - (cpu1 - cpu0) / wall
                - wrk_cpu_s / wall
                - self_cpu,
            ),
        )
    finally:
        run.stop()
