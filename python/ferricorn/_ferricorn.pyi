"""Type stubs for ferricorn's Rust extension (``ferricorn._ferricorn``)."""

from collections.abc import Iterator
from typing import Any, final

__version__: str
__all__ = [
    "AsgiBridge",
    "ClientDisconnected",
    "DirtyLink",
    "ErrorStream",
    "FileWrapper",
    "HttpCycle",
    "Input",
    "StartResponse",
    "WebSocketCycle",
    "__version__",
    "log",
    "run",
]

def run(argv: list[str]) -> int:
    """Run the server with a full argv (program name first); return the exit code."""

def log(level: int, msg: str) -> None:
    """Write ``msg`` to the error log at a ``logging`` level (CRITICAL logs as ERROR)."""

@final
class Input:
    """``wsgi.input``: the request body, streamed from the connection."""

    def read(self, size: int | None = None) -> bytes: ...
    def readline(self, size: int | None = None) -> bytes: ...
    def readlines(self, hint: int | None = None) -> list[bytes]: ...
    def __iter__(self) -> Iterator[bytes]: ...
    def __next__(self) -> bytes: ...

@final
class StartResponse:
    """The ``start_response`` callable handed to WSGI apps."""

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: Any = None, /
    ) -> Any: ...
    def write(self, data: bytes) -> None: ...

@final
class ErrorStream:
    """``wsgi.errors``: text written here goes to the error log."""

    def write(self, text: str) -> int: ...
    def writelines(self, lines: list[str]) -> None: ...
    def flush(self) -> None: ...

@final
class FileWrapper:
    """``wsgi.file_wrapper``: sent with sendfile(2) when the file has a descriptor."""

    def __new__(cls, filelike: Any, blksize: int = 8192) -> FileWrapper: ...
    def __iter__(self) -> FileWrapper: ...
    def __next__(self) -> bytes: ...
    def close(self) -> None: ...

class ClientDisconnected(OSError):
    """Raised by an ASGI ``send()`` after the client went away (ASGI spec 2.4)."""

@final
class AsgiBridge:
    """An ASGI worker's link between its I/O thread and the event loop (see ``_asgi.py``)."""

    def fileno(self) -> int: ...
    def configure(
        self,
        event_loop: Any,
        app: Any,
        runner: Any,
        state: dict[str, Any] | None,
        done: Any,
    ) -> None: ...
    def start(self) -> None: ...
    def poll(self) -> None: ...
    def tick(self) -> None: ...

@final
class HttpCycle:
    """One HTTP request's ``receive`` and ``send``; each returns an asyncio future."""

    def receive(self) -> Any: ...
    def send(self, message: Any) -> Any: ...
    def finish(self, exc: Any = None) -> None: ...

@final
class WebSocketCycle:
    """One WebSocket's ``receive`` and ``send``; each returns an asyncio future."""

    def receive(self) -> Any: ...
    def send(self, message: Any) -> Any: ...
    def finish(self, exc: Any = None) -> None: ...

@final
class DirtyLink:
    """A dirty worker's heartbeat slot: what its serving loop tells the master."""

    def ready(self) -> None: ...
    def begin(self) -> int: ...
    def end(self, token: int) -> None: ...
    def reopen_logs(self) -> None: ...
