"""Medians over rounds and the markdown table, notes, command lines and environment block."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field

from harness.common import BASELINE, BENCH, CEILING, HOST, VENV_BIN
from harness.measure import Sample
from harness.servers import Server
from harness.wrk import wrk_argv


@dataclass
class Cell:
    app: str
    conns: int
    server: str
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def med(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)

    def spread(self) -> float:
        rps = [s.rps for s in self.samples]
        return (max(rps) - min(rps)) / statistics.median(rps) if len(rps) > 1 else 0.0


def fmt_rps(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 10000 else f"{x:,.0f}"


def fmt_ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def render(
    cells: list[Cell], meta: dict, servers: dict[str, Server], args: argparse.Namespace
) -> str:
    by_key = {(c.app, c.conns, c.server): c for c in cells}
    lines = [
        f"# ferricorn bench {meta['started']}",
        "",
        (
            f"wrk -t{args.wrk_threads}, {args.duration} s per run after a {args.warmup} s warm-up, "
            f"median of {args.rounds} round(s), servers in rotating order each round. "
            "rps spread = (max-min)/median over rounds. RSS: all processes of the server "
            "(master + worker) after the load, with the largest single process (the worker) in "
            "brackets; PSS: the same total with pages shared after fork counted once. "
            "srv/wrk CPU: share of one core during the run; other: CPU used meanwhile by anything "
            "else on the machine (share of one core). p50/p99: wrk --latency."
        ),
        "",
        (
            "| app | conns | server | rps | spread | p50 ms | p99 ms | errors | RSS MB | PSS MB "
            "| srv CPU | wrk CPU | other | vs granian | vs hyper |"
        ),
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for c in cells:
        if not c.samples:
            lines.append(
                f"| {c.app} | {c.conns} | {c.server} | failed | | | | | | | | | | | |"
            )
            continue
        rps = c.med("rps")
        base = by_key.get((c.app, c.conns, BASELINE))
        ceil = by_key.get((c.app, c.conns, CEILING))
        vs_base = f"{rps / base.med('rps'):.2f}" if base and base.samples else ""
        vs_ceil = (
            f"{rps / ceil.med('rps'):.2f}"
            if ceil and ceil.samples and c.app == "plaintext"
            else ""
        )
        wrk_cpu = c.med("wrk_cpu")
        srv_cpu = c.med("server_cpu")
        other = c.med("other_cpu")
        rss = f"{c.med('rss_mb'):.1f} ({c.med('max_proc_rss_mb'):.1f})"
        errors = sum(s.errors for s in c.samples)
        lines.append(
            f"| {c.app} | {c.conns} | {c.server} | {fmt_rps(rps)} | {c.spread() * 100:.0f}% "
            f"| {fmt_ms(c.med('p50'))} | {fmt_ms(c.med('p99'))} | {errors:.0f} "
            f"| {rss} | {c.med('pss_mb'):.1f} | {srv_cpu * 100:.0f}% | {wrk_cpu * 100:.0f}% "
            f"| {other * 100:.0f}% | {vs_base} | {vs_ceil} |"
        )
        if wrk_cpu >= 0.9:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: wrk used {wrk_cpu * 100:.0f}% of its "
                "core, so this figure is bounded by the client, not the server."
            )
        if other >= 0.15:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: other processes used {other * 100:.0f}% of a "
                "core during the run; this row competed with them."
            )
        if srv_cpu < 0.85 and wrk_cpu < 0.85 and c.app != "echo":
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: neither the server ({srv_cpu * 100:.0f}%) nor "
                f"wrk ({wrk_cpu * 100:.0f}%) filled its core: something outside the run (the "
                "host, other jobs) held it back; treat this row as noisy."
            )
        steal = c.med("steal")
        if steal >= 0.02:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: the hypervisor stole {steal * 100:.0f}% "
                "of the measured cores' time during the run."
            )
        if errors:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: {errors:.0f} wrk errors over all rounds "
                "(socket errors + non-2xx)."
            )
        if c.failures:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: {len(c.failures)} failed run(s): "
                + c.failures[0].splitlines()[0]
            )
    if notes:
        lines += ["", "Notes:"] + notes
    lines += ["", "## Command lines", ""]
    for name in args.servers:
        s = servers[name]
        cmd = (
            " ".join(s.argv("APP", 0))
            .replace(f"{HOST}:0", f"{HOST}:PORT")
            .replace("--port 0", "--port PORT")
        )
        cmd = cmd.replace(str(VENV_BIN) + "/", "").replace(str(BENCH) + "/", "bench/")
        lines.append(f"- **{name}** ({s.note}): `{cmd}`")
    wrk_cmd = " ".join(wrk_argv(args, "plaintext", 64, args.duration, 0)).replace(
        ":0/", ":PORT/"
    )
    lines.append(
        f"- **wrk**: `{wrk_cmd.replace('-c64', '-cCONNS')}` "
        "(echo adds `-s bench/apps/post1m.lua`: 1 MiB POST body)"
    )
    lines.append(
        "- Every server runs with cwd bench/apps and PYTHONPATH=bench/apps; APP is "
        "`benchapps:<app>` (ASGI servers: `benchapps:asgi_<app>`)."
    )
    lines += ["", "## Environment", ""]
    for k, v in meta["env"].items():
        lines.append(f"- {k}: {v}")
    return "\n".join(lines) + "\n"
