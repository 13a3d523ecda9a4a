"""Raw-socket HTTP/1.x client pieces for the protocol tests.

The tests talk bytes to the server on purpose: a real client library would fix up, refuse or
hide exactly the things these tests look at (framing, pipelining, interim responses, closes).

- :class:`RawConnection` sends bytes and parses responses one by one off a buffered socket,
  following RFC 9112 §6.3 message framing (no body / chunked / Content-Length / until close).
- :class:`CallLog` reads the event file written by ``tests/apps/echo.py``.
- :class:`ServerPool` starts one ferricorn per distinct command line and shares it across a
  module, so that a parametrized corpus does not pay one start-up per case.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path

IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$"
)


class ConnectionClosed(AssertionError):
    """The server closed (or reset) the connection before a complete response arrived."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    framing: str = "none"  # none | length | chunked | close
    trailers: list[tuple[str, str]] = field(default_factory=list)
    raw_head: bytes = b""

    def header(self, name: str) -> str | None:
        """The single value of header ``name`` (case-insensitive); fails if it is repeated."""
        values = self.headers_named(name)
        assert len(values) <= 1, f"header {name!r} repeated: {values!r}"
        return values[0] if values else None

    def headers_named(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def has_token(self, name: str, token: str) -> bool:
        """Whether a comma-list header such as Connection carries ``token``."""
        return any(
            t.strip().lower() == token.lower()
            for v in self.headers_named(name)
            for t in v.split(",")
        )

    def json(self) -> dict:
        return json.loads(self.body)

    def __repr__(self) -> str:
        body = self.body if len(self.body) < 300 else self.body[:300] + b"..."
        return f"<Response {self.status} {self.framing} {self.raw_head!r} body={body!r}>"


class RawConnection:
    """A client socket plus a read buffer, reading one HTTP/1.x response at a time."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.buf = b""
        self.eof = False
        self.reset = False

    @classmethod
    def to(cls, server, timeout: float = 10.0) -> RawConnection:
        return cls(server.connect(timeout=timeout), timeout)

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        """Half-close: the server sees EOF after what was sent, as gunicorn's parser tests do."""
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    # -- reading -------------------------------------------------------------------------

    def _recv(self, timeout: float) -> bool:
        """Read more into the buffer; False on EOF (a reset counts as EOF, noted in ``reset``)."""
        if self.eof:
            return False
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            self.reset = True
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def _read_until(self, marker: bytes, deadline: float, what: str) -> bytes:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                out, self.buf = self.buf[: i + len(marker)], self.buf[i + len(marker) :]
                return out
            if not self._recv(max(0.01, deadline - time.monotonic())):
                raise ConnectionClosed(f"connection closed while reading {what}; got {self.buf!r}")

    def _read_exact(self, n: int, deadline: float, what: str) -> bytes:
        while len(self.buf) < n:
            if not self._recv(max(0.01, deadline - time.monotonic())):
                raise ConnectionClosed(
                    f"connection closed while reading {what}: wanted {n} bytes, got {self.buf!r}"
                )
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method: str = "GET", timeout: float | None = None) -> Response:
        """Parse the next response; 1xx interim responses are returned on their own."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            return self._read_response(method, deadline)
        except TimeoutError:
            raise AssertionError(
                f"no complete response within {timeout or self.timeout}s; buffered {self.buf!r}"
            ) from None

    def _read_response(self, method: str, deadline: float) -> Response:
        head = self._read_until(b"\r\n\r\n", deadline, "the response head")
        lines = head[:-4].split(b"\r\n")
        m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
        assert m, f"bad status line {lines[0]!r} in {head!r}"
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            assert sep and name and name == name.strip(), f"bad response header line {line!r}"
            headers.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
        resp = Response(
            version=m.group(1).decode(),
            status=int(m.group(2)),
            reason=(m.group(3) or b"").decode("latin-1"),
            headers=headers,
            raw_head=head,
        )
        if method.upper() == "HEAD" or resp.status < 200 or resp.status in (204, 304):
            return resp
        codings = [
            t.strip().lower() for v in resp.headers_named("Transfer-Encoding") for t in v.split(",")
        ]
        if codings and codings[-1] == "chunked":
            resp.framing = "chunked"
            resp.body, resp.trailers = self._read_chunked(deadline)
        elif codings:
            resp.framing = "close"
            resp.body = self._read_to_close(deadline)
        elif resp.headers_named("Content-Length"):
            values = set(resp.headers_named("Content-Length"))
            assert len(values) == 1, f"conflicting Content-Length in response: {values}"
            resp.framing = "length"
            resp.body = self._read_exact(int(values.pop()), deadline, "the response body")
        else:
            resp.framing = "close"
            resp.body = self._read_to_close(deadline)
        return resp

    def _read_chunked(self, deadline: float) -> tuple[bytes, list[tuple[str, str]]]:
        body = b""
        while True:
            size_line = self._read_until(b"\r\n", deadline, "a chunk size")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            body += self._read_exact(size, deadline, "chunk data")
            assert self._read_exact(2, deadline, "chunk CRLF") == b"\r\n", (
                "chunk data not followed by CRLF"
            )
        trailers = []
        while True:
            line = self._read_until(b"\r\n", deadline, "the trailer section")
            if line == b"\r\n":
                return body, trailers
            name, _, value = line[:-2].partition(b":")
            trailers.append((name.decode("latin-1"), value.strip().decode("latin-1")))

    def _read_to_close(self, deadline: float) -> bytes:
        while self._recv(max(0.01, deadline - time.monotonic())):
            pass
        out, self.buf = self.buf, b""
        return out

    def read_responses(self, n: int, methods: list[str] | None = None) -> list[Response]:
        return [self.read_response((methods or [])[i] if methods else "GET") for i in range(n)]

    def closed_within(self, timeout: float = 5.0) -> bool:
        """True once the server closed the connection (EOF or reset) within ``timeout``.

        Any bytes that arrive meanwhile stay in :attr:`buf` for the caller to inspect.
        """
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self._recv(max(0.01, deadline - time.monotonic())):
                    return True
        except TimeoutError:
            return False
        return False

    def quiet_for(self, seconds: float) -> bytes:
        """Wait ``seconds`` and return whatever arrived (b"" when nothing did)."""
        before = len(self.buf)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and self._recv(
                max(0.01, deadline - time.monotonic())
            ):
                pass
        except TimeoutError:
            pass
        return self.buf[before:]


def request(
    method: str = "GET",
    target: str = "/",
    *,
    version: str = "HTTP/1.1",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    host: str | None = "test.local",
) -> bytes:
    """Build request bytes; adds Host (unless ``host=None``) and nothing else."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines += [f"{k}: {v}" for k, v in headers or []]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts: bytes) -> bytes:
    """Encode ``parts`` as a chunked body, ending with the last-chunk and an empty trailer."""
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"


