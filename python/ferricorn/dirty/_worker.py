"""A dirty worker's serving loop, run in the process the master forked for it
(src/dirty/child.rs calls ``serve``).

It imports its apps and calls each one's ``init()`` once, then ``--dirty-threads`` threads
each wait on the apps' sockets and serve one call at a time: only a free thread accepts, so
the kernel gives a call to a worker that can start it now. The call's start and end go to
the master through ``link`` (the heartbeat slot), which is how the master sees a call past
``--dirty-timeout``. TERM: stop accepting, finish the calls in progress, ``close()`` the apps.
"""

from __future__ import annotations

import asyncio
import faulthandler
import inspect
import logging
import os
import pickle
import selectors
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Iterator
from typing import Any, Protocol

from .. import _ferricorn
from . import _protocol as proto
from .app import load_dirty_app
from .errors import DirtyAppError, DirtyError

# how often an idle thread looks at the stop flag
_TICK = 0.25


class Link(Protocol):
    def ready(self) -> None: ...
    def begin(self) -> int: ...
    def end(self, token: int) -> None: ...
    def reopen_logs(self) -> None: ...


def _log(level: int, msg: str) -> None:
    _ferricorn.log(level, msg)


class _Worker:
    def __init__(self, link: Link) -> None:
        self.link = link
        self.stopping = threading.Event()
        self.apps: dict[str, Any] = {}
        self.sockets: list[tuple[socket.socket, str]] = []

    def load(self, rank: int, apps: list[tuple[int, str, int | None]]) -> None:
        for fd, path, limit in apps:
            app = load_dirty_app(path)
            if limit is None:
                attr = getattr(type(app), "workers", None)
                limit = attr if isinstance(attr, int) else None
            if limit is not None and rank >= limit:
                continue
            app.init()
            _log(logging.INFO, f"Initialized dirty app: {path}")
            self.apps[path] = app
            sock = socket.socket(fileno=os.dup(fd))
            sock.setblocking(False)
            self.sockets.append((sock, path))

    def serve_forever(self) -> None:
        sel = selectors.DefaultSelector()
        for sock, path in self.sockets:
            sel.register(sock, selectors.EVENT_READ, path)
        try:
            while not self.stopping.is_set():
                for key, _ in sel.select(_TICK):
                    listener = key.fileobj
                    assert isinstance(listener, socket.socket)
                    try:
                        conn, _ = listener.accept()
                    except (BlockingIOError, InterruptedError):
                        continue
                    self.handle(conn, key.data)
                    break
        finally:
            sel.close()

    def handle(self, conn: socket.socket, path: str) -> None:
        conn.setblocking(True)
        try:
            request = proto.recv_frame(conn)
        except (EOFError, OSError, pickle.UnpicklingError):
            conn.close()
            return
        token = self.link.begin()
        try:
            conn.sendall(proto.ack())
            for reply in self.run(path, request):
                conn.sendall(reply)
                # a stream's timeout is per chunk: the next one starts the clock again
                self.link.end(token)
                token = self.link.begin()
        except OSError:
            pass  # the caller went away (or stopped reading a stream)
        finally:
            self.link.end(token)
            conn.close()

    def run(self, path: str, request: Any) -> Iterator[bytes]:
        """The reply frames of one call: ``ok`` or ``err``, or a stream of ``chunk`` frames
        and ``end`` when the action returns a generator (sync or async)."""
        try:
            app_path, action, args, kwargs = request
        except (TypeError, ValueError):
            yield proto.frame(("err", DirtyError("Malformed dirty request").to_dict()))
            return
        app = self.apps.get(app_path) if app_path == path else None
        if app is None:
            err = DirtyAppError(f"Dirty app not found: {app_path}", app_path=app_path)
            yield proto.frame(
                ("err", {**err.to_dict(), "error_type": "DirtyAppNotFoundError"})
            )
            return
        try:
            result = app(action, *args, **kwargs)
            if inspect.isasyncgen(result):
                result = _iterate_async(result)
            elif not inspect.isgenerator(result):
                yield proto.frame(("ok", result))
                return
            for item in result:
                yield proto.frame(("chunk", item))
            yield proto.frame(("end", None))
        except Exception as e:  # noqa: BLE001 - any app error goes back to the caller
            tb = traceback.format_exc()
            _log(logging.ERROR, f"Error executing {app_path}.{action}: {e}\n{tb}")
            err = DirtyAppError(str(e), app_path=app_path, action=action, traceback=tb)
            yield proto.frame(("err", err.to_dict()))

    def close_apps(self) -> None:
        for path, app in self.apps.items():
            try:
                app.close()
            except Exception as e:  # noqa: BLE001 - one failing close() must not skip the others
                _log(logging.ERROR, f"Error closing dirty app {path}: {e}")


def _iterate_async(agen: Any) -> Iterator[Any]:
    """An async generator's items, on a private event loop of this dirty thread."""
    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.run_until_complete(agen.aclose())
        loop.close()


def serve(
    *,
    rank: int,
    apps: list[tuple[int, str, int | None]],
    threads: int,
    link: Link,
    worker: Any = None,
    init_hook: Any = None,
) -> int:
    """Loads the apps, serves calls until TERM; returns the exit code."""
    faulthandler.enable(file=sys.stderr, all_threads=True)
    w = _Worker(link)

    def graceful(_sig: int, _frame: object) -> None:
        w.stopping.set()

    def quick(_sig: int, _frame: object) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGINT, quick)
    signal.signal(signal.SIGQUIT, quick)
    signal.signal(signal.SIGUSR1, lambda *_: link.reopen_logs())
    try:
        w.load(rank, apps)
    except Exception:  # noqa: BLE001 - reported as a boot failure (exit 3)
        _log(logging.ERROR, f"Failed to load dirty apps:\n{traceback.format_exc()}")
        return 3
    if init_hook is not None:
        init_hook(worker)
    link.ready()
    _log(
        logging.INFO,
        f"Dirty worker (pid:{os.getpid()}) ready with apps: {', '.join(w.apps) or '(none)'}",
    )
    pool = [
        threading.Thread(target=w.serve_forever, name=f"dirty-{i}", daemon=True)
        for i in range(max(threads, 1))
    ]
    for t in pool:
        t.start()
    while not w.stopping.wait(_TICK):
        pass
    for t in pool:
        t.join()
    w.close_apps()
    _log(logging.INFO, f"Dirty worker {os.getpid()} exiting")
    return 0
