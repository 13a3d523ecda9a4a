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
from collections.abc import AsyncIterator, Iterator
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


def _single(reply: Any) -> Any:
    """The result of a non-streaming call's reply frame, or its error raised."""
    kind, payload = _parse(reply)
    if kind == "ok":
        return payload
    if kind in ("chunk", "end"):
        raise DirtyError(
            "The dirty action returned a generator: call it with client.stream()"
        )
    raise DirtyError(f"Unexpected reply from the dirty worker: {kind}")


def _parse(reply: Any) -> tuple[str, Any]:
    try:
        kind, payload = reply
    except (TypeError, ValueError):
        raise DirtyProtocolError("Malformed reply from the dirty worker") from None
    if kind == "err":
        raise DirtyError.from_dict(payload)
    return str(kind), payload


def _died(app_path: str, action: str, pid: int) -> DirtyWorkerError:
    return DirtyWorkerError(
        f"Dirty worker (pid:{pid}) died while running {app_path}.{action}; "
        "the call was not retried (it may have partly run)",
        worker_id=pid,
    )


def _never_started(app_path: str, action: str) -> DirtyWorkerError:
    return DirtyWorkerError(
        f"Dirty workers kept exiting before starting {app_path}.{action} "
        f"({_ATTEMPTS} attempts; the call never ran)"
    )


class _CallBase:
    """What a call's sync and async sides share: its bounds, its ack, and what a failed wait
    for a reply frame means. The whole call is bounded by the client's timeout; each wait for
    a frame also by ``--dirty-timeout`` (the master kills the worker at the same deadline)."""

    # what a wait that ran out raises on each side: socket.timeout, asyncio.TimeoutError
    # (both TimeoutError from Python 3.11 on)
    _TIMEOUTS: tuple[type[BaseException], ...] = (socket.timeout, asyncio.TimeoutError)

    def __init__(self, client: DirtyClient, app_path: str, action: str, now: float) -> None:
        self.pool = client._pool()
        self.timeout = client.timeout
        self.app_path = app_path
        self.action = action
        self.deadline = now + client.timeout
        self.pid = 0

    def _client_timeout(self) -> DirtyTimeoutError:
        return DirtyTimeoutError(
            "Timeout waiting for dirty app response", timeout=self.timeout
        )

    def _acked(self, sock: socket.socket, head: bytes) -> bool:
        """Whether the worker started the call (its pid kept); False when it went away before
        acking. A malformed ack closes ``sock`` and raises."""
        try:
            pid = proto.started_by(head)
        except ValueError as e:
            sock.close()
            raise DirtyProtocolError(f"Bad reply from the dirty worker: {e}") from e
        if pid is None:
            return False
        self.pid = pid
        return True

    def _frame_limit(self, started: float) -> float:
        """When the wait for the next frame, begun at ``started``, gives up."""
        if self.pool.dirty_timeout:
            return min(self.deadline, started + self.pool.dirty_timeout)
        return self.deadline

    def _failed(
        self, error: Exception, elapsed: float, limit: float
    ) -> tuple[DirtyError, BaseException | None]:
        """The error (and its cause) a caller gets for ``error`` raised while waiting
        ``elapsed`` seconds for a frame whose wait was bounded by ``limit``."""
        if isinstance(error, self._TIMEOUTS):
            if limit < self.deadline:
                return _dirty_timeout(self.pool), None
            return self._client_timeout(), None
        if isinstance(error, (EOFError, ConnectionResetError)):
            # the master killed it at --dirty-timeout, or it died on its own
            if self.pool.dirty_timeout and elapsed >= self.pool.dirty_timeout - 0.05:
                return _dirty_timeout(self.pool), None
            return _died(self.app_path, self.action, self.pid), None
        if isinstance(error, OSError):
            return DirtyConnectionError(f"Communication error: {error}"), error
        # an unpicklable reply is a protocol error
        return DirtyProtocolError(f"Bad reply from the dirty worker: {error}"), error


