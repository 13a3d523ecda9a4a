"""The soak benchmark's page (docs/soak.md) from a run's raw JSON and `soak.analyse()`'s figures.

Pure text: bench/soak.py writes the file, soak_plot.py draws the picture it links.
"""

from __future__ import annotations

from harness.soak import (
    ERROR_KINDS,
    FD_FLOOR,
    KIB_PER_MIB,
    REL_LIMIT,
    RSS_FLOOR_KIB,
    errors_of,
)

FULL_DURATION = 600
MAX_ERROR_ROWS = 20


def _mib(kib: float) -> str:
    return f"{kib / KIB_PER_MIB:.1f} MiB"


def _signed_mib(kib: float) -> str:
    return f"{kib / KIB_PER_MIB:+.2f} MiB"


def _kib_min(kib_per_min: float) -> str:
    return f"{kib_per_min:+.1f} KiB/min"


def _fds(n: float) -> str:
    return f"{n:.0f}"


def _row(name: str, judged: str, v: dict, fds: bool, end: bool = True,
         verdict: bool = True) -> str:
    fmt = _fds if fds else _mib
    growth = f"{v['growth']:+.1f}" if fds else _signed_mib(v["growth"])
    slope = f"{v['slope_per_min']:+.3f}/min" if fds else _kib_min(v["slope_per_min"])
    cells = [
        name,
        judged,
        fmt(v["start"]),
        fmt(v["end"]) if end else "—",
        f"{fmt(v['min'])} – {fmt(v['max'])}" if "min" in v else "—",
        slope,
        growth,
        f"{v['limit']:.1f}" if fds else _mib(v["limit"]),
        ("yes" if v["flat"] else "**no**") if verdict else "—",
    ]
    return "| " + " | ".join(cells) + " |"


def verdict_line(a: dict) -> str:
    if a["flat"]:
        return "**Verdict: memory is flat** (and so are file descriptors), by the rule below."
    names = {
        "master_rss": "the master's RSS",
        "master_fds": "the master's fds",
        "workers_rss": "workers' RSS within a life",
        "workers_fds": "workers' fds within a life",
        "generations_rss": "workers' RSS from one generation to the next",
        "generations_fds": "workers' fds from one generation to the next",
    }
    return "**Verdict: NOT flat**: " + ", ".join(names[k] for k in a["not_flat"]) + " grew " \
        "past the rule's limit (see the table below)."


