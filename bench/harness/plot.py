"""Draws docs/benchmarks.png from a run's raw JSON: `bench/.venv/bin/python plot.py RAW.json OUT.png`.

Runs in bench/.venv, where matplotlib is installed; `series()` is plain Python so that the
harness's specs can check what is plotted without matplotlib.
"""

from __future__ import annotations

import json
import statistics
import sys

ASGI_BASELINE, WSGI_BASELINE = "granian-asgi", "granian"


def _median(cell: dict, key: str) -> float | None:
    vals = [s[key] for s in cell["samples"]]
    return statistics.median(vals) if vals else None


def series(raw: dict) -> dict[str, dict]:
    """{panel: {"apps": [...], "servers": {server: [value or None per app]}}} for three panels:
    rps relative to the tuned granian of the same interface at the lowest connection count,
    p99 (ms) at the highest, and -w2 / -w1 throughput of the scaling rows."""
    cells = raw["cells"]
    main = [c for c in cells if not c.get("shape")]
    conns = sorted({c["conns"] for c in main if not c["app"].endswith("ws_echo")}) or [0]
    out: dict[str, dict] = {}

    def panel(name: str, rows: list[dict], value) -> None:
        apps = list(dict.fromkeys(c["app"] for c in rows))
        servers = list(dict.fromkeys(c["server"] for c in rows))
        table = {s: [None] * len(apps) for s in servers}
        for c in rows:
            table[c["server"]][apps.index(c["app"])] = value(c)
        if apps:
            out[name] = {"apps": apps, "servers": table}

    low = [c for c in main if c["conns"] == conns[0]]
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
    heights = [max(2.0, 0.5 * len(p["apps"]) * max(1, len(p["servers"])) / 2.2) for p in data.values()]
    fig, axes = plt.subplots(len(data), 1, figsize=(10, sum(heights) + 1),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, (title, p) in zip(axes[:, 0], data.items()):
        n = len(p["servers"])
        width = 0.8 / n
        for i, (server, vals) in enumerate(p["servers"].items()):
            ys = [k + (i - (n - 1) / 2) * width for k in range(len(p["apps"]))]
            xs = [v if v is not None else 0 for v in vals]
            ax.barh(ys, xs, height=width, color=colors[server], label=server)
        ax.set_yticks(range(len(p["apps"])), p["apps"])
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        if title.startswith("p99"):
            ax.set_xscale("log")
        else:
            ax.axvline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.grid(axis="x", alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(png, dpi=110)


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