class _Call(_CallBase):
    """One call's connection, sync side: started (acked) by a dirty worker, then read frame
    by frame."""

    def __init__(
        self, client: DirtyClient, app_path: str, action: str, request: bytes
    ) -> None:
        super().__init__(client, app_path, action, time.monotonic())
        path = self.pool.socket_for(app_path)
        for _ in range(_ATTEMPTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(path)
            except OSError as e:
                sock.close()
                raise DirtyConnectionError(
                    f"Failed to connect to the dirty pool: {e}", socket_path=path
                ) from e
            if self._start(sock, request):
                self.sock = sock
                return
            sock.close()
        raise _never_started(app_path, action)

    def _start(self, sock: socket.socket, request: bytes) -> bool:
        """Sends the call; False when the worker went away before starting it."""
        try:
            sock.settimeout(max(self.deadline - time.monotonic(), 0.001))
            sock.sendall(request)
            head = proto.recv_exact(sock, proto.ACK_SIZE)
        except socket.timeout:
            sock.close()
            raise self._client_timeout() from None
        except (BrokenPipeError, ConnectionResetError):
            return False
        except OSError as e:
            sock.close()
            raise DirtyConnectionError(f"Communication error: {e}") from e
        return self._acked(sock, head)

    def frame(self) -> Any:
        """The next reply frame."""
        started = time.monotonic()
        limit = self._frame_limit(started)
        try:
            self.sock.settimeout(max(limit - time.monotonic(), 0.001))
            return proto.recv_frame(self.sock)
        except Exception as e:
            self.close()
            error, cause = self._failed(e, time.monotonic() - started, limit)
            raise error from cause

    def close(self) -> None:
        self.sock.close()


class _AsyncCall(_CallBase):
    """``_Call`` on an asyncio loop: a non-blocking socket and the loop's ``sock_*`` calls,
    so waiting for the dirty worker never blocks the loop."""

    def __init__(
        self, client: DirtyClient, app_path: str, action: str, request: bytes
    ) -> None:
        self.loop = asyncio.get_running_loop()
        super().__init__(client, app_path, action, self.loop.time())
        self.request = request
        self.sock: socket.socket | None = None
        self.buf = bytearray()

    async def start(self) -> None:
        path = self.pool.socket_for(self.app_path)
        for _ in range(_ATTEMPTS):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.setblocking(False)
            self.buf.clear()
            try:
                head = await asyncio.wait_for(
                    self._start(sock, path), self._left(self.deadline)
                )
            except asyncio.TimeoutError:
                sock.close()
                raise self._client_timeout() from None
            except (BrokenPipeError, ConnectionResetError):
                head = b""
            except OSError as e:
                sock.close()
                raise DirtyConnectionError(
                    f"Failed to reach the dirty pool: {e}", socket_path=path
                ) from e
            if self._acked(sock, head):
                self.sock = sock
                return
            sock.close()
        raise _never_started(self.app_path, self.action)

    async def _start(self, sock: socket.socket, path: str) -> bytes:
        while True:
            try:
                sock.connect(path)
                break
            except BlockingIOError:
                # a unix socket's full backlog (every dirty worker busy for long): try again
                await asyncio.sleep(0.005)
        await self.loop.sock_sendall(sock, self.request)
        return await self._recv_exact(sock, proto.ACK_SIZE)

    async def _recv_exact(self, sock: socket.socket, n: int) -> bytes:
        """``n`` bytes (fewer at EOF), read in large pieces: the ack and a small reply
        usually come in one ``recv``, so one wake-up of the loop serves both."""
        buf = self.buf
        while len(buf) < n:
            chunk = await self.loop.sock_recv(sock, max(n - len(buf), 65536))
            if not chunk:
                break
            buf += chunk
        out = bytes(buf[:n])
        del buf[:n]
        return out

    async def _recv_frame(self, sock: socket.socket) -> Any:
        size = proto.frame_size(await self._recv_exact(sock, proto.HEAD_SIZE))
        return proto.frame_object(await self._recv_exact(sock, size), size)

    def _left(self, limit: float) -> float:
        return max(limit - self.loop.time(), 0.001)

    async def frame(self) -> Any:
        sock = self.sock
        assert sock is not None
        started = self.loop.time()
        limit = self._frame_limit(started)
        try:
            return await asyncio.wait_for(self._recv_frame(sock), self._left(limit))
        except Exception as e:
            self.close()
            error, cause = self._failed(e, self.loop.time() - started, limit)
            raise error from cause

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


class DirtyClient:
    """Calls dirty apps. ``timeout`` bounds a whole call (seconds); ``--dirty-timeout``
    bounds each wait for the dirty worker. ``socket_path``, when given, is the directory of
    the dirty sockets (ferricorn sets it for you). Every call has its own connection, so one
    client may be used from several threads at once."""

    def __init__(self, socket_path: str | None = None, timeout: float = 30.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def _pool(self) -> _Pool:
        if self.socket_path is not None and self.socket_path != (
            _pool and _pool.directory
        ):
            set_dirty_socket_path(self.socket_path)
        return _configured()

    @staticmethod
    def _request(app_path: str, action: str, args: Any, kwargs: Any) -> bytes:
        return proto.request(app_path, action, args, kwargs)

    # -- sync ---------------------------------------------------------------------------------

    def connect(self) -> None:
        """Checks the pool is configured (each call opens its own connection)."""
        self._pool()

    def execute(self, app_path: str, action: str, *args: Any, **kwargs: Any) -> Any:
        """Runs ``action`` on the dirty app ``app_path`` and returns its result.

        Raises the app's exception as ``DirtyAppError`` (its message and traceback), and
        ``DirtyTimeoutError``, ``DirtyWorkerError`` or ``DirtyConnectionError``."""
        call = _Call(
            self, app_path, action, self._request(app_path, action, args, kwargs)
        )
        try:
            return _single(call.frame())
        finally:
            call.close()

    def stream(
        self, app_path: str, action: str, *args: Any, **kwargs: Any
    ) -> Iterator[Any]:
        """Iterates over what the action yields (an action returning a generator); the
        dirty worker runs ahead of the caller by at most the socket's buffer."""
        call = _Call(
            self, app_path, action, self._request(app_path, action, args, kwargs)
        )
        try:
            while True:
                kind, payload = _parse(call.frame())
                if kind == "chunk":
                    yield payload
                elif kind == "end":
                    return
                else:  # a plain result: the action did not stream; yield it once
                    yield payload
                    return
        finally:
            call.close()

    def close(self) -> None:
        """Nothing stays open between calls; kept for gunicorn compatibility."""

    # -- async --------------------------------------------------------------------------------

    async def connect_async(self) -> None:
        self._pool()

    async def execute_async(
        self, app_path: str, action: str, *args: Any, **kwargs: Any
    ) -> Any:
        """``execute`` for an asyncio event loop: waits without blocking the loop."""
        call = _AsyncCall(
            self, app_path, action, self._request(app_path, action, args, kwargs)
        )
        try:
            await call.start()
            return _single(await call.frame())
        finally:
            call.close()

    async def stream_async(
        self, app_path: str, action: str, *args: Any, **kwargs: Any
    ) -> AsyncIterator[Any]:
        """``stream`` for an asyncio event loop (``async for chunk in ...``)."""
        call = _AsyncCall(
            self, app_path, action, self._request(app_path, action, args, kwargs)
        )
        try:
            await call.start()
            while True:
                kind, payload = _parse(await call.frame())
                if kind == "chunk":
                    yield payload
                elif kind == "end":
                    return
                else:
                    yield payload
                    return
        finally:
            call.close()

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
