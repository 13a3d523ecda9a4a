"""The ASGI worker's event loop: lifespan, and one task per request.

The Rust side (``ferricorn._ferricorn.AsgiBridge``) owns the sockets and HTTP; it wakes this
loop through one file descriptor, and its ``poll`` starts a task per request with
``run_http`` below. This module only decides what runs on the loop, in which order.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ferricorn import _ferricorn


def _log(level: int, msg: str, exc: BaseException | None = None) -> None:
    """To the server's error log (not Python logging, which the app may configure)."""
    if exc is not None:
        lines = traceback.format_exception(type(exc), exc, exc.__traceback__)
        msg += "\n" + "".join(lines).rstrip()
    _ferricorn.log(level, msg)


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The exit code that tells the master the app cannot boot (it stops instead of respawning).
EXIT_APP_LOAD = 3


def is_asgi3(app: Any) -> bool:
    """An ASGI 3 app is awaited with (scope, receive, send): its call is a coroutine function."""
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app) or inspect.ismethod(app):
        return inspect.iscoroutinefunction(app)
    call = getattr(app, "__call__", None)  # noqa: B004 - we want the bound __call__
    return inspect.iscoroutinefunction(call)


def is_asgi2_class(app: Any) -> bool:
    """The common ASGI 2 shape: a class built with the scope, whose instances are awaited."""
    call = getattr(app, "__call__", None)  # noqa: B004 - the class's own __call__, not callable()
    return inspect.isclass(app) and inspect.iscoroutinefunction(call)


def explain_interface(app: Any, wanted: str) -> tuple[str, str]:
    """'wsgi', 'asgi3' or 'asgi2' for ``app`` under ``--interface wanted``, and why in words
    (the startup log says both)."""
    if wanted == "wsgi":
        return "wsgi", "--interface wsgi"
    if is_asgi3(app):
        plain = inspect.isfunction(app) or inspect.ismethod(app)
        what = "it is" if plain else "its __call__ is"
        return "asgi3", f"{what} a coroutine function"
    if wanted == "asgi":
        return "asgi2", "--interface asgi, and its call is not a coroutine function"
    if is_asgi2_class(app):
        return "asgi2", "a class whose instances are awaited"
    return "wsgi", "its call is not a coroutine function; --interface auto"


def asgi2_to_3(app: Any) -> ASGIApp:
    """Wraps an ASGI 2 double callable: ``app(scope)`` returns ``instance(receive, send)``."""

    async def asgi3(scope: Scope, receive: Receive, send: Send) -> None:
        await app(scope)(receive, send)

    return asgi3


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise RuntimeError(
                    "--asgi-loop uvloop: uvloop is not installed (pip install uvloop), "
                    "or use --asgi-loop asyncio"
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def run_http(app: ASGIApp, scope: Scope, cycle: Any) -> None:
    """One request: the app's coroutine, then the cycle's verdict on how it ended."""
    try:
        await app(scope, cycle.receive, cycle.send)
    except BaseException as exc:  # noqa: BLE001 - every failure ends the response
        cycle.finish(exc)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
    else:
        cycle.finish()


class Lifespan:
    """The lifespan protocol, run as one task for the worker's whole life."""

    def __init__(self, app: ASGIApp, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = True
        self.failed: str | None = None
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def startup(self) -> bool:
        """Runs the app's startup; False when the worker must not serve."""
        self._task = asyncio.get_running_loop().create_task(self._main())
        await self._inbox.put({"type": "lifespan.startup"})
        await self._started.wait()
        if self.failed is not None:
            _log(logging.ERROR, f"Application startup failed. Exiting.{_detail(self.failed)}")
            return False
        if self.supported:
            _log(logging.INFO, "Application startup complete.")
        return True

    async def shutdown(self) -> None:
        if not self.supported or self._task is None or self._task.done():
            return
        await self._inbox.put({"type": "lifespan.shutdown"})
        await self._stopped.wait()
        if self.failed is not None:
            _log(logging.ERROR, f"Application shutdown failed.{_detail(self.failed)}")
        else:
            _log(logging.INFO, "Application shutdown complete.")

    async def _main(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:  # noqa: BLE001 - reported below, never fatal to the loop
            if not self._started.is_set() and self.mode == "auto":
                self.supported = False
                _log(logging.INFO, "ASGI 'lifespan' protocol appears unsupported.")
            else:
                self.failed = self.failed or repr(exc)
                _log(logging.ERROR, "Exception in 'lifespan' protocol", exc)
        finally:
            if not self._started.is_set() and self.mode == "on" and self.failed is None:
                self.failed = "the app returned before completing startup"
            self._started.set()
            self._stopped.set()

    async def _receive(self) -> Message:
        return await self._inbox.get()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self._started.set()
        elif kind == "lifespan.startup.failed":
            self.failed = message.get("message", "") or "lifespan.startup.failed"
            self._started.set()
        elif kind == "lifespan.shutdown.complete":
            self._stopped.set()
        elif kind == "lifespan.shutdown.failed":
            self.failed = message.get("message", "") or "lifespan.shutdown.failed"
            self._stopped.set()
        else:
            raise RuntimeError(f"unexpected lifespan message {kind!r}")


def _detail(text: str) -> str:
    return f" ({text})" if text else ""


async def _main(bridge: Any, app: ASGIApp, lifespan: str) -> int:
    loop = asyncio.get_running_loop()
    span = Lifespan(app, lifespan) if lifespan != "off" else None
    if span is not None and not await span.startup():
        return EXIT_APP_LOAD
    state = span.state if span is not None and span.supported else None
    done = loop.create_future()
    bridge.configure(loop, app, run_http, state, done)
    loop.add_reader(bridge.fileno(), bridge.poll)
    ticker = loop.create_task(_tick(bridge))
    bridge.start()
    bridge.poll()
    await done
    loop.remove_reader(bridge.fileno())
    ticker.cancel()
    # every connection is closed: requests still running have nobody to answer
    current = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not current and t is not span_task(span)]
    for task in rest:
        task.cancel()
    if rest:
        await asyncio.wait(rest, timeout=5)
    if span is not None:
        await span.shutdown()
    return 0


def span_task(span: Lifespan | None) -> asyncio.Task[None] | None:
    return None if span is None else span._task


async def _tick(bridge: Any) -> None:
    while True:
        bridge.tick()
        await asyncio.sleep(1.0)


def serve(bridge: Any, app: Any, *, lifespan: str, loop: str) -> int:
    """Runs the worker's event loop until it stops; returns its exit code."""
    if not is_asgi3(app):
        app = asgi2_to_3(app)
    try:
        ev = new_loop(loop)
    except RuntimeError as exc:
        _log(logging.ERROR, str(exc))
        return EXIT_APP_LOAD
    asyncio.set_event_loop(ev)
    try:
        return ev.run_until_complete(_main(bridge, app, lifespan))
    finally:
        try:
            ev.run_until_complete(ev.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            ev.close()
            sys.stderr.flush()
