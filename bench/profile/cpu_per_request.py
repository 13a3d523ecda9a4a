#!/usr/bin/env python3
"""CPU time and context switches per request, ferricorn next to its peers, from the kernel's
software counters (`perf stat -e task-clock,context-switches`).

    python3 bench/profile/cpu_per_request.py django_orm [--rounds 3] [--seconds 5]

Throughput on a shared or virtual machine swings by tens of percent from run to run; the CPU a
server spends per request swings much less, because it does not depend on how much of the core
the server was given. This runs each server of the app's interface (one worker, pinned like the
main bench: server on CPU 1, wrk on CPU 0) in turn for a few rounds and prints, per run, wrk's
requests/s, the server processes' task-clock per request (user + kernel, every thread) and their
context switches per request. It needs no PMU (virtual machines rarely expose one), only `perf`
(apt-get install -y linux-perf, or the distribution's perf package) and the bench venv
(`python3 bench/run.py` makes it).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.common import ALL_WSGI_APPS, ASGI_APPS, is_ws  # noqa: E402
from harness.install import prepare_django_db  # noqa: E402
from harness.measure import Running, check_response, free_port  # noqa: E402
from harness.procfs import session_pids  # noqa: E402
from harness.servers import server_table  # noqa: E402
from harness.wrk import parse_wrk, pinned, run_wrk, wrk_argv  # noqa: E402

SERVER_CPU, WRK_CPU = "1", "0"
WSGI_SERVERS = ["ferricorn", "granian"]
ASGI_SERVERS = ["ferricorn-asgi", "granian-asgi", "uvicorn"]


def parse_perf(stderr: str) -> dict[str, float]:
    """`perf stat -x,` lines (`value,unit,event,...`) as {event: value}; `<not counted>` and
    other non-numbers are left out."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        fields = line.split(",")
        if len(fields) < 3:
            continue
        try:
            out[fields[2]] = float(fields[0])
        except ValueError:
            continue
    return out


def one_run(server: str, app: str, seconds: int, conns: int) -> tuple[float, float, float]:
    port = free_port()
    running = Running(server_table(1)[server].argv(app, port), port, SERVER_CPU)
    try:
        running.wait_ready(60)
        check_response(app, port)
        # the main bench's wrk command line (one thread, 10 s timeout), pinned the same way
        wrk = argparse.Namespace(wrk_threads=1, wrk_timeout="10s")
        run_wrk(pinned(wrk_argv(wrk, app, conns, 2, port), WRK_CPU))  # warm-up
        pids = ",".join(str(p) for p in session_pids(running.sid))
        perf = subprocess.Popen(
            ["perf", "stat", "-x,", "-e", "task-clock,context-switches", "-p", pids,
             "--", "sleep", str(seconds)],
            stderr=subprocess.PIPE,
            text=True,
        )
        out, _, _ = run_wrk(pinned(wrk_argv(wrk, app, conns, seconds, port), WRK_CPU))
        counters = parse_perf(perf.communicate()[1])
        res = parse_wrk(out)
        n = max(res["requests"], 1.0)
        # task-clock is in milliseconds of CPU
        return res["rps"], counters.get("task-clock", 0.0) * 1000 / n, counters.get(
            "context-switches", 0.0
        ) / n
    finally:
        running.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("app", choices=ALL_WSGI_APPS + [a for a in ASGI_APPS if not is_ws(a)])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=int, default=5, help="measured seconds per run")
    p.add_argument("-c", "--connections", type=int, default=64)
    p.add_argument("--servers", help="comma-separated (default: ferricorn and the tuned peers)")
    args = p.parse_args()
    if args.app == "django_orm":
        prepare_django_db()
    servers = ASGI_SERVERS if args.app in ASGI_APPS else WSGI_SERVERS
    if args.servers:
        servers = args.servers.split(",")
    got: dict[str, list[tuple[float, float, float]]] = {s: [] for s in servers}
    for rnd in range(args.rounds):
        for server in servers[rnd % len(servers):] + servers[: rnd % len(servers)]:
            rps, cpu_us, ctx = one_run(server, args.app, args.seconds, args.connections)
            got[server].append((rps, cpu_us, ctx))
            print(f"round {rnd + 1} {server:15s} {rps:10,.0f} rps  {cpu_us:8.1f} us CPU/req  "
                  f"{ctx:6.3f} ctx switches/req", flush=True)
    print(f"\n{args.app}, {args.connections} connections, medians over {args.rounds} rounds:")
    for server, runs in got.items():
        rps, cpu, ctx = (statistics.median(r[i] for r in runs) for i in range(3))
        print(f"  {server:15s} {rps:10,.0f} rps  {cpu:8.1f} us CPU/req  {ctx:6.3f} ctx/req")


if __name__ == "__main__":
    main()
