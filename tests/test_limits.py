"""Limits and slow clients: --limit-request-body (413 before the app for a Content-Length, as
soon as a chunked body passes it), --header-timeout against slowloris clients (without holding
the app thread: a concurrent request is served meanwhile) and --body-timeout.
"""

from __future__ import annotations

import threading
import time

import pytest
from helpers_http import RawConnection, chunked, request

WSGI = "edge_apps:wsgi_peer"
ASGI = "edge_apps:asgi_peer"


def post(body: bytes, *, te: bool = False) -> bytes:
    if te:
        return request("POST", headers=[("Transfer-Encoding", "chunked")], body=body)
    return request("POST", headers=[("Content-Length", str(len(body)))], body=body)


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_content_length_at_and_under_the_limit_is_served(serve, app):
    server = serve(app, "--limit-request-body", "10")
    with RawConnection.to(server) as conn:
        for body in (b"x" * 10, b"x" * 3, b""):
            conn.send(post(body))
            resp = conn.read_response()
            assert resp.status == 200
            assert resp.json()["body_len"] == len(body)


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_content_length_over_the_limit_is_413_before_the_app(serve, app):
    server = serve(app, "--limit-request-body", "10", "--access-logfile", "-")
    with RawConnection.to(server) as conn:
        # the body is never sent: the head alone is refused
        conn.send(request("POST", headers=[("Content-Length", "11")]))
        resp = conn.read_response()
        assert resp.status == 413
        assert conn.closed_within(5)
    # the app never ran: nothing was logged as served by it
    assert not any('"POST / HTTP/1.1" 200' in line for line in server.stdout_lines)


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_chunked_bodies_are_held_to_the_limit(serve, app):
    server = serve(app, "--limit-request-body", "10")
    with RawConnection.to(server) as conn:
        conn.send(post(chunked(b"x" * 4, b"y" * 6), te=True))
        resp = conn.read_response()
        assert resp.status == 200 and resp.json()["body_len"] == 10
    with RawConnection.to(server) as conn:
        conn.send(post(chunked(b"x" * 6, b"y" * 5), te=True))
        assert conn.read_response().status == 413


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_a_streamed_chunked_body_is_refused_once_it_passes_the_limit(serve, app):
    server = serve(app, "--limit-request-body", "100")
    with RawConnection.to(server) as conn:
        conn.send(request("POST", headers=[("Transfer-Encoding", "chunked")]))
        conn.send(b"40\r\n" + b"a" * 64 + b"\r\n")
        time.sleep(0.2)
        conn.send(b"40\r\n" + b"b" * 64 + b"\r\n")
        assert conn.read_response().status == 413
        assert conn.closed_within(5)


def test_no_body_limit_by_default(serve):
    server = serve(WSGI)
    with RawConnection.to(server) as conn:
        conn.send(post(b"z" * 300_000))
        assert conn.read_response().json()["body_len"] == 300_000


def slow_loris(server, stop: threading.Event, result: dict) -> None:
    """Send a request head one byte every 0.2 s; record when and how the server ends it."""
    conn = RawConnection.to(server)
    start = time.monotonic()
    data = request(headers=[("X-Padding", "p" * 200)])
    try:
        for i in range(len(data)):
            if stop.is_set():
                break
            conn.send(data[i : i + 1])
            time.sleep(0.2)
    except OSError:
        pass
    result["after"] = time.monotonic() - start
    result["reply"] = conn.quiet_for(0.5)
    result["closed"] = conn.closed_within(2)
    conn.close()


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_slowloris_is_cut_off_without_blocking_other_requests(serve, app):
    server = serve(app, "--header-timeout", "1.5")
    stop, result = threading.Event(), {}
    loris = threading.Thread(target=slow_loris, args=(server, stop, result))
    loris.start()
    try:
        time.sleep(0.3)
        # a normal request meanwhile is served at once (the single app thread is free)
        t0 = time.monotonic()
        with RawConnection.to(server) as conn:
            conn.send(request())
            assert conn.read_response(timeout=1).status == 200
        assert time.monotonic() - t0 < 1
    finally:
        loris.join(15)
        stop.set()
    assert result["after"] < 4, result
    assert result["reply"].startswith(b"HTTP/1.1 408 "), result
    assert result["closed"]


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(serve):
    server = serve(WSGI, "--header-timeout", "0.5")
    with RawConnection.to(server) as conn:
        t0 = time.monotonic()
        assert conn.closed_within(5)
        assert 0.3 < time.monotonic() - t0 < 3
        assert conn.buf == b""


def test_header_timeout_zero_waits_forever(serve):
    server = serve(WSGI, "--header-timeout", "0")
    with RawConnection.to(server) as conn:
        conn.send(b"GET / HTTP/1.1\r\n")
        assert conn.quiet_for(1.0) == b""
        conn.send(b"Host: a\r\n\r\n")
        assert conn.read_response().status == 200


def test_keep_alive_wait_is_not_part_of_the_header_timeout(serve):
    server = serve(WSGI, "--header-timeout", "1", "--keep-alive", "5")
    with RawConnection.to(server) as conn:
        conn.send(request())
        assert conn.read_response().status == 200
        time.sleep(1.5)  # idle between requests: --keep-alive's business
        conn.send(request())
        assert conn.read_response().status == 200


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_a_stalled_body_is_408_after_the_body_timeout(serve, app):
    server = serve(app, "--body-timeout", "1")
    with RawConnection.to(server) as conn:
        t0 = time.monotonic()
        conn.send(request("POST", headers=[("Content-Length", "10")], body=b"abc"))
        resp = conn.read_response(timeout=5)
        assert resp.status == 408
        assert 0.8 < time.monotonic() - t0 < 4
        assert conn.closed_within(5)
    # the worker is fine afterwards
    with RawConnection.to(server) as conn:
        conn.send(post(b"0123456789"))
        assert conn.read_response().json()["body_len"] == 10
