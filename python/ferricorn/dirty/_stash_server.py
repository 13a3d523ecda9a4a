"""The stash process: holds the stash tables in memory and answers ``stash.StashClient``.

The master forks it beside the dirty workers (src/master/dirty.rs) and restarts it if it
dies. Clients keep one connection per thread; each connection gets a thread here, and one
lock makes every operation atomic.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import selectors
import signal
import socket
import threading
from typing import Any

from .. import _ferricorn
from . import _protocol as proto

_TICK = 0.25
_MISSING = object()


class Tables:
    def __init__(self) -> None:
        self.data: dict[str, dict[Any, Any]] = {}
        self.lock = threading.Lock()

    def apply(self, op: str, table: str, key: Any, value: Any) -> tuple[bool, Any]:
        with self.lock:
            t = self.data.get(table)
            if op == "put":
                self.data.setdefault(table, {})[key] = value
                return True, True
            if op == "get":
                found = _MISSING if t is None else t.get(key, _MISSING)
                return (False, ("key", "")) if found is _MISSING else (True, found)
            if op == "delete":
                return True, t is not None and t.pop(key, _MISSING) is not _MISSING
            if op == "keys":
                names = [] if t is None else list(t)
                if key:
                    names = [k for k in names if fnmatch.fnmatchcase(str(k), key)]
                return True, names
            if op == "clear":
                if t is not None:
                    t.clear()
                return True, True
            if op == "info":
                if t is None:
                    return False, ("table", "")
                return True, {"size": len(t), "table": table}
            if op == "ensure":
                self.data.setdefault(table, {})
                return True, True
            if op == "delete_table":
                return True, self.data.pop(table, None) is not None
            if op == "tables":
                return True, list(self.data)
            if op == "exists":
                return True, t is not None and (key is None or key in t)
            return False, ("other", f"Unknown stash operation: {op}")


def _serve_conn(conn: socket.socket, tables: Tables) -> None:
    with conn:
        while True:
            try:
                op, table, key, value = proto.recv_frame(conn)
            except (EOFError, OSError, ValueError):
                return
            except Exception as e:  # noqa: BLE001 - an unpicklable value: answer it, keep going
                reply = (False, ("other", f"Bad stash request: {e}"))
            else:
                reply = tables.apply(op, table, key, value)
            try:
                conn.sendall(proto.frame(reply))
            except OSError:
                return


def serve(*, fd: int) -> int:
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
    listener = socket.socket(fileno=os.dup(fd))
    listener.setblocking(False)
    tables = Tables()
    _ferricorn.log(logging.INFO, f"Stash server (pid:{os.getpid()}) ready")
    with selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        while not stopping.is_set():
            if not sel.select(_TICK):
                continue
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                continue
            conn.setblocking(True)
            threading.Thread(
                target=_serve_conn, args=(conn, tables), daemon=True
            ).start()
    return 0
