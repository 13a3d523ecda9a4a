"""HTTP/1.x connection behaviour, spoken as raw bytes to a real ferricorn.

Covers persistence (keep-alive, pipelining, the close rules of RFC 9112 §9.3/§9.6), request
body framing as the app sees it, response framing the server chooses (chunked on HTTP/1.1,
close-delimited on HTTP/1.0), ``Expect: 100-continue``, HEAD, and the Date/Server headers that
every response carries. Apps live in ``tests/apps/echo.py``.
"""

from __future__ import annotations

import socket
import time

import pytest
from apps.echo import CALL_LOG_ENV, LAZY_REPLY, STREAM_PARTS
from helpers_http import (
    CallLog,
    RawConnection,
    ServerPool,
    assert_date_and_server,
    chunked,
    request,
)

STREAMED = b"".join(STREAM_PARTS)


@pytest.fixture(scope="module")
def call_log(tmp_path_factory) -> CallLog:
    return CallLog(tmp_path_factory.mktemp("http1") / "calls.jsonl")


@pytest.fixture(scope="module")
def pool(call_log):
    servers = ServerPool(env={CALL_LOG_ENV: str(call_log.path)})
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def echo(pool):
    return pool.get("echo:app")


@pytest.fixture(scope="module")
def streaming(pool):
    return pool.get("echo:stream")


@pytest.fixture(scope="module")
def closing(pool):
    return pool.get("echo:close_app")


@pytest.fixture(scope="module")
def lazy(pool):
    return pool.get("echo:lazy")


def body_seen_by_app(resp) -> bytes:
    return resp.json()["body"].encode("latin-1")


# -- persistence --------------------------------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(echo):
    with RawConnection.to(echo) as conn:
        for i in range(3):
            conn.send(request("GET", f"/round/{i}?i={i}"))
            resp = conn.read_response()
            assert resp.status == 200, resp
            env = resp.json()
            assert (env["PATH_INFO"], env["QUERY_STRING"]) == (f"/round/{i}", f"i={i}")
            assert not resp.has_token("Connection", "close"), resp


def test_pipelined_requests_in_one_write_are_answered_in_order(echo):
    burst = (
        request("GET", "/first")
        + request("POST", "/second", headers=[("Content-Length", "5")], body=b"hello")
        + request(
            "PUT",
            "/third",
            headers=[("Transfer-Encoding", "chunked")],
            body=chunked(b"wor", b"ld"),
        )
        + request("GET", "/fourth")
    )
    with RawConnection.to(echo) as conn:
        conn.send(burst)
        responses = conn.read_responses(4)
    seen = [
        (
            r.status,
            r.json()["REQUEST_METHOD"],
            r.json()["PATH_INFO"],
            body_seen_by_app(r),
        )
        for r in responses
    ]
    assert seen == [
        (200, "GET", "/first", b""),
        (200, "POST", "/second", b"hello"),
        (200, "PUT", "/third", b"world"),
        (200, "GET", "/fourth", b""),
    ]


def test_http10_request_without_keep_alive_is_answered_then_closed(echo):
    with RawConnection.to(echo) as conn:
        conn.send(request("GET", "/old", version="HTTP/1.0", host=None))
        resp = conn.read_response()
        assert resp.status == 200, resp
        assert resp.json()["SERVER_PROTOCOL"] == "HTTP/1.0"
        assert conn.closed_within(5), "server kept an HTTP/1.0 connection open without keep-alive"


def test_http10_keep_alive_request_keeps_connection_open(echo):
    keep = [("Connection", "keep-alive")]
    with RawConnection.to(echo) as conn:
        for path in ("/one", "/two"):
            conn.send(request("GET", path, version="HTTP/1.0", headers=keep))
            resp = conn.read_response()
            assert resp.status == 200, resp
            assert resp.json()["PATH_INFO"] == path


def test_http10_keep_alive_response_announces_keep_alive(echo):
    # An HTTP/1.0 client assumes close unless the response says otherwise (RFC 9112 §C.2.2).
    with RawConnection.to(echo) as conn:
        conn.send(request("GET", "/", version="HTTP/1.0", headers=[("Connection", "keep-alive")]))
        resp = conn.read_response()
    assert resp.has_token("Connection", "keep-alive"), resp


