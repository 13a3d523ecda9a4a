"""The client HTTP workers use to call dirty apps: ``get_dirty_client().execute(...)`` from
WSGI threads (any number at once: each call has its own connection) and
``await (await get_dirty_client_async()).execute_async(...)`` from an ASGI event loop (it never
blocks the loop). Same names and behaviour as ``gunicorn.dirty.client``.
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from . import _protocol as proto
from .errors import (
    DirtyAppNotFoundError,
    DirtyConnectionError,
    DirtyError,
    DirtyProtocolError,
    DirtyTimeoutError,
    DirtyWorkerError,
)

# a call whose dirty worker died before starting it never ran: it is sent again, this often
_ATTEMPTS = 3

if TYPE_CHECKING:
    from typing_extensions import Self


class _Pool:
    """Where the dirty sockets are, from the environment the master set before forking."""

    def __init__(self, directory: str, apps: list[str], dirty_timeout: float) -> None:
        self.directory = directory
        self.sockets = {
            app: os.path.join(directory, f"{i}.sock") for i, app in enumerate(apps)
        }
        self.dirty_timeout = dirty_timeout

    def socket_for(self, app_path: str) -> str:
        path = self.sockets.get(app_path)
        if path is None:
            raise DirtyAppNotFoundError(app_path)
        return path


_pool: _Pool | None = None


def _configured() -> _Pool:
    global _pool
    if _pool is None:
        directory = os.environ.get("FERRICORN_DIRTY_DIR")
        if not directory:
            raise DirtyError(
                "Dirty socket path not configured. "
                "Make sure dirty_workers > 0 and dirty_apps are configured."
            )
        apps = [a for a in os.environ.get("FERRICORN_DIRTY_APPS", "").split(",") if a]
        timeout = float(os.environ.get("FERRICORN_DIRTY_TIMEOUT", "0") or 0)
        _pool = _Pool(directory, apps, timeout)
    return _pool


def set_dirty_socket_path(path: str) -> None:
    """Points the clients at a dirty socket directory (ferricorn sets it for you)."""
    global _pool
    os.environ["FERRICORN_DIRTY_DIR"] = path
    _pool = None


def _result(reply: Any) -> Any:
    try:
        ok, payload = reply
    except (TypeError, ValueError):
        raise DirtyProtocolError("Malformed reply from the dirty worker") from None
    if ok:
        return payload
    raise DirtyError.from_dict(payload)


def _died(app_path: str, action: str, pid: int) -> DirtyWorkerError:
    return DirtyWorkerError(
        f"Dirty worker (pid:{pid}) died while running {app_path}.{action}; "
        "the call was not retried (it may have partly run)",
        worker_id=pid,
    )


class DirtyClient:
    """Calls dirty apps. ``timeout`` bounds a whole call (seconds); ``--dirty-timeout``
    bounds its run in the dirty worker."""

    def __init__(self, socket_path: str | None = None, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._lock = threading.Lock()

    def _pool(self) -> _Pool:
        if self.socket_path is not None and self.socket_path != (
            _pool and _pool.directory
        ):
            set_dirty_socket_path(self.socket_path)
        return _configured()

    # -- sync ---------------------------------------------------------------------------------

    def connect(self) -> None:
        """Checks the pool is configured (each call opens its own connection)."""
        self._pool()

    def execute(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """Runs ``action`` on the dirty app ``app_path`` and returns its result.

        Raises the app's exception as ``DirtyAppError`` (its message and traceback), and
        ``DirtyTimeoutError``, ``DirtyWorkerError`` or ``DirtyConnectionError``."""
        pool = self._pool()
        path = pool.socket_for(app_path)
        request = proto.frame((app_path, action, args, kwargs))
        deadline = time.monotonic() + self.timeout
        for _ in range(_ATTEMPTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                try:
                    sock.connect(path)
                except OSError as e:
                    raise DirtyConnectionError(
                        f"Failed to connect to the dirty pool: {e}", socket_path=path
                    ) from e
                done, reply = self._call(
                    sock, request, deadline, pool, app_path, action
                )
                if done:
                    return _result(reply)
            finally:
                sock.close()
        raise DirtyWorkerError(
            f"Dirty workers kept exiting before starting {app_path}.{action} "
            f"({_ATTEMPTS} attempts; the call never ran)"
        )

    def _call(
        self,
        sock: socket.socket,
        request: bytes,
        deadline: float,
        pool: _Pool,
        app_path: str,
        action: str,
    ) -> tuple[bool, Any]:
        """(True, reply), or (False, None) when the worker died before starting the call."""
        try:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            sock.sendall(request)
            head = proto.recv_exact(sock, proto.ACK_SIZE)
            if len(head) < proto.ACK_SIZE:
                return False, None
            pid = proto.parse_ack(head)
            started = time.monotonic()
            limit = deadline
            if pool.dirty_timeout:
                limit = min(deadline, started + pool.dirty_timeout)
            sock.settimeout(max(limit - time.monotonic(), 0.001))
            try:
                return True, proto.recv_frame(sock)
            except EOFError:
                if (
                    pool.dirty_timeout
                    and time.monotonic() - started >= pool.dirty_timeout - 0.05
                ):
                    raise _dirty_timeout(pool) from None
                raise _died(app_path, action, pid) from None
            except socket.timeout:
                if limit < deadline:
                    raise _dirty_timeout(pool) from None
                raise
        except socket.timeout:
            raise DirtyTimeoutError(
                "Timeout waiting for dirty app response", timeout=self.timeout
            ) from None
        except (BrokenPipeError, ConnectionResetError):
            return False, None
        except ValueError as e:
            raise DirtyProtocolError(f"Bad reply from the dirty worker: {e}") from e
        except OSError as e:
            raise DirtyConnectionError(f"Communication error: {e}") from e

    def close(self) -> None:
        """Nothing stays open between calls; kept for gunicorn compatibility."""

    def stream(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        raise DirtyError("Streaming dirty calls are not supported by ferricorn yet")

    # -- async --------------------------------------------------------------------------------

    async def connect_async(self) -> None:
        self._pool()

    async def execute_async(
        self, app_path: str, action: str, *args: Any, **kwargs: Any
    ) -> Any:
        """``execute`` for an asyncio event loop: waits without blocking the loop."""
        pool = self._pool()
        path = pool.socket_for(app_path)
        request = proto.frame((app_path, action, args, kwargs))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        for _ in range(_ATTEMPTS):
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_unix_connection(path),
                    max(deadline - loop.time(), 0.001),
                )
            except asyncio.TimeoutError:
                raise DirtyTimeoutError(
                    "Timeout connecting to the dirty pool", self.timeout
                ) from None
            except OSError as e:
                raise DirtyConnectionError(
                    f"Failed to connect to the dirty pool: {e}", socket_path=path
                ) from e
            try:
                writer.write(request)
                try:
                    head = await asyncio.wait_for(
                        reader.readexactly(proto.ACK_SIZE),
                        max(deadline - loop.time(), 0.001),
                    )
                except (
                    asyncio.IncompleteReadError,
                    ConnectionResetError,
                    BrokenPipeError,
                ):
                    continue
                pid = proto.parse_ack(head)
                started = loop.time()
                limit = deadline
                if pool.dirty_timeout:
                    limit = min(deadline, started + pool.dirty_timeout)
                try:
                    reply = await asyncio.wait_for(
                        proto.read_frame_async(reader), max(limit - loop.time(), 0.001)
                    )
                except asyncio.TimeoutError:
                    if limit < deadline:
                        raise _dirty_timeout(pool) from None
                    raise
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    if (
                        pool.dirty_timeout
                        and loop.time() - started >= pool.dirty_timeout - 0.05
                    ):
                        raise _dirty_timeout(pool) from None
                    raise _died(app_path, action, pid) from None
                return _result(reply)
            except asyncio.TimeoutError:
                raise DirtyTimeoutError(
                    "Timeout waiting for dirty app response", timeout=self.timeout
                ) from None
            except ValueError as e:
                raise DirtyProtocolError(f"Bad reply from the dirty worker: {e}") from e
            except OSError as e:
                raise DirtyConnectionError(f"Communication error: {e}") from e
            finally:
                writer.close()
        raise DirtyWorkerError(
            f"Dirty workers kept exiting before starting {app_path}.{action} "
            f"({_ATTEMPTS} attempts; the call never ran)"
        )

    def stream_async(
        self, app_path: str, action: str, *args: Any, **kwargs: Any
    ) -> Any:
        raise DirtyError("Streaming dirty calls are not supported by ferricorn yet")

    async def close_async(self) -> None:
        """Nothing stays open between calls; kept for gunicorn compatibility."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close_async()


def _dirty_timeout(pool: _Pool) -> DirtyTimeoutError:
    return DirtyTimeoutError("Worker timeout", pool.dirty_timeout)


_thread_local = threading.local()
_async_client: contextvars.ContextVar[DirtyClient] = contextvars.ContextVar(
    "dirty_client"
)


def get_dirty_client(timeout: float = 30.0) -> DirtyClient:
    """This thread's client (WSGI app threads)."""
    client: DirtyClient | None = getattr(_thread_local, "client", None)
    if client is None:
        _configured()
        client = DirtyClient(timeout=timeout)
        _thread_local.client = client
    return client


async def get_dirty_client_async(timeout: float = 30.0) -> DirtyClient:
    """This context's client (ASGI apps)."""
    try:
        return _async_client.get()
    except LookupError:
        _configured()
        client = DirtyClient(timeout=timeout)
        _async_client.set(client)
        return client


def close_dirty_client() -> None:
    client: DirtyClient | None = getattr(_thread_local, "client", None)
    if client is not None:
        client.close()
        _thread_local.client = None


async def close_dirty_client_async() -> None:
    try:
        await _async_client.get().close_async()
    except LookupError:
        pass
