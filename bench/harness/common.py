"""Paths, pins, app names and how each app is loaded and requested: what every module shares."""

from __future__ import annotations

import sys
from dataclasses import dataclass
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
# The real-app rows' frameworks and the plot's matplotlib: pinned too, so that a rerun measures the
# same app code. Installed into bench/.venv only.
APP_PINS = {
    "flask": "3.1.3",
    "jinja2": "3.1.6",
    "fastapi": "0.165.0",
    "pydantic": "2.14.4",
    "django": "5.2.19",
    "matplotlib": "3.11.2",
}
PIP_SPECS = [
    "granian==2.8.7",
    "gunicorn==27.0.1",
    "uvicorn[standard]==0.54.0",
    *(f"{name}=={ver}" for name, ver in APP_PINS.items()),
]

WSGI_APPS = ["plaintext", "json", "bytes64k", "echo"]
# The same apps as ASGI callables, plus a websocket echo (driven by ws-load instead of wrk).
ASGI_HTTP_APPS = ["asgi_plaintext", "asgi_json", "asgi_bytes64k", "asgi_echo"]
WS_APPS = ["asgi_ws_echo"]
# Real frameworks doing a typical request's work (bench/apps/flaskapp.py, djangoproj/, fastapiapp.py).
REAL_WSGI_APPS = ["flask_json", "flask_jinja", "django_orm"]
REAL_ASGI_APPS = ["fastapi_post"]
REAL_APPS = REAL_WSGI_APPS + REAL_ASGI_APPS
ALL_WSGI_APPS = WSGI_APPS + REAL_WSGI_APPS
ASGI_APPS = ASGI_HTTP_APPS + WS_APPS + REAL_ASGI_APPS
APPS = WSGI_APPS + ASGI_HTTP_APPS + WS_APPS + REAL_APPS
# `--apps` shorthands for groups of apps.
APP_GROUPS = {
    "wsgi": WSGI_APPS,
    "asgi": ASGI_HTTP_APPS + WS_APPS,
    "real": REAL_APPS,
    "all": APPS,
}
DEFAULT_APPS = WSGI_APPS
ECHO_LUA = APPS_DIR / "post1m.lua"
# Where the django_orm row's SQLite file lives (made by `python -m djangoproj.setupdb` before a run).
DJANGO_DB = BENCH / ".data" / "django.sqlite3"


@dataclass(frozen=True)
class AppSpec:
    """How a row's app is loaded and requested: `target` is what the server imports (cwd and
    PYTHONPATH are bench/apps), `path` what wrk requests, `lua` the wrk script (a POST body)."""

    target: str
    path: str = "/"
    lua: Path | None = None


_REAL_SPECS = {
    "flask_json": AppSpec("flaskapp:app", "/json"),
    "flask_jinja": AppSpec("flaskapp:app", "/page"),
    "django_orm": AppSpec("djangoproj.wsgi:application", "/rows"),
    "fastapi_post": AppSpec("fastapiapp:app", "/items", APPS_DIR / "post_item.lua"),
}


def app_spec(app: str) -> AppSpec:
    """The micro apps are `benchapps:<app>` at `/` (echo POSTs 1 MiB); the real apps are above."""
    if app in _REAL_SPECS:
        return _REAL_SPECS[app]
    return AppSpec(f"benchapps:{app}", "/", ECHO_LUA if base_app(app) == "echo" else None)
DEFAULT_SERVERS = ["hyper", "granian", "gunicorn", "gunicorn-gthread", "ferricorn"]
# Servers that can run more than one worker (the 2-worker scaling rows): all but hyper-hello.
MULTI_WORKER = {"granian", "granian-default", "gunicorn", "gunicorn-gthread", "ferricorn",
                "granian-asgi", "uvicorn", "ferricorn-asgi"}
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
