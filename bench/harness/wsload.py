"""Builds and drives bench/ws-load, the websocket echo load generator, and parses its output.

wrk cannot speak websockets, so the `asgi_ws_echo` rows use ws-load instead: N connections, each
sending one small message and awaiting its echo in a loop (see bench/ws-load/src/main.rs).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess

from harness.common import HOST, WS_LOAD_BIN, WS_LOAD_DIR, die, log


def build_ws_load() -> None:
    if WS_LOAD_BIN.exists():
        return
    if shutil.which("cargo") is None:
        die(
            "ws-load is not built and cargo is missing; install Rust or leave asgi_ws_echo out "
            "of --apps"
        )
    cmd = ["cargo", "build", "--release", "--manifest-path", str(WS_LOAD_DIR / "Cargo.toml")]
    log("bench: $ " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def ws_url(port: int) -> str:
    return f"ws://{HOST}:{port}/"


def ws_load_argv(args: argparse.Namespace, conns: int, duration: int, port: int) -> list[str]:
    return [
        str(WS_LOAD_BIN),
        ws_url(port),
        "-c",
        str(conns),
        "-d",
        str(duration),
        "-s",
        str(args.ws_message_bytes),
    ]


def ws_check(port: int) -> None:
    """One text and one binary message echoed unchanged, before any load."""
    r = subprocess.run(
        [str(WS_LOAD_BIN), ws_url(port), "--check"],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if r.returncode != 0 or "check: ok" not in r.stdout:
        raise RuntimeError(f"websocket echo check failed: {(r.stdout + r.stderr).strip()}")


def parse_ws_load(out: str) -> dict[str, float]:
    """Messages/s (as `rps`), p50/p90/p99 (ms), messages (as `requests`) and errors."""
    fields = dict(re.findall(r"^([a-z/ 0-9]+): (\S+)", out, re.MULTILINE))
    res: dict[str, float] = {}
    for key, name in (
        ("rps", "msgs/sec"),
        ("requests", "messages"),
        ("errors", "errors"),
        ("p50", "latency p50"),
        ("p90", "latency p90"),
        ("p99", "latency p99"),
    ):
        if name not in fields:
            raise ValueError(f"no '{name}:' line in ws-load output:\n{out}")
        res[key] = float(fields[name])
    return res
