"""Metrics: gunicorn's StatsD datagrams, the JSON access log and the master's Prometheus endpoint.

Each test starts the real server and checks what leaves it: the exact datagrams a UDP or unix
socket receives, the JSON objects written per request, the text a scrape of ``/metrics`` returns.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import httpx
from conftest import run_ferricorn
from test_master import alive, children, wait_until

TAGS = "env:test,team:web"


def collect(
    sock: socket.socket, until, timeout: float = 10.0, got: list[str] | None = None
) -> list[str]:
    """Datagrams received on ``sock`` (appended to ``got``) until ``until(datagrams)`` holds."""
    got = [] if got is None else got
    deadline = time.monotonic() + timeout
    sock.settimeout(0.1)
    while time.monotonic() < deadline:
        if until(got):
            return got
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    raise AssertionError(f"statsd datagrams never matched; got {got!r}")


def test_statsd_sends_gunicorns_request_metrics_with_prefix_and_tags(serve) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    server = serve(
        "access_apps:app",
        "--statsd-host",
        f"127.0.0.1:{port}",
        "--statsd-prefix",
        "shop",
        "--dogstatsd-tags",
        TAGS,
    )
    # the master's worker gauge comes first, once the worker is forked
    collect(rx, lambda got: f"shop.gunicorn.workers:1|g|#{TAGS}" in got)
    for path, code in [("/hello", 200), ("/missing", 404), ("/boom", 500)]:
        assert httpx.get(server.url + path).status_code == code
    got = collect(
        rx, lambda got: sum("gunicorn.request.status." in d for d in got) == 3
    )
    requests = [d for d in got if ".gunicorn.request" in d]
    duration = re.compile(rf"shop\.gunicorn\.request\.duration:\d+\.\d+\|ms\|#{TAGS}")
    counter = f"|c|@1.0|#{TAGS}"
    # gunicorn's order per request: duration timer, requests counter, status counter
    for i, code in enumerate([200, 404, 500]):
        trio = requests[3 * i : 3 * i + 3]
        assert duration.fullmatch(trio[0]), trio
        assert trio[1:] == [
            f"shop.gunicorn.requests:1{counter}",
            f"shop.gunicorn.request.status.{code}:1{counter}",
        ]
    # the app's exception is counted as gunicorn's log.exception, from the worker
    collect(rx, lambda got: f"shop.gunicorn.log.exception:1{counter}" in got, 5, got)
    assert not any("gunicorn.log.error" in d for d in got), got


def test_statsd_counts_the_masters_error_lines(serve) -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    server = serve(
        "master_apps:app", "--statsd-host", f"127.0.0.1:{rx.getsockname()[1]}"
    )
    got = collect(rx, lambda got: "gunicorn.workers:1|g" in got)
    os.kill(int(httpx.get(server.url + "/pid").text), signal.SIGKILL)
    server.wait_for_log(r"ERROR.*was sent SIGKILL")
    collect(rx, lambda got: "gunicorn.log.error:1|c|@1.0" in got, got=got)


def test_statsd_over_a_unix_datagram_socket_without_prefix_or_tags(
    serve, tmp_path: Path
) -> None:
    path = tmp_path / "statsd.sock"
    rx = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    rx.bind(str(path))
    server = serve(
        "access_apps:app", "--statsd-host", f"unix://{path}", "--statsd-prefix", "a"
    )
    assert httpx.get(server.url + "/hello").status_code == 200
    got = collect(rx, lambda got: any(".status." in d for d in got))
    # gunicorn's prefix rule leaves a one-character prefix without a dot
    assert "agunicorn.requests:1|c|@1.0" in got
    assert "agunicorn.request.status.200:1|c|@1.0" in got


def test_a_missing_statsd_server_never_fails_requests(serve) -> None:
    # a port nobody listens on: every send fails (ECONNREFUSED) and must be ignored
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = serve("access_apps:app", "--statsd-host", f"127.0.0.1:{port}")
    with httpx.Client(base_url=server.url) as c:
        for _ in range(20):
            assert c.get("/hello").text == "hello"
    assert "ERROR" not in server.log


def test_access_log_json_writes_one_object_per_request(serve) -> None:
    server = serve("access_apps:app", "--access-logfile", "-", "--access-log-json")
    with httpx.Client(base_url=server.url) as c:
        c.get(
            "/hello?a=1&b=%20x",
            headers={
                "User-Agent": 'agent "quoted"\\',
                "Referer": "http://ref.example/",
            },
        )
        c.post("/up%20load", content=b"0123456789", headers={"User-Agent": "poster"})
        c.get("/missing", headers={"User-Agent": "ua"})
    deadline = time.monotonic() + 10
    while len(server.stdout_lines) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    records = [json.loads(line) for line in server.stdout_lines]
    assert len(records) == 3, server.stdout_lines
    for rec in records:
        assert re.fullmatch(
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", rec.pop("time")
        )
        assert isinstance(rec.pop("duration_us"), int)
        assert rec.pop("pid") != os.getpid()
    common = {"remote_addr": "127.0.0.1", "protocol": "HTTP/1.1"}
    assert records == [
        {
            **common,
            "method": "GET",
            "path": "/hello",
            "query": "a=1&b=%20x",
            "status": 200,
            "response_bytes": 5,
            "referer": "http://ref.example/",
            "user_agent": 'agent "quoted"\\',
        },
        {
            **common,
            "method": "POST",
            "path": "/up load",
            "query": "",
            "status": 201,
            "response_bytes": 10,
            "referer": None,
            "user_agent": "poster",
        },
        {
            **common,
            "method": "GET",
            "path": "/missing",
            "query": "",
            "status": 404,
            "response_bytes": 4,
            "referer": None,
            "user_agent": "ua",
        },
    ]


def parse_prometheus(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample line; also checks each has a TYPE."""
    samples: dict[str, float] = {}
    typed = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
        elif line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            base = re.sub(r"(_bucket|_sum|_count)$", "", name.split("{")[0])
            assert base in typed, f"{name} has no TYPE line"
            samples[name] = float(value)
    return samples


