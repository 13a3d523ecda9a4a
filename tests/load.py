"""A steady keep-alive load for tests that change the server underneath its clients.

:class:`SteadyLoad` runs a few client threads; each keeps one ``httpx.Client`` (so one
keep-alive connection at a time, reopened only when the server closes it) and requests the
same path in a loop until stopped. A request *fails* if it raises or its status is not 200;
every failure is kept with its time and reason, every success with its time and body, so a
test can assert "no failures", "at most one failure per client thread", or "answers after
the event came from new workers".

Each outcome also keeps when its request was sent and the status it got (0: no response), so
:meth:`SteadyLoad.tally` can split failures into those a fault injected by the test explains
(the request was in flight during the fault's window) and the others (:class:`Tally`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self

import httpx


@dataclass(frozen=True)
class Outcome:
    at: float  # time.monotonic() when the request finished
    thread: int
    ok: bool
    detail: str  # the body of a 200, otherwise the status line or the exception
    started: float = 0.0  # time.monotonic() just before the request was sent
    status: int = 0  # the response's status; 0 when no response came


@dataclass
class Tally:
    """A load's requests split three ways (see :meth:`SteadyLoad.tally`)."""

    ok: int
    by_fault: list[Outcome]  # failed while in flight during a fault's window
    by_server: list[Outcome]  # failed with no fault to explain it

    def line(self, case: str) -> str:
        return (
            f"[faults] {case}: ok={self.ok} failed-by-fault={len(self.by_fault)} "
            f"failed-by-server={len(self.by_server)}"
        )

    def describe(self) -> str:
        return "\n".join(f"thread {o.thread}: {o.detail}" for o in self.by_server)


class SteadyLoad:
    """``with SteadyLoad(server.url, "/pid") as load: ...`` then assert on ``load.failures``."""

    def __init__(
        self,
        base_url: str,
        path: str = "/",
        *,
        threads: int = 4,
        pause: float = 0.01,
        timeout: float = 10.0,
        transport: Callable[[], httpx.BaseTransport] | None = None,
        expect_bytes: int | None = None,
    ) -> None:
        self.base_url = base_url
        self.path = path
        self.threads = threads
        self.pause = pause
        self.timeout = timeout
        self._transport = transport
        # a 200 counts only with exactly this many body bytes; its detail is then the length
        self.expect_bytes = expect_bytes
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._outcomes: list[Outcome] = []
        self._workers: list[threading.Thread] = []

    # --- running ---------------------------------------------------------------------------

    def start(self) -> Self:
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._workers:
            t.join(self.timeout + 5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _client(self) -> httpx.Client:
        kwargs = {}
        if self._transport is not None:
            kwargs["transport"] = self._transport()
        return httpx.Client(
            base_url=self.base_url,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            **kwargs,
        )

    def _run(self, n: int) -> None:
        with self._client() as client:
            while not self._stop.is_set():
                started, status = time.monotonic(), 0
                try:
                    r = client.get(self.path)
                    status = r.status_code
                    ok = r.status_code == 200
                    if ok and self.expect_bytes is not None:
                        ok = len(r.content) == self.expect_bytes
                        detail = f"{len(r.content)} of {self.expect_bytes} bytes"
                    else:
                        detail = r.text if ok else f"{r.status_code} {r.text[:200]!r}"
                except Exception as e:  # noqa: BLE001 - every error is a failed request
                    ok, detail = False, f"{type(e).__name__}: {e}"
                outcome = Outcome(time.monotonic(), n, ok, detail, started, status)
                with self._progress:
                    self._outcomes.append(outcome)
                    self._progress.notify_all()
                self._stop.wait(self.pause)

    # --- reading results -------------------------------------------------------------------

    @property
    def outcomes(self) -> list[Outcome]:
        with self._lock:
            return list(self._outcomes)

    @property
    def ok(self) -> int:
        return sum(1 for o in self.outcomes if o.ok)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    def bodies_since(self, since: float) -> list[str]:
        """Bodies of the 200s that finished at or after ``since`` (a time.monotonic())."""
        return [o.detail for o in self.outcomes if o.ok and o.at >= since]

    def wait_for_ok(self, count: int, timeout: float = 10.0) -> None:
        """Block until at least ``count`` requests in total have succeeded."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while sum(1 for o in self._outcomes if o.ok) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    done = sum(1 for o in self._outcomes if o.ok)
                    bad = [o.detail for o in self._outcomes if not o.ok][-5:]
                    raise AssertionError(
                        f"only {done}/{count} requests to {self.path} succeeded "
                        f"within {timeout}s; last failures: {bad}"
                    )
                self._progress.wait(min(left, 0.2))

    def wait_for_more_ok(self, count: int, timeout: float = 10.0) -> None:
        """Block until ``count`` more requests than now have succeeded."""
        self.wait_for_ok(self.ok + count, timeout)

    def tally(self, windows: Sequence[tuple[float, float]] = ()) -> Tally:
        """Split the outcomes: a failed request whose [sent, finished] interval overlaps one of
        ``windows`` (time.monotonic() pairs: from injecting a fault until its end was seen, e.g.
        the master logging the dead worker) is the fault's; any other failure is the server's."""
        ok, by_fault, by_server = 0, [], []
        for o in self.outcomes:
            if o.ok:
                ok += 1
            elif any(o.started <= end and o.at >= start for start, end in windows):
                by_fault.append(o)
            else:
                by_server.append(o)
        return Tally(ok, by_fault, by_server)

    def describe_failures(self) -> str:
        return "\n".join(f"thread {o.thread}: {o.detail}" for o in self.failures)
