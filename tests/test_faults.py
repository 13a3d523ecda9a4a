"""Fault injection under steady load, with every failed request counted and attributed.

Each test runs ferricorn with two workers, keeps a steady keep-alive load on a well-behaved
route (:class:`load.SteadyLoad`, several client threads) and injects one fault, or several at
once: a worker SIGKILLed or segfaulting, an app that hangs, leaks memory, or raises in its
iterable's close(), clients that leave mid-upload or mid-download, thousands of idle keep-alive
connections, slowloris clients, bursts of malformed requests, and HUP and TERM during all that.

**What counts as the server's fault.** A request *fails* if it raises in the client or gets
anything but a 200 with its whole body. Among the well-formed requests to well-behaved routes:

* a failure is *the fault's* when the request was in flight (sent, not yet finished) during the
  window of an injected fault that kills a worker: from the moment the test injects it (the
  SIGKILL, the request that segfaults or hangs) until the master has logged that worker's
  death. Requests in flight on a worker that dies are lost; gunicorn loses them too. There can
  be at most one per client thread per kill, since each thread has one request in flight;
* every other failure is *the server's*, and every test asserts there are none. In particular
  graceful events (HUP, max-worker-memory recycling, close() raising, clients leaving,
  slowloris, malformed bursts, idle connections) have no window at all: zero failures;
* TERM: every request sent before TERM gets its full answer (200 and the whole body),
  including slow ones and streams already in the app. Requests sent after it may find no
  worker to accept them (refused, or reset when the master closes the listener): those are
  counted apart, as not accepted, and are not failures. A response after TERM, when one comes,
  must still be a 200.

The request that injects a fault (``/segfault``, ``/hang``) is not well-behaved: it must never
get a 200 (the connection closes, or a 5xx). Malformed requests must get their 4xx/501/505 and
a close. Each test prints one line, ``[faults] CASE: ok=N failed-by-fault=N
failed-by-server=N ...`` (visible with ``pytest -s``).

The apps are ``tests/apps/fault_apps.py`` (WSGI) and ``fault_apps_asgi.py`` (ASGI, for what an
event loop does differently); they record what happens inside the workers (iterables closed,
uploads cut short) in an event file, so a test checks it across workers that have exited.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest
from helpers_faults import (
    APPS,
    ASGI,
    MIB,
    WSGI,
    Chaos,
    CloseRaiser,
    EagerReuser,
    Events,
    Leaver,
    Loris,
    Malformed,
    booted_since,
    check_left_cleanly,
    closed_by_server,
    count_log,
    fd_count,
    hup,
    mark,
    one_exchange,
    open_idle,
    report,
    rss_mib,
    settled_fds,
    start,
    task_count,
    wait_log,
)
from helpers_http import RawConnection, Response, request
from load import SteadyLoad
from test_master import children, wait_for_workers, wait_until


@pytest.fixture
def events(tmp_path: Path) -> Events:
    return Events(tmp_path / "events.jsonl")


@pytest.fixture
def many_fds():
    """Raise RLIMIT_NOFILE (inherited by the server started next) for thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 5000 + 1200
    target = want if hard == resource.RLIM_INFINITY else min(max(soft, want), hard)
    if target < want:
        pytest.skip(f"needs {want} file descriptors; the hard RLIMIT_NOFILE is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, target), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# === 1. a worker killed with SIGKILL, three times ==============================================


def test_sigkilled_workers_lose_only_the_requests_in_flight_on_them(serve):
    server, master, workers = start(serve, WSGI)
    windows: list[tuple[float, float]] = []
    with SteadyLoad(server.url, "/pid", threads=4) as load:
        load.wait_for_ok(50)
        for _ in range(3):
            victim = min(workers)
            since, began = mark(server), time.monotonic()
            os.kill(victim, signal.SIGKILL)
            wait_log(server, rf"Worker \(pid:{victim}\) was sent SIGKILL", since)
            windows.append((began, time.monotonic()))
            workers = wait_for_workers(master, 2, exclude={victim})
            load.wait_for_more_ok(50)
    tally = load.tally(windows)
    report(tally, "sigkill x3")
    assert not tally.by_server, tally.describe()
    assert len(tally.by_fault) <= load.threads * len(windows)
    assert set(load.bodies_since(windows[-1][1])) <= {str(p) for p in workers}


# === 2. a segfault in the app ===================================================================


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_a_segfaulting_request_kills_its_worker_and_never_gets_a_200(serve, kind):
    server, master, workers = start(serve, APPS[kind])
    windows: list[tuple[float, float]] = []
    answers: list[int | None] = []
    with SteadyLoad(server.url, "/pid", threads=4) as load:
        load.wait_for_ok(50)
        for _ in range(2):
            since, began = mark(server), time.monotonic()
            resp = one_exchange(server, request("GET", "/segfault"))
            answers.append(None if resp is None else resp.status)
            m = wait_log(server, r"Worker \(pid:(\d+)\) was sent SIGSEGV!", since)
            windows.append((began, time.monotonic()))
            victim = int(m.group(1))
            assert victim in workers
            # faulthandler printed where it happened before the worker died
            wait_log(server, r"Fatal Python error: Segmentation fault", since)
            workers = wait_for_workers(master, 2, exclude={victim})
            load.wait_for_more_ok(50)
    assert all(a is None or a >= 500 for a in answers), answers
    tally = load.tally(windows)
    report(tally, f"segfault x2 ({kind})", segfault_answers=answers)
    assert not tally.by_server, tally.describe()
    assert len(tally.by_fault) <= load.threads * len(windows)


# === 3. a request that hangs in a threaded worker ==============================================


def test_a_hung_app_thread_is_killed_after_the_timeout_while_the_other_thread_serves(serve):
    # gunicorn's gthread worker only notices a worker whose main loop stops; ferricorn also
    # times out a single app thread stuck in one request (heartbeat "busy since", see
    # ARCHITECTURE.md), even while the worker's other thread and its I/O keep going.
    server, master, workers = start(serve, WSGI, "--threads", "2", "--timeout", "2")
    hung: list[Response | None] = []
    with SteadyLoad(server.url, "/pid", threads=4) as load:
        load.wait_for_ok(50)
        since, began = mark(server), time.monotonic()
        client = threading.Thread(
            target=lambda: hung.append(one_exchange(server, request("GET", "/hang"), 30)),
            daemon=True,
        )
        client.start()
        wait_log(server, r"hang started", since)
        hang_seen = time.monotonic()
        m = wait_log(server, r"WORKER TIMEOUT \(pid:(\d+)\)", since)
        victim = int(m.group(1))
        assert victim in workers
        wait_log(server, rf"Worker \(pid:{victim}\) was sent SIG(ABRT|KILL)", since)
        window = (began, time.monotonic())
        wait_log(server, r"hanging_in_the_app", since)  # its stack, dumped before the kill
        workers = wait_for_workers(master, 2, exclude={victim})
        load.wait_for_more_ok(50)
        client.join(15)
    assert not client.is_alive(), "the hung request's connection was never closed"
    assert hung and (hung[0] is None or hung[0].status >= 500), hung
    # the hung worker's second thread kept answering until the kill
    served_meanwhile = sum(
        1 for o in load.outcomes if o.ok and o.detail == str(victim) and o.started > hang_seen
    )
    tally = load.tally([window])
    report(tally, "hang --threads 2 --timeout 2", victim_answers_while_hung=served_meanwhile)
    assert not tally.by_server, tally.describe()
    assert len(tally.by_fault) <= load.threads


# === 4. a leaking app recycled by --max-worker-memory ==========================================


def test_a_leaking_app_is_recycled_by_max_worker_memory_without_a_failed_request(serve):
    server, master, workers = start(serve, WSGI, "--max-worker-memory", "200")
    since = mark(server)
    with (
        SteadyLoad(server.url, "/pid", threads=3) as load,
        SteadyLoad(server.url, "/leak?mb=10", threads=1, pause=0.05) as leak,
    ):
        wait_until(
            lambda: count_log(server, r"over --max-worker-memory 200 MB", since) >= 3,
            60,
            "three workers recycled for their memory",
        )
        leak.stop()
        recycled = [
            int(m.group(1))
            for line in server.lines[since:]
            if (m := re.search(r"Worker \(pid:(\d+)\) uses \d+ MB", line))
        ]
        for pid in recycled:  # each one stopped gracefully, not killed
            wait_log(server, rf"Worker exiting \(pid: {pid}\)", since, timeout=30)
        load.wait_for_more_ok(50)
    assert count_log(server, r"was sent SIG", since) == 0, server.log
    tally, leaks = load.tally(), leak.tally()
    report(tally, "max-worker-memory", leak_requests_ok=leaks.ok, recycled=len(set(recycled)))
    assert not tally.by_server, tally.describe()
    assert not leaks.by_server, leaks.describe()
    assert len(children(master)) == 2


# === 5. an iterable whose close() raises =======================================================


def test_close_raising_is_logged_and_costs_neither_the_response_nor_the_worker(serve):
    server, master, workers = start(serve, WSGI, "--threads", "2")
    since = mark(server)
    with SteadyLoad(server.url, "/pid", threads=3) as load:
        load.wait_for_ok(30)
        raiser = CloseRaiser(server)
        raiser.start()
        raiser.wait_count("done", 40)
        raiser.stop()
        load.wait_for_more_ok(30)
    assert not raiser.problems, raiser.problems
    done = raiser.counts["done"]
    wait_until(
        lambda: count_log(server, r"RuntimeError: close\(\) failed on purpose", since) == done,
        10,
        f"{done} tracebacks of close()",
    )
    assert count_log(server, r"Error handling request /close-raises", since) == done
    assert children(master) == workers and booted_since(server, since) == []
    tally = load.tally()
    report(tally, "close() raises", close_raising_requests=done)
    assert not tally.by_server, tally.describe()


# === 6. clients leaving mid-upload and mid-download ============================================


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_clients_leaving_mid_upload_and_mid_download_leave_nothing_behind(serve, events, kind):
    extra = ("--threads", "2") if kind == "wsgi" else ()
    server, master, workers = start(serve, APPS[kind], *extra, env=events.env)
    fds = settled_fds(server, workers)
    with SteadyLoad(server.url, "/pid", threads=3) as load:
        load.wait_for_ok(30)
        with httpx.Client(base_url=server.url, timeout=10) as c:  # each route works whole
            assert len(c.get("/download?mb=4", headers={"X-Rid": "whole-d"}).content) == 4 * MIB
            r = c.post("/upload", content=b"w" * MIB, headers={"X-Rid": "whole-u"})
            assert r.status_code == 200 and r.text == str(MIB), r
        tasks = {pid: task_count(pid) for pid in workers}
        leaver = Leaver(server, events, kind)
        leaver.start()
        leaver.wait_count("left", 32, timeout=60)
        leaver.stop()
        load.wait_for_more_ok(30)
    check_left_cleanly(events, leaver.downloads, leaver.uploads)
    assert events.by_rid("upload.end")["whole-u"]["outcome"] == "complete"
    assert children(master) == workers, "a worker died"
    for pid in workers:  # no thread and no socket left over once the clients are gone
        wait_until(lambda pid=pid: task_count(pid) == tasks[pid], 10, f"threads of {pid}")
        wait_until(
            lambda pid=pid: fd_count(pid) <= fds[pid],
            10,
            f"fds of {pid}: {fd_count(pid)} now, {fds[pid]} at start",
        )
    tally = load.tally()
    report(
        tally,
        f"clients leaving ({kind})",
        left_downloads=len(leaver.downloads),
        left_uploads=len(leaver.uploads),
    )
    assert not tally.by_server, tally.describe()


# === 7. 5,000 idle keep-alive connections, then a HUP ==========================================


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_5000_idle_keep_alive_connections_leave_new_clients_served_and_hup_clean(
    serve, many_fds, kind
):
    # Idle connections are not requests in the app, so ASGI's --worker-connections (a bound
    # on those) does not apply to them; WSGI workers have no per-connection limit at all.
    server, master, workers = start(serve, APPS[kind], "--keep-alive", "60")
    rss_before = rss_mib(workers)
    idle = open_idle(server, 5000)
    rss_idle = rss_mib(workers)
    try:
        with SteadyLoad(server.url, "/pid", threads=4) as load:
            load.wait_for_ok(200, timeout=30)
            for _ in range(20):  # fresh clients are answered at once
                t0 = time.monotonic()
                resp = one_exchange(server, request("GET", "/pid"))
                assert resp is not None and resp.status == 200, resp
                assert time.monotonic() - t0 < 10
            for s in idle[::50]:  # the idle connections still work
                s.sendall(request("GET", "/pid"))
                assert RawConnection(s).read_response().status == 200
            t0 = time.monotonic()
            workers = hup(server, master, workers)
            swap = time.monotonic() - t0
            load.wait_for_more_ok(100)
        # the old workers closed their idle connections instead of waiting them out
        closed, spoke = closed_by_server(idle, 15)
    finally:
        for s in idle:
            s.close()
    assert (closed, spoke) == (len(idle), 0)
    tally = load.tally()
    report(
        tally,
        f"5000 idle + HUP ({kind})",
        hup_swap_s=round(swap, 1),
        workers_rss_mib=f"{rss_before}->{rss_idle}",
    )
    assert not tally.by_server, tally.describe()


# === 8. slowloris, with a HUP in the middle ====================================================


def test_slowloris_with_a_hup_in_the_middle_fails_no_good_client(serve):
    server, master, workers = start(serve, WSGI, "--header-timeout", "2")
    loris = Loris(server, conns=200)
    with SteadyLoad(server.url, "/pid", threads=4) as load:
        load.wait_for_ok(50)
        loris.start()
        loris.wait_count("408", 100)
        for _ in range(20):
            resp = one_exchange(server, request("GET", "/pid"))
            assert resp is not None and resp.status == 200, resp
        workers = hup(server, master, workers)
        loris.wait_count("408", 400, timeout=30)
        load.wait_for_more_ok(100)
        loris.stop()
    assert not loris.problems, loris.problems[:5]
    tally = load.tally()
    report(
        tally,
        "slowloris 200 conns + HUP",
        cut_408=loris.counts["408"],
        cut_silently=loris.counts["closed"],
    )
    assert not tally.by_server, tally.describe()


# === 9. malformed requests interleaved with good ones, with a HUP in the middle =================


def test_malformed_burst_interleaved_with_good_requests_and_a_hup(serve):
    server, master, workers = start(serve, WSGI)
    bursts = [Malformed(server) for _ in range(2)]
    with SteadyLoad(server.url, "/pid", threads=3) as load:
        load.wait_for_ok(30)
        for b in bursts:
            b.start()
        for b in bursts:
            b.wait_count("bad", 60)
        workers = hup(server, master, workers)
        for b in bursts:
            b.wait_count("bad", 120)
            b.stop()
        load.wait_for_more_ok(30)
    problems = [p for b in bursts for p in b.problems]
    assert not problems, problems[:5]
    tally = load.tally()
    good = sum(b.counts["good"] for b in bursts)
    bad = sum(b.counts["bad"] for b in bursts)
    report(tally, "malformed burst + HUP", good_between=good, malformed=bad)
    assert not tally.by_server, tally.describe()
    assert children(master) == workers


# === 10. HUP and TERM with streams in flight ===================================================


def test_hups_under_asgi_streaming_load_fail_nothing(serve):
    server, master, workers = start(serve, ASGI)
    with (
        SteadyLoad(server.url, "/pid", threads=3) as load,
        SteadyLoad(
            server.url, "/download?mb=2", threads=2, pause=0, expect_bytes=2 * MIB
        ) as streams,
    ):
        load.wait_for_ok(30)
        streams.wait_for_ok(4)
        eager = [EagerReuser(server, "/download?mb=1", MIB) for _ in range(2)]
        for e in eager:
            e.start()
        for _ in range(3):
            workers = hup(server, master, workers)
            swapped = time.monotonic()
            load.wait_for_more_ok(50)
            streams.wait_for_more_ok(4)
        for e in eager:
            e.stop()
    assert set(load.bodies_since(swapped)) <= {str(p) for p in workers}
    problems = [p for e in eager for p in e.problems]
    assert not problems, problems[:5]
    tally, streamed = load.tally(), streams.tally()
    report(
        tally,
        "HUP x3 (asgi, streaming)",
        streams_ok=streamed.ok,
        eager_streams=sum(e.counts["streams"] for e in eager),
    )
    assert not tally.by_server, tally.describe()
    assert not streamed.by_server, streamed.describe()


@pytest.mark.parametrize("kind", ["wsgi", "asgi"])
def test_term_under_load_answers_every_request_sent_before_it(serve, events, kind):
    extra = ("--threads", "4") if kind == "wsgi" else ()
    server, master, _ = start(
        serve,
        APPS[kind],
        *extra,
        "--graceful-timeout",
        "20",
        "--header-timeout",
        "2",
        "--keep-alive",
        "30",
        env=events.env,
    )
    slow: list[Response | None] = []
    streamed: list[int] = []

    def sleep() -> None:
        slow.append(one_exchange(server, request("GET", "/sleep?s=2"), 30))

    def download(rid: str) -> None:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            with c.stream("GET", "/download?mb=16", headers={"X-Rid": rid}) as r:
                n = 0
                for piece in r.iter_bytes(chunk_size=65536):
                    n += len(piece)
                    time.sleep(0.002)  # a slow reader: the stream outlives TERM
                streamed.append(n if r.status_code == 200 else -r.status_code)

    idle = open_idle(server, 200)
    loris = Loris(server, conns=50)
    since = mark(server)
    try:
        with SteadyLoad(server.url, "/pid", threads=4) as load:
            load.wait_for_ok(50)
            loris.start()
            clients = [threading.Thread(target=sleep) for _ in range(3)]
            clients += [threading.Thread(target=download, args=(f"t{i}",)) for i in range(2)]
            for t in clients:
                t.start()
            wait_until(lambda: count_log(server, r"sleep started", since) >= 3, 10, "sleeps")
            for i in range(2):
                events.wait_for_rid("download.start", f"t{i}")
            term_at = time.monotonic()
            os.kill(master, signal.SIGTERM)
            for t in clients:
                t.join(30)
            try:
                rc = server.proc.wait(30)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"still running 30 s after TERM:\n{server.log}") from None
            took = time.monotonic() - term_at
            loris.stop()
        closed, spoke = closed_by_server(idle, 5)
    finally:
        for s in idle:
            s.close()
    assert rc == 0, server.log
    assert [r.status if r else None for r in slow] == [200] * 3, slow
    assert streamed == [16 * MIB] * 2, streamed
    assert not loris.problems, loris.problems[:5]
    assert (closed, spoke) == (len(idle), 0)
    before = [o for o in load.outcomes if o.started < term_at]
    after = [o for o in load.outcomes if o.started >= term_at]
    failed_before = [o for o in before if not o.ok]
    answered_badly = [o for o in after if o.status not in (0, 200)]
    print(
        f"[faults] TERM ({kind}): ok={sum(o.ok for o in load.outcomes)} failed-by-fault=0 "
        f"failed-by-server={len(failed_before) + len(answered_badly)} "
        f"not-accepted-after-term={sum(o.status == 0 for o in after)} "
        f"in_flight_completed={len(slow) + len(streamed)} exit_s={took:.1f}"
    )
    assert not failed_before, [o.detail for o in failed_before]
    assert not answered_badly, [o.detail for o in answered_badly]


