#!/usr/bin/env python3
"""Soak ferricorn: minutes of mixed load with periodic HUPs and worker kills, every process's
RSS, fds and threads sampled each second, and a report that says whether memory stayed flat.

What it owns: starting one ferricorn (from bench/.venv, built like bench/run.py builds it), the
load (wrk runs back to back with bench/apps/soak.lua), the signals it sends that server, the
/proc samples, bench/results/soak-<timestamp>.json (+ the server's log), and docs/soak.md +
docs/soak.png. What it must not do: signal any process but the server it started, or send
traffic anywhere but 127.0.0.1. bench/README.md ("Soak") describes the method and the rule.

The pure parts (schedule, bookkeeping, parsing, the rule) live in harness/soak.py, the page in
harness/soak_report.py, the plot in harness/soak_plot.py; bench/test_soak.py specifies them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.common import APPS_DIR, HOST, REPO, RESULTS, VENV, log  # noqa: E402
from harness.install import cpu_model, loadavg, wrk_version  # noqa: E402
from harness.measure import Running, free_port  # noqa: E402
from harness.procfs import session_pids  # noqa: E402
from harness.soak import Stat, Tracker, analyse, parse_segment, schedule  # noqa: E402
from harness.soak_report import render  # noqa: E402
from harness.wrk import pinned, run_wrk  # noqa: E402

SOAK_LUA = APPS_DIR / "soak.lua"
DOC_MD = REPO / "docs" / "soak.md"
DOC_PNG = REPO / "docs" / "soak.png"
PLOT = Path(__file__).resolve().parent / "harness" / "soak_plot.py"
ECHO_BODY = b"soak" * 4096  # what soak.lua POSTs


# --- /proc ------------------------------------------------------------------------------------


PF_EXITING = 0x4  # include/linux/sched.h: the process is being torn down


def _exiting(pid: int) -> bool:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    flags = int(stat[stat.rfind(b")") + 2 :].split()[6])
    return bool(flags & PF_EXITING)


def _status(pid: int) -> dict[str, int]:
    """PPid, VmRSS, RssAnon and Threads of a process; Zombie is 1 for a dead, unreaped one."""
    out = {}
    with open(f"/proc/{pid}/status", "rb") as f:
        for line in f:
            key, _, rest = line.partition(b":")
            if key in (b"PPid", b"VmRSS", b"RssAnon", b"Threads"):
                out[key.decode()] = int(rest.split()[0])
            elif key == b"State":
                out["Zombie"] = int(rest.split()[0] in (b"Z", b"X"))
    return out


def proc_stats(sid: int) -> dict[int, Stat]:
    """Every live process of the server's session; a process gone while being read, exiting
    (its memory going away), or dead and not reaped yet, is left out."""
    stats = {}
    for pid in session_pids(sid):
        try:
            if _exiting(pid):
                continue
            st = _status(pid)
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except (OSError, ValueError, IndexError):
            continue
        if st.get("Zombie") or "VmRSS" not in st:
            continue
        stats[pid] = Stat(st.get("PPid", 0), st.get("VmRSS", 0), st.get("RssAnon", 0), fds,
                          st.get("Threads", 0))
    return stats


# --- the server -------------------------------------------------------------------------------


def server_argv(args: argparse.Namespace, port: int) -> list[str]:
    argv = [str(Path(args.venv) / "bin" / "ferricorn"), "-w", str(args.workers),
            "-b", f"{HOST}:{port}", "--no-control-socket"]
    if args.interface == "asgi":
        argv += ["-k", "asgi", "--asgi-lifespan", "off"]
    argv += shlex.split(args.server_args)
    argv.append(f"soakapp:{args.interface}")
    return argv


def wrk_argv(args: argparse.Namespace, seconds: int, port: int, lua: Path) -> list[str]:
    return ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{seconds}s",
            "--timeout", args.wrk_timeout, "--latency", "-s", str(lua),
            f"http://{HOST}:{port}/"]


def lua_script(delay_ms: int) -> str:
    """soak.lua, plus a `delay()` that pauses each connection after a response when asked."""
    text = SOAK_LUA.read_text()
    if delay_ms > 0:
        text += f"\nfunction delay()\n   return {int(delay_ms)}\nend\n"
    return text


def check_routes(port: int) -> None:
    """One request per route before any load: a server that answers wrongly is not soaked."""
    want = {
        "/plaintext": ("GET", b"", lambda b: b == b"Hello, World!"),
        "/json": ("GET", b"", lambda b: json.loads(b) == {"message": "Hello, World!"}),
        "/bytes64k": ("GET", b"", lambda b: b == b"x" * 65536),
        "/echo": ("POST", ECHO_BODY, lambda b: b == ECHO_BODY),
    }
    for path, (method, body, ok) in want.items():
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        try:
            conn.request(method, path, body=body or None)
            resp = conn.getresponse()
            got = resp.read()
        finally:
            conn.close()
        if resp.status != 200 or not ok(got):
            raise RuntimeError(f"{path}: status {resp.status}, body {got[:80]!r}")


# --- the run ----------------------------------------------------------------------------------


class Soak:
    """One run: the sampler thread samples /proc and sends the scheduled signals; the calling
    thread drives wrk runs back to back until the duration has passed."""

    def __init__(self, args: argparse.Namespace, run: Running) -> None:
        self.args = args
        self.run = run
        self.tracker = Tracker(run.sid)
        self.segments: list[dict] = []
        self.failures: list[str] = []
        self.rng = random.Random(args.seed)
        self.t0 = 0.0
        self.ended = 0.0
        self.stop = threading.Event()
        self.master_died = threading.Event()

    def wait_for_workers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stats = proc_stats(self.run.sid)
            if sum(1 for s in stats.values() if s.ppid == self.run.sid) >= self.args.workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.args.workers} workers not up after {timeout:g}s:\n"
                           f"{self.run.log_tail()}")

    def now(self) -> float:
        return time.monotonic() - self.t0

    def send(self, kind: str) -> None:
        t = self.now()
        if kind == "hup":
            os.kill(self.run.sid, signal.SIGHUP)
            self.tracker.note_event(t, "hup", self.run.sid)
            log(f"soak: {t:6.1f}s SIGHUP master {self.run.sid}")
            return
        workers = self.tracker.workers()
        if not workers:
            log(f"soak: {t:6.1f}s no worker to kill")
            return
        pid = self.rng.choice(workers)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        self.tracker.note_event(t, "kill", pid)
        log(f"soak: {t:6.1f}s SIGKILL worker {pid}")

    def sample_loop(self) -> None:
        events = schedule(self.args.duration, self.args.hup_every, self.args.kill_every)
        next_sample = 0.0
        while not self.stop.is_set():
            due = min([next_sample] + [e[0] for e in events[:1]])
            wait = due - self.now()
            if wait > 0 and self.stop.wait(wait):
                break
            while events and events[0][0] <= self.now():
                self.send(events.pop(0)[1])
            if self.now() >= next_sample:
                self.tracker.observe(self.now(), proc_stats(self.run.sid))
                next_sample += self.args.sample_every
                if self.run.proc.poll() is not None:
                    self.master_died.set()
                    return

    def go(self, lua: Path, port: int) -> None:
        self.t0 = time.monotonic()
        sampler = threading.Thread(target=self.sample_loop, daemon=True)
        sampler.start()
        try:
            while not self.master_died.is_set():
                left = self.args.duration - self.now()
                if left < 1:
                    break
                seconds = min(self.args.interval, int(left))
                t0 = self.now()
                try:
                    out, _wall, _cpu = run_wrk(
                        pinned(wrk_argv(self.args, seconds, port, lua), self.args.cpus))
                    self.segments.append(parse_segment(out, t0, self.now()))
                except (RuntimeError, ValueError) as e:
                    self.failures.append(f"{t0:.1f}s: {e}")
                    log(f"soak: wrk run at {t0:.1f}s failed: {e}")
                # wrk has closed its connections: let the workers see it, then count their fds
                time.sleep(self.args.settle)
                self.tracker.observe_idle(self.now(), proc_stats(self.run.sid))
                s = self.segments[-1] if self.segments else None
                if s and s["t0"] == round(t0, 3):
                    errs = sum(s[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
                    log(f"soak: {t0:6.1f}s {s['rps']:8,.0f} rps  errors {errs}")
        except KeyboardInterrupt:
            log("soak: interrupted; reporting what was measured")
        finally:
            self.ended = self.now()
            self.stop.set()
            sampler.join()
        if self.master_died.is_set():
            self.failures.append(f"the master exited with {self.run.proc.returncode}")


_LOG_LINE = re.compile(r"^\[[^\]]*\] \[(\d+)\] \[(ERROR|WARNING|INFO|DEBUG|CRITICAL)\] (.*)$")


def log_summary(text: str) -> dict:
    """The server's log in numbers: lines per level, and each distinct ERROR/WARNING message
    (numbers replaced by N, so that one message about many pids counts once) with its count."""
    levels: Counter[str] = Counter()
    messages: Counter[str] = Counter()
    other = tracebacks = 0
    for line in text.splitlines():
        m = _LOG_LINE.match(line)
        if not m:
            other += 1
            tracebacks += line.startswith("Traceback (most recent call last)")
            continue
        levels[m.group(2)] += 1
        if m.group(2) in ("ERROR", "WARNING", "CRITICAL"):
            messages[f"[{m.group(2)}] " + re.sub(r"\d+", "N", m.group(3))] += 1
    return {"levels": dict(levels), "messages": dict(messages.most_common()),
            "other_lines": other, "tracebacks": tracebacks}


def venv_facts(python: Path) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {'python': sys.version.split()[0]}\n"
        "for n in ('ferricorn', 'matplotlib', 'uvloop'):\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def memtotal() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return "?"


def ferricorn_source(venv: Path) -> str:
    marker = venv / "ferricorn-source.json"
    try:
        src = json.loads(marker.read_text())
        return (f"from {src.get('from')}, repo revision {src.get('revision')}, installed "
                f"{src.get('installed')}")
    except (OSError, ValueError):
        return "unknown source"


def prepare_venv(args: argparse.Namespace) -> None:
    """The default venv is bench/.venv, set up and built exactly as bench/run.py does it; a venv
    given with --venv is used as it is."""
    if Path(args.venv).resolve() != VENV.resolve():
        if not (Path(args.venv) / "bin" / "ferricorn").exists():
            raise SystemExit(f"soak: --venv {args.venv}: no bin/ferricorn in it")
        return
    from harness.install import install_ferricorn, setup_venv

    setup_venv()
    install_ferricorn(args)


def publish(raw: dict, stem: Path, findings: str) -> None:
    """docs/soak.md and docs/soak.png from a run's raw JSON (saved at `stem`.json)."""
    a = analyse(raw)
    DOC_MD.parent.mkdir(parents=True, exist_ok=True)
    python = Path(raw["args"]["venv"]) / "bin" / "python"
    r = subprocess.run([str(python), str(PLOT), str(stem.with_suffix(".json")), str(DOC_PNG)],
                       capture_output=True, text=True, check=False)
    plotted = r.returncode == 0
    if not plotted:
        log(f"soak: warning: the plot failed (is matplotlib in {python.parent.parent}?):\n"
            f"{r.stderr}")
    DOC_MD.write_text(render(raw, a, DOC_PNG.name if plotted else None, findings))
    log(f"soak: wrote {DOC_MD}" + (f" and {DOC_PNG}" if plotted else ""))


