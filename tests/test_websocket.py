"""ASGI WebSockets (tests/apps/asgi_ws.py) driven with the ``websockets`` client (sync API).

Covers the handshake (accept, subprotocols, denial with 403 or with the
``websocket.http.response`` extension), text and binary messages, large and fragmented
messages, ``--websocket-max-message-size`` (close 1009) and close codes and reasons both ways.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import time
from urllib.parse import quote

import httpx
import pytest
from helpers_asgi import ASGI, Events, untag

websockets = pytest.importorskip("websockets", reason="the websockets client is not installed")
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

APP = "asgi_ws:app"


@pytest.fixture
def events(tmp_path):
    return Events(tmp_path)


@pytest.fixture
def ws_server(serve, events):
    return serve(APP, *ASGI, env=events.env)


def ws_url(server, path: str) -> str:
    return f"ws://{server.host}:{server.port}{path}"


def raw_handshake(server) -> socket.socket:
    """Open a WebSocket on ``/echo`` by hand (RFC 6455 §1.3's sample key); return the socket
    positioned after the 101 response head."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(
        b"GET /echo HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    data = b""
    deadline = time.monotonic() + 5
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        data += sock.recv(1)  # byte by byte: leave any frame after the head in the socket
    head = data[:-4]
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    return sock


def test_text_messages_are_echoed(ws_server):
    with connect(ws_url(ws_server, "/echo")) as ws:
        for text in ("hello", "ünïcode ✓", ""):
            ws.send(text)
            assert ws.recv(timeout=10) == text


def test_binary_messages_are_echoed_as_binary(ws_server):
    with connect(ws_url(ws_server, "/echo")) as ws:
        payload = bytes(range(256))
        ws.send(payload)
        got = ws.recv(timeout=10)
    assert isinstance(got, bytes)
    assert got == payload


def test_large_message_of_four_mib_round_trips(ws_server):
    payload = os.urandom(4 * 1024 * 1024)
    with connect(ws_url(ws_server, "/echo"), max_size=None) as ws:
        ws.send(payload)
        assert ws.recv(timeout=30) == payload


def test_fragmented_message_reaches_the_app_as_one_message(ws_server):
    with connect(ws_url(ws_server, "/echo")) as ws:
        ws.send(iter(["frag", "mented ", "text"]))
        assert ws.recv(timeout=10) == "fragmented text"
        ws.send(iter([b"\x00\x01", b"\x02"]))
        assert ws.recv(timeout=10) == b"\x00\x01\x02"


def test_many_messages_keep_their_order(ws_server):
    with connect(ws_url(ws_server, "/echo")) as ws:
        for i in range(200):
            ws.send(f"m{i}")
        assert [ws.recv(timeout=10) for _ in range(200)] == [f"m{i}" for i in range(200)]


def test_client_ping_is_answered_with_a_pong(ws_server):
    with connect(ws_url(ws_server, "/echo")) as ws:
        pong = ws.ping(b"are you there")
        assert pong.wait(5), "no pong within 5 s"


def frame(opcode: int, payload: bytes, *, masked: bool = True, fin: bool = True) -> bytes:
    """One client frame (payload < 126 bytes)."""
    head = bytes([(0x80 if fin else 0) | opcode, (0x80 if masked else 0) | len(payload)])
    if not masked:
        return head + payload
    key = b"\x01\x02\x03\x04"
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_close_code(sock: socket.socket, timeout: float = 5) -> int | None:
    """Read frames until a close frame; its status code (None if the TCP connection just ends)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
            while len(data) >= 2:
                opcode, length = data[0] & 0x0F, data[1] & 0x7F
                if len(data) < 2 + length:
                    break
                payload, data = data[2 : 2 + length], data[2 + length :]
                if opcode == 0x8:
                    return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
    except (ConnectionResetError, TimeoutError):
        pass
    return None


def test_text_frame_with_invalid_utf8_is_closed_with_1007(ws_server):
    sock = raw_handshake(ws_server)
    sock.sendall(frame(0x1, b"ok \xff\xfe"))
    assert read_close_code(sock) == 1007
    sock.close()


def test_unmasked_client_frame_is_closed_with_1002(ws_server):
    sock = raw_handshake(ws_server)
    sock.sendall(frame(0x1, b"hello", masked=False))
    assert read_close_code(sock) == 1002
    sock.close()


def test_websocket_scope_has_type_path_query_headers_and_subprotocols(ws_server):
    with connect(
        ws_url(ws_server, "/scope?room=a%20b"),
        subprotocols=["x.one", "x.two"],
        additional_headers={"X-Token": "Abc"},
    ) as ws:
        scope = untag(json.loads(ws.recv(timeout=10)))
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["scheme"] == "ws"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == b"/scope"
    assert scope["query_string"] == b"room=a%20b"
    assert scope["root_path"] == ""
    assert scope["http_version"] in ("1.1",)
    assert list(scope["subprotocols"]) == ["x.one", "x.two"]
    headers = [tuple(h) for h in scope["headers"]]
    assert (b"x-token", b"Abc") in headers
    assert all(n == n.lower() for n, _ in headers)
    assert scope["client"][0] == "127.0.0.1"
    assert tuple(scope["server"]) == ("127.0.0.1", ws_server.port)
    assert scope["state"] == {"ws_marker": "from-lifespan"}


def test_subprotocol_chosen_by_the_app_is_negotiated(ws_server):
    with connect(ws_url(ws_server, "/subprotocol"), subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert json.loads(ws.recv(timeout=10)) == {"offered": ["chat.v1", "chat.v2"]}


def test_no_subprotocol_is_sent_when_the_app_chooses_none(ws_server):
    with connect(ws_url(ws_server, "/subprotocol"), subprotocols=["other"]) as ws:
        assert ws.subprotocol is None
        assert ws.response.headers.get("Sec-WebSocket-Protocol") is None


def test_accept_headers_from_the_app_are_in_the_handshake_response(ws_server):
    with connect(ws_url(ws_server, "/accept-headers")) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers["x-accepted-by"] == "app"
        assert ws.recv(timeout=10) == "hello"


def test_close_before_accept_denies_the_handshake_with_403(ws_server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(ws_server, "/deny"), open_timeout=10)
    assert info.value.response.status_code == 403


def test_http_response_extension_denies_with_the_apps_status_headers_and_body(ws_server, events):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(ws_server, "/deny-response"), open_timeout=10)
    response = info.value.response
    assert events.named("no-http-response-extension") == [], "extension not advertised"
    assert response.status_code == 401
    assert response.headers["x-denied-by"] == "app"
    assert response.body == b"go away"


@pytest.mark.parametrize(("code", "reason"), [(1000, ""), (4001, "custom reason"), (1011, "ü")])
def test_server_close_code_and_reason_reach_the_client(ws_server, code, reason):
    with connect(ws_url(ws_server, f"/close?code={code}&reason={quote(reason)}")) as ws:
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == code
    assert info.value.rcvd.reason == reason


def test_client_close_code_and_reason_reach_the_app(ws_server, events):
    with connect(ws_url(ws_server, "/echo")) as ws:
        ws.send("ping")
        assert ws.recv(timeout=10) == "ping"
        ws.close(code=4321, reason="client leaving")
    (disconnect,) = events.wait_for("disconnect")
    assert disconnect["code"] == 4321
    # the disconnect "reason" key: in the spec's websocket.disconnect, and in Uvicorn since 0.30.2
    assert disconnect["reason"] == "client leaving"


def test_abrupt_client_disconnect_is_delivered_as_1006(ws_server, events):
    with connect(ws_url(ws_server, "/echo")) as ws:
        ws.send("x")
        assert ws.recv(timeout=10) == "x"
        ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
    (disconnect,) = events.wait_for("disconnect")
    assert disconnect["code"] == 1006


def test_app_raising_before_accept_fails_the_handshake_with_500(ws_server):
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url(ws_server, "/raise-before-accept"), open_timeout=10)
    assert info.value.response.status_code == 500
    ws_server.wait_for_log(r"websocket app failed before accept")


def test_app_raising_after_accept_closes_with_1011(ws_server):
    with connect(ws_url(ws_server, "/raise-after-accept")) as ws:
        ws.send("trigger")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1011
    ws_server.wait_for_log(r"websocket app failed after accept")


def test_graceful_stop_closes_open_websockets_with_going_away_or_restart(serve):
    server = serve(APP, *ASGI, "--graceful-timeout", "5")
    with connect(ws_url(server, "/echo")) as ws:
        ws.send("before")
        assert ws.recv(timeout=10) == "before"
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None, "closed without a close frame"
    assert info.value.rcvd.code in (1001, 1012), info.value.rcvd  # uvicorn sends 1012
    assert server.proc.wait(10) == 0
    assert time.monotonic() - started < 5, "a websocket held the stop to the graceful timeout"


def test_websocket_send_after_the_client_left_raises_oserror(ws_server, events):
    """ASGI spec 2.4: send() on a closed connection raises an OSError subclass."""
    with connect(ws_url(ws_server, "/send-forever")) as ws:
        assert ws.recv(timeout=10) == "tick"
        ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
    (stopped,) = events.wait_for("send-forever-stopped", timeout=25)
    assert stopped["how"] == "send raised", stopped
    assert stopped["is_oserror"], stopped


def test_message_over_max_size_closes_with_1009(serve):
    server = serve(APP, *ASGI, "--websocket-max-message-size", "1024")
    with connect(ws_url(server, "/echo")) as ws:
        ws.send(b"a" * 1024)
        assert ws.recv(timeout=10) == b"a" * 1024
        ws.send(b"a" * 2048)
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


def test_fragmented_message_over_max_size_closes_with_1009(serve):
    server = serve(APP, *ASGI, "--websocket-max-message-size", "1024")
    with connect(ws_url(server, "/echo")) as ws:
        ws.send(iter([b"a" * 600, b"b" * 600]))
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd is not None
    assert info.value.rcvd.code == 1009


def test_server_pings_at_the_configured_interval(serve):
    """With ``--ws-ping-interval 1`` the server sends pings; a raw client sees them."""
    server = serve(APP, *ASGI, "--ws-ping-interval", "1", "--ws-ping-timeout", "5")
    sock = raw_handshake(server)
    rest = b""
    deadline = time.monotonic() + 4
    while len(rest) < 2 and time.monotonic() < deadline:
        rest += sock.recv(4096)
    sock.close()
    assert rest[:1] == b"\x89", f"expected a ping frame (0x89), got {rest[:8]!r}"


def test_client_that_never_answers_pings_is_closed_after_the_ping_timeout(serve):
    server = serve(APP, *ASGI, "--ws-ping-interval", "1", "--ws-ping-timeout", "1")
    sock = raw_handshake(server)
    # never answer a ping: the server must give up on the connection within a few seconds
    sock.settimeout(0.2)
    deadline = time.monotonic() + 6
    closed = False
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except ConnectionResetError:
            closed = True
            break
        if not data:
            closed = True
            break
        if data[:1] == b"\x88":  # a close frame also counts as giving up
            closed = True
            break
    sock.close()
    assert closed, "connection still open 6 s after pings went unanswered"


def test_ping_interval_and_timeout_take_fractional_seconds_like_uvicorn(serve):
    """Uvicorn's --ws-ping-interval/--ws-ping-timeout are floats (``--ws-ping-interval 0.5``)."""
    server = serve(APP, *ASGI, "--ws-ping-interval", "0.5", "--ws-ping-timeout", "2.5")
    sock = raw_handshake(server)
    rest = b""
    deadline = time.monotonic() + 2
    while len(rest) < 2 and time.monotonic() < deadline:
        rest += sock.recv(4096)
    sock.close()
    assert rest[:1] == b"\x89", f"expected a ping within 2 s, got {rest[:8]!r}"


def test_plain_http_request_to_a_websocket_app_gets_the_http_branch(ws_server):
    r = httpx.get(f"{ws_server.url}/echo", timeout=10)
    assert r.status_code == 200
    assert r.text == "plain http"


def test_many_concurrent_websockets_are_served(ws_server):
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(connect(ws_url(ws_server, "/echo"))) for _ in range(20)]
        for i, ws in enumerate(sockets):
            ws.send(f"c{i}")
        assert [ws.recv(timeout=10) for ws in sockets] == [f"c{i}" for i in range(20)]
