"""Medians over rounds and the markdown table, notes, command lines and environment block."""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field

from harness.common import (
    ASGI_BASELINE,
    ASGI_HTTP_APPS,
    ASGI_SECOND,
    BASELINE,
    ASGI_APPS,
    BENCH,
    CEILING,
    HOST,
    REAL_ASGI_APPS,
    REAL_WSGI_APPS,
    VENV_BIN,
    WS_APPS,
    base_app,
    is_ws,
)
from harness.measure import Sample
from harness.servers import Server
from harness.wrk import wrk_argv
from harness.wsload import ws_load_argv


@dataclass
class Cell:
    app: str
    conns: int
    server: str
    samples: list[Sample] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # "" for a main row (one worker, pinned); "w1" / "w2" for a scaling row (that many workers,
    # server and wrk sharing every core).
    shape: str = ""

    def med(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)

    def spread(self) -> float:
        rps = [s.rps for s in self.samples]
        return (max(rps) - min(rps)) / statistics.median(rps) if len(rps) > 1 else 0.0


def ratio(num: float, ref: Cell | None) -> str:
    """num / ref's median rps, or "" when there is nothing to divide by (no samples, or no
    request finished in the run: a very short run at many connections)."""
    if ref is None or not ref.samples:
        return ""
    den = ref.med("rps")
    return f"{num / den:.2f}" if den > 0 else ""


def fmt_rps(x: float) -> str:
    return f"{x / 1000:.1f}k" if x >= 10000 else f"{x:,.0f}"


def fmt_ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


# Each table: its title, which apps it holds, the throughput unit, and the ratio columns as
# (header, reference server, apps the ratio applies to; None = all of the table's apps).
_TABLES = [
    (
        "WSGI",
        None,  # every app not claimed by the tables below
        "rps",
        "wrk CPU",
        [("vs granian", BASELINE, None), ("vs hyper", CEILING, ("plaintext",))],
    ),
    (
        "ASGI HTTP",
        tuple(ASGI_HTTP_APPS),
        "rps",
        "wrk CPU",
        [("vs granian-asgi", ASGI_BASELINE, None), ("vs uvicorn", ASGI_SECOND, None)],
    ),
    (
        "ASGI websocket echo (ws-load)",
        tuple(WS_APPS),
        "msgs/s",
        "ws-load CPU",
        [("vs granian-asgi", ASGI_BASELINE, None), ("vs uvicorn", ASGI_SECOND, None)],
    ),
    (
        "Real apps, WSGI (Flask, Django)",
        tuple(REAL_WSGI_APPS),
        "rps",
        "wrk CPU",
        [("vs granian", BASELINE, None), ("vs gunicorn-gthread", "gunicorn-gthread", None)],
    ),
    (
        "Real apps, ASGI (FastAPI)",
        tuple(REAL_ASGI_APPS),
        "rps",
        "wrk CPU",
        [("vs granian-asgi", ASGI_BASELINE, None), ("vs uvicorn", ASGI_SECOND, None)],
    ),
]

# The headline: ferricorn's median over each peer's, per app and connection count. Columns are
# (header, peer for WSGI apps, peer for ASGI apps); None where the peer does not run that kind.
_SUMMARY_PEERS = [
    ("/ granian (tuned)", BASELINE, ASGI_BASELINE),
    ("/ uvicorn", None, ASGI_SECOND),
    ("/ gunicorn gthread", "gunicorn-gthread", None),
    ("/ hyper (no Python)", CEILING, None),
]


def _table_of(app: str) -> int:
    for i, (_t, apps, *_rest) in enumerate(_TABLES):
        if apps is not None and app in apps:
            return i
    return 0


