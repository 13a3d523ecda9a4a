"""What tests/test_faults.py injects faults with: the apps' event file, the error log and the
processes, raw clients, and the background threads that misbehave (slowloris, malformed bursts,
clients leaving, close() raising, eager connection reuse). The rules the tests hold these to
are test_faults.py's docstring."""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx
from apps.fault_apps import EVENTS_ENV
from conftest import Server
from helpers_events import EventFile
from helpers_http import ConnectionClosed, RawConnection, Response, request
from load import Tally
from test_master import master_pid, wait_for_workers, wait_until

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
