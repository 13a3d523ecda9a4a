"""Dirty workers: a pool of processes beside the HTTP workers for long or heavy calls (model
loading, inference), with a shared key-value stash. The public API of ``gunicorn.dirty``:
switching is ``from gunicorn.dirty import ...`` → ``from ferricorn.dirty import ...``.

The pool itself is forked and supervised by ferricorn's master (``--dirty-app``,
``--dirty-workers``); this package is the app base class, the client and the stash client.
"""

from . import stash
from .app import DirtyApp
from .client import (
    DirtyClient,
    close_dirty_client,
    close_dirty_client_async,
    get_dirty_client,
    get_dirty_client_async,
    set_dirty_socket_path,
)
from .errors import (
    DirtyAppError,
    DirtyAppNotFoundError,
    DirtyConnectionError,
    DirtyError,
    DirtyNoWorkersAvailableError,
    DirtyProtocolError,
    DirtyTimeoutError,
    DirtyWorkerError,
)
from .stash import (
    StashClient,
    StashError,
    StashKeyNotFoundError,
    StashTable,
    StashTableNotFoundError,
)


class DirtyArbiter:
    """gunicorn's dirty arbiter process class. ferricorn's master supervises the dirty
    workers itself (in Rust); this name exists so imports keep working."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise DirtyError(
            "ferricorn's master runs the dirty pool; DirtyArbiter is not used"
        )


__all__ = [
    "DirtyApp",
    "DirtyAppError",
    "DirtyAppNotFoundError",
    "DirtyArbiter",
    "DirtyClient",
    "DirtyConnectionError",
    "DirtyError",
    "DirtyNoWorkersAvailableError",
    "DirtyProtocolError",
    "DirtyTimeoutError",
    "DirtyWorkerError",
    "StashClient",
    "StashError",
    "StashKeyNotFoundError",
    "StashTable",
    "StashTableNotFoundError",
    "close_dirty_client",
    "close_dirty_client_async",
    "get_dirty_client",
    "get_dirty_client_async",
    "set_dirty_socket_path",
    "stash",
]