def _rows(
    cells: list[Cell], by_key: dict, table: tuple, notes: list[str]
) -> list[str]:
    _title, _apps, unit, load_label, ratios = table
    load = load_label.split()[0]
    lines = [
        f"| app | conns | server | {unit} | spread | p50 ms | p99 ms | errors | RSS MB | PSS MB "
        f"| srv CPU | {load_label} | other | " + " | ".join(r[0] for r in ratios) + " |",
        "|---|---:|---|" + "---:|" * (10 + len(ratios)),
    ]
    for c in cells:
        if not c.samples:
            lines.append(
                f"| {c.app} | {c.conns} | {c.server} | failed |" + " |" * (9 + len(ratios))
            )
            continue
        rps = c.med("rps")
        vs = []
        for _label, ref_name, only in ratios:
            ref = by_key.get((c.app, c.conns, ref_name, ""))
            vs.append(ratio(rps, ref) if only is None or c.app in only else "")
        wrk_cpu = c.med("wrk_cpu")
        srv_cpu = c.med("server_cpu")
        other = c.med("other_cpu")
        rss = f"{c.med('rss_mb'):.1f} ({c.med('max_proc_rss_mb'):.1f})"
        errors = sum(s.errors for s in c.samples)
        lines.append(
            f"| {c.app} | {c.conns} | {c.server} | {fmt_rps(rps)} | {c.spread() * 100:.0f}% "
            f"| {fmt_ms(c.med('p50'))} | {fmt_ms(c.med('p99'))} | {errors:.0f} "
            f"| {rss} | {c.med('pss_mb'):.1f} | {srv_cpu * 100:.0f}% | {wrk_cpu * 100:.0f}% "
            f"| {other * 100:.0f}% | " + " | ".join(vs) + " |"
        )
        if rps == 0:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: no request finished within the run "
                "(too short for this many connections?); no ratio is computed from it."
            )
        if wrk_cpu >= 0.9:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: {load} used {wrk_cpu * 100:.0f}% of its "
                "core, so this figure is bounded by the client, not the server."
            )
        if other >= 0.15:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: other processes used {other * 100:.0f}% of a "
                "core during the run; this row competed with them."
            )
        if srv_cpu < 0.85 and wrk_cpu < 0.85 and base_app(c.app) != "echo":
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: neither the server ({srv_cpu * 100:.0f}%) nor "
                f"{load} ({wrk_cpu * 100:.0f}%) filled its core: something outside the run (the "
                "host, other jobs) held it back; treat this row as noisy."
            )
        steal = c.med("steal")
        if steal >= 0.02:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: the hypervisor stole {steal * 100:.0f}% "
                "of the measured cores' time during the run."
            )
        if errors:
            what = "ws-load errors (failed connections, sends, receives or wrong echoes)" if (
                is_ws(c.app)
            ) else "wrk errors (socket errors + non-2xx)"
            notes.append(f"- {c.app}/{c.conns}/{c.server}: {errors:.0f} {what} over all rounds.")
        if c.failures:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server}: {len(c.failures)} failed run(s): "
                + c.failures[0].splitlines()[0]
            )
    return lines


def _summary(cells: list[Cell], by_key: dict) -> list[str]:
    """ferricorn against every peer at once: rps ratios and both servers' p99."""
    lines = [
        "| app | conns | ferricorn rps | p99 ms | "
        + " | ".join(h for h, _w, _a in _SUMMARY_PEERS)
        + " | best peer's p99 ms |",
        "|---|---:|---:|---:|" + "---:|" * (len(_SUMMARY_PEERS) + 1),
    ]
    seen: set[tuple[str, int]] = set()
    for c in cells:
        if (c.app, c.conns) in seen:
            continue
        seen.add((c.app, c.conns))
        asgi = c.app in ASGI_APPS
        ours = by_key.get((c.app, c.conns, "ferricorn-asgi" if asgi else "ferricorn", ""))
        if ours is None or not ours.samples:
            continue
        rps = ours.med("rps")
        ratios = []
        best = None
        for _h, wsgi_peer, asgi_peer in _SUMMARY_PEERS:
            peer = by_key.get((c.app, c.conns, asgi_peer if asgi else wsgi_peer, ""))
            if peer is None or not peer.samples:
                ratios.append("—")
                continue
            ratios.append(ratio(rps, peer) or "—")
            if peer.server != CEILING and (best is None or peer.med("rps") > best.med("rps")):
                best = peer
        best_p99 = f"{fmt_ms(best.med('p99'))} ({best.server})" if best else "—"
        lines.append(
            f"| {c.app} | {c.conns} | {fmt_rps(rps)} | {fmt_ms(ours.med('p99'))} | "
            + " | ".join(ratios)
            + f" | {best_p99} |"
        )
    return lines if len(lines) > 2 else []


