"""The ASGI lifespan protocol: ``--asgi-lifespan auto|on|off`` (alias ``--lifespan``).

Apps are in tests/apps/asgi_raw.py; they record what happened through ``$ASGI_EVENTS``.
Expected behaviour is the ASGI lifespan spec and Uvicorn's: startup completes in each worker
before that worker serves a request, shutdown runs on a graceful stop, an explicit
``lifespan.startup.failed`` stops the server, and an app that raises on the lifespan scope is
served anyway in ``auto`` but not in ``on``.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time

import httpx
import pytest
from conftest import APPS, Server, run_ferricorn
from helpers_asgi import ASGI, Events, untag

RECORDING = "asgi_raw:lifespan_recording_app"


def test_lifespan_scope_has_type_asgi_version_and_a_state_dict(serve, tmp_path):
    events = Events(tmp_path)
    serve("asgi_raw:scope_app", *ASGI, env=events.env)
    (startup,) = events.wait_for("lifespan.startup")
    scope = untag(startup["scope"])
    assert scope["type"] == "lifespan"
    assert scope["asgi"]["version"] == "3.0"
    assert re.fullmatch(r"2\.\d+", scope["asgi"]["spec_version"]), scope["asgi"]


def test_startup_completes_before_the_first_request_is_served(serve, tmp_path):
    events = Events(tmp_path)
    server = serve(RECORDING, *ASGI, env={**events.env, "ASGI_STARTUP_DELAY": "1.5"})
    # sent the moment the server is listening, while startup is still sleeping
    r = httpx.get(f"{server.url}/first", timeout=30)
    assert r.status_code == 200
    assert r.json()["started"] is True
    assert untag(r.json()["state"]) == {"db": "connected"}
    names = [e["event"] for e in events.all()]
    assert names.index("startup.complete") < names.index("request"), names


def test_every_worker_runs_its_own_startup(serve, tmp_path):
    events = Events(tmp_path)
    serve(RECORDING, *ASGI, "-w", "2", env=events.env)
    completed = events.wait_for("startup.complete", count=2)
    assert len({e["pid"] for e in completed}) == 2


def test_shutdown_runs_on_term_after_requests_and_the_server_exits_cleanly(serve, tmp_path):
    events = Events(tmp_path)
    server = serve(RECORDING, *ASGI, env=events.env)
    assert httpx.get(f"{server.url}/", timeout=10).json()["started"] is True
    assert server.stop() == 0
    names = [e["event"] for e in events.all()]
    assert names == ["startup.begin", "startup.complete", "request", "shutdown"], names


def test_preloaded_app_still_runs_lifespan_in_each_worker(serve, tmp_path):
    events = Events(tmp_path)
    server = serve(RECORDING, *ASGI, "--preload", "-w", "2", env=events.env)
    completed = events.wait_for("startup.complete", count=2)
    assert len({e["pid"] for e in completed}) == 2
    assert httpx.get(f"{server.url}/", timeout=10).json()["started"] is True


def test_hup_replaces_workers_with_a_shutdown_for_each_old_and_startup_for_each_new(
    serve, tmp_path
):
    events = Events(tmp_path)
    server = serve(RECORDING, *ASGI, "-w", "1", env=events.env)
    (first,) = events.wait_for("startup.complete")
    master = int(re.search(r"\((\d+)\)", server.wait_for_log(r"Listening at:")).group(1))
    os.kill(master, signal.SIGHUP)
    starts = events.wait_for("startup.complete", count=2, timeout=20)
    assert starts[1]["pid"] != first["pid"]
    (shutdown,) = events.wait_for("shutdown", timeout=20)
    assert shutdown["pid"] == first["pid"]
    r = httpx.get(f"{server.url}/", timeout=10)
    assert r.json()["started"] is True


def test_lifespan_alias_flag_behaves_like_asgi_lifespan(serve, tmp_path):
    events = Events(tmp_path)
    server = serve(RECORDING, *ASGI, "--lifespan", "off", env=events.env)
    assert httpx.get(f"{server.url}/", timeout=10).json()["started"] is False
    server.stop()
    assert events.named("startup.begin") == []


def test_lifespan_off_never_calls_the_app_with_a_lifespan_scope(serve, tmp_path):
    events = Events(tmp_path)
    server = serve(RECORDING, *ASGI, "--asgi-lifespan", "off", env=events.env)
    r = httpx.get(f"{server.url}/", timeout=10)
    assert r.status_code == 200
    assert r.json()["started"] is False
    assert server.stop() == 0
    assert [e["event"] for e in events.all()] == ["request"]


def test_lifespan_on_with_startup_failed_exits_non_zero_and_logs_the_message(tmp_path):
    events = Events(tmp_path)
    done = run_ferricorn(
        "-b",
        "127.0.0.1:0",
        *ASGI,
        "--asgi-lifespan",
        "on",
        "asgi_raw:lifespan_failing_app",
        env=_env(events),
        timeout=60,
    )
    assert done.returncode != 0, done.stderr
    assert "database unreachable: ECONN" in done.stderr
    assert events.named("startup.failing")


def test_lifespan_auto_with_startup_failed_also_exits_non_zero(tmp_path):
    """An explicit ``lifespan.startup.failed`` is the app saying it cannot run (Uvicorn exits in
    every mode but off)."""
    events = Events(tmp_path)
    done = run_ferricorn(
        "-b",
        "127.0.0.1:0",
        *ASGI,
        "asgi_raw:lifespan_failing_app",
        env=_env(events),
        timeout=60,
    )
    assert done.returncode != 0, done.stderr
    assert "database unreachable: ECONN" in done.stderr


def test_shutdown_failed_message_is_logged(serve, tmp_path):
    events = Events(tmp_path)
    server = serve("asgi_raw:lifespan_shutdown_failing_app", *ASGI, env=events.env)
    assert httpx.get(f"{server.url}/", timeout=10).text == "up"
    server.stop()
    assert events.named("shutdown.failing")
    server.wait_for_log(r"flush lost: EPIPE")


def test_lifespan_off_serves_an_app_whose_startup_would_fail(serve, tmp_path):
    events = Events(tmp_path)
    server = serve("asgi_raw:lifespan_failing_app", *ASGI, "--asgi-lifespan", "off", env=events.env)
    assert httpx.get(f"{server.url}/", timeout=10).text == "should never be served"
    assert events.named("startup.failing") == []


def test_lifespan_auto_serves_an_app_that_raises_on_the_lifespan_scope(serve, tmp_path):
    events = Events(tmp_path)
    server = serve("asgi_raw:lifespan_unsupported_app", *ASGI, env=events.env)
    r = httpx.get(f"{server.url}/", timeout=10)
    assert r.status_code == 200
    assert r.text == "served without lifespan"
    assert events.named("lifespan.refused")


def test_lifespan_on_refuses_to_run_an_app_that_raises_on_the_lifespan_scope(tmp_path):
    events = Events(tmp_path)
    done = run_ferricorn(
        "-b",
        "127.0.0.1:0",
        *ASGI,
        "--asgi-lifespan",
        "on",
        "asgi_raw:lifespan_unsupported_app",
        env=_env(events),
        timeout=60,
    )
    assert done.returncode != 0
    assert "unsupported scope type lifespan" in done.stderr


def test_lifespan_on_with_startup_raising_exits_non_zero_with_the_traceback(tmp_path):
    events = Events(tmp_path)
    done = run_ferricorn(
        "-b",
        "127.0.0.1:0",
        *ASGI,
        "--asgi-lifespan",
        "on",
        "asgi_raw:lifespan_raising_startup_app",
        env=_env(events),
        timeout=60,
    )
    assert done.returncode != 0
    assert "startup crashed: config missing" in done.stderr


def test_invalid_lifespan_mode_is_refused():
    done = run_ferricorn("-b", "127.0.0.1:0", *ASGI, "--asgi-lifespan", "sometimes", RECORDING)
    assert done.returncode != 0
    assert "sometimes" in done.stderr


def test_term_during_a_request_answers_it_before_shutdown_runs(tmp_path):
    events = Events(tmp_path)
    server = Server(["-b", "127.0.0.1:0", *ASGI, "asgi_raw:body_app"], APPS, {**events.env})
    try:
        server.wait_ready()
        result: dict = {}

        def slow() -> None:
            result["r"] = httpx.get(f"{server.url}/sleep?s=1.5", timeout=15)

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.5)
        assert server.stop() == 0
        t.join()
    finally:
        server.stop()
    assert result["r"].status_code == 200
    assert events.wait_for("lifespan.shutdown")
    shutdown_at = events.named("lifespan.shutdown")[0]["t"]
    assert shutdown_at > events.named("lifespan.startup")[0]["t"]


def _env(events: Events) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **events.env}


@pytest.mark.parametrize("mode", ["auto", "on"])
def test_startup_is_not_rerun_per_request(serve, tmp_path, mode):
    events = Events(tmp_path)
    server = serve(RECORDING, *ASGI, "--asgi-lifespan", mode, env=events.env)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for _ in range(5):
            assert http.get("/").json()["started"] is True
    assert len(events.named("startup.begin")) == 1