# === 11. all the graceful faults at once, and two HUPs =========================================


def test_everything_graceful_at_once_with_two_hups_fails_no_good_request(serve, events):
    server, master, workers = start(
        serve,
        WSGI,
        "--threads",
        "2",
        "--header-timeout",
        "2",
        "--keep-alive",
        "30",
        env=events.env,
    )
    idle = open_idle(server, 300)
    chaos: list[Chaos] = [
        Loris(server, conns=50),
        Malformed(server),
        Leaver(server, events, "storm"),
        CloseRaiser(server),
        EagerReuser(server, "/download?mb=1", MIB),
    ]
    try:
        with SteadyLoad(server.url, "/pid", threads=3) as load:
            load.wait_for_ok(30)
            for c in chaos:
                c.start()
            for _ in range(2):
                load.wait_for_more_ok(50)
                workers = hup(server, master, workers)
            load.wait_for_more_ok(50)
            for c in chaos:
                c.stop()
        closed, spoke = closed_by_server(idle, 15)
    finally:
        for s in idle:
            s.close()
    problems = [p for c in chaos for p in c.problems]
    assert not problems, problems[:5]
    leaver = chaos[2]
    assert isinstance(leaver, Leaver)
    check_left_cleanly(events, leaver.downloads, leaver.uploads)
    assert (closed, spoke) == (len(idle), 0)
    tally = load.tally()
    loris, malformed, _, raiser, eager = (c.counts for c in chaos)
    report(
        tally,
        "storm + HUP x2",
        loris_408=loris["408"],
        malformed=malformed["bad"],
        left=leaver.counts["left"],
        close_raising=raiser["done"],
        eager_streams=eager["streams"],
        idle_closed=closed,
    )
    assert not tally.by_server, tally.describe()