def test_client_connection_close_makes_server_close_after_the_response(echo):
    with RawConnection.to(echo) as conn:
        conn.send(
            request("GET", "/last", headers=[("Connection", "close")]) + request("GET", "/ignored")
        )
        resp = conn.read_response()
        assert resp.status == 200 and resp.json()["PATH_INFO"] == "/last", resp
        assert conn.closed_within(5), "connection still open after Connection: close"
        assert conn.buf == b"", (
            f"server answered a request sent after Connection: close: {conn.buf!r}"
        )


def test_app_connection_close_header_makes_server_close(closing):
    with RawConnection.to(closing) as conn:
        conn.send(request("GET", "/bye") + request("GET", "/ignored"))
        resp = conn.read_response()
        assert resp.status == 200 and resp.json()["PATH_INFO"] == "/bye", resp
        assert conn.closed_within(5), "connection still open after the app sent Connection: close"
        assert conn.buf == b"", f"server answered after the app asked to close: {conn.buf!r}"
        assert resp.has_token("Connection", "close"), (
            f"the app's Connection: close was dropped: {resp!r}"
        )


def test_unread_request_body_is_never_parsed_as_the_next_request(lazy, call_log):
    hidden = request("GET", "/smuggled")
    mark = call_log.mark()
    with RawConnection.to(lazy) as conn:
        conn.send(
            request(
                "POST",
                "/noread",
                headers=[("Content-Length", str(len(hidden)))],
                body=hidden,
            )
            + request("GET", "/after")
        )
        first = conn.read_response()
        assert first.status == 200 and first.body == LAZY_REPLY, first
        # The server may discard the body and serve /after, or close; it must not serve /smuggled.
        if not conn.closed_within(1):
            assert conn.read_response().status == 200
    paths = [e["path"] for e in call_log.since(mark)]
    assert "/smuggled" not in paths, paths


# -- request bodies -----------------------------------------------------------------------

ALL_BYTES = bytes(range(256)) * 4


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(chunked(ALL_BYTES[:1], ALL_BYTES[1:700], ALL_BYTES[700:]), id="plain"),
        pytest.param(
            b"1;a=b\r\n"
            + ALL_BYTES[:1]
            + b"\r\n"
            + b'%X;name="quoted value"\r\n' % (len(ALL_BYTES) - 1)
            + ALL_BYTES[1:]
            + b"\r\n0\r\n\r\n",
            id="extensions_and_uppercase_hex",
        ),
        pytest.param(
            b"%x\r\n" % len(ALL_BYTES) + ALL_BYTES + b"\r\n0\r\nX-Checksum: abc\r\n\r\n",
            id="trailer",
        ),
    ],
)
def test_chunked_request_body_reaches_app_as_exact_bytes(echo, encoded):
    with RawConnection.to(echo) as conn:
        conn.send(
            request(
                "POST",
                "/upload",
                headers=[("Transfer-Encoding", "chunked")],
                body=encoded,
            )
        )
        resp = conn.read_response()
    assert resp.status == 200, resp
    assert body_seen_by_app(resp) == ALL_BYTES
    assert resp.json().get("CONTENT_LENGTH", "") == ""


def test_chunked_request_body_split_across_many_writes_reaches_app_intact(echo):
    wire = request(
        "POST",
        "/slow",
        headers=[("Transfer-Encoding", "chunked")],
        body=chunked(b"abc", b"defgh", b"i"),
    )
    with RawConnection.to(echo) as conn:
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(wire), 7):
            conn.send(wire[i : i + 7])
            time.sleep(0.005)
        resp = conn.read_response()
    assert resp.status == 200, resp
    assert body_seen_by_app(resp) == b"abcdefghi"


def test_content_length_request_body_reaches_app_as_exact_bytes(echo):
    payload = ALL_BYTES * 100
    with RawConnection.to(echo) as conn:
        conn.send(
            request(
                "POST",
                "/big",
                headers=[("Content-Length", str(len(payload)))],
                body=payload,
            )
        )
        resp = conn.read_response()
    assert resp.status == 200, resp
    assert body_seen_by_app(resp) == payload
    assert resp.json()["CONTENT_LENGTH"] == str(len(payload))


# -- response framing ---------------------------------------------------------------------