def summary_line(raw: dict) -> str:
    a = analyse(raw)
    m = a["master_rss"]
    w = a["workers_rss"]
    errs = {c: sum(v[k] for k in ("non2xx", "connect", "read", "write", "timeout"))
            for c, v in a["errors"].items()}
    return (f"soak: {'FLAT' if a['flat'] else 'NOT FLAT ' + ','.join(a['not_flat'])}; master "
            f"RSS {m['start'] / 1024:.1f} -> {m['end'] / 1024:.1f} MiB "
            f"({m['slope_per_min']:+.1f} KiB/min), workers {w['slope_per_min']:+.1f} KiB/min "
            f"pooled over {w['judged']}; {a['requests']:,} requests, errors {errs}")


# --- CLI --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Soak ferricorn: load with periodic HUPs and worker kills, RSS of every "
        "process sampled, and a report on whether memory stays flat.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("-d", "--duration", type=int, default=600, help="seconds of load")
    p.add_argument("--hup-every", type=float, default=60.0,
                   help="seconds between SIGHUPs to the master (0: none)")
    p.add_argument("--kill-every", type=float, default=45.0,
                   help="seconds between SIGKILLs to a random worker (0: none)")
    p.add_argument("-w", "--workers", type=int, default=2, help="ferricorn -w")
    p.add_argument("--interface", choices=("wsgi", "asgi"), default="wsgi",
                   help="soakapp:wsgi on the default worker, or soakapp:asgi with -k asgi")
    p.add_argument("--server-args", default="",
                   help="more ferricorn options, one shell-quoted string")
    p.add_argument("-c", "--connections", type=int, default=32, help="wrk -c")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t")
    p.add_argument("--wrk-timeout", default="10s", help="wrk --timeout")
    p.add_argument("--interval", type=int, default=5,
                   help="seconds of each wrk run; errors and throughput are counted per run")
    p.add_argument("--delay-ms", type=int, default=0,
                   help="pause each connection this long after a response (lighter load)")
    p.add_argument("--sample-every", type=float, default=1.0, help="seconds between samples")
    p.add_argument("--settle", type=float, default=0.5,
                   help="pause after each wrk run before the idle sample (no client connected)")
    p.add_argument("--cpus", default=None,
                   help="taskset -c list for the server and wrk (default: not pinned)")
    p.add_argument("--seed", type=int, default=1, help="seed of the choice of worker to kill")
    p.add_argument("--kill-grace", type=float, default=3.0,
                   help="errors up to this long after a SIGKILL are put down to it")
    p.add_argument("--hup-grace", type=float, default=10.0,
                   help="errors up to this long after a HUP are put down to it")
    p.add_argument("--min-life", type=float, default=20.0,
                   help="workers sampled for less than this are not judged")
    p.add_argument("--venv", default=str(VENV),
                   help="venv whose bin/ferricorn runs and whose python draws the plot; the "
                   "default one is created and built like bench/run.py's")
    p.add_argument("--ferricorn-wheel", metavar="PATH",
                   help="install this ferricorn wheel into bench/.venv first")
    p.add_argument("--rebuild-ferricorn", action="store_true",
                   help="rebuild ferricorn from the repo (release) into bench/.venv first")
    p.add_argument("--start-timeout", type=float, default=60.0,
                   help="seconds to wait for the port and the workers")
    p.add_argument("--no-report", action="store_true",
                   help="only bench/results/soak-*.json, not docs/soak.md and docs/soak.png")
    p.add_argument("--findings", metavar="FILE",
                   help="markdown put under the verdict (an investigation's conclusions)")
    p.add_argument("--render", metavar="RESULTS_JSON",
                   help="measure nothing: rewrite docs/soak.md and .png from a saved run")
    args = p.parse_args(argv)
    if args.duration < 2 or args.interval < 1 or args.workers < 1 or args.sample_every <= 0:
        p.error("--duration >= 2, --interval >= 1, --workers >= 1, --sample-every > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    findings = Path(args.findings).read_text() if args.findings else ""
    if args.render:
        path = Path(args.render)
        raw = json.loads(path.read_text())
        publish(raw, path.with_suffix(""), findings)
        log(summary_line(raw))
        return 0
    if shutil.which("wrk") is None:
        log("soak: wrk is not installed: apt-get install -y wrk")
        return 3
    prepare_venv(args)
    venv = Path(args.venv)
    facts = venv_facts(venv / "bin" / "python")
    port = free_port()
    argv_server = server_argv(args, port)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    env = {
        "machine": f"{cpu_model()} ({os.cpu_count()} cores), {memtotal()} RAM, kernel "
        f"{platform.release()}",
        "pinning": f"server and wrk on CPUs {args.cpus} (taskset)" if args.cpus
        else "not pinned (the machine may be shared)",
        "ferricorn": f"{facts.get('ferricorn')} {ferricorn_source(venv)}",
        "python (venv)": f"{facts.get('python')} in {venv}",
        "uvloop": str(facts.get("uvloop")),
        "wrk": wrk_version(),
        "load average at start": loadavg(),
    }
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        lua = Path(tmp) / "soak.lua"
        lua.write_text(lua_script(args.delay_ms))
        run = Running(argv_server, port, args.cpus)
        soak = Soak(args, run)
        try:
            run.wait_ready(args.start_timeout)
            soak.wait_for_workers(args.start_timeout)
            check_routes(port)
            log(f"soak: {args.duration} s of load on {' '.join(argv_server)}")
            # read after stop() (which removes the file), so that the shutdown is in it too
            with open(run.logf.name, "rb") as server_logf:
                soak.go(lua, port)
                run.stop()
                server_log = server_logf.read().decode("utf-8", "replace")
        finally:
            run.stop()
    env["load average at end"] = loadavg()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem = RESULTS / f"soak-{stamp}"
    raw = {
        "meta": {
            "started": started,
            "command": "python3 bench/soak.py" + (" " + shlex.join(argv) if argv else ""),
            "env": env,
            "server_argv": [Path(argv_server[0]).name, *argv_server[1:]],
            "wrk_argv": wrk_argv(args, args.interval, port, SOAK_LUA.relative_to(REPO))
            + (["(+ delay())"] if args.delay_ms else []),
            "results": stem.with_suffix(".json").name,
            "failures": soak.failures,
            "log": log_summary(server_log),
        },
        "args": vars(args),
        "duration": round(soak.ended, 3),
        **soak.tracker.to_json(),
        "segments": soak.segments,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(raw, indent=1))
    stem.with_suffix(".log").write_text(server_log)
    log(f"soak: wrote {stem}.json and {stem}.log")
    if not args.no_report:
        publish(raw, stem, findings)
    log(summary_line(raw))
    return 1 if soak.failures else 0


if __name__ == "__main__":
    sys.exit(main())
