"""Faulty applications: the client gets a 500 (or an aborted response), the error log names the
fault, and the worker goes on serving the next request."""

from __future__ import annotations

import re

import httpx
import pytest
from conftest import recv_until_closed


def get(server, path: str = "/", **kwargs) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        return c.get(path, **kwargs)


def raw_exchange(server, request: bytes) -> bytes:
    with server.connect() as sock:
        sock.sendall(request)
        return recv_until_closed(sock)


def assert_still_serving(server) -> None:
    """The same server process (one worker) answers a fresh request after the fault."""
    assert server.proc.poll() is None, "server exited:\n" + server.log
    # The faulty app fails again, maybe by aborting; what matters is that a response starts.
    data = raw_exchange(
        server, b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    assert data.startswith(b"HTTP/1.1 "), data


def test_exception_in_app_gives_500_and_logs_traceback(serve):
    server = serve("wsgi_apps:raise_app")
    r = get(server, "/boom")
    assert r.status_code == 500
    server.wait_for_log(r"Traceback")
    server.wait_for_log(r"RuntimeError: kaboom-from-raise-app")


def test_exception_log_names_the_request(serve):
    server = serve("wsgi_apps:raise_app")
    get(server, "/named/path")
    server.wait_for_log(r"RuntimeError: kaboom-from-raise-app")
    assert "/named/path" in server.log


def test_worker_keeps_serving_after_app_exceptions(serve):
    server = serve("wsgi_apps:raise_app")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        statuses = [c.get(f"/{i}").status_code for i in range(5)]
    assert statuses == [500] * 5
    assert server.proc.poll() is None
    assert server.log.count("kaboom-from-raise-app") >= 5


def test_error_log_lines_have_gunicorn_shape(serve):
    server = serve("wsgi_apps:raise_app")
    get(server)
    line = server.wait_for_log(r"\[ERROR\]")
    assert re.match(
        r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[ERROR\] \S", line
    ), line


def test_exception_before_first_block_gives_500(serve):
    server = serve("wsgi_apps:raise_in_first_block_app")
    r = get(server)
    assert r.status_code == 500
    server.wait_for_log(r"kaboom-before-first-block")
    assert_still_serving(server)


def test_exception_after_first_chunked_block_aborts_without_terminator(serve):
    server = serve("wsgi_apps:raise_after_block_app")
    # Keep-alive request: the server itself must decide to close the connection.
    data = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    assert b"partial body" in body
    assert not body.endswith(b"0\r\n\r\n"), (
        "the chunked terminator made a failed body look complete"
    )
    server.wait_for_log(r"kaboom-after-first-block")
    assert_still_serving(server)


def test_exception_after_first_block_with_content_length_closes_short(serve):
    server = serve("wsgi_apps:raise_after_block_with_length_app")
    data = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data
    assert body == b"partial body\n"
    server.wait_for_log(r"kaboom-after-first-block-with-length")
    assert_still_serving(server)


def test_str_body_items_give_500_and_log_names_the_type(serve):
    server = serve("wsgi_apps:str_body_app")
    r = get(server)
    assert r.status_code == 500
    assert "a str, not bytes" not in r.text
    server.wait_for_log(r"\[ERROR\]")
    server.wait_for_log(r"\bbytes?\b.*\bstr\b|\bstr\b.*\bbytes?\b")
    assert_still_serving(server)


def test_none_instead_of_iterable_gives_500(serve):
    server = serve("wsgi_apps:none_body_app")
    assert get(server).status_code == 500
    server.wait_for_log(r"(?i)none|iter")
    assert_still_serving(server)


@pytest.mark.parametrize("status", ["abc", "OK 200", "1000 Too Big", "20 Short", ""])
def test_malformed_status_gives_500(serve, status):
    server = serve("wsgi_apps:status_app")
    r = get(server, "/", params={"status": status})
    assert r.status_code == 500
    assert r.text != "status body"
    assert_still_serving(server)


def test_status_code_without_reason_phrase_is_accepted(serve):
    server = serve("wsgi_apps:status_app")
    r = get(server, "/", params={"status": "200"})
    assert r.status_code == 200
    assert r.text == "status body"


@pytest.mark.parametrize(
    "case",
    [
        "bytes-name",
        "int-value",
        "crlf-value",
        "lf-value",
        "crlf-name",
        "space-name",
        "colon-name",
    ],
)
def test_invalid_header_gives_500_and_is_never_sent(serve, case):
    server = serve("wsgi_apps:bad_header_app")
    data = raw_exchange(
        server,
        f"GET /?case={case} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode(),
    )
    assert data.startswith(b"HTTP/1.1 500"), data
    assert b"Injected" not in data
    assert b"should not be sent" not in data
    assert_still_serving(server)


def test_app_that_never_calls_start_response_gives_500(serve):
    server = serve("wsgi_apps:no_start_response_app")
    r = get(server)
    assert r.status_code == 500
    assert "body without a status" not in r.text
    server.wait_for_log(r"\[ERROR\]")
    server.wait_for_log(r"start_response")
    assert_still_serving(server)


def test_second_start_response_without_exc_info_gives_500(serve):
    server = serve("wsgi_apps:double_start_response_app")
    r = get(server)
    assert r.status_code == 500
    assert "second call was accepted" not in r.text
    server.wait_for_log(r"\[ERROR\]")
    server.wait_for_log(
        r"start_response.*(second|again|twice|already)|(second|again|twice|already).*start_response"
    )
    assert_still_serving(server)


def test_close_raising_is_logged_and_worker_lives_on(serve):
    server = serve("wsgi_apps:close_raises_app")
    with httpx.Client(base_url=server.url, timeout=30) as c:
        first = c.get("/")
        assert first.status_code == 200
        assert first.text == "body ok"
        server.wait_for_log(r"close-failed-marker")
        second = c.get("/")
    assert second.status_code == 200
    assert second.text == "body ok"
    assert server.proc.poll() is None