def _scaling(cells: list[Cell], by_key: dict, notes: list[str]) -> list[str]:
    """-w 1 against -w 2 for each server, both measured with server and wrk sharing the cores."""
    lines = [
        "| app | conns | server | rps -w1 | rps -w2 | -w2 / -w1 | p99 ms -w1 | p99 ms -w2 "
        "| RSS MB -w2 | srv CPU -w2 | wrk CPU -w2 | -w2 vs granian |",
        "|---|---:|---|" + "---:|" * 9,
    ]
    for c in cells:
        if c.shape != "w2":
            continue
        one = by_key.get((c.app, c.conns, c.server, "w1"))
        if not c.samples or one is None or not one.samples:
            lines.append(f"| {c.app} | {c.conns} | {c.server} | failed |" + " |" * 8)
            continue
        rps1, rps2 = one.med("rps"), c.med("rps")
        ref_name = ASGI_BASELINE if c.app in ASGI_APPS else BASELINE
        ref = by_key.get((c.app, c.conns, ref_name, "w2"))
        vs = ratio(rps2, ref)
        wrk_cpu = c.med("wrk_cpu")
        lines.append(
            f"| {c.app} | {c.conns} | {c.server} | {fmt_rps(rps1)} | {fmt_rps(rps2)} "
            f"| {ratio(rps2, one)} | {fmt_ms(one.med('p99'))} | {fmt_ms(c.med('p99'))} "
            f"| {c.med('rss_mb'):.1f} ({c.med('max_proc_rss_mb'):.1f}) "
            f"| {c.med('server_cpu') * 100:.0f}% | {wrk_cpu * 100:.0f}% | {vs} |"
        )
        if wrk_cpu >= 0.9:
            notes.append(
                f"- {c.app}/{c.conns}/{c.server} -w2: wrk used {wrk_cpu * 100:.0f}% of a core; "
                "the load generator, not the server, may set this figure."
            )
        errors = sum(s.errors for s in c.samples + one.samples)
        if errors:
            notes.append(f"- {c.app}/{c.conns}/{c.server} scaling: {errors:.0f} wrk errors.")
    return lines


SCALING_CAVEAT = (
    "Both columns were measured with the server (all its workers) and wrk free to run on every "
    "core of this 2-core machine, so the load generator takes a share of the same cores the "
    "workers use. A -w2 / -w1 ratio above 1 says a second worker turns the spare capacity into "
    "throughput here; it is not a scaling factor on dedicated cores (that needs a machine with "
    "cores to spare for wrk), and a ratio near 1 can mean wrk, not the server, ran out of core."
)


