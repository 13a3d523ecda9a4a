"""Errors raised by ``ferricorn.dirty``: the class names, attributes and ``to_dict`` /
``from_dict`` round trip of ``gunicorn.dirty.errors``, so callers can catch the same types."""

from __future__ import annotations

from typing import Any


class DirtyError(Exception):
    """Base class of every dirty pool error."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        self.message = message
        self.details: dict[str, Any] = details or {}
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message}: {self.details}" if self.details else self.message

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_type": type(self).__name__,
            "message": self.message,
            "details": self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DirtyError:
        """Rebuilds an error sent across the socket as the class it was raised as."""
        kind = _CLASSES.get(str(data.get("error_type", "DirtyError")), DirtyError)
        err = Exception.__new__(kind)
        err.message = str(data.get("message", "Unknown error"))
        err.details = dict(data.get("details") or {})
        Exception.__init__(err, err.message)
        for attr in _ATTRS.get(kind, ()):
            setattr(err, attr, err.details.get(attr))
        return err


class DirtyTimeoutError(DirtyError):
    """A call did not finish in time (the client's timeout or ``--dirty-timeout``)."""

    def __init__(
        self, message: str = "Operation timed out", timeout: float | None = None
    ) -> None:
        super().__init__(message, {"timeout": timeout} if timeout else {})
        self.timeout = timeout


class DirtyConnectionError(DirtyError):
    """The dirty pool's socket could not be reached."""

    def __init__(
        self, message: str = "Connection failed", socket_path: str | None = None
    ) -> None:
        super().__init__(message, {"socket_path": socket_path} if socket_path else {})
        self.socket_path = socket_path


class DirtyWorkerError(DirtyError):
    """The dirty worker failed outside the app (e.g. it died while running the call)."""

    def __init__(
        self, message: str, worker_id: int | None = None, traceback: str | None = None
    ) -> None:
        details: dict[str, Any] = {}
        if worker_id is not None:
            details["worker_id"] = worker_id
        if traceback:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.worker_id = worker_id
        self.traceback = traceback


class DirtyAppError(DirtyError):
    """The dirty app raised; ``message`` is the exception's text, ``traceback`` its trace."""

    def __init__(
        self,
        message: str,
        app_path: str | None = None,
        action: str | None = None,
        traceback: str | None = None,
    ) -> None:
        details: dict[str, Any] = {}
        if app_path:
            details["app_path"] = app_path
        if action:
            details["action"] = action
        if traceback:
            details["traceback"] = traceback
        super().__init__(message, details)
        self.app_path = app_path
        self.action = action
        self.traceback = traceback


class DirtyAppNotFoundError(DirtyAppError):
    """No dirty app is configured under this import path."""

    def __init__(self, app_path: str) -> None:
        super().__init__(f"Dirty app not found: {app_path}", app_path=app_path)


class DirtyNoWorkersAvailableError(DirtyError):
    """No dirty worker serves this app (kept for gunicorn compatibility; ferricorn queues the
    call until a worker is back instead)."""

    def __init__(self, app_path: str, message: str | None = None) -> None:
        super().__init__(
            message or f"No workers available for app: {app_path}",
            {"app_path": app_path},
        )
        self.app_path = app_path


class DirtyProtocolError(DirtyError):
    """A malformed message on the dirty socket."""

    def __init__(
        self, message: str = "Protocol error", raw_data: object = None
    ) -> None:
        details: dict[str, Any] = {}
        if raw_data is not None:
            shown = raw_data[:100].hex() if isinstance(raw_data, bytes) else raw_data
            details["raw_data"] = str(shown)[:200]
        super().__init__(message, details)


_CLASSES: dict[str, type[DirtyError]] = {
    c.__name__: c
    for c in (
        DirtyError,
        DirtyTimeoutError,
        DirtyConnectionError,
        DirtyWorkerError,
        DirtyAppError,
        DirtyAppNotFoundError,
        DirtyNoWorkersAvailableError,
        DirtyProtocolError,
    )
}

_ATTRS: dict[type[DirtyError], tuple[str, ...]] = {
    DirtyTimeoutError: ("timeout",),
    DirtyConnectionError: ("socket_path",),
    DirtyWorkerError: ("worker_id", "traceback"),
    DirtyAppError: ("app_path", "action", "traceback"),
    DirtyAppNotFoundError: ("app_path", "action", "traceback"),
    DirtyNoWorkersAvailableError: ("app_path",),
}
