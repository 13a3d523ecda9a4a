"""--reload: a change to the app's code replaces the workers; a broken change keeps them."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

APP = """\
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"{version}"]
"""

ASGI_APP = """\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200}})
    await send({{"type": "http.response.body", "body": b"{version}"}})
"""


def answer_becomes(url: str, expected: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(url, timeout=5).text
        except httpx.HTTPError as e:
            last = repr(e)
        if last == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"still answering {last!r}, expected {expected!r}")


@pytest.mark.parametrize("source", [APP, ASGI_APP], ids=["wsgi", "asgi"])
def test_saving_the_app_reloads_the_workers(serve, tmp_path: Path, source: str):
    app = tmp_path / "reloadme.py"
    app.write_text(source.format(version="v1"))
    server = serve("reloadme:app", "--reload", "-w", "2", cwd=tmp_path)
    answer_becomes(server.url, "v1")
    app.write_text(source.format(version="v2"))
    answer_becomes(server.url, "v2")
    server.wait_for_log(r"Worker reloading: .*reloadme\.py modified")


def test_a_change_that_does_not_import_keeps_the_running_workers(serve, tmp_path: Path):
    app = tmp_path / "reloadme.py"
    app.write_text(APP.format(version="good"))
    server = serve("reloadme:app", "--reload", cwd=tmp_path)
    answer_becomes(server.url, "good")
    app.write_text("def app(:\n")
    server.wait_for_log("SyntaxError")
    server.wait_for_log("keeping the running workers")
    for _ in range(5):
        assert httpx.get(server.url, timeout=5).text == "good"
    app.write_text(APP.format(version="fixed"))
    answer_becomes(server.url, "fixed")


def test_extra_files_trigger_a_reload_too(serve, tmp_path: Path):
    (tmp_path / "reloadme.py").write_text(APP.format(version="same"))
    template = tmp_path / "page.html"
    template.write_text("<p>one</p>")
    server = serve("reloadme:app", "--reload", "--reload-extra-file", str(template), cwd=tmp_path)
    answer_becomes(server.url, "same")
    template.write_text("<p>two</p>")
    server.wait_for_log(r"Worker reloading: .*page\.html modified")
    server.wait_for_log("Reloading workers")


def test_poll_engine_sees_changes(serve, tmp_path: Path):
    app = tmp_path / "reloadme.py"
    app.write_text(APP.format(version="p1"))
    server = serve("reloadme:app", "--reload", "--reload-engine", "poll", cwd=tmp_path)
    answer_becomes(server.url, "p1")
    time.sleep(1.1)  # mtime granularity and the first poll's baseline
    app.write_text(APP.format(version="p2"))
    answer_becomes(server.url, "p2")
