"""Builds wrk command lines, runs wrk (with its own CPU use from rusage) and parses its output."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time

from harness.common import HOST, app_spec

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not m:
        raise ValueError(f"unparsable wrk time {text!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(out: str) -> dict[str, float]:
    """Requests/s, p50/p99 (ms), requests and errors from `wrk --latency` output."""
    res: dict[str, float] = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m:
        raise ValueError("no 'Requests/sec' line in wrk output:\n" + out)
    res["rps"] = float(m.group(1))
    for pct, key in (("50", "p50"), ("90", "p90"), ("99", "p99")):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", out, re.MULTILINE)
        if not m:
            raise ValueError(f"no {pct}% latency line (was --latency passed?):\n" + out)
        res[key] = _ms(m.group(1))
    m = re.search(r"(\d+) requests in", out)
    res["requests"] = float(m.group(1)) if m else 0.0
    errors = 0
    m = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if m:
        errors += sum(int(g) for g in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        errors += int(m.group(1))
    res["errors"] = float(errors)
    return res


def wrk_argv(
    args: argparse.Namespace, app: str, conns: int, duration: int, port: int
) -> list[str]:
    argv = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{conns}",
        f"-d{duration}s",
        "--timeout",
        args.wrk_timeout,
        "--latency",
    ]
    spec = app_spec(app)
    if spec.lua is not None:
        argv += ["-s", str(spec.lua)]
    argv.append(f"http://{HOST}:{port}{spec.path}")
    return argv


def pinned(argv: list[str], cpu: int | str | None) -> list[str]:
    return ["taskset", "-c", str(cpu)] + argv if cpu is not None else argv


def run_wrk(argv: list[str]) -> tuple[str, float, float]:
    """Run wrk (or ws-load); return (stdout, wall seconds, its own CPU seconds from its rusage)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    out = proc.stdout.read().decode("utf-8", "replace")
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = (
        os.waitstatus_to_exitcode(status)
        if hasattr(os, "waitstatus_to_exitcode")
        else status
    )
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        tool = os.path.basename(argv[3] if argv[0] == "taskset" else argv[0])
        raise RuntimeError(f"{tool} exited {proc.returncode}:\n{out}")
    return out, wall, usage.ru_utime + usage.ru_stime
