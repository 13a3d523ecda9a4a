"""Paths, pins and the names every other module shares. Holds no logic beyond logging."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
REPO = BENCH.parent
APPS_DIR = BENCH / "apps"
VENV = BENCH / ".venv"
VENV_BIN = VENV / "bin"
RESULTS = BENCH / "results"
HYPER_DIR = BENCH / "hyper-hello"
HYPER_BIN = HYPER_DIR / "target" / "release" / "hyper-hello"
FERRICORN_MARKER = VENV / "ferricorn-source.json"
CARGO_TARGET = BENCH / ".target"  # release builds of ferricorn for bench only
HOST = "127.0.0.1"

# Peers, pinned. Bump them deliberately and say so in the results: a new version is a new baseline.
PINS = {
    "granian": "2.8.7",
    "gunicorn": "27.0.1",
    "uvicorn": "0.54.0",
}
PIP_SPECS = ["granian==2.8.7", "gunicorn==27.0.1", "uvicorn[standard]==0.54.0"]

APPS = ["plaintext", "json", "bytes64k", "echo"]
ECHO_LUA = APPS_DIR / "post1m.lua"
DEFAULT_SERVERS = ["hyper", "granian", "gunicorn", "gunicorn-gthread", "ferricorn"]
BASELINE = "granian"
CEILING = "hyper"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def die(msg: str, code: int = 2) -> None:
    log(f"bench: error: {msg}")
    sys.exit(code)
