"""Requests the server must refuse, each with its exact status, a close, and an untouched app.

Every test here checks the same four things about one class of malformed request:

1. the response has the exact status the spec gives for that class;
2. the server closes the connection afterwards (recv returns b"" within a few seconds);
3. the app never saw the request: for errors in the request head the app is never called at
   all; for errors inside a chunked body (the app may already be running and reading when the
   bad bytes arrive) the app never finishes reading a body, so it can never act on a cut one;
4. the worker lives on: a good request on a new connection is answered.

Proof for 3 comes from the event file ``tests/apps/echo.py`` writes, not from any response.
"""

from __future__ import annotations

import pytest
from apps.echo import CALL_LOG_ENV
from helpers_http import (
    CallLog,
    ConnectionClosed,
    RawConnection,
    ServerPool,
    chunked,
    request,
)

LIMITS = (
    "--limit-request-line",
    "100",
    "--limit-request-fields",
    "5",
    "--limit-request-field_size",
    "50",
)


@pytest.fixture(scope="module")
def call_log(tmp_path_factory) -> CallLog:
    return CallLog(tmp_path_factory.mktemp("malformed") / "calls.jsonl")


@pytest.fixture(scope="module")
def pool(call_log):
    servers = ServerPool(env={CALL_LOG_ENV: str(call_log.path)})
    yield servers
    servers.stop_all()


@pytest.fixture(scope="module")
def server(pool):
    return pool.get("echo:app")


@pytest.fixture(scope="module")
def small_limits(pool):
    return pool.get("echo:app", *LIMITS)


def assert_alive(server) -> None:
    assert server.proc.poll() is None, "ferricorn exited:\n" + server.log
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/alive"))
        resp = conn.read_response()
    assert resp.status == 200 and resp.json()["PATH_INFO"] == "/alive", resp


def assert_refused(
    server, call_log: CallLog, wire: bytes, status: int, *, in_body: bool = False
) -> None:
    mark = call_log.mark()
    with RawConnection.to(server) as conn:
        conn.send(wire)
        try:
            resp = conn.read_response()
        except ConnectionClosed as exc:
            raise AssertionError(
                f"expected {status}, but the server closed without a response ({exc})"
            ) from None
        assert resp.status == status, f"expected {status} for {wire[:200]!r}, got {resp!r}"
        assert conn.closed_within(5), f"connection still open after {status}; buffered {conn.buf!r}"
    events = call_log.since(mark)
    if in_body:
        assert [e for e in events if e["event"] == "body"] == [], f"app read a whole body: {events}"
    else:
        assert events == [], f"app was called for a malformed request: {events}"
    assert_alive(server)


def post_chunked(encoded: bytes) -> bytes:
    return request("POST", "/upload", headers=[("Transfer-Encoding", "chunked")], body=encoded)


# -- 400: request line ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"GET /", id="no_version"),
        pytest.param(b"GET / HTTP/1.1 extra", id="trailing_word"),
        pytest.param(b"/ HTTP/1.1", id="no_method"),
        pytest.param(b"G(T / HTTP/1.1", id="method_not_a_token"),
        pytest.param(b"GET /a b HTTP/1.1", id="space_in_target"),
        pytest.param(b"GET /\x00 HTTP/1.1", id="nul_in_target"),
        pytest.param(b"GET / FTP/1.1", id="not_http"),
        pytest.param(b"GET / HTTP/1.x", id="version_not_digits"),
    ],
)
def test_bad_request_line_syntax_gets_400_and_close(server, call_log, line):
    assert_refused(server, call_log, line + b"\r\nHost: x\r\n\r\n", 400)


# -- 400: header syntax ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        pytest.param(b"Foo : bar", id="space_before_colon"),
        pytest.param(b"Foo\tx: bar", id="tab_in_name"),
        pytest.param(b"Foo", id="no_colon"),
        pytest.param(b": bar", id="empty_name"),
        pytest.param(b"Fo(o: bar", id="name_not_a_token"),
    ],
)
def test_bad_header_syntax_gets_400_and_close(server, call_log, field):
    assert_refused(server, call_log, b"GET / HTTP/1.1\r\nHost: x\r\n" + field + b"\r\n\r\n", 400)


# -- 400: chunked framing -------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        pytest.param(b"zz\r\nhello\r\n0\r\n\r\n", id="non_hex"),
        pytest.param(b"\r\nhello\r\n0\r\n\r\n", id="empty"),
        pytest.param(b"-5\r\nhello\r\n0\r\n\r\n", id="negative"),
        pytest.param(b"ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", id="overflows_u64"),
    ],
)
def test_bad_chunk_size_gets_400_and_close(server, call_log, encoded):
    assert_refused(server, call_log, post_chunked(encoded), 400, in_body=True)


def test_chunk_data_without_crlf_after_it_gets_400_and_close(server, call_log):
    assert_refused(server, call_log, post_chunked(b"5\r\nhelloXX0\r\n\r\n"), 400, in_body=True)


