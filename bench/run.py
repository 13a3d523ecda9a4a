#!/usr/bin/env python3
"""Load-test ferricorn against its peers on the same pinned apps and print a markdown table.

What it owns: its own venv (bench/.venv) with pinned peers and a release build of ferricorn, the
hyper-hello ceiling binary, starting/stopping each server, driving wrk, and the report in
bench/results/. What it must not do: touch anything outside bench/ (ferricorn is installed from the
repo, never built in place by hand) or send traffic anywhere but 127.0.0.1.

Method (see bench/README.md): one worker per server; the server pinned to one core and wrk to the
other; for each round, each app and each connection count, every server is started, checked,
warmed up, loaded with `wrk -t1 -cN -dD --latency`, sampled (RSS, CPU) and stopped. The server
order rotates each round, and the table reports the median over rounds. `--report` runs the
whole suite (every app, 64 and 256 connections, 2-worker scaling rows) and writes
docs/benchmarks.md and docs/benchmarks.png.

Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import shutil
import sys
import time

from harness.common import (
    ALL_WSGI_APPS,
    APP_GROUPS,
    APPS,
    ASGI_APPS,
    DEFAULT_APPS,
    DEFAULT_ASGI_SERVERS,
    DEFAULT_SERVERS,
    DJANGO_DB,
    MULTI_WORKER,
    RESULTS,
    WS_MESSAGE_BYTES,
    is_ws,
    log,
)
from harness.install import (
    build_hyper,
    cpu_model,
    hyper_version,
    install_ferricorn,
    installed_versions,
    loadavg,
    prepare_django_db,
    setup_venv,
    venv_python,
    wrk_version,
    ws_load_version,
)
from harness.measure import Placement, Sample, measure
from harness.procfs import CLK_TCK, core_ticks
from harness.publish import DOC_MD, publish
from harness.report import Cell, render
from harness.servers import server_table
from harness.wsload import build_ws_load

# What `--report` measures unless told otherwise: every app at 64 and 256 connections, and the
# 2-worker scaling rows on a few apps.
REPORT_CONNECTIONS = "64,256"
REPORT_SCALE_APPS = "plaintext,flask_json,asgi_plaintext"
# Seconds a run costs beyond its load: start, check, stop, the quiet-machine check.
RUN_OVERHEAD_S = 4


def wait_for_quiet(below: float, longest: float) -> None:
    """Hold the next run while other jobs keep the shared cores busy, up to `longest` seconds."""
    if below <= 0:
        return
    cpus = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    t_end = time.monotonic() + longest
    while True:
        b0, _, _ = core_ticks(cpus)
        self0, t0 = time.process_time(), time.monotonic()
        time.sleep(1.0)
        b1, _, _ = core_ticks(cpus)
        wall = time.monotonic() - t0
        other = (b1 - b0) / CLK_TCK / wall - (time.process_time() - self0) / wall
        if other < below:
            return
        if time.monotonic() >= t_end:
            log(
                f"bench: machine still busy ({other * 100:.0f}% of a core), measuring anyway"
            )
            return
        log(
            f"bench: waiting for the machine to quiet down ({other * 100:.0f}% of a core busy)"
        )
        time.sleep(4.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark ferricorn against granian, gunicorn and a no-Python hyper server.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "-d",
        "--duration",
        type=int,
        default=10,
        help="seconds of measured load per run",
    )
    p.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="seconds of unmeasured load before each run",
    )
    p.add_argument(
        "-r", "--rounds", type=int, default=3, help="rounds; the table shows the median"
    )
    p.add_argument(
        "-c",
        "--connections",
        default=None,
        help=f"comma-separated wrk connection counts (default 64; {REPORT_CONNECTIONS} with "
        "--report)",
    )
    p.add_argument(
        "--ws-connections",
        default="32",
        help="comma-separated ws-load connection counts (asgi_ws_echo rows)",
    )
    p.add_argument(
        "--ws-message-bytes",
        type=int,
        default=WS_MESSAGE_BYTES,
        help="size of each ws-load text message",
    )
    p.add_argument(
        "--apps",
        default=None,
        help=f"comma-separated subset of {','.join(APPS)}, or the groups "
        f"{', '.join(APP_GROUPS)} (default wsgi; all with --report)",
    )
    p.add_argument(
        "--scale-apps",
        default=None,
        help="apps measured again with 1 and 2 workers per server, server and wrk sharing "
        f"all cores (default none; {REPORT_SCALE_APPS} with --report)",
    )
    p.add_argument(
        "--scale-connections",
        default="64",
        help="comma-separated wrk connection counts for the scaling rows",
    )
    p.add_argument(
        "--render",
        metavar="RESULTS_JSON",
        help="measure nothing: rebuild the tables (and with --report the docs page and plot) "
        "from a saved bench/results/<timestamp>.json",
    )
    p.add_argument(
        "--report",
        action="store_true",
        help=f"the full suite, written to {DOC_MD.relative_to(DOC_MD.parents[1])} with a "
        "plot beside it (implies --apps all, -c 64,256 and the scaling rows unless given)",
    )
    p.add_argument(
        "--servers",
        default=None,
        help=f"comma-separated; default {','.join(DEFAULT_SERVERS)} for WSGI apps and "
        f"{','.join(DEFAULT_ASGI_SERVERS)} for ASGI apps; also known: granian-default",
    )
    p.add_argument(
        "--ferricorn-threads", type=int, default=1, help="ferricorn --threads"
    )
    p.add_argument(
        "--ferricorn-wheel",
        metavar="PATH",
        help="install this ferricorn wheel (file, or a directory: newest ferricorn-*.whl)",
    )
    p.add_argument(
        "--rebuild-ferricorn",
        action="store_true",
        help="rebuild ferricorn from the repo (release) even if installed",
    )
    p.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pin the server and wrk to different cores with taskset",
    )
    p.add_argument(
        "--server-cpu-id", type=int, default=1, help="core for the server when pinning"
    )
    p.add_argument(
        "--wrk-cpu-id",
        type=int,
        default=0,
        help="core for wrk (and this script) when pinning",
    )
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk -t")
    p.add_argument("--wrk-timeout", default="10s", help="wrk --timeout")
    p.add_argument(
        "--start-timeout", type=float, default=60.0, help="seconds to wait for the port"
    )
    p.add_argument(
        "--quiet-below",
        type=float,
        default=0.2,
        help="before each run, wait until other processes use less than this share of one core "
        "(0 disables the wait)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="longest wait, in seconds, for the machine to quiet down before a run",
    )
    p.add_argument(
        "--no-save",
        action="store_true",
        help="do not write bench/results/<timestamp>.md",
    )
    args = p.parse_args(argv)
    if args.apps is None:
        args.apps = "all" if args.report else ",".join(DEFAULT_APPS)
    if args.connections is None:
        args.connections = REPORT_CONNECTIONS if args.report else "64"
    if args.scale_apps is None:
        args.scale_apps = REPORT_SCALE_APPS if args.report else ""
    args.connections = [int(c) for c in str(args.connections).split(",") if c.strip()]
    args.scale_connections = [
        int(c) for c in str(args.scale_connections).split(",") if c.strip()
    ]
    args.ws_connections = [
        int(c) for c in str(args.ws_connections).split(",") if c.strip()
    ]
    apps: list[str] = []
    for a in (a.strip() for a in args.apps.split(",")):
        for name in APP_GROUPS.get(a, [a] if a else []):
            if name not in apps:
                apps.append(name)
    args.apps = apps
    args.scale_apps = [a.strip() for a in args.scale_apps.split(",") if a.strip()]
    unknown = [a for a in args.apps + args.scale_apps if a not in APPS]
    if unknown:
        p.error(f"--apps/--scale-apps: unknown {unknown}; choose from {APPS} or {list(APP_GROUPS)}")
    wanted = set(args.apps) | set(args.scale_apps)
    if args.servers is None:
        args.servers = (DEFAULT_SERVERS if wanted & set(ALL_WSGI_APPS) else []) + (
            DEFAULT_ASGI_SERVERS if wanted & set(ASGI_APPS) else []
        )
    else:
        args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    known = server_table(1)
    unknown = [s for s in args.servers if s not in known]
    if unknown:
        p.error(f"--servers: unknown {unknown}; choose from {sorted(known)}")
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0:
        p.error(
            "--rounds and --duration must be >= 1 (wrk takes whole seconds), --warmup >= 0"
        )
    return args


def rerender(args: argparse.Namespace) -> int:
    """--render: the report of an earlier run, from its JSON, with that run's own options."""
    raw = json.loads(open(args.render).read())
    saved = argparse.Namespace(**{**vars(args), **raw["args"]})
    saved.report = args.report
    cells = [
        Cell(
            c["app"],
            c["conns"],
            c["server"],
            [Sample(**s) for s in c["samples"]],
            c.get("failures", []),
            shape=c.get("shape", ""),
        )
        for c in raw["cells"]
    ]
    threads = saved.ferricorn_threads
    report = render(
        cells, raw["meta"], server_table(threads, 1), saved, server_table(threads, 2)
    )
    print(report)
    if args.report:
        publish(report, raw, saved)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        return rerender(args)
    if shutil.which("wrk") is None:
        log(
            "bench: wrk is not installed. Install it with:\n    apt-get install -y wrk\n"
            "(Debian/Ubuntu package `wrk`), then run this again."
        )
        return 3

    allowed = sorted(os.sched_getaffinity(0))
    all_cores = ",".join(str(c) for c in allowed)
    main_where = Placement(None, None, tuple(allowed))
    pin_note = "not pinned"
    if args.pin:
        if shutil.which("taskset") is None:
            log("bench: warning: taskset missing (util-linux); running unpinned")
        elif (
            not {args.server_cpu_id, args.wrk_cpu_id} <= set(allowed)
            or args.server_cpu_id == args.wrk_cpu_id
        ):
            log(
                f"bench: warning: cannot pin to CPUs {args.server_cpu_id}/{args.wrk_cpu_id} "
                f"(allowed: {allowed}); running unpinned"
            )
        else:
            main_where = Placement(
                str(args.server_cpu_id),
                str(args.wrk_cpu_id),
                (args.server_cpu_id, args.wrk_cpu_id),
            )
            # This script samples /proc beside wrk. Its children inherit this mask, which is why
            # the scaling rows name every core explicitly.
            os.sched_setaffinity(0, {args.wrk_cpu_id})
            pin_note = (
                f"server on CPU {args.server_cpu_id}, wrk (and this script) on CPU "
                f"{args.wrk_cpu_id}"
            )
    # Scaling rows: the server's workers and wrk all float over every core we may use.
    scale_where = Placement(all_cores, all_cores, tuple(allowed))
    log(f"bench: pinning: {pin_note}")

    setup_venv()
    ferricorn_source = None
    if {"ferricorn", "ferricorn-asgi"} & set(args.servers):
        ferricorn_source = install_ferricorn(args)
    if "hyper" in args.servers:
        build_hyper()
    if any(is_ws(a) for a in args.apps + args.scale_apps):
        build_ws_load()
    if "django_orm" in args.apps + args.scale_apps:
        prepare_django_db()

    tables = {w: server_table(args.ferricorn_threads, w) for w in (1, 2)}
    servers = tables[1]
    versions = installed_versions()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    env = {
        "CPU": f"{cpu_model()} ({os.cpu_count()} cores)",
        "pinning": pin_note,
        "pinning of the scaling rows": f"server (all its workers) and wrk on CPUs {all_cores}, "
        "shared",
        "kernel": platform.release(),
        "python (bench venv)": venv_python(
            "import sys; print(sys.version.split()[0])"
        ).strip(),
        "wrk": wrk_version(),
        "ws-load": ws_load_version() if any(is_ws(a) for a in args.apps) else "not used",
        "websockets (uvicorn's ws library)": versions.get("websockets"),
        "granian": versions.get("granian"),
        "gunicorn": versions.get("gunicorn"),
        "uvicorn": f"{versions.get('uvicorn')} (uvloop {versions.get('uvloop')}, "
        f"httptools {versions.get('httptools')})",
        "hyper-hello": hyper_version(),
        "apps' frameworks": ", ".join(
            f"{n} {versions.get(n)}"
            for n in ("flask", "jinja2", "fastapi", "starlette", "pydantic", "django")
        )
        + f" (SQLite {DJANGO_DB.name} made before the run)",
        "ferricorn": (
            f"{versions.get('ferricorn')} from {ferricorn_source['from']}, "
            f"repo revision {ferricorn_source['revision']}, installed "
            f"{ferricorn_source['installed']}"
        )
        if ferricorn_source
        else "not measured",
        "load average at start": loadavg(),
    }

    cells: list[Cell] = []
    index: dict[tuple[str, int, str, str], Cell] = {}

    def conn_counts(app: str) -> list[int]:
        return args.ws_connections if is_ws(app) else args.connections

    # (app, conns, shape): shape "" is a main row (one worker, pinned), "w1"/"w2" a scaling row.
    plan: list[tuple[str, int, str]] = [
        (app, conns, "") for app in args.apps for conns in conn_counts(app)
    ]
    for app in args.scale_apps:
        for conns in args.ws_connections if is_ws(app) else args.scale_connections:
            plan += [(app, conns, "w1"), (app, conns, "w2")]
    for app, conns, shape in plan:
        for name in args.servers:
            if app in servers[name].apps and (not shape or name in MULTI_WORKER):
                cell = Cell(app, conns, name, shape=shape)
                cells.append(cell)
                index[(app, conns, name, shape)] = cell

    for name in args.servers:
        if not any(c.server == name for c in cells):
            log(
                f"bench: note: {name} runs none of the selected apps "
                f"(it runs {', '.join(servers[name].apps)})"
            )

    total = len(cells) * args.rounds
    eta = total * (args.duration + args.warmup + RUN_OVERHEAD_S)
    log(f"bench: {total} runs, about {eta / 60:.0f} min on a quiet machine")
    n = 0
    t_start = time.monotonic()
    try:
        # Rounds innermost: a cell's servers are measured minutes apart, not a whole pass of
        # the plan apart, so drift on the machine (neighbours, clocks) falls on both sides of
        # each ratio alike; the order rotates every round.
        for app, conns, shape in plan:
            for rnd in range(args.rounds):
                order = (
                    args.servers[rnd % len(args.servers) :]
                    + args.servers[: rnd % len(args.servers)]
                )
                for name in order:
                    cell = index.get((app, conns, name, shape))
                    if cell is None:
                        continue
                    n += 1
                    label = f"round {rnd + 1} {app} c{conns} {name}" + (
                        f" -{shape}" if shape else ""
                    )
                    wait_for_quiet(args.quiet_below, args.quiet_wait)
                    server = tables[2 if shape == "w2" else 1][name]
                    try:
                        s = measure(
                            server, app, conns, args, scale_where if shape else main_where
                        )
                    except (
                        RuntimeError,
                        ValueError,
                        OSError,
                        http.client.HTTPException,
                    ) as e:
                        cell.failures.append(str(e))
                        log(f"bench: [{n}/{total}] {label}: FAILED: {e}")
                        continue
                    cell.samples.append(s)
                    log(
                        f"bench: [{n}/{total}] {label}: "
                        f"{s.rps:,.0f} {'msgs/s' if is_ws(app) else 'rps'} p50 {s.p50:.2f} ms "
                        f"p99 {s.p99:.2f} ms rss {s.rss_mb:.1f} MB "
                        f"srv {s.server_cpu * 100:.0f}% load {s.wrk_cpu * 100:.0f}% "
                        f"err {s.errors:.0f}"
                    )
    except KeyboardInterrupt:
        log("bench: interrupted; reporting what was measured")

    env["load average at end"] = loadavg()
    env["wall time"] = f"{time.monotonic() - t_start:.0f} s"
    meta = {"started": started, "env": env}
    raw = {
        "meta": meta,
        "args": {k: v for k, v in vars(args).items()},
        "cells": [
            {
                "app": c.app,
                "conns": c.conns,
                "server": c.server,
                "shape": c.shape,
                "samples": [vars(s) for s in c.samples],
                "failures": c.failures,
            }
            for c in cells
        ],
    }
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if not args.no_save:
        # The samples first: whatever happens while rendering, the measurements are kept.
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"{stamp}.json").write_text(json.dumps(raw, indent=1))
    report = render(cells, meta, servers, args, tables[2])
    print(report)
    if not args.no_save:
        md = RESULTS / f"{stamp}.md"
        md.write_text(report)
        log(f"bench: wrote {md} and {md.with_suffix('.json')}")
    if args.report:
        publish(report, raw, args)
    failed = [c for c in cells if not c.samples]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
