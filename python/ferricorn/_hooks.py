"""The objects gunicorn's server hooks receive: ``server``, ``worker``, ``req`` and ``resp``.

Real configuration files use a small part of gunicorn's Arbiter and Worker classes
(``server.log.info(...)``, ``worker.pid``, ``server.cfg.workers``...). These proxies offer
that part and nothing else. The Rust core builds them, fills in the values and calls the
hooks; nothing here runs on the request path unless ``pre_request``/``post_request`` is set.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

from ferricorn import _ferricorn

# the error log's levels, as _ferricorn.log numbers them
_DEBUG, _INFO, _WARNING, _ERROR, _CRITICAL = 10, 20, 30, 40, 50


class Log:
    """gunicorn's ``server.log`` / ``worker.log``: writes to ferricorn's error log."""

    def _write(self, level: int, msg: object, args: tuple[Any, ...]) -> None:
        text = str(msg)
        if args:
            try:
                text = text % args
            except (TypeError, ValueError):
                text = f"{text} {args!r}"
        _ferricorn.log(level, text)

    def debug(self, msg: object, *args: Any, **_kw: Any) -> None:
        self._write(_DEBUG, msg, args)

    def info(self, msg: object, *args: Any, **_kw: Any) -> None:
        self._write(_INFO, msg, args)

    def warning(self, msg: object, *args: Any, **_kw: Any) -> None:
        self._write(_WARNING, msg, args)

    warn = warning

    def error(self, msg: object, *args: Any, **_kw: Any) -> None:
        self._write(_ERROR, msg, args)

    def critical(self, msg: object, *args: Any, **_kw: Any) -> None:
        self._write(_CRITICAL, msg, args)

    def exception(self, msg: object, *args: Any, **_kw: Any) -> None:
        tb = traceback.format_exc()
        self._write(_ERROR, f"{msg}\n{tb.rstrip()}", args)

    def log(self, lvl: int, msg: object, *args: Any, **_kw: Any) -> None:
        self._write(lvl, msg, args)

    def reopen_files(self) -> None:
        """USR1 reopens the log files in Rust; nothing to do from a hook."""


LOG = Log()


class Config:
    """``server.cfg``: every setting by name, as resolved at boot (or at the last HUP)."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"<Config {len(self.__dict__)} settings>"


class Server:
    """The master (gunicorn's Arbiter) as hooks see it."""

    def __init__(
        self, cfg: dict[str, Any], proc_name: str, app_uri: str, num_workers: int
    ) -> None:
        self.log = LOG
        self.cfg = Config(cfg)
        self.pid = os.getpid()
        self.proc_name = proc_name
        self.app_uri = app_uri
        self.num_workers = num_workers
        self.master_name = "Master"

    def __repr__(self) -> str:
        return f"<ferricorn.Server pid={self.pid}>"


class Worker:
    """One worker process as hooks see it; in the master, ``pid`` is set once forked."""

    def __init__(self, age: int, ppid: int, cfg: Config) -> None:
        self.age = age
        self.ppid = ppid
        self.pid: int | None = None
        self.cfg = cfg
        self.log = LOG
        self.alive = True
        self.booted = False
        self.aborted = False

    def __repr__(self) -> str:
        return f"<ferricorn.Worker pid={self.pid} age={self.age}>"


class Request:
    """The parsed request, as gunicorn's ``req`` in pre_request/post_request."""

    def __init__(
        self,
        method: str,
        uri: str,
        path: str,
        query: str,
        version: tuple[int, int],
        headers: list[tuple[str, str]],
        scheme: str,
    ) -> None:
        self.method = method
        self.uri = uri
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.scheme = scheme

    def __repr__(self) -> str:
        return f"<ferricorn.Request {self.method} {self.uri}>"


class Response:
    """What the app answered, as gunicorn's ``resp`` in post_request (None if no answer)."""

    def __init__(
        self, status: str, headers: list[tuple[str, str]], sent: int | None
    ) -> None:
        self.status = status
        try:
            self.status_code: int | None = int(status.split(None, 1)[0])
        except (ValueError, IndexError):
            self.status_code = None
        self.headers = headers
        self.sent = sent

    def __repr__(self) -> str:
        return f"<ferricorn.Response {self.status}>"


def make_response(status: str, headers: Any) -> Response:
    """From what the app passed to start_response (validated already)."""
    return Response(str(status), [(str(k), str(v)) for k, v in headers or ()], None)
