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
WS_LOAD_DIR = BENCH / "ws-load"
WS_LOAD_BIN = WS_LOAD_DIR / "target" / "release" / "ws-load"
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

WSGI_APPS = ["plaintext", "json", "bytes64k", "echo"]
# The same apps as ASGI callables, plus a websocket echo (driven by ws-load instead of wrk).
ASGI_HTTP_APPS = ["asgi_plaintext", "asgi_json", "asgi_bytes64k", "asgi_echo"]
WS_APPS = ["asgi_ws_echo"]
ASGI_APPS = ASGI_HTTP_APPS + WS_APPS
APPS = WSGI_APPS + ASGI_APPS
# `--apps` shorthands for groups of apps.
APP_GROUPS = {"wsgi": WSGI_APPS, "asgi": ASGI_APPS, "all": APPS}
DEFAULT_APPS = WSGI_APPS
ECHO_LUA = APPS_DIR / "post1m.lua"
DEFAULT_SERVERS = ["hyper", "granian", "gunicorn", "gunicorn-gthread", "ferricorn"]
DEFAULT_ASGI_SERVERS = ["granian-asgi", "uvicorn", "ferricorn-asgi"]
BASELINE = "granian"
CEILING = "hyper"
ASGI_BASELINE = "granian-asgi"
ASGI_SECOND = "uvicorn"

# ws-load defaults: PERFORMANCE.md's websocket figures used 32 connections and 64-byte messages.
WS_MESSAGE_BYTES = 64


def base_app(app: str) -> str:
    """`asgi_json` -> `json`: what the response must look like, whatever the interface."""
    return app[len("asgi_") :] if app.startswith("asgi_") else app


def is_ws(app: str) -> bool:
    return app in WS_APPS


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def die(msg: str, code: int = 2) -> None:
    log(f"bench: error: {msg}")
    sys.exit(code)