def test_response_without_content_length_is_chunked_on_http11(streaming):
    with RawConnection.to(streaming) as conn:
        conn.send(request("GET", "/stream"))
        resp = conn.read_response()
        assert resp.status == 200, resp
        assert resp.framing == "chunked", resp
        assert resp.header("Content-Length") is None, resp
        assert resp.body == STREAMED
        # The chunked body was delimited properly: the connection carries the next exchange.
        conn.send(request("GET", "/again"))
        again = conn.read_response()
        assert (again.status, again.body) == (200, STREAMED)


@pytest.mark.parametrize(
    "headers", [[], [("Connection", "keep-alive")]], ids=["plain", "keep_alive_asked"]
)
def test_response_without_content_length_is_close_delimited_on_http10(streaming, headers):
    with RawConnection.to(streaming) as conn:
        conn.send(request("GET", "/stream", version="HTTP/1.0", headers=headers))
        resp = (
            conn.read_response()
        )  # a close-delimited body is only complete once the server closes
    assert resp.status == 200, resp
    assert resp.framing == "close", resp
    assert resp.header("Transfer-Encoding") is None, resp
    assert resp.body == STREAMED


# -- Expect: 100-continue -----------------------------------------------------------------

EXPECT = [("Content-Length", "5"), ("Expect", "100-continue")]


def test_expect_100_continue_is_not_sent_when_app_answers_without_reading(lazy):
    with RawConnection.to(lazy) as conn:
        conn.send(request("POST", "/noread", headers=EXPECT))
        resp = conn.read_response(timeout=5)
    assert resp.status == 200, f"expected the final response first, got {resp!r}"
    assert resp.body == LAZY_REPLY


def test_expect_100_continue_is_sent_once_app_reads_then_final_response(lazy):
    with RawConnection.to(lazy) as conn:
        conn.send(request("POST", "/read", headers=EXPECT))
        interim = conn.read_response(timeout=5)
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n"), interim
        assert conn.buf == b"", (
            f"bytes after the interim response before the body was sent: {conn.buf!r}"
        )
        conn.send(b"hello")
        final = conn.read_response()
    assert final.status == 200, final
    assert body_seen_by_app(final) == b"hello"


# -- HEAD ---------------------------------------------------------------------------------


def test_head_response_has_app_headers_but_no_body_and_connection_stays_usable(echo):
    with RawConnection.to(echo) as conn:
        conn.send(request("HEAD", "/resource"))
        head = conn.read_response("HEAD")
        assert head.status == 200, head
        assert int(head.header("Content-Length") or 0) > 0, (
            f"app's Content-Length missing: {head!r}"
        )
        assert conn.quiet_for(0.5) == b"", "body bytes were sent after a HEAD response"
        conn.send(request("GET", "/resource"))
        get = conn.read_response()
        assert get.status == 200 and get.json()["REQUEST_METHOD"] == "GET", get


def test_head_response_for_streaming_app_has_no_body_and_connection_stays_usable(
    streaming,
):
    with RawConnection.to(streaming) as conn:
        conn.send(request("HEAD", "/stream"))
        head = conn.read_response("HEAD")
        assert head.status == 200, head
        assert conn.quiet_for(0.5) == b"", "body bytes were sent after a HEAD response"
        conn.send(request("GET", "/stream"))
        assert conn.read_response().body == STREAMED


# -- headers on every response ------------------------------------------------------------


@pytest.mark.parametrize(
    "server_name, wire, method",
    [
        pytest.param("echo", request("GET", "/"), "GET", id="content_length"),
        pytest.param("streaming", request("GET", "/"), "GET", id="chunked"),
        pytest.param(
            "streaming",
            request("GET", "/", version="HTTP/1.0"),
            "GET",
            id="close_delimited",
        ),
        pytest.param("echo", request("HEAD", "/"), "HEAD", id="head"),
        pytest.param("echo", b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", "GET", id="error_400"),
    ],
)
def test_every_response_has_date_and_server_headers(get_fixture, server_name, wire, method):
    server = get_fixture(server_name)
    with RawConnection.to(server) as conn:
        conn.send(wire)
        resp = conn.read_response(method)
    assert_date_and_server(resp)


@pytest.fixture
def get_fixture(request):
    return request.getfixturevalue