def render(raw: dict, a: dict, png: str | None, findings: str = "") -> str:
    """The page. `findings` is free text (an investigation's conclusions) put under the verdict."""
    args, meta = raw["args"], raw["meta"]
    dur = a["duration"]
    lines = [
        "# Soak benchmark",
        "",
        f"Measured {meta['started']} by `{meta['command']}` (bench/README.md, \"Soak\", explains "
        "the method). The same command on this repo rewrites this page and the plot.",
        "",
    ]
    if dur < FULL_DURATION:
        lines += [
            f"> **Short run** ({dur:.0f} s): a check that the harness works. A soak is "
            f"{FULL_DURATION // 60} minutes or more.",
            "",
        ]
    lines += [verdict_line(a), ""]
    if findings.strip():
        lines += ["## Findings", "", "(Written by hand after the run, then put on the page with "
                  "`soak.py --render RESULTS_JSON --findings FILE`; everything else is generated.)",
                  "", findings.strip(), ""]
    if png:
        lines += [
            f"![RSS per process over time with HUPs and kills marked, fds, and throughput]({png})",
            "",
        ]
    iface = "ASGI (`-k asgi`)" if args["interface"] == "asgi" else "WSGI"
    hup = f"every {args['hup_every']:g} s" if args["hup_every"] > 0 else "never"
    kill = f"every {args['kill_every']:g} s" if args["kill_every"] > 0 else "never"
    lines += [
        "## What ran",
        "",
        f"ferricorn `-w {args['workers']}`, {iface}, on `bench/apps/soakapp.py`, loaded for "
        f"{dur:.0f} s by wrk (`-t{args['wrk_threads']} -c{args['connections']}`, "
        f"{args['interval']:g} s runs back to back) cycling through GET /plaintext, GET /json, "
        "GET /bytes64k and POST /echo (16 KiB)"
        + (f", with a {args['delay_ms']} ms pause after each response" if args["delay_ms"] else "")
        + f". SIGHUP to the master {hup}; SIGKILL to a random worker {kill}. Every "
        f"{args['sample_every']:g} s each process of the server was sampled from /proc: VmRSS, "
        "RssAnon, open fds, threads.",
        "",
        "## The rule",
        "",
        "A series is **flat** when its least-squares slope, projected over the whole run "
        f"({dur:.0f} s), stays below {REL_LIMIT:.0%} of its starting value or below a floor "
        f"({_mib(RSS_FLOOR_KIB)} for RSS, {FD_FLOOR:.0f} for fds), whichever is larger. "
        "Growing less, or shrinking, is flat.",
        "",
        "- **master**: fitted over the second half of the run; its start is the median of its "
        "first samples.",
        "- **workers within a life**: HUPs and kills replace every worker within a minute, so no "
        "worker lives through the run. Each worker sampled for at least "
        f"{args['min_life']:g} s contributes the second half of its life (the first half is its "
        "boot and warm-up); the slope is fitted over all of them at once, each centred on its own "
        "mean (a worker sitting higher than another is not growth). A per-request leak shows "
        "here. The start is the median of the workers' plateaus (median of each window).",
        "- **workers across generations**: each worker's plateau against the time it was born: "
        "whether a fresh worker settles higher than its predecessors (a leak in the master that "
        "forks inherit, or state that survives a HUP).",
        "- **workers' fds** follow their connections under load, so they are judged (both "
        f"ways above) on idle samples: {args['settle']:g} s after each wrk run ends, when no "
        "client is connected. A connection the server never closes shows there.",
        "- **total** (every process summed) is shown, not judged: it jumps with every spawn and "
        "kill.",
        "",
        "## Memory and file descriptors",
        "",
        "| series | judged over | start | end | min – max | slope | growth over the run | limit "
        "| flat |",
        "|---|---|---|---|---|---|---|---|---|",
        _row("master RSS", f"{a['master_rss']['n']} samples, 2nd half", a["master_rss"], False),
        _row("master fds", f"{a['master_fds']['n']} samples, 2nd half", a["master_fds"], True),
    ]
    for name, fds in (("rss", False), ("fds", True)):
        label = "fds (idle)" if fds else "RSS"
        w, g = a[f"workers_{name}"], a[f"generations_{name}"]
        lines.append(_row(f"workers {label}, within a life",
                          f"{w['judged']} workers, 2nd half of each life", w, fds, end=False))
        lines.append(_row(f"workers {label}, across generations",
                          f"{g['judged']} workers' plateaus", g, fds, end=False))
    lines.append(_row("total RSS (not judged)", f"{a['total_rss']['n']} samples, 2nd half",
                      a["total_rss"], False, verdict=False))
    lines += [
        "",
        "Workers per generation (the HUPs sent before they appeared; medians):",
        "",
        "| generation | workers | born (s) | RSS at first sample | plateau | last sample "
        "| life (s) | ended |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for g in a["generations"]:
        born = (f"{g['born_first']:.0f}" if g["born_first"] == g["born_last"]
                else f"{g['born_first']:.0f}–{g['born_last']:.0f}")
        plateau = _mib(g["plateau"]) if g["plateau"] is not None else "—"
        ended = ", ".join(f"{n} {c}" for c, n in sorted(g["causes"].items()))
        lines.append(f"| {g['generation']} | {g['workers']} | {born} | {_mib(g['first'])} | "
                     f"{plateau} | {_mib(g['last'])} | {g['life']:.0f} | {ended} |")
    wr = a["workers_rss"]
    causes = a["worker_causes"]
    steps = a["master_steps"]

    def mean_step(kind: str) -> str:
        s = steps[kind]
        return f"{sum(s) / len(s):+.0f} KiB over {len(s)}" if s else "none measured"

    lines += [
        "",
        f"{a['workers_seen']} workers were seen: {causes['killed']} killed by the soak, "
        f"{causes['retired']} retired after a HUP, {causes['exited']} exited otherwise, "
        f"{causes['alive']} alive at the end. "
        + (f"Of the {wr['judged']} judged, a worker's RSS at its first sample was "
           f"{_mib(wr['first_sample_median'])} (median) and its plateau {_mib(wr['start'])}; "
           f"their own slopes had a median of {_kib_min(wr['each_slope_per_min_median'])} and "
           f"a largest of {_kib_min(wr['each_slope_per_min_max'])}. "
           if wr["judged"] else f"None lived {args['min_life']:g} s, so none was judged. ")
        + "Threads: master "
        f"{a['threads']['master'][0]}–{a['threads']['master'][1]}, workers "
        f"{a['threads']['worker'][0]}–{a['threads']['worker'][1]}. The master's RSS across "
        f"events (median 5 s after − 5 s before): per HUP {mean_step('hup')}, per kill "
        f"{mean_step('kill')}.",
        "",
        "## Load and errors",
        "",
        f"{a['requests']:,} requests, {a['mean_rps']:,.0f} requests/s on average over "
        f"{len(raw['segments'])} wrk runs. Errors are wrk's non-2xx/3xx responses and its "
        "socket errors, counted per run and put down to a kill when a SIGKILL fell within the "
        f"run or {args['kill_grace']:g} s before it, else to a HUP likewise within "
        f"{args['hup_grace']:g} s.",
        "",
        "| errors put down to | wrk runs | requests | non-2xx | connect | read | write | timeout |",
        "|---|---|---|---|---|---|---|---|",
    ]
    labels = {"kill": "a SIGKILL", "hup": "a HUP", "none": "neither"}
    for cause in ("kill", "hup", "none"):
        e = a["errors"][cause]
        lines.append(
            f"| {labels[cause]} | {e['segments']} | {e['requests']:,} | "
            + " | ".join(str(e[k]) for k in ERROR_KINDS)
            + " |"
        )
    if a["error_segments"]:
        lines += ["", "wrk runs with errors:", "",
                  "| from (s) | to (s) | put down to | " + " | ".join(ERROR_KINDS) + " |",
                  "|---|---|---|" + "---|" * len(ERROR_KINDS)]
        for s in a["error_segments"][:MAX_ERROR_ROWS]:
            lines.append(f"| {s['t0']:.1f} | {s['t1']:.1f} | {labels[s['cause']]} | "
                         + " | ".join(str(s.get(k, 0)) for k in ERROR_KINDS) + " |")
        more = len(a["error_segments"]) - MAX_ERROR_ROWS
        if more > 0:
            lines.append(f"\n({more} more in the results JSON)")
    hups = [e for e in raw["events"] if e["kind"] == "hup"]
    kills = [e for e in raw["events"] if e["kind"] == "kill"]
    lines += [
        "",
        "## Events",
        "",
        f"{len(hups)} HUPs at " + (", ".join(f"{e['t']:.0f}" for e in hups) or "—") + " s "
        f"(seconds since the load started); {len(kills)} kills:",
        "",
    ]
    if kills:
        lines += [
            "| at (s) | worker | its fds at the last sample | errors in the wrk run it fell in "
            "(or the next) |",
            "|---|---|---|---|",
        ]
        for e in kills:
            hit = [s for s in raw["segments"] if s["t1"] > e["t"]]
            errs = str(errors_of(hit[0])) if hit else "— (after the last run)"
            fds = "—" if e.get("fds") is None else str(e["fds"])
            lines.append(f"| {e['t']:.1f} | {e['pid']} | {fds} | {errs} |")
        lines += [
            "",
            "A worker's fds at rest are in the idle samples (the fds row above); the rest are "
            "its connections, which a SIGKILL cuts.",
        ]
    lines += ["", "## Environment", ""]
    lines += [f"- **{k}**: {v}" for k, v in meta["env"].items()]
    lines += [f"- **server log**: {log_line(meta['log'])}"]
    if meta.get("failures"):
        lines += ["- **failures during the run**: " + "; ".join(meta["failures"])]
    lines += [
        f"- **server command**: `{' '.join(meta['server_argv'])}`",
        f"- **wrk command** (each run): `{' '.join(meta['wrk_argv'])}`",
        f"- **results**: `bench/results/{meta['results']}` (every sample, event and wrk run)",
        "",
    ]
    return "\n".join(lines)


def log_line(summary: dict) -> str:
    """The server log's numbers in one sentence: lines per level, then each warning or error
    message (numbers as N) with its count."""
    levels = ", ".join(f"{n} {lvl}" for lvl, n in sorted(summary["levels"].items())) or "empty"
    out = f"{levels}; {summary['tracebacks']} tracebacks"
    if summary["messages"]:
        out += "; " + "; ".join(f"`{m}` × {n}" for m, n in summary["messages"].items())
    return out
