"""``DirtyApp``, the base class of apps served by dirty workers, and loading them from an
import path (``module.path:ClassName``), as ``gunicorn.dirty.app`` does."""

from __future__ import annotations

import importlib
from typing import Any

from .errors import DirtyAppError, DirtyAppNotFoundError


class DirtyApp:
    """An app loaded once per dirty worker and kept in memory between calls.

    ``init()`` runs once in the dirty worker after the instance is made (load models,
    open pools there: it runs after the fork); each ``client.execute(path, action, ...)``
    calls ``self(action, *args, **kwargs)``, which by default calls the public method named
    ``action``; ``close()`` runs when the worker stops. Set the class attribute ``workers``
    to N to have only N dirty workers load the app (``--dirty-app module:Class:N`` overrides
    it). With ``--dirty-threads`` > 1, calls run concurrently: guard shared state.
    """

    workers: int | None = None

    def init(self) -> None:
        """Called once, in the dirty worker, before it serves calls."""

    def __call__(self, action: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self, action, None) if not action.startswith("_") else None
        if method is None:
            raise ValueError(f"Unknown action: {action}")
        return method(*args, **kwargs)

    def close(self) -> None:
        """Called once when the dirty worker stops."""


def parse_dirty_app_spec(spec: str) -> tuple[str, int | None]:
    """``"module:Class"`` → (path, None); ``"module:Class:N"`` → (path, N)."""
    parts = spec.split(":")
    if len(parts) == 2 and all(parts):
        return spec, None
    if len(parts) == 3 and parts[0] and parts[1]:
        try:
            n = int(parts[2])
        except ValueError:
            raise DirtyAppError(
                f"Invalid worker count in spec: {spec}. Expected an integer",
                app_path=spec,
            ) from None
        if n < 1:
            raise DirtyAppError(
                f"Invalid worker count in spec: {spec}. Worker count must be >= 1",
                app_path=spec,
            )
        return f"{parts[0]}:{parts[1]}", n
    raise DirtyAppError(
        f"Invalid import path format: {spec}. "
        "Expected 'module.path:ClassName' or 'module.path:ClassName:N'",
        app_path=spec,
    )


def _load_class(import_path: str) -> type:
    module_path, sep, name = import_path.rpartition(":")
    if not sep or not module_path:
        raise DirtyAppError(
            f"Invalid import path format: {import_path}. Expected 'module.path:ClassName'",
            app_path=import_path,
        )
    try:
        module = importlib.import_module(module_path)
    except ImportError as e:
        raise DirtyAppNotFoundError(import_path) from e
    cls = getattr(module, name, None)
    if cls is None:
        raise DirtyAppNotFoundError(import_path)
    if not isinstance(cls, type):
        raise DirtyAppError(f"{import_path} is not a class", app_path=import_path)
    return cls


def get_app_workers_attribute(import_path: str) -> int | None:
    """The class's ``workers`` attribute, without making an instance."""
    value = getattr(_load_class(import_path), "workers", None)
    return value if isinstance(value, int) else None


def load_dirty_app(import_path: str) -> Any:
    """Imports the class and makes an instance (``init()`` is the caller's to call)."""
    cls = _load_class(import_path)
    try:
        app = cls()
    except Exception as e:
        raise DirtyAppError(
            f"Failed to instantiate {import_path}: {e}", app_path=import_path
        ) from e
    for method in ("init", "__call__", "close"):
        if not callable(getattr(app, method, None)):
            raise DirtyAppError(
                f"{import_path} is missing required method: {method}",
                app_path=import_path,
            )
    return app


def load_dirty_apps(import_paths: list[str]) -> dict[str, Any]:
    return {p: load_dirty_app(p) for p in import_paths}
