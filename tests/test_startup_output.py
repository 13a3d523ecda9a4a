"""What a person reads at startup: version, each address as a URL, worker class and count, the
app and its detected interface; colour only on a terminal without NO_COLOR; and with
``--log-level debug`` the reason for each choice (setting sources, sockets, worker, interface).
"""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import ferricorn
import pytest
from conftest import APPS

LOG_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(DEBUG|INFO|WARNING|ERROR)\] "
)
ESC = "\x1b["


def startup(server) -> list[str]:
    """The lines up to the app's interface line, which the first worker logs once imported."""
    server.wait_for_log(r"Application \S+ is (WSGI|ASGI)")
    return list(server.lines)


def test_plain_startup_names_version_url_worker_and_app(serve):
    server = serve("wsgi_apps:application", "-w", "2")
    lines = startup(server)
    for line in lines:
        assert LOG_LINE.match(line), line
        assert ESC not in line, "no colour into a pipe"
    log = "\n".join(lines)
    pid = server.proc.pid
    assert f"[INFO] Starting ferricorn {ferricorn.__version__}" in log
    assert f"Listening at: http://127.0.0.1:{server.port} ({pid})" in log
    assert "Using worker: sync (2 workers, 1 thread each)" in log
    assert "Serving application wsgi_apps:application" in log
    assert re.search(r"\[INFO\] Booting worker with pid: \d+", log)
    assert "[INFO] Application wsgi_apps:application is WSGI (" in log
    # one worker says it at info; the others only at debug
    assert log.count("[INFO] Application wsgi_apps:application") == 1, log
    assert "[DEBUG]" not in log


def test_each_address_is_announced_as_a_url_including_unix_sockets(
    serve, tmp_path: Path
):
    sock = tmp_path / "app.sock"
    server = serve("wsgi_apps:application", "-b", f"unix:{sock}", "--threads", "4")
    log = "\n".join(startup(server))
    pid = server.proc.pid
    assert f"Listening at: http://127.0.0.1:{server.port} ({pid})" in log
    assert f"Listening at: unix:{sock} ({pid})" in log
    assert "Using worker: sync (1 worker, 4 threads each)" in log


def test_asgi_worker_and_interface_are_named(serve):
    server = serve("asgi_raw:scope_app", "-k", "asgi")
    log = "\n".join(startup(server))
    assert re.search(
        r"Using worker: asgi \(1 worker, one event loop each; event loop: \w+\)", log
    )
    assert (
        "Application asgi_raw:scope_app is ASGI 3 (it is a coroutine function)" in log
    )


def test_preloaded_app_interface_comes_from_the_master(serve):
    server = serve("asgi_raw:scope_app", "--preload")
    line = server.wait_for_log(r"Application asgi_raw:scope_app is ASGI 3")
    assert f"[{server.proc.pid}] [INFO]" in line, (
        "the master imported it, so it says it"
    )
    assert "served on an asyncio event loop" in line


def test_debug_explains_every_setting_source_and_decision(serve, tmp_path: Path):
    conf = tmp_path / "conf.py"
    conf.write_text("graceful_timeout = 7\nbacklog = 16\n")
    server = serve(
        "wsgi_apps:application",
        "-c",
        str(conf),
        "--log-level",
        "debug",
        "--keep-alive",
        "5",
        env={
            "GUNICORN_CMD_ARGS": "--threads 2 --backlog 32",
            "FERRICORN_CMD_ARGS": "--max-requests 100",
            "WEB_CONCURRENCY": "2",
        },
    )
    log = "\n".join(startup(server))
    assert f"[DEBUG] Config file: {conf}" in log
    assert f"Setting graceful_timeout = 7 (from config file {conf})" in log
    assert "Setting backlog = 32 (from GUNICORN_CMD_ARGS)" in log, "env beats the file"
    assert "Setting threads = 2 (from GUNICORN_CMD_ARGS)" in log
    assert "Setting max_requests = 100 (from FERRICORN_CMD_ARGS)" in log
    assert "Setting keepalive = 5 (from command line)" in log
    assert (
        "Setting workers = 2 (default, from the environment: 1, or $WEB_CONCURRENCY"
        in log
    )
    assert "Setting timeout" not in log, "settings at their default are not listed"
    assert "[DEBUG] Sockets: bound here from --bind 127.0.0.1:0" in log
    assert "[DEBUG] Worker class sync:" in log
    assert "Using worker: sync (2 workers, 2 threads each)" in log
    assert re.search(
        r"\[(INFO|DEBUG)\] Application wsgi_apps:application is WSGI "
        r"\(its call is not a coroutine function; --interface auto\)",
        log,
    )


def test_debug_without_a_conf_file_says_so(serve):
    server = serve("asgi_raw:scope_app", "--interface", "asgi", "--log-level", "debug")
    log = "\n".join(startup(server))
    assert "[DEBUG] Config file: none" in log
    assert "[DEBUG] Worker class asgi because --interface asgi" in log


def run_on_a_terminal(tmp_path: Path, env: dict[str, str], *args: str) -> str:
    """Starts ferricorn with stderr on a pseudo-terminal; returns what it wrote there up to
    the app's interface line."""
    master, slave = pty.openpty()
    full_env = dict(os.environ, PYTHONUNBUFFERED="1")
    full_env.pop("NO_COLOR", None)
    full_env.update(env)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferricorn",
            "-b",
            "127.0.0.1:0",
            *args,
            "wsgi_apps:application",
        ],
        cwd=APPS,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 30
        while (
            b"Application wsgi_apps:application" not in out
            and time.monotonic() < deadline
        ):
            if proc.poll() is not None and not select.select([master], [], [], 0)[0]:
                break
            if select.select([master], [], [], 0.2)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:  # EIO: every writer closed the terminal
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        os.close(master)
    text = out.decode("utf-8", "replace")
    assert "Application wsgi_apps:application" in text, text
    return text


def test_a_terminal_gets_coloured_levels_and_urls(tmp_path: Path):
    text = run_on_a_terminal(tmp_path, {})
    assert "[\x1b[32mINFO\x1b[0m] Starting ferricorn" in text, repr(text)
    assert re.search(
        r"Listening at: \x1b\[4;36mhttp://127\.0\.0\.1:\d+\x1b\[0m \(\d+\)", text
    ), repr(text)


def test_no_color_turns_colour_off_on_a_terminal(tmp_path: Path):
    text = run_on_a_terminal(tmp_path, {"NO_COLOR": "1"})
    assert ESC not in text, repr(text)
    assert re.search(r"\[INFO\] Listening at: http://127\.0\.0\.1:\d+ \(\d+\)", text)


def test_an_error_log_file_never_gets_colour_even_from_a_terminal(tmp_path: Path):
    errlog = tmp_path / "error.log"
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ferricorn",
            "-b",
            "127.0.0.1:0",
            "--error-logfile",
            str(errlog),
            "wsgi_apps:application",
        ],
        cwd=APPS,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
    )
    os.close(slave)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if errlog.exists() and "Application wsgi_apps" in errlog.read_text():
                break
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        os.close(master)
    text = errlog.read_text()
    assert "Listening at: http://127.0.0.1:" in text
    assert ESC not in text


@pytest.mark.parametrize("value", ["", "0"])
def test_no_color_follows_no_color_org_empty_means_unset(tmp_path: Path, value: str):
    text = run_on_a_terminal(tmp_path, {"NO_COLOR": value})
    # https://no-color.org: only a non-empty value disables colour
    assert (ESC in text) == (value == ""), repr(text)
