"""The command line of every server the harness can measure, each at its best for one worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.common import ALL_WSGI_APPS, ASGI_APPS, HOST, HYPER_BIN, VENV_BIN, app_spec, is_ws


@dataclass
class Server:
    """How to start one server on one app. `argv(app, port)` returns the full command line.

    `app` is the name in bench/apps/benchapps.py (`json`, `asgi_json`, `asgi_ws_echo`); a server
    measures only the apps of its interface.
    """

    name: str
    argv: Callable[[str, int], list[str]]
    apps: tuple[str, ...] = tuple(ALL_WSGI_APPS)
    note: str = ""


def _venv(tool: str) -> str:
    return str(VENV_BIN / tool)


def server_table(ferricorn_threads: int, workers: int = 1) -> dict[str, Server]:
    """Every server the harness knows, each at its best for `workers` worker processes
    (PERFORMANCE.md measured the one-worker options; more workers only change the count)."""
    w = str(workers)
    return {
        "hyper": Server(
            "hyper",
            lambda app, port: [str(HYPER_BIN), f"{HOST}:{port}"],
            apps=("plaintext",),
            note="no-Python ceiling: hyper 1, tokio current_thread, http1, keep-alive",
        ),
        "granian": Server(
            "granian",
            lambda app, port: [
                _venv("granian"),
                "--interface",
                "wsgi",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                w,
                "--blocking-threads",
                "1",
                "--runtime-threads",
                "1",
                "--no-ws",
                app_spec(app).target,
            ],
            note="tuned: one blocking (Python) thread, one runtime thread",
        ),
        "granian-default": Server(
            "granian-default",
            lambda app, port: [
                _venv("granian"),
                "--interface",
                "wsgi",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                w,
                app_spec(app).target,
            ],
            note="granian at its WSGI defaults (no thread tuning)",
        ),
        "gunicorn": Server(
            "gunicorn",
            lambda app, port: [
                _venv("gunicorn"),
                "-w",
                w,
                "-b",
                f"{HOST}:{port}",
                app_spec(app).target,
            ],
            note="sync worker (no keep-alive: one connection per request)",
        ),
        "gunicorn-gthread": Server(
            "gunicorn-gthread",
            lambda app, port: [
                _venv("gunicorn"),
                "-w",
                w,
                "-k",
                "gthread",
                "--threads",
                "1",
                "-b",
                f"{HOST}:{port}",
                app_spec(app).target,
            ],
            note="gthread worker, one thread (keeps connections alive)",
        ),
        "ferricorn": Server(
            "ferricorn",
            lambda app, port: [
                _venv("ferricorn"),
                "-w",
                w,
                "-b",
                f"{HOST}:{port}",
                "--threads",
                str(ferricorn_threads),
                app_spec(app).target,
            ],
            note="release build",
        ),
        "uvicorn": Server(
            "uvicorn",
            lambda app, port: [
                _venv("uvicorn"),
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                w,
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                # uvicorn 0.54's default (`auto` picks it when `websockets` is installed), named so
                # that the command line says which implementation the websocket rows measured.
                "--ws",
                "websockets-sansio",
                "--no-access-log",
                "--lifespan",
                "off",
                app_spec(app).target,
            ],
            apps=tuple(ASGI_APPS),
            note="ASGI, uvloop + httptools, websockets-sansio (uvicorn's default ws)",
        ),
        "granian-asgi": Server(
            "granian-asgi",
            lambda app, port: [
                _venv("granian"),
                "--interface",
                "asgi",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                w,
                "--runtime-threads",
                "1",
                "--loop",
                "uvloop",
                "--task-impl",
                "asyncio",
                # Websockets off for the HTTP rows only, like the WSGI baseline.
                *([] if is_ws(app) else ["--no-ws"]),
                app_spec(app).target,
            ],
            apps=tuple(ASGI_APPS),
            note="ASGI baseline, tuned per PERFORMANCE.md (`--no-ws` on HTTP rows only)",
        ),
        "ferricorn-asgi": Server(
            "ferricorn-asgi",
            lambda app, port: [
                _venv("ferricorn"),
                "-k",
                "asgi",
                "-w",
                w,
                "--asgi-lifespan",
                "off",
                "-b",
                f"{HOST}:{port}",
                app_spec(app).target,
            ],
            apps=tuple(ASGI_APPS),
            note="release build, ASGI worker (uvloop when installed), no access log (its default)",
        ),
    }
