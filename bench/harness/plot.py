"""Draws docs/benchmarks.png from a run's raw JSON: `bench/.venv/bin/python plot.py RAW.json OUT.png`.

Runs in bench/.venv, where matplotlib is installed; `series()` is plain Python so that the
harness's specs can check what is plotted without matplotlib.
"""

from __future__ import annotations

import json
import statistics
import sys

ASGI_BASELINE, WSGI_BASELINE = "granian-asgi", "granian"
ASGI_SERVERS = {"granian-asgi", "uvicorn", "ferricorn-asgi"}


def _median(cell: dict, key: str) -> float | None:
    vals = [s[key] for s in cell["samples"]]
    return statistics.median(vals) if vals else None


def series(raw: dict) -> dict[str, dict]:
    """{panel: {"apps": [...], "servers": {server: [value or None per app]}}} for three kinds of
    panel, each once for WSGI and once for ASGI servers: rps relative to the tuned granian of the
    same interface at the lowest connection count, p99 (ms) at the highest, and -w2 / -w1
    throughput of the scaling rows. A panel lists only the servers that have a value in it."""
    cells = raw["cells"]
    main = [c for c in cells if not c.get("shape")]
    conns = sorted({c["conns"] for c in main if not c["app"].endswith("ws_echo")}) or [0]
    out: dict[str, dict] = {}

    def panel(name: str, rows: list[dict], value) -> None:
        for kind in ("WSGI", "ASGI"):
            mine = [c for c in rows if (c["server"] in ASGI_SERVERS) == (kind == "ASGI")]
            values = [(c, value(c)) for c in mine]
            values = [(c, v) for c, v in values if v is not None]
            apps = list(dict.fromkeys(c["app"] for c, _v in values))
            servers = list(dict.fromkeys(c["server"] for c, _v in values))
            table: dict[str, list[float | None]] = {s: [None] * len(apps) for s in servers}
            for c, v in values:
                table[c["server"]][apps.index(c["app"])] = v
            if apps:
                out[f"{name} — {kind}"] = {"apps": apps, "servers": table}

    ws_conns = min((c["conns"] for c in main if c["app"].endswith("ws_echo")), default=0)
    # websocket rows have their own connection counts: their lowest stands beside the others
    low = [
        c for c in main
        if c["conns"] == (ws_conns if c["app"].endswith("ws_echo") else conns[0])
    ]
    by = {(c["app"], c["server"]): c for c in low}

    def ratio(c: dict) -> float | None:
        base = WSGI_BASELINE if (c["app"], WSGI_BASELINE) in by else ASGI_BASELINE
        ref = by.get((c["app"], base))
        a, b = _median(c, "rps"), ref and _median(ref, "rps")
        return a / b if a and b else None

    panel(f"rps / tuned granian, {conns[0]} connections (higher is better)", low, ratio)
    high = [c for c in main if c["conns"] == conns[-1]]
    panel(f"p99 latency ms, {conns[-1]} connections (lower is better)", high,
          lambda c: _median(c, "p99"))
    w1 = {(c["app"], c["server"]): c for c in cells if c.get("shape") == "w1"}

    def scale(c: dict) -> float | None:
        one = w1.get((c["app"], c["server"]))
        a, b = _median(c, "rps"), one and _median(one, "rps")
        return a / b if a and b else None

    panel("-w 2 / -w 1 rps (server and wrk share 2 cores)",
          [c for c in cells if c.get("shape") == "w2"], scale)
    return out


def draw(data: dict[str, dict], png: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = list(dict.fromkeys(s for p in data.values() for s in p["servers"]))
    colors = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(servers)}
    # One row per kind of panel, WSGI on the left and ASGI on the right.
    kinds = list(dict.fromkeys(k.rsplit(" — ", 1)[0] for k in data))
    rows = []
    for kind in kinds:
        n = max(
            len(p["apps"]) * len(p["servers"]) for k, p in data.items() if k.startswith(kind)
        )
        rows.append(max(1.6, 0.16 * n + 0.8))
    fig, axes = plt.subplots(
        len(kinds), 2, figsize=(14, sum(rows) + 1), squeeze=False,
        gridspec_kw={"height_ratios": rows},
    )
    for r, kind in enumerate(kinds):
        for col, side in enumerate(("WSGI", "ASGI")):
            ax = axes[r, col]
            p = data.get(f"{kind} — {side}")
            if p is None:
                ax.axis("off")
                continue
            n = len(p["servers"])
            width = 0.8 / n
            for i, (server, vals) in enumerate(p["servers"].items()):
                ys = [k + (i - (n - 1) / 2) * width for k in range(len(p["apps"]))]
                xs = [v if v is not None else 0 for v in vals]
                ax.barh(ys, xs, height=width, color=colors[server], label=server)
            ax.set_yticks(range(len(p["apps"])), p["apps"], fontsize=8)
            ax.invert_yaxis()
            ax.set_title(f"{kind} — {side}", fontsize=9)
            if kind.startswith("p99"):
                ax.set_xscale("log")
            else:
                ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
            ax.grid(axis="x", alpha=0.3)
            ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(png, dpi=100)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: plot.py RAW.json OUT.png", file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        data = series(json.load(f))
    if not data:
        print("plot.py: nothing measured to plot", file=sys.stderr)
        return 1
    draw(data, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