def assert_date_and_server(resp: Response) -> None:
    date = resp.header("Date")
    assert date is not None, f"no Date header in {resp.raw_head!r}"
    assert IMF_FIXDATE.match(date), f"Date {date!r} is not an IMF-fixdate"
    skew = abs(time.time() - parsedate_to_datetime(date).timestamp())
    assert skew < 120, f"Date {date!r} is {skew:.0f}s away from now"
    assert resp.header("Server") == "ferricorn", f"Server header in {resp.raw_head!r}"


class CallLog:
    """The events ``tests/apps/echo.py`` appends when ``FERRICORN_TEST_CALL_LOG`` is set."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.touch()

    def events(self) -> list[dict]:
        text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def mark(self) -> int:
        return len(self.events())

    def since(self, mark: int) -> list[dict]:
        return self.events()[mark:]


class ServerPool:
    """Start one ferricorn per (app, args) on first use and stop them all at the end."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.env = env or {}
        self.servers: dict[tuple[str, ...], object] = {}

    def get(self, app: str, *args: str):
        from conftest import APPS, Server

        key = (app, *args)
        server = self.servers.get(key)
        if server is None or server.proc.poll() is not None:
            server = Server(["-b", "127.0.0.1:0", *args, app], APPS, self.env)
            self.servers[key] = server
            server.wait_ready()
        return server

    def stop_all(self) -> None:
        for server in self.servers.values():
            server.stop()
        self.servers.clear()
