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
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from apps.fault_apps import EVENTS_ENV
from conftest import Server
from helpers_events import EventFile
from helpers_http import ConnectionClosed, RawConnection, Response, request
from load import SteadyLoad, Tally
from test_master import children, master_pid, wait_for_workers, wait_until

WSGI = "fault_apps:app"
ASGI = "fault_apps_asgi:app"
APPS = {"wsgi": WSGI, "asgi": ASGI}
MIB = 1024 * 1024

# What each malformed request must get (the exact statuses are test_malformed.py's business;
# here the point is that they never disturb the good requests around them).
MALFORMED: list[tuple[bytes, int]] = [
    (
        request("GET", "/pid", headers=[("Content-Length", "5"), ("Transfer-Encoding", "chunked")])
        + b"0\r\n\r\n",
        400,
    ),
    (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GARBAGE\r\n\r\n", 400),
    (request("GET", "/pid", host=None), 400),
    (request("GET", "/pid", headers=[("Host", "other")]), 400),
    (request("GET", "/pid", headers=[("Content-Length", "-1")]), 400),
    (request("GET", "/" + "a" * 4100), 414),
    (request("GET", "/pid", headers=[("X-Long", "v" * 9000)]), 431),
    (request("POST", "/upload", headers=[("Transfer-Encoding", "gzip, chunked")]), 501),
    (request("GET", "/pid", version="HTTP/3.0"), 505),
    (request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")], body=b"zz\r\n"), 400),
]


# --- the event file the apps write --------------------------------------------------------------


class Events(EventFile):
    """``$FAULT_APPS_EVENTS``: one JSON object per line, from every worker."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, EVENTS_ENV)

    def by_rid(self, event: str) -> dict[str, dict]:
        return {e["rid"]: e for e in self.named(event)}

    def wait_for_rid(self, event: str, rid: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.by_rid(event).get(rid)
            if found is not None:
                return found
            time.sleep(0.01)
        raise AssertionError(f"no {event} event for {rid!r}; events: {self.all()[-20:]}")


@pytest.fixture
def events(tmp_path: Path) -> Events:
    return Events(tmp_path / "events.jsonl")


# --- the error log and the processes ------------------------------------------------------------


def mark(server: Server) -> int:
    return len(server.lines)


def wait_log(server: Server, pattern: str, since: int = 0, timeout: float = 15.0) -> re.Match:
    """The first line from ``since`` on matching ``pattern``, waiting for it if need be."""
    rx = re.compile(pattern)
    deadline = time.monotonic() + timeout
    while True:
        for line in server.lines[since:]:
            if m := rx.search(line):
                return m
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line matching {pattern!r} in:\n{server.log[-6000:]}")
        time.sleep(0.02)


def count_log(server: Server, pattern: str, since: int = 0) -> int:
    """Occurrences, not lines: two processes' messages can share a line of the error log."""
    rx = re.compile(pattern)
    return sum(len(rx.findall(line)) for line in server.lines[since:])


def booted_since(server: Server, since: int) -> list[int]:
    rx = re.compile(r"Booting worker with pid: (\d+)")
    return [int(m.group(1)) for line in server.lines[since:] if (m := rx.search(line))]


def task_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def settled_fds(server: Server, workers: set[int]) -> dict[int, int]:
    """Each worker's open fds once it has served a request (its runtime is then complete)
    and no client is connected any more."""
    seen: set[int] = set()
    deadline = time.monotonic() + 20
    while seen != workers and time.monotonic() < deadline:
        resp = one_exchange(server, request("GET", "/pid", headers=[("Connection", "close")]))
        assert resp is not None and resp.status == 200, resp
        seen.add(int(resp.body))
    assert seen == workers, (seen, workers)
    time.sleep(1.5)  # the server lingers up to 1 s on a closed connection
    return {pid: fd_count(pid) for pid in workers}


def rss_mib(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/statm") as f:
            total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return round(total / MIB, 1)


def start(serve, app: str, *args: str, workers: int = 2, env=None) -> tuple[Server, int, set[int]]:
    """A ferricorn with ``workers`` workers, all booted; (server, master pid, worker pids)."""
    server = serve(app, "-w", str(workers), *args, env=env)
    master = master_pid(server)
    pids = wait_for_workers(master, workers)
    for pid in pids:
        wait_log(server, rf"Booting worker with pid: {pid}\b")
    return server, master, pids


def swap_workers(server: Server, master: int, old: set[int], since: int) -> set[int]:
    """After a HUP (or a recycling): wait for fresh workers and for the old ones' clean exit."""
    new = wait_for_workers(master, len(old), exclude=old, timeout=30)
    for pid in old:
        wait_log(server, rf"Worker exiting \(pid: {pid}\)", since, timeout=30)
    return new


def hup(server: Server, master: int, old: set[int]) -> set[int]:
    since = mark(server)
    os.kill(master, signal.SIGHUP)
    wait_log(server, r"Handling signal: hup", since)
    return swap_workers(server, master, old, since)


def report(tally: Tally, case: str, **extra: object) -> None:
    print(tally.line(case) + "".join(f" {k}={v}" for k, v in extra.items()))


# --- raw clients --------------------------------------------------------------------------------


def one_exchange(server: Server, data: bytes, timeout: float = 10.0) -> Response | None:
    """``data`` on a fresh connection: the response, or None if the server closed without one."""
    with RawConnection.to(server, timeout) as conn:
        try:
            conn.send(data)
            return conn.read_response()
        except (ConnectionClosed, ConnectionResetError, BrokenPipeError):
            return None


def abort(sock: socket.socket) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a client that crashes or is killed does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def leave_mid_download(server: Server, rid: str, *, reset: bool) -> int:
    """GET a 64 MiB stream, read a little of it, leave. Returns the bytes read."""
    sock = server.connect()
    try:
        sock.sendall(request("GET", "/download?mb=64", headers=[("X-Rid", rid)]))
        got = 0
        while got < 256 * 1024:
            data = sock.recv(65536)
            assert data, f"download {rid} closed by the server after {got} bytes"
            got += len(data)
    finally:
        if reset:
            abort(sock)
        else:
            sock.close()
    return got


def leave_mid_upload(
    server: Server, events: Events, rid: str, *, chunked: bool, reset: bool
) -> None:
    """POST a 1 MiB body, send a quarter of it, wait until the app is reading it, leave."""
    part = b"u" * (256 * 1024)
    if chunked:
        head = request(
            "POST", "/upload", headers=[("Transfer-Encoding", "chunked"), ("X-Rid", rid)]
        )
        body = b"%x\r\n%s\r\n" % (len(part), part)
    else:
        head = request("POST", "/upload", headers=[("Content-Length", str(MIB)), ("X-Rid", rid)])
        body = part
    sock = server.connect()
    try:
        sock.sendall(head + body)
        events.wait_for_rid("upload.start", rid)
    finally:
        if reset:
            abort(sock)
        else:
            sock.close()


def open_idle(server: Server, n: int, batch: int = 250) -> list[socket.socket]:
    """``n`` keep-alive connections, each after one answered request, left idle."""
    socks: list[socket.socket] = []
    while len(socks) < n:
        group = [server.connect(timeout=30) for _ in range(min(batch, n - len(socks)))]
        for s in group:
            s.sendall(request("GET", "/pid"))
        for s in group:
            resp = RawConnection(s, 30).read_response()
            assert resp.status == 200, resp
            assert not resp.has_token("Connection", "close"), resp
        socks += group
    return socks


def closed_by_server(socks: list[socket.socket], timeout: float) -> tuple[int, int]:
    """Wait up to ``timeout`` for the server to close every socket: (closed, sent data)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
    closed = spoke = 0
    deadline = time.monotonic() + timeout
    open_count = len(socks)
    while open_count and time.monotonic() < deadline:
        for key, _ in sel.select(0.2):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                data = b""
            if data:  # an idle connection is closed in silence: this is counted against it
                spoke += 1
                continue
            sel.unregister(sock)
            open_count -= 1
            closed += 1
    sel.close()
    return closed, spoke


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


# --- background misbehaviour --------------------------------------------------------------------


class Chaos(threading.Thread):
    """A client thread that repeats :meth:`step` until stopped; ``problems`` holds every
    outcome that is the server's fault, ``counts`` what happened."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.halt = threading.Event()
        self.problems: list[str] = []
        self.counts: Counter[str] = Counter()
        self.crashed: BaseException | None = None

    def step(self) -> None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                self.step()
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.crashed = e

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        assert not self.is_alive(), f"{type(self).__name__} did not stop"
        if self.crashed is not None:
            raise self.crashed

    def wait_count(self, key: str, n: int, timeout: float = 20.0) -> None:
        wait_until(
            lambda: self.counts[key] >= n or self.crashed is not None,
            timeout,
            f"{n} x {key} from {type(self).__name__} (have {dict(self.counts)})",
        )


@dataclass
class Trickle:
    """One slowloris connection: how much of its head it sent, what it got back."""

    sock: socket.socket
    sent: int = 0
    got: bytes = b""


class Loris(Chaos):
    """``conns`` connections each trickling a request head, one byte per ``pace`` seconds.
    A connection the server ends must have got a 408 (or nothing); it is then reopened."""

    HEAD = b"GET /pid HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 4000 + b"\r\n\r\n"

    def __init__(self, server: Server, conns: int, pace: float = 0.2) -> None:
        super().__init__(server)
        self.conns, self.pace = conns, pace
        self.open: list[Trickle] = []

    def _ended(self, t: Trickle) -> None:
        t.sock.close()
        if t.got.startswith(b"HTTP/1.1 408 "):
            self.counts["408"] += 1
        elif t.got == b"":
            self.counts["closed"] += 1
        else:
            self.problems.append(f"slowloris connection got {t.got[:80]!r}")

    def _poke(self, t: Trickle) -> bool:
        """Read what came, send one more byte; False once the server has closed."""
        try:
            while data := t.sock.recv(65536):
                t.got += data
            return False  # b"": the server closed
        except BlockingIOError:
            pass
        except ConnectionResetError:
            return False
        try:
            t.sock.send(self.HEAD[t.sent : t.sent + 1])
            t.sent = (t.sent + 1) % len(self.HEAD)
        except (BlockingIOError, BrokenPipeError, ConnectionResetError):
            pass
        return True

    def step(self) -> None:
        while len(self.open) < self.conns:
            try:
                sock = self.server.connect()
            except ConnectionRefusedError:  # after TERM: nobody listens any more
                self.counts["refused"] += 1
                break
            sock.setblocking(False)
            self.open.append(Trickle(sock))
        still = []
        for t in self.open:
            if self._poke(t):
                still.append(t)
            else:
                self._ended(t)
        self.open = still
        self.halt.wait(self.pace)

    def stop(self) -> None:
        super().stop()
        for t in self.open:
            t.sock.close()


class Malformed(Chaos):
    """Fresh connections alternating a good request (200 expected) and a malformed one (its
    error status and a close expected), plus a good-then-bad pipelined pair now and then."""

    def step(self) -> None:
        n = self.counts["good"] + self.counts["bad"]
        resp = one_exchange(self.server, request("GET", "/pid"))
        if resp is None or resp.status != 200:
            self.problems.append(f"good request between malformed ones got {resp!r}")
        self.counts["good"] += 1
        wire, status = MALFORMED[n % len(MALFORMED)]
        with RawConnection.to(self.server) as conn:
            try:
                if n % 5 == 0:  # pipelined after a good one, which must be answered first
                    conn.send(request("GET", "/pid") + wire)
                    first = conn.read_response()
                    self.counts["good"] += 1
                    if first.status != 200:
                        self.problems.append(f"good request before a malformed one: {first!r}")
                    if first.has_token("Connection", "close"):
                        # a worker stopping (HUP) closes after the response in progress: the
                        # request pipelined behind it is legitimately left unanswered
                        self.counts["pipelined-cut"] += 1
                        self.counts["bad"] += 1
                        return
                else:
                    conn.send(wire)
                got = conn.read_response()
                if got.status != status:
                    self.problems.append(f"{wire[:60]!r} got {got.status}, not {status}")
                elif not conn.closed_within(5):
                    self.problems.append(f"{wire[:60]!r}: connection left open after {status}")
            except (ConnectionClosed, BrokenPipeError, ConnectionResetError) as e:
                how = "pipelined after a good one" if n % 5 == 0 else "alone"
                self.problems.append(f"{wire[:60]!r} ({how}): no response ({e})")
        self.counts["bad"] += 1


class Leaver(Chaos):
    """Clients that leave mid-download and mid-upload, by FIN or by reset, in turn."""

    def __init__(self, server: Server, events: Events, tag: str) -> None:
        super().__init__(server)
        self.events, self.tag = events, tag
        self.downloads: list[str] = []
        self.uploads: list[str] = []

    def step(self) -> None:
        n = len(self.downloads)
        rid = f"{self.tag}-d{n}"
        leave_mid_download(self.server, rid, reset=n % 2 == 1)
        self.downloads.append(rid)
        rid = f"{self.tag}-u{n}"
        leave_mid_upload(self.server, self.events, rid, chunked=n % 2 == 0, reset=n % 4 >= 2)
        self.uploads.append(rid)
        self.counts["left"] += 2


def check_left_cleanly(events: Events, downloads: list[str], uploads: list[str]) -> None:
    """Every abandoned download had its iterable closed; every cut upload read an error,
    never a short body taken for a whole one."""
    wait_until(
        lambda: set(downloads) <= set(events.by_rid("download.close")),
        10,
        "close() of every abandoned download",
    )
    wait_until(
        lambda: set(uploads) <= set(events.by_rid("upload.end")),
        10,
        "the end of every abandoned upload",
    )
    closes = events.by_rid("download.close")
    for rid in downloads:
        assert closes[rid]["sent"] < closes[rid]["total"], closes[rid]
    ends = events.by_rid("upload.end")
    truncated = [ends[rid] for rid in uploads if ends[rid]["outcome"] != "error"]
    assert not truncated, f"the app took a cut upload for a whole one: {truncated}"


class CloseRaiser(Chaos):
    """Requests whose iterable's close() raises: each must still get its whole body."""

    def step(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=10) as c:
            for cl in (0, 1):
                r = c.get(f"/close-raises?cl={cl}")
                if r.status_code != 200 or r.content != b"first;second;third.":
                    self.problems.append(f"close-raises cl={cl}: {r.status_code} {r.content!r}")
                self.counts["done"] += 1
        self.halt.wait(0.05)


class EagerReuser(Chaos):
    """One keep-alive connection, reused the instant each streamed response ends, with no
    pause in which to notice a close. Unless a response said ``Connection: close``, the server
    owes the next request on that connection an answer, graceful stop or not. Back to back,
    the streams are nearly always in the middle of one when a HUP's TERM lands."""

    def __init__(self, server: Server, path: str, size: int) -> None:
        super().__init__(server)
        self.path, self.size = path, size
        self.conn: RawConnection | None = None

    def _drop(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None

    def step(self) -> None:
        if self.conn is None:
            self.conn = RawConnection.to(self.server)
        try:
            self.conn.send(request("GET", self.path))
            resp = self.conn.read_response()
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError) as e:
            self.problems.append(f"a request on a kept-alive connection got no response ({e})")
            self._drop()
            return
        if resp.status != 200 or len(resp.body) != self.size:
            self.problems.append(f"stream: {resp.status}, {len(resp.body)} of {self.size} bytes")
        self.counts["streams"] += 1
        if resp.has_token("Connection", "close"):
            self.counts["closed-after"] += 1
            self._drop()

    def stop(self) -> None:
        super().stop()
        self._drop()


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
