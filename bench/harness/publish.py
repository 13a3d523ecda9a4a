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
# Below this many seconds a run only checks that the harness works.
CHECK_DURATION = 5


def command_line(args: argparse.Namespace) -> str:
    """The `run.py --report` invocation that measured this page: the options that differ from
    the report's defaults, so the page can be reproduced as it was made."""
    from harness.common import DEFAULT_ASGI_SERVERS, DEFAULT_SERVERS

    words = ["python3 bench/run.py --report"]
    if args.duration != FULL_DURATION:
        words.append(f"-d {args.duration}")
    if args.warmup != 2:
        words.append(f"--warmup {args.warmup}")
    if args.rounds != FULL_ROUNDS:
        words.append(f"-r {args.rounds}")
    if sorted(args.servers) != sorted(DEFAULT_SERVERS + DEFAULT_ASGI_SERVERS):
        words.append(f"--servers {','.join(args.servers)}")
    return " ".join(words)


def document(report: str, args: argparse.Namespace, plotted: bool) -> str:
    """The page: how to reproduce it, a warning for short runs, the plot, then the report."""
    body = report.split("\n", 1)[1] if report.startswith("# ") else report
    started = report.split("\n", 1)[0].removeprefix("# ferricorn bench ").strip()
    lines = [
        "# Benchmarks",
        "",
        f"Measured {started} by `{command_line(args)}` (bench/README.md explains the "
        "method, the apps and every column). Regenerate this page and the plot with the same "
        "command on a quiet machine; it rewrites both files.",
        "",
    ]
    if args.duration < CHECK_DURATION or args.rounds < FULL_ROUNDS:
        lines += [
            f"> **Short run** ({args.duration} s × {args.rounds} round(s)): a check that the "
            "harness works, not a measurement. The figures below are noisy; do not quote them.",
            "",
        ]
    elif args.duration < FULL_DURATION:
        lines += [
            f"> **Shorter runs** than the full report ({args.duration} s × {args.rounds} rounds "
            f"instead of {FULL_DURATION} s × {FULL_ROUNDS}): medians of real runs, with more "
            "run-to-run noise. Read each ratio next to the spread column: a ratio within the "
            "spreads of both servers is not a difference.",
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
