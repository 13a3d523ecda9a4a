"""HTTP/2 over cleartext (prior knowledge): WSGI and ASGI apps served unchanged through h2.

Clients: httpx with ``http1=False, http2=True`` (prior knowledge on an http:// URL), curl
``--http2-prior-knowledge``, the ``h2`` state machine on a raw socket where a test needs
frames (SETTINGS, RST_STREAM, GOAWAY), and h2load when installed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest
from conftest import run_ferricorn

H2 = ("--http", "auto")
WSGI = "h2_apps:wsgi"
ASGI = "h2_apps:asgi"


def client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, http1=False, http2=True, timeout=30)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pattern(n: int) -> bytes:
    block = bytes(range(256)) * 256
    return block * (n // len(block)) + block[: n % len(block)]


class RawH2:
    """An HTTP/2 client connection driven frame by frame (for SETTINGS, resets, GOAWAY)."""

    def __init__(self, server) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=10)
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True)
        )
        self.conn.initiate_connection()
        self.flush()
        self.events: list[h2.events.Event] = []
        # every frame as (type, flags, stream, payload): python-h2 stops taking frames after a
        # GOAWAY, while a graceful server goes on answering the streams already open
        self.frames: list[tuple[int, int, int, bytes]] = []
        self._raw = b""
        self.h2_closed = False

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, path: str) -> int:
        sid = self.conn.get_next_available_stream_id()
        headers = [
            (":method", "GET"),
            (":path", path),
            (":scheme", "http"),
            (":authority", "t"),
        ]
        self.conn.send_headers(sid, headers, end_stream=True)
        self.flush()
        return sid

    def pump(self, until, timeout: float = 10.0) -> None:
        """Reads frames until ``until(events)`` holds."""
        deadline = time.monotonic() + timeout
        while not until(self.events):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; events so far: {self.events}")
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed; events: {self.events}")
            self._split_frames(data)
            if self.h2_closed:
                continue
            try:
                for ev in self.conn.receive_data(data):
                    self.events.append(ev)
                    if isinstance(ev, h2.events.DataReceived):
                        self.conn.acknowledge_received_data(
                            ev.flow_controlled_length, ev.stream_id
                        )
            except h2.exceptions.ProtocolError:
                self.h2_closed = True
            self.flush()

    def _split_frames(self, data: bytes) -> None:
        self._raw += data
        while len(self._raw) >= 9:
            length = int.from_bytes(self._raw[:3], "big")
            if len(self._raw) < 9 + length:
                return
            ftype, flags = self._raw[3], self._raw[4]
            stream = int.from_bytes(self._raw[5:9], "big") & 0x7FFFFFFF
            self.frames.append((ftype, flags, stream, self._raw[9 : 9 + length]))
            self._raw = self._raw[9 + length :]

    def body(self, sid: int) -> bytes:
        return b"".join(
            e.data
            for e in self.events
            if isinstance(e, h2.events.DataReceived) and e.stream_id == sid
        )

    def status(self, sid: int) -> str:
        for e in self.events:
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                return dict(e.headers)[b":status"].decode()
        raise AssertionError(f"no response on stream {sid}: {self.events}")


def ended(sid: int):
    return lambda evs: any(
        isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
        and e.stream_id == sid
        for e in evs
    )


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_environ_and_scope_say_http2_with_query_cookies_and_host(serve, app):
    server = serve(app, *H2)
    with client(server) as c:
        r = c.get(
            "/env?x=1&y=%20two",
            headers=[("cookie", "a=1"), ("x-other", "o"), ("cookie", "b=2")],
        )
    assert r.http_version == "HTTP/2"
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["server"] == "ferricorn"
    env = r.json()
    if app == WSGI:
        # gunicorn's gthread worker: "HTTP/%s" % version with version (2, 0)
        assert env["protocol"] == "HTTP/2.0"
        assert env["http_version"] == "2"
    else:
        assert env["http_version"] == "2"
    assert env["path"] == "/env"
    assert env["query"] == "x=1&y=%20two"
    assert env["cookie"] == "a=1; b=2"  # RFC 9113 §8.2.3
    assert env["host"] == f"{server.host}:{server.port}"
    assert env["scheme"] == "http"


def test_flask_app_over_h2(serve):
    server = serve("flaskapp:app", *H2)
    with client(server) as c:
        r = c.get("/")
        assert (r.http_version, r.status_code, r.text) == (
            "HTTP/2",
            200,
            "hello from flask",
        )
        r = c.get("/new-place?ref=h2")
        assert r.text == "arrived from h2"


def test_fastapi_app_over_h2(serve):
    server = serve("asgi_fastapi:app", *H2)
    with client(server) as c:
        r = c.get("/items/5?q=x")
        assert r.http_version == "HTTP/2"
        assert r.status_code == 200
        assert r.json()["item_id"] == 5


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
@pytest.mark.parametrize("app", ["flaskapp:app", "asgi_fastapi:app"])
def test_curl_prior_knowledge(serve, app):
    features = subprocess.run(
        ["curl", "--version"], check=False, capture_output=True, text=True
    ).stdout
    if "HTTP2" not in features:
        pytest.skip("this curl was built without HTTP/2")
    server = serve(app, *H2)
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--http2-prior-knowledge",
            "-o",
            "-",
            "-w",
            "\n%{http_version} %{http_code}",
            server.url + "/",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.endswith("\n2 200")


@pytest.mark.parametrize("app,threads", [(WSGI, "4"), (ASGI, "1")])
def test_fifty_concurrent_streams_on_one_connection(serve, app, threads):
    server = serve(app, *H2, "--threads", threads)

    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=server.url, http1=False, http2=True, timeout=30
        ) as c:
            return await asyncio.gather(*(c.get(f"/env?i={i}") for i in range(50)))

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 50
    assert [r.json()["query"] for r in responses] == [f"i={i}" for i in range(50)]
    assert all(r.http_version == "HTTP/2" for r in responses)


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_five_megabytes_up_and_down_through_flow_control(serve, app):
    server = serve(app, *H2)
    data = pattern(5 * 1024 * 1024 + 7)
    with client(server) as c:
        r = c.post("/upload", content=data)
        assert r.status_code == 200
        assert json.loads(r.text) == {"size": len(data), "sha256": sha(data)}
        # no Content-Length: DATA frames until END_STREAM
        r = c.post("/upload", content=iter([data[:1000000], data[1000000:]]))
        assert json.loads(r.text) == {"size": len(data), "sha256": sha(data)}
        r = c.get(f"/download?n={len(data)}")
        assert r.status_code == 200
        assert sha(r.content) == sha(data)


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_streaming_response_arrives_in_chunks(serve, app):
    server = serve(app, *H2)
    with client(server) as c, c.stream("GET", "/stream") as r:
        assert r.status_code == 200
        assert "connection" not in r.headers  # h2 forbids connection-specific fields
        body = b"".join(r.iter_bytes())
    assert body == b"".join(f"chunk {i}\n".encode() for i in range(5))


def test_limits_earn_their_statuses(serve):
    server = serve(
        WSGI,
        *H2,
        "--limit-request-line",
        "100",
        "--limit-request-fields",
        "10",
        "--limit-request-field_size",
        "200",
        "--limit-request-body",
        "1000",
    )
    with client(server) as c:
        assert c.get("/" + "a" * 200).status_code == 414
        many = [(f"x-h{i}", "v") for i in range(20)]
        assert c.get("/", headers=many).status_code == 431
        assert c.get("/", headers={"x-big": "v" * 300}).status_code == 431
        assert c.post("/upload", content=b"x" * 2000).status_code == 413
        # no Content-Length: the body is counted as it arrives
        r = c.post("/upload", content=iter([b"x" * 800, b"x" * 800]))
        assert r.status_code == 413
        # the connection still serves
        assert c.get("/hello").text == "hello"


def test_max_concurrent_streams_is_advertised(serve):
    server = serve(
        WSGI,
        *H2,
        "--http2-max-concurrent-streams",
        "7",
        "--http2-max-frame-size",
        "32768",
    )
    raw = RawH2(server)
    raw.pump(
        lambda evs: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in evs)
    )
    changed = next(
        e for e in raw.events if isinstance(e, h2.events.RemoteSettingsChanged)
    )
    settings = {k: v.new_value for k, v in changed.changed_settings.items()}
    assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == 7
    assert settings[h2.settings.SettingCodes.MAX_FRAME_SIZE] == 32768


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_app_exception_is_a_500_and_the_connection_serves_on(serve, app):
    server = serve(app, *H2)
    with client(server) as c:
        r = c.get("/boom")
        assert r.status_code == 500
        assert c.get("/hello").text == "hello"
    server.wait_for_log("boom on purpose")


def test_client_reset_is_http_disconnect_for_asgi(serve, tmp_path: Path):
    server = serve(ASGI, *H2)
    marker = tmp_path / "marker"
    raw = RawH2(server)
    sid = raw.request(f"/wait-disconnect?marker={marker}")
    time.sleep(0.3)
    raw.conn.reset_stream(sid, error_code=8)  # CANCEL
    raw.flush()
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "disconnected"


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_term_lets_an_in_flight_stream_finish_and_sends_goaway(serve, app):
    server = serve(app, *H2)
    raw = RawH2(server)
    sid = raw.request("/slow?s=1.5")
    time.sleep(0.4)
    server.proc.send_signal(signal.SIGTERM)
    DATA, HEADERS, GOAWAY, END_STREAM = 0, 1, 7, 1

    def done(_evs) -> bool:
        return any(t == GOAWAY for t, *_ in raw.frames) and any(
            s == sid and t in (DATA, HEADERS) and f & END_STREAM
            for t, f, s, _ in raw.frames
        )

    raw.pump(done)
    goaways = [p for t, _, _, p in raw.frames if t == GOAWAY]
    assert all(
        int.from_bytes(p[4:8], "big") == 0 for p in goaways
    )  # NO_ERROR: graceful
    head = next(p for t, _, s, p in raw.frames if t == HEADERS and s == sid)
    assert (b":status", b"200") in [
        (bytes(k), bytes(v)) for k, v in raw.conn.decoder.decode(head, raw=True)
    ]
    assert (
        b"".join(p for t, _, s, p in raw.frames if t == DATA and s == sid)
        == b"slow done"
    )
    # then the connection closes (a timeout here would raise)
    raw.sock.settimeout(5)
    while raw.sock.recv(65536):
        pass


def test_http1_is_still_served_on_the_same_port_in_auto(serve):
    server = serve(WSGI, *H2)
    r = httpx.get(server.url + "/env")
    assert r.http_version == "HTTP/1.1"
    assert r.json()["protocol"] == "HTTP/1.1"


def test_gunicorn_spelling_prior_knowledge_only_refuses_http1(serve):
    server = serve(
        WSGI, "--http-protocols", "h2,h1", "--http2-cleartext", "prior-knowledge"
    )
    with client(server) as c:
        assert c.get("/hello").text == "hello"
    r = httpx.get(server.url + "/hello")
    assert r.status_code == 400


def test_http2_is_off_by_default(serve):
    server = serve(WSGI)
    with pytest.raises(httpx.HTTPError), client(server) as c:
        c.get("/hello")
    assert httpx.get(server.url + "/hello").text == "hello"


def test_conflicting_spellings_are_a_config_error():
    out = run_ferricorn(
        "--http", "1", "--http2-cleartext", "prior-knowledge", "h2_apps:wsgi"
    )
    assert out.returncode != 0
    assert "--http" in out.stderr and "--http2-cleartext" in out.stderr
    assert "Listening at" not in out.stderr


@pytest.mark.skipif(
    shutil.which("h2load") is None,
    reason="h2load (package nghttp2-client) is not installed",
)
def test_h2load_run_has_no_failed_requests(serve):
    server = serve(WSGI, *H2)
    out = subprocess.run(
        ["h2load", "-n", "2000", "-c", "4", "-m", "10", server.url + "/hello"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2000 succeeded, 0 failed, 0 errored" in out.stdout, out.stdout


def test_static_health_and_access_log_over_h2(serve, tmp_path: Path):
    (tmp_path / "site").mkdir()
    page = pattern(200_000)
    (tmp_path / "site" / "big.bin").write_bytes(page)
    server = serve(
        WSGI,
        *H2,
        "--static",
        f"/files={tmp_path / 'site'}",
        "--health-path",
        "/healthz",
        "--access-logfile",
        "-",
    )
    with client(server) as c:
        r = c.get("/files/big.bin")
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(page))
        assert sha(r.content) == sha(page)
        assert c.head("/files/big.bin").content == b""
        assert c.get("/files/missing").status_code == 404
        r = c.get("/healthz")
        assert (r.status_code, r.text) == (200, "OK\n")
        assert c.get("/hello?from=h2").text == "hello"
    deadline = time.monotonic() + 10
    while not any("/hello?from=h2" in line for line in server.stdout_lines):
        assert time.monotonic() < deadline, server.stdout_lines
        time.sleep(0.05)
    line = next(line for line in server.stdout_lines if "/hello?from=h2" in line)
    assert '"GET /hello?from=h2 HTTP/2.0" 200 5' in line
    assert any(
        '"GET /files/big.bin HTTP/2.0" 200 200000' in x for x in server.stdout_lines
    )


def test_requests_past_worker_connections_get_503(serve):
    server = serve(ASGI, *H2, "--worker-connections", "2")

    async def main() -> list[int]:
        async with httpx.AsyncClient(
            base_url=server.url, http1=False, http2=True, timeout=30
        ) as c:
            slow = [c.get("/slow?s=1") for _ in range(2)]
            later = asyncio.sleep(0.3)
            results = asyncio.gather(*slow)
            await later
            extra = await c.get("/hello")
            return [*(r.status_code for r in await results), extra.status_code]

    assert asyncio.run(main()) == [200, 200, 503]


def test_a_slow_reader_pushes_back_on_the_client(serve):
    """The app sleeps without reading its body: the client's window must run dry instead of
    the server buffering the upload."""
    server = serve(ASGI, *H2)
    raw = RawH2(server)
    raw.pump(
        lambda evs: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in evs)
    )
    sid = raw.conn.get_next_available_stream_id()
    headers = [
        (":method", "POST"),
        (":path", "/slow?s=3"),
        (":scheme", "http"),
        (":authority", "t"),
    ]
    raw.conn.send_headers(sid, headers)
    raw.flush()
    sent = 0
    raw.sock.settimeout(0.5)
    stalled_since = time.monotonic()
    while time.monotonic() - stalled_since < 1.0 and sent < 4 * 1024 * 1024:
        room = min(
            raw.conn.local_flow_control_window(sid),
            raw.conn.max_outbound_frame_size,
            16384,
        )
        if room > 0:
            raw.conn.send_data(sid, b"x" * room)
            raw.flush()
            sent += room
            stalled_since = time.monotonic()
            continue
        try:
            data = raw.sock.recv(65536)
        except TimeoutError:
            continue
        for ev in raw.conn.receive_data(data):
            raw.events.append(ev)
        raw.flush()
    # the initial 64 KiB window plus at most what was merged into the first piece
    assert sent <= 65535 + 256 * 1024, sent


def test_an_idle_connection_gets_goaway_after_keepalive(serve):
    server = serve(WSGI, *H2, "--keep-alive", "1")
    raw = RawH2(server)
    sid = raw.request("/hello")
    raw.pump(ended(sid))
    started = time.monotonic()
    goaway = 7
    raw.pump(lambda _evs: any(t == goaway for t, *_ in raw.frames))
    assert 0.5 < time.monotonic() - started < 5


@pytest.mark.parametrize(
    "app",
    ["wsgi_apps:raise_after_block_app", "wsgi_apps:raise_after_block_with_length_app"],
)
def test_app_failure_mid_body_resets_the_stream(serve, app):
    server = serve(app, *H2)
    raw = RawH2(server)
    sid = raw.request("/")
    raw.pump(ended(sid))
    reset = next(e for e in raw.events if isinstance(e, h2.events.StreamReset))
    assert reset.stream_id == sid
    assert reset.error_code == 2  # INTERNAL_ERROR: the body is known to be incomplete
    assert raw.body(sid) == b"partial body\n"
    assert not any(isinstance(e, h2.events.StreamEnded) for e in raw.events)
    # the connection serves on
    sid2 = raw.request("/")
    raw.pump(ended(sid2))
    assert raw.status(sid2) == "200"
