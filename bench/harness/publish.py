"""`run.py --report`: the run's tables as docs/benchmarks.md, and the plot as docs/benchmarks.png.

The plot is drawn by plot.py in bench/.venv (matplotlib lives there only; run.py stays stdlib).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from harness.common import REPO, VENV_BIN, log

DOC_MD = REPO / "docs" / "benchmarks.md"
DOC_PNG = REPO / "docs" / "benchmarks.png"
# What a run must at least be for its figures to stand in the docs without a warning.
FULL_DURATION, FULL_ROUNDS = 10, 3


def document(report: str, args: argparse.Namespace, plotted: bool) -> str:
    """The page: how to reproduce it, a warning for short runs, the plot, then the report."""
    body = report.split("\n", 1)[1] if report.startswith("# ") else report
    started = report.split("\n", 1)[0].removeprefix("# ferricorn bench ").strip()
    lines = [
        "# Benchmarks",
        "",
        f"Measured {started} by `python3 bench/run.py --report` (bench/README.md explains the "
        "method, the apps and every column). Regenerate this page and the plot with the same "
        "command on a quiet machine; it rewrites both files.",
        "",
    ]
    if args.duration < FULL_DURATION or args.rounds < FULL_ROUNDS:
        lines += [
            f"> **Short run** ({args.duration} s × {args.rounds} round(s)): a check that the "
            "harness works, not a measurement. The figures below are noisy; do not quote them.",
            "",
        ]
    if plotted:
        lines += [
            f"![throughput relative to the tuned peer, p99 latency, and 2-worker scaling]"
            f"({DOC_PNG.name})",
            "",
        ]
    return "\n".join(lines) + body


def publish(report: str, raw: dict, args: argparse.Namespace) -> None:
    DOC_MD.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(raw, f)
        raw_path = Path(f.name)
    try:
        r = subprocess.run(
            [str(VENV_BIN / "python"), str(Path(__file__).with_name("plot.py")), str(raw_path),
             str(DOC_PNG)],
            check=False,
            capture_output=True,
            text=True,
        )
    finally:
        raw_path.unlink(missing_ok=True)
    plotted = r.returncode == 0
    if not plotted:
        log(f"bench: warning: the plot failed (is matplotlib in bench/.venv?):\n{r.stderr}")
    DOC_MD.write_text(document(report, args, plotted))
    log(f"bench: wrote {DOC_MD}" + (f" and {DOC_PNG}" if plotted else ""))