def metrics_url(server) -> str:
    line = server.wait_for_log(r"Metrics at: http://\S+/metrics")
    return line.split("Metrics at: ", 1)[1].strip()


def scrape(url: str) -> dict[str, float]:
    r = httpx.get(url)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse_prometheus(r.text)


def wait_for(predicate, what: str, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_prometheus_counts_requests_latency_and_workers(serve) -> None:
    server = serve("master_apps:app", "-w", "2", "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    wait_for(lambda: scrape(url)["ferricorn_workers"] == 2, "two workers")
    with httpx.Client(base_url=server.url) as c:
        for _ in range(3):
            assert c.get("/pid").status_code == 200
        for _ in range(2):
            assert c.get("/nothing-here").status_code == 404
    m = scrape(url)
    assert m['ferricorn_requests_total{code="200"}'] == 3
    assert m['ferricorn_requests_total{code="404"}'] == 2
    assert m["ferricorn_request_duration_seconds_count"] == 5
    assert m['ferricorn_request_duration_seconds_bucket{le="+Inf"}'] == 5
    assert m['ferricorn_request_duration_seconds_bucket{le="10.0"}'] == 5
    assert 0 < m["ferricorn_request_duration_seconds_sum"] < 10
    assert m["ferricorn_requests_in_flight"] == 0
    assert m["ferricorn_worker_restarts_total"] == 0
    assert m["ferricorn_worker_timeouts_total"] == 0
    # anything but GET /metrics is refused, and the master still answers afterwards
    assert httpx.get(url.replace("/metrics", "/")).status_code == 404
    assert httpx.post(url).status_code == 405


def test_prometheus_sees_requests_in_flight(serve) -> None:
    server = serve("master_apps:app", "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    t = threading.Thread(
        target=lambda: httpx.get(server.url + "/sleep?s=2", timeout=10)
    )
    t.start()
    server.wait_for_log(r"sleep started")
    assert scrape(url)["ferricorn_requests_in_flight"] == 1
    t.join()
    m = scrape(url)
    assert m["ferricorn_requests_in_flight"] == 0
    assert m['ferricorn_request_duration_seconds_bucket{le="1.0"}'] == 0
    assert m['ferricorn_request_duration_seconds_bucket{le="2.5"}'] == 1


def test_prometheus_keeps_a_killed_workers_counts_and_counts_the_restart(serve) -> None:
    server = serve("master_apps:app", "-w", "1", "--metrics-bind", "127.0.0.1:0")
    url = metrics_url(server)
    first = int(httpx.get(server.url + "/pid").text)
    httpx.get(server.url + "/nope")
    os.kill(first, signal.SIGKILL)
    m = wait_for(
        lambda: (
            (m := scrape(url))["ferricorn_worker_restarts_total"] == 1
            and m["ferricorn_workers"] == 1
            and m
        ),
        "the restart",
    )
    assert m['ferricorn_requests_total{code="200"}'] == 1
    assert m['ferricorn_requests_total{code="404"}'] == 1
    second = int(wait_for(lambda: httpx.get(server.url + "/pid").text, "a new worker"))
    assert second != first
    m = scrape(url)
    assert m['ferricorn_requests_total{code="200"}'] == 2
    assert m["ferricorn_request_duration_seconds_count"] == 3


def test_prometheus_counts_worker_timeouts(serve) -> None:
    server = serve(
        "master_apps:app", "-w", "1", "-t", "1", "--metrics-bind", "127.0.0.1:0"
    )
    url = metrics_url(server)

    def stuck() -> None:
        # the worker is killed under it: the client sees the connection drop
        try:
            httpx.get(server.url + "/stuck", timeout=30)
        except httpx.HTTPError:
            pass

    threading.Thread(target=stuck, daemon=True).start()
    server.wait_for_log(r"WORKER TIMEOUT")
    m = wait_for(
        lambda: (m := scrape(url))["ferricorn_worker_restarts_total"] == 1 and m,
        "the timed-out worker's replacement",
    )
    assert m["ferricorn_worker_timeouts_total"] == 1
    assert m["ferricorn_requests_in_flight"] == 0


def test_metrics_bind_on_a_busy_port_stops_the_server_naming_the_setting() -> None:
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    proc = run_ferricorn(
        "-b", "127.0.0.1:0", "--metrics-bind", f"127.0.0.1:{port}", "access_apps:app"
    )
    assert proc.returncode == 1
    assert f'--metrics-bind / metrics_bind = "127.0.0.1:{port}"' in proc.stderr


def test_bad_statsd_host_is_a_usage_error_naming_the_setting() -> None:
    proc = run_ferricorn("--statsd-host", "localhost:http", "access_apps:app")
    assert proc.returncode == 2
    assert '--statsd-host / statsd_host = "localhost:http"' in proc.stderr


def test_usr2_new_master_serves_metrics_on_the_same_address(serve) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = serve("master_apps:app", "-w", "1", "--metrics-bind", f"127.0.0.1:{port}")
    url = metrics_url(server)
    assert httpx.get(server.url + "/pid").status_code == 200
    old = server.proc.pid
    os.kill(old, signal.SIGUSR2)
    line = server.wait_for_log(r"Started a new master \(pid: \d+\)")
    new = int(line.rsplit("pid: ", 1)[1].split(")")[0])
    # the new master binds the address the old one still serves, instead of failing
    wait_until(lambda: len(children(new)) == 1, 10, "the new master's worker")
    assert alive(new)
    os.kill(old, signal.SIGTERM)
    assert server.proc.wait(10) == 0
    m = scrape(url)
    assert m["ferricorn_workers"] == 1
    assert "ferricorn_requests_total" not in "".join(
        m
    )  # the new master counts from zero
    os.kill(new, signal.SIGTERM)
    wait_until(lambda: not alive(new), 10, "the new master to exit")
