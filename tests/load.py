"""A steady keep-alive load for tests that change the server underneath its clients.

:class:`SteadyLoad` runs a few client threads; each keeps one ``httpx.Client`` (so one
keep-alive connection at a time, reopened only when the server closes it) and requests the
same path in a loop until stopped. A request *fails* if it raises or its status is not 200;
every failure is kept with its time and reason, every success with its time and body, so a
test can assert "no failures", "at most one failure per client thread", or "answers after
the event came from new workers".
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Self

import httpx


@dataclass(frozen=True)
class Outcome:
    at: float  # time.monotonic() when the request finished
    thread: int
    ok: bool
    detail: str  # the body of a 200, otherwise the status line or the exception


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
    ) -> None:
        self.base_url = base_url
        self.path = path
        self.threads = threads
        self.pause = pause
        self.timeout = timeout
        self._transport = transport
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
                try:
                    r = client.get(self.path)
                    ok = r.status_code == 200
                    detail = r.text if ok else f"{r.status_code} {r.text[:200]!r}"
                except Exception as e:  # noqa: BLE001 - every error is a failed request
                    ok, detail = False, f"{type(e).__name__}: {e}"
                with self._progress:
                    self._outcomes.append(Outcome(time.monotonic(), n, ok, detail))
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

    def describe_failures(self) -> str:
        return "\n".join(f"thread {o.thread}: {o.detail}" for o in self.failures)