def render(
    cells: list[Cell],
    meta: dict,
    servers: dict[str, Server],
    args: argparse.Namespace,
    servers_w2: dict[str, Server] | None = None,
) -> str:
    by_key = {(c.app, c.conns, c.server, c.shape): c for c in cells}
    main = [c for c in cells if not c.shape]
    lines = [
        f"# ferricorn bench {meta['started']}",
        "",
        (
            f"wrk -t{args.wrk_threads} (ws-load on the websocket rows), {args.duration} s per run "
            f"after a {args.warmup} s warm-up, "
            f"median of {args.rounds} round(s), servers in rotating order each round. "
            "rps spread = (max-min)/median over rounds. RSS: all processes of the server "
            "(master + worker) after the load, with the largest single process (the worker) in "
            "brackets; PSS: the same total with pages shared after fork counted once. "
            "srv/wrk CPU: share of one core during the run; other: CPU used meanwhile by anything "
            "else on the machine (share of one core). p50/p99: wrk --latency (ws-load: the "
            "round trip of one message)."
        ),
    ]
    # The headline table belongs to the published page (--report); a console run keeps to the
    # detailed tables.
    summary = _summary(main, by_key) if getattr(args, "report", False) else []
    if summary:
        lines += [
            "",
            "## ferricorn against each peer",
            "",
            "ferricorn's median rps divided by each peer's (one worker each, same app, same "
            "connections; the ASGI rows compare ferricorn -k asgi with the ASGI peers).",
            "",
        ] + summary
    notes: list[str] = []
    groups = [[c for c in main if _table_of(c.app) == i] for i in range(len(_TABLES))]
    shown = [i for i, g in enumerate(groups) if g]
    for i in shown:
        if len(shown) > 1 or summary:
            lines += ["", f"## {_TABLES[i][0]}"]
        lines.append("")
        lines += _rows(groups[i], by_key, _TABLES[i], notes)
    if any(c.shape == "w2" for c in cells):
        lines += ["", "## 2-worker scaling", "", SCALING_CAVEAT, ""]
        lines += _scaling(cells, by_key, notes)
    if notes:
        lines += ["", "Notes:"] + notes
    lines += ["", "## Command lines", ""]
    for name in args.servers:
        s = servers[name]
        lines.append(f"- **{name}** ({s.note}): `{_cmd(s)}`")
    if servers_w2 is not None and any(c.shape for c in cells):
        shown_w2 = sorted({c.server for c in cells if c.shape == "w2"}, key=args.servers.index)
        for name in shown_w2:
            lines.append(f"- **{name}**, scaling rows: `{_cmd(servers_w2[name])}` (and -w1 as above)")
    wrk_cmd = " ".join(wrk_argv(args, "plaintext", 64, args.duration, 0)).replace(
        ":0/", ":PORT/"
    )
    lines.append(
        f"- **wrk**: `{wrk_cmd.replace('-c64', '-cCONNS')}` "
        "(echo adds `-s bench/apps/post1m.lua`: 1 MiB POST body; fastapi_post adds "
        "`-s bench/apps/post_item.lua`: a small JSON POST; the real apps request their route: "
        "flask_json `/json`, flask_jinja `/page`, django_orm `/rows`, fastapi_post `/items`)"
    )
    if any(is_ws(c.app) for c in cells):
        ws_cmd = " ".join(ws_load_argv(args, 32, args.duration, 0)).replace(":0/", ":PORT/")
        ws_cmd = ws_cmd.replace(str(BENCH) + "/", "bench/").replace("-c 32", "-c CONNS")
        lines.append(
            f"- **ws-load** (websocket rows): `{ws_cmd}`; each connection sends one text message "
            "and awaits its echo, back to back; checked first with `--check` (text + binary echo)"
        )
    lines.append(
        "- Every server runs with cwd bench/apps and PYTHONPATH=bench/apps; APP is "
        "`benchapps:<app>` (the ASGI servers run the `asgi_*` apps), `flaskapp:app`, "
        "`djangoproj.wsgi:application` or `fastapiapp:app`."
    )
    lines += ["", "## Environment", ""]
    for k, v in meta["env"].items():
        lines.append(f"- {k}: {v}")
    return "\n".join(lines) + "\n"


def _cmd(s: Server) -> str:
    cmd = (
        " ".join(s.argv("APP", 0))
        .replace(f"{HOST}:0", f"{HOST}:PORT")
        .replace("--port 0", "--port PORT")
    )
    return cmd.replace(str(VENV_BIN) + "/", "").replace(str(BENCH) + "/", "bench/")
