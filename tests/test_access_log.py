"""The access log: gunicorn's ``--access-logfile`` / ``--access-logformat`` lines, exactly.

Lines are compared whole, with the time (``t``) and duration (``D``/``L``) atoms masked.
"""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import APPS

CUSTOM = (
    '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" '
    "m=%(m)s U=%(U)s q=%(q)s H=%(H)s B=%(B)s D=%(D)s L=%(L)s p=%(p)s "
    "x=%({X-Custom}i)s trace=%({x-trace}o)s env=%({REMOTE_ADDR}e)s none=%(zz)s"
)
TIME = re.compile(r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]")


def mask(line: str) -> str:
    line = TIME.sub("[TIME]", line)
    line = re.sub(r"D=\d+", "D=?", line)
    return re.sub(r"L=\d+\.\d{6}", "L=?", line)


def wait_lines(read, n: int, timeout: float = 10.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = read()
        if len(lines) >= n:
            return lines
        time.sleep(0.05)
    raise AssertionError(f"expected {n} access log lines, got {read()!r}")


def send_known_requests(url: str) -> None:
    auth = "Basic " + base64.b64encode(b"alice:secret").decode()
    with httpx.Client(base_url=url) as c:
        r = c.get(
            "/hello?a=1&b=%20x",
            headers={
                "User-Agent": 'agent "quoted"',
                "Referer": "http://ref.example/",
                "X-Custom": "c1",
                "Authorization": auth,
            },
        )
        assert r.status_code == 200
        r = c.post("/upload", content=b"0123456789", headers={"User-Agent": "poster"})
        assert r.status_code == 201
        r = c.get("/missing", headers={"User-Agent": "ua"})
        assert r.status_code == 404


def expected(pid: str) -> list[str]:
    return [
        '127.0.0.1 - alice [TIME] "GET /hello?a=1&b=%20x HTTP/1.1" 200 5 "http://ref.example/" '
        '"agent \\"quoted\\"" m=GET U=/hello q=a=1&b=%20x H=HTTP/1.1 B=5 D=? L=? '
        f"p=<{pid}> x=c1 trace=t-1 env=127.0.0.1 none=-",
        '127.0.0.1 - - [TIME] "POST /upload HTTP/1.1" 201 10 "-" "poster" m=POST U=/upload q= '
        f"H=HTTP/1.1 B=10 D=? L=? p=<{pid}> x=- trace=- env=127.0.0.1 none=-",
        '127.0.0.1 - - [TIME] "GET /missing HTTP/1.1" 404 4 "-" "ua" m=GET U=/missing q= '
        f"H=HTTP/1.1 B=4 D=? L=? p=<{pid}> x=- trace=- env=127.0.0.1 none=-",
    ]


def pid_of(line: str) -> str:
    m = re.search(r"p=<(\d+)>", line)
    assert m, line
    return m.group(1)


def test_access_log_to_stdout_has_exact_lines(serve) -> None:
    server = serve(
        "access_apps:app", "--access-logfile", "-", "--access-logformat", CUSTOM
    )
    send_known_requests(server.url)
    lines = wait_lines(lambda: list(server.stdout_lines), 3)
    assert [mask(line) for line in lines] == expected(pid_of(lines[0]))


def test_access_log_to_a_file_appends_exact_lines(serve, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("earlier line\n")
    server = serve(
        "access_apps:app", "--access-logfile", str(log), "--access-logformat", CUSTOM
    )
    send_known_requests(server.url)
    lines = wait_lines(lambda: log.read_text().splitlines(), 4)
    assert lines[0] == "earlier line"
    assert [mask(line) for line in lines[1:]] == expected(pid_of(lines[1]))
    assert server.stdout_lines == []


def test_default_format_is_the_combined_log(serve) -> None:
    server = serve("access_apps:app", "--access-logfile", "-")
    httpx.get(server.url + "/x?y=1", headers={"User-Agent": "ua/1"})
    httpx.get(server.url + "/boom", headers={"User-Agent": "ua/2"})
    lines = wait_lines(lambda: list(server.stdout_lines), 2)
    # b is the body bytes really sent: our error page, where gunicorn logs 0 for its own 500s
    page = len(httpx.get(server.url + "/boom").content)
    assert [mask(line) for line in lines[:2]] == [
        '127.0.0.1 - - [TIME] "GET /x?y=1 HTTP/1.1" 200 5 "-" "ua/1"',
        f'127.0.0.1 - - [TIME] "GET /boom HTTP/1.1" 500 {page} "-" "ua/2"',
    ]


def test_no_access_log_by_default(serve) -> None:
    server = serve("access_apps:app")
    assert httpx.get(server.url + "/").status_code == 200
    time.sleep(0.2)
    assert server.stdout_lines == []


def test_bad_access_log_format_fails_at_startup_naming_the_setting() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ferricorn", "--access-logformat", "%(h)d", "access_apps:app"],
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "--access-logformat / access_log_format" in proc.stderr


def test_error_logfile_receives_the_error_log(tmp_path: Path) -> None:
    errlog = tmp_path / "error.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ferricorn", "-b", "127.0.0.1:0", "--error-logfile", str(errlog),
         "access_apps:app"],
        cwd=APPS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if errlog.exists() and "Booting worker" in errlog.read_text():
                break
            time.sleep(0.05)
        text = errlog.read_text()
        assert "Listening at: http://127.0.0.1:" in text
        assert "Booting worker with pid" in text
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert b"Listening at" not in stderr


def test_usr1_reopens_the_access_log_after_rotation(serve, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    server = serve("access_apps:app", "--access-logfile", str(log), "--access-logformat", "%(U)s")
    assert httpx.get(server.url + "/before").status_code == 200
    wait_lines(lambda: log.read_text().splitlines(), 1)
    log.rename(tmp_path / "access.log.1")
    server.proc.send_signal(signal.SIGUSR1)
    # the worker reopens once the master forwards the signal; poll with fresh requests
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        assert httpx.get(server.url + "/after").status_code == 200
        if log.exists() and log.read_text():
            break
        time.sleep(0.05)
    assert (tmp_path / "access.log.1").read_text().splitlines()[0] == "/before"
    assert set(log.read_text().splitlines()) == {"/after"}
    assert "Booting worker" not in "\n".join(server.lines[1:]).split("usr1", 1)[-1]
