"""The stash: tables of key → value shared by every HTTP and dirty worker, kept in memory by
one stash process the master forks and supervises (``_stash_server``). The API of
``gunicorn.dirty.stash``: module functions on a per-thread client, ``StashClient`` and the
dict-like ``StashTable``. Values are pickled; keys are strings (``keys(pattern)`` globs them).
If the stash process dies it is restarted empty, as gunicorn's stash dies with its arbiter.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from . import _protocol as proto
from .errors import DirtyError

if TYPE_CHECKING:
    from typing_extensions import Self


class StashError(DirtyError):
    """A stash operation failed."""


class StashTableNotFoundError(StashError):
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name
        super().__init__(f"Stash table not found: {table_name}")


class StashKeyNotFoundError(StashError):
    def __init__(self, table_name: str, key: Any) -> None:
        self.table_name = table_name
        self.key = key
        super().__init__(f"Key not found in {table_name}: {key}")


_stash_socket_path: str | None = None


def set_stash_socket_path(path: str) -> None:
    global _stash_socket_path
    _stash_socket_path = path


def get_stash_socket_path() -> str:
    if _stash_socket_path is not None:
        return _stash_socket_path
    directory = os.environ.get("FERRICORN_DIRTY_DIR")
    if not directory:
        raise StashError(
            "Stash socket path not configured. "
            "Make sure dirty_workers > 0 and dirty_apps are configured."
        )
    return os.path.join(directory, "stash.sock")


class StashClient:
    """One connection to the stash process, kept open and used by one call at a time."""

    def __init__(self, socket_path: str | None = None, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def _connect(self) -> socket.socket:
        if self._sock is None:
            path = self.socket_path or get_stash_socket_path()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError as e:
                sock.close()
                raise StashError(f"Failed to connect to the stash: {e}") from e
            sock.settimeout(self.timeout)
            self._sock = sock
        return self._sock

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _execute(self, op: str, table: str, key: Any = None, value: Any = None) -> Any:
        with self._lock:
            # a stash restarted since the last call closed our connection: reconnect once
            for attempt in (0, 1):
                sock = self._connect()
                try:
                    sock.sendall(proto.frame((op, table, key, value)))
                    ok, result = proto.recv_frame(sock)
                    break
                except (EOFError, BrokenPipeError, ConnectionResetError) as e:
                    self._close()
                    if attempt:
                        raise StashError(f"Stash operation failed: {e!r}") from e
                except OSError as e:
                    self._close()
                    raise StashError(f"Stash operation failed: {e}") from e
        if ok:
            return result
        kind, message = result
        if kind == "table":
            raise StashTableNotFoundError(table)
        if kind == "key":
            raise StashKeyNotFoundError(table, key)
        raise StashError(message)

    def put(self, table: str, key: str, value: Any) -> None:
        self._execute("put", table, key, value)

    def get(self, table: str, key: str, default: Any = None) -> Any:
        try:
            return self._execute("get", table, key)
        except StashKeyNotFoundError:
            return default

    def delete(self, table: str, key: str) -> bool:
        return bool(self._execute("delete", table, key))

    def keys(self, table: str, pattern: str | None = None) -> list[str]:
        return list(self._execute("keys", table, pattern))

    def clear(self, table: str) -> None:
        self._execute("clear", table)

    def info(self, table: str) -> dict[str, Any]:
        return dict(self._execute("info", table))

    def ensure(self, table: str) -> None:
        self._execute("ensure", table)

    def exists(self, table: str, key: str | None = None) -> bool:
        return bool(self._execute("exists", table, key))

    def delete_table(self, table: str) -> None:
        self._execute("delete_table", table)

    def tables(self) -> list[str]:
        return list(self._execute("tables", ""))

    def table(self, name: str) -> StashTable:
        return StashTable(self, name)

    def close(self) -> None:
        with self._lock:
            self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StashTable:
    """A table as a dict: ``t[key]``, ``t[key] = v``, ``del t[key]``, ``in``, ``len``."""

    def __init__(self, client: StashClient, name: str) -> None:
        self._client = client
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    def __getitem__(self, key: str) -> Any:
        return self._client._execute("get", self._name, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._client.put(self._name, key, value)

    def __delitem__(self, key: str) -> None:
        if not self._client.delete(self._name, key):
            raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return self._client.exists(self._name, key)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._client.keys(self._name))

    def __len__(self) -> int:
        return int(self._client.info(self._name).get("size", 0))

    def get(self, key: str, default: Any = None) -> Any:
        return self._client.get(self._name, key, default)

    def keys(self, pattern: str | None = None) -> list[str]:
        return self._client.keys(self._name, pattern)

    def clear(self) -> None:
        self._client.clear(self._name)

    def items(self) -> list[tuple[str, Any]]:
        return [(k, self._client.get(self._name, k)) for k in self.keys()]

    def values(self) -> list[Any]:
        return [v for _, v in self.items()]


_thread_local = threading.local()


def _client() -> StashClient:
    client: StashClient | None = getattr(_thread_local, "client", None)
    if client is None:
        client = StashClient()
        _thread_local.client = client
    return client


def put(table: str, key: str, value: Any) -> None:
    _client().put(table, key, value)


def get(table: str, key: str, default: Any = None) -> Any:
    return _client().get(table, key, default)


def delete(table: str, key: str) -> bool:
    return _client().delete(table, key)


def keys(table: str, pattern: str | None = None) -> list[str]:
    return _client().keys(table, pattern)


def clear(table: str) -> None:
    _client().clear(table)


def info(table: str) -> dict[str, Any]:
    return _client().info(table)


def ensure(table: str) -> None:
    _client().ensure(table)


def exists(table: str, key: str | None = None) -> bool:
    return _client().exists(table, key)


def delete_table(table: str) -> None:
    _client().delete_table(table)


def tables() -> list[str]:
    return _client().tables()


def table(name: str) -> StashTable:
    return _client().table(name)