# -- 400: ambiguous or bad message framing --------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param([("Content-Length", "5"), ("Transfer-Encoding", "chunked")], id="cl_first"),
        pytest.param([("Transfer-Encoding", "chunked"), ("Content-Length", "5")], id="te_first"),
    ],
)
def test_content_length_with_transfer_encoding_gets_400_and_close(server, call_log, fields):
    assert_refused(
        server,
        call_log,
        request("POST", "/", headers=fields, body=chunked(b"hello")),
        400,
    )


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param([("Content-Length", "5"), ("Content-Length", "6")], id="two_fields"),
        pytest.param([("Content-Length", "5, 6")], id="list_in_one_field"),
    ],
)
def test_two_different_content_lengths_get_400_and_close(server, call_log, fields):
    assert_refused(server, call_log, request("POST", "/", headers=fields, body=b"hello!"), 400)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("abc", id="letters"),
        pytest.param("-1", id="negative"),
        pytest.param("+5", id="plus_sign"),
        pytest.param("5.0", id="decimal_point"),
        pytest.param("0x5", id="hex"),
        pytest.param("", id="empty"),
    ],
)
def test_non_numeric_or_negative_content_length_gets_400_and_close(server, call_log, value):
    assert_refused(
        server,
        call_log,
        request("POST", "/", headers=[("Content-Length", value)], body=b"hello"),
        400,
    )


# -- 400: Host ------------------------------------------------------------------------------


def test_http11_request_without_host_gets_400_and_close(server, call_log):
    assert_refused(server, call_log, request("GET", "/", host=None), 400)


def test_two_host_headers_get_400_and_close(server, call_log):
    assert_refused(server, call_log, request("GET", "/", headers=[("Host", "other.local")]), 400)


# -- 414 / 431: limits ----------------------------------------------------------------------


def test_request_line_over_default_limit_gets_414_and_close(server, call_log):
    assert_refused(server, call_log, request("GET", "/" + "a" * 4100), 414)


def test_request_line_over_limit_flag_gets_414_and_close(small_limits, call_log):
    assert_refused(small_limits, call_log, request("GET", "/" + "a" * 150), 414)


def test_more_headers_than_default_limit_get_431_and_close(server, call_log):
    fields = [(f"X-Field-{i}", "v") for i in range(150)]
    assert_refused(server, call_log, request("GET", "/", headers=fields), 431)


def test_more_headers_than_limit_flag_get_431_and_close(small_limits, call_log):
    fields = [(f"X-Field-{i}", "v") for i in range(10)]
    assert_refused(small_limits, call_log, request("GET", "/", headers=fields), 431)


def test_header_over_default_field_size_gets_431_and_close(server, call_log):
    assert_refused(server, call_log, request("GET", "/", headers=[("X-Long", "v" * 9000)]), 431)


def test_header_over_field_size_flag_gets_431_and_close(small_limits, call_log):
    assert_refused(
        small_limits,
        call_log,
        request("GET", "/", headers=[("X-Long", "v" * 100)]),
        431,
    )


def test_requests_within_limit_flags_are_served(small_limits):
    wire = request("GET", "/" + "a" * 40, headers=[("X-Short", "v" * 20), ("X-Other", "w")])
    with RawConnection.to(small_limits) as conn:
        conn.send(wire)
        resp = conn.read_response()
    assert resp.status == 200, resp
    assert resp.json()["HTTP_X_SHORT"] == "v" * 20


# -- 501 / 505 ------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip, chunked", "foo", "foo, chunked"])
def test_unknown_transfer_coding_gets_501_and_close(server, call_log, coding):
    wire = request("POST", "/", headers=[("Transfer-Encoding", coding)], body=chunked(b"hello"))
    assert_refused(server, call_log, wire, 501)


@pytest.mark.parametrize("version", ["HTTP/1.2", "HTTP/2.0", "HTTP/3.0"])
def test_unsupported_http_version_gets_505_and_close(server, call_log, version):
    assert_refused(server, call_log, request("GET", "/", version=version), 505)


# -- corrupt chunked body after good chunks -------------------------------------------------


@pytest.mark.parametrize(
    "encoded, half_close",
    [
        pytest.param(
            b"5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
            False,
            id="bad_size_after_good_chunk",
        ),
        pytest.param(
            b"5\r\nhello\r\n5\r\nworldXX0\r\n\r\n",
            False,
            id="missing_crlf_after_second_chunk",
        ),
        pytest.param(b"5\r\nhello\r\n5\r\nwor", True, id="eof_inside_chunk"),
        pytest.param(b"5\r\nhello\r\n", True, id="eof_before_last_chunk"),
    ],
)
def test_corrupt_chunked_body_after_valid_chunks_never_gets_200(
    server, call_log, encoded, half_close
):
    mark = call_log.mark()
    with RawConnection.to(server) as conn:
        conn.send(post_chunked(encoded))
        if half_close:
            conn.shutdown_write()
        try:
            resp = conn.read_response()
        except ConnectionClosed:
            resp = None  # closing without an answer is acceptable; a 200 is not
        if resp is not None:
            assert resp.status == 400, f"a corrupt chunked body got {resp!r}"
            assert conn.closed_within(5), "connection still open after a corrupt chunked body"
    bodies = [e for e in call_log.since(mark) if e["event"] == "body"]
    assert bodies == [], f"app read a truncated body as if complete: {bodies}"
    assert_alive(server)
