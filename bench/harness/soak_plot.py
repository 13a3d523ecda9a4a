"""Draws docs/soak.png from a soak run's raw JSON:
`bench/.venv/bin/python bench/harness/soak_plot.py RAW.json OUT.png`.

Runs where matplotlib is installed (bench/.venv); `plot_data()` is plain Python so that
bench/test_soak.py can check what is drawn without matplotlib.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.soak import KIB_PER_MIB, errors_of, series, total_series  # noqa: E402


def plot_data(raw: dict) -> dict:
    """What each panel shows: the master's and every worker's RSS (MiB, workers with their
    generation), the total RSS, fds per process, wrk runs' throughput and errors, and the
    events."""
    mib = KIB_PER_MIB
    master = raw["master"]
    workers = []
    for key, proc in sorted(raw["procs"].items(), key=lambda kv: kv[1]["born"]):
        if proc["role"] != "worker":
            continue
        pid = int(key)
        workers.append({
            "pid": pid,
            "generation": proc["generation"],
            "rss": [(t, v / mib) for t, v in series(raw, pid, 0)],
            "fds": series(raw, pid, 2),
            "idle_fds": series(raw, pid, 2, "idle"),
        })
    return {
        "master_rss": [(t, v / mib) for t, v in series(raw, master, 0)],
        "master_fds": series(raw, master, 2),
        "workers": workers,
        "total_rss": [(t, v / mib) for t, v in total_series(raw, 0)],
        "throughput": [(s["t0"], s["t1"], s["rps"]) for s in raw["segments"]],
        "errors": [((s["t0"] + s["t1"]) / 2, errors_of(s)) for s in raw["segments"]
                   if errors_of(s)],
        "hups": [e["t"] for e in raw["events"] if e["kind"] == "hup"],
        "kills": [e["t"] for e in raw["events"] if e["kind"] == "kill"],
        "generations": max((w["generation"] for w in workers), default=0) + 1,
    }


def draw(d: dict, png: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_tot, ax_fds, ax_rps) = plt.subplots(
        4, 1, figsize=(12, 11), sharex=True, gridspec_kw={"height_ratios": [3, 1.4, 1.4, 1.6]}
    )
    cmap = plt.get_cmap("viridis")

    def xy(points):
        return [p[0] for p in points], [p[1] for p in points]

    ax_rss.plot(*xy(d["master_rss"]), color="black", linewidth=1.6, label="master")
    labelled = set()
    for w in d["workers"]:
        color = cmap(w["generation"] / max(1, d["generations"] - 1) * 0.9)
        gen = w["generation"]
        label = None
        if gen not in labelled and (gen in (0, d["generations"] - 1)):
            label = f"workers, generation {gen}"
            labelled.add(gen)
        ax_rss.plot(*xy(w["rss"]), color=color, linewidth=0.9, label=label)
        ax_fds.plot(*xy(w["fds"]), color=color, linewidth=0.5, alpha=0.6)
        ax_fds.plot(*xy(w["idle_fds"]), color=color, linestyle="none", marker=".",
                    markersize=3)
    ax_rss.set_ylabel("RSS per process (MiB)")
    ax_rss.set_title(title, fontsize=10)
    ax_tot.plot(*xy(d["total_rss"]), color="tab:purple", linewidth=1.0)
    ax_tot.set_ylabel("total RSS (MiB)")
    ax_fds.plot(*xy(d["master_fds"]), color="black", linewidth=1.4)
    ax_fds.set_ylabel("open fds\n(dots: idle)")
    for t0, t1, rps in d["throughput"]:
        ax_rps.plot([t0, t1], [rps, rps], color="tab:green", linewidth=1.5)
    ax_rps.set_ylabel("requests/s")
    ax_rps.set_ylim(bottom=0)
    if d["errors"]:
        ax_err = ax_rps.twinx()
        ax_err.bar([e[0] for e in d["errors"]], [e[1] for e in d["errors"]], width=2.0,
                   color="tab:red", alpha=0.6)
        ax_err.set_ylabel("errors per wrk run", color="tab:red")
    ax_rps.set_xlabel("seconds since the load started")
    for ax in (ax_rss, ax_tot, ax_fds, ax_rps):
        for i, t in enumerate(d["hups"]):
            ax.axvline(t, color="tab:blue", linestyle="--", linewidth=0.8,
                       label="SIGHUP" if ax is ax_rss and i == 0 else None)
        for i, t in enumerate(d["kills"]):
            ax.axvline(t, color="tab:red", linestyle=":", linewidth=0.9,
                       label="SIGKILL a worker" if ax is ax_rss and i == 0 else None)
        ax.grid(alpha=0.3)
    ax_rss.legend(fontsize=7, loc="lower right", ncol=3)
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: soak_plot.py RAW.json OUT.png", file=sys.stderr)
        return 2
    raw = json.loads(Path(argv[1]).read_text())
    a = raw["args"]
    title = (f"ferricorn -w {a['workers']} ({a['interface'].upper()}), {raw['duration']:.0f} s of "
             f"load, HUP every {a['hup_every']:g} s, SIGKILL every {a['kill_every']:g} s")
    draw(plot_data(raw), argv[2], title)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
