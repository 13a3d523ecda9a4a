"""ASGI 3 over HTTP/1.1 with raw apps (tests/apps/asgi_raw.py): the http scope, request and
response bodies, errors, disconnects, worker recycling and the per-worker connection limit.

What is expected is the ASGI spec (asgi.readthedocs.io, "HTTP & WebSocket" spec 2.x) and what
Uvicorn users rely on; each test names the behaviour it checks.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import threading
import time

import httpx
import pytest
from conftest import APPS, Server, run_ferricorn
from helpers_asgi import ASGI, Events, untag
from helpers_http import (
    ConnectionClosed,
    RawConnection,
    assert_date_and_server,
    chunked,
    request,
)


@pytest.fixture(scope="module")
def scope_server():
    server = Server(["-b", "127.0.0.1:0", *ASGI, "asgi_raw:scope_app"], APPS, None)
    server.wait_ready()
    yield server
    server.stop()


def scope_of(server, raw: bytes) -> tuple[dict, socket.socket]:
    """Send ``raw`` on a new connection; return the app's decoded scope and the socket."""
    sock = server.connect()
    conn = RawConnection(sock)
    conn.send(raw)
    resp = conn.read_response()
    assert resp.status == 200, resp
    data = resp.json()
    return untag(data["scope"]), sock


# -- the http scope --------------------------------------------------------------------------


def test_http_scope_has_type_asgi_versions_method_scheme_and_http_version(scope_server):
    scope, sock = scope_of(scope_server, request("PUT", "/x", body=b""))
    sock.close()
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert re.fullmatch(r"2\.\d+", scope["asgi"]["spec_version"]), scope["asgi"]
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "PUT"
    assert scope["scheme"] == "http"


def test_http_scope_http_version_is_1_0_for_an_http_1_0_request(scope_server):
    scope, sock = scope_of(scope_server, request("GET", "/", version="HTTP/1.0"))
    sock.close()
    assert scope["http_version"] == "1.0"


def test_http_scope_path_is_percent_decoded_and_raw_path_and_query_string_are_bytes(
    scope_server,
):
    scope, sock = scope_of(scope_server, request("GET", "/caf%C3%A9/a%2Fb%20c?x=%20y&z=%C3%A9"))
    sock.close()
    assert scope["path"] == "/café/a/b c"
    assert scope["raw_path"] == b"/caf%C3%A9/a%2Fb%20c"
    assert scope["query_string"] == b"x=%20y&z=%C3%A9"


def test_http_scope_query_string_is_empty_bytes_without_a_query(scope_server):
    scope, sock = scope_of(scope_server, request("GET", "/plain"))
    sock.close()
    assert scope["query_string"] == b""
    assert scope["raw_path"] == b"/plain"


def test_http_scope_of_an_absolute_form_target_has_only_the_path(scope_server):
    scope, sock = scope_of(scope_server, request("GET", "http://test.local/abs/p?q=1"))
    sock.close()
    assert scope["path"] == "/abs/p"
    assert scope["query_string"] == b"q=1"


def test_http_scope_keeps_an_empty_header_value(scope_server):
    scope, sock = scope_of(scope_server, request("GET", "/", headers=[("X-Empty", "")]))
    sock.close()
    assert (b"x-empty", b"") in [tuple(h) for h in scope["headers"]]


def test_http_scope_root_path_defaults_to_empty_string(scope_server):
    scope, sock = scope_of(scope_server, request("GET", "/"))
    sock.close()
    assert scope["root_path"] == ""


def test_http_scope_headers_are_lowercased_byte_pairs_in_wire_order_with_repeats(scope_server):
    raw = request(
        "GET",
        "/",
        headers=[
            ("X-B", "first"),
            ("X-Mixed-Case", "Value Kept"),
            ("X-A", "caf\xe9"),
            ("X-B", "third"),
        ],
    )
    scope, sock = scope_of(scope_server, raw)
    sock.close()
    headers = scope["headers"]
    assert all(isinstance(pair, (list, tuple)) and len(pair) == 2 for pair in headers)
    assert all(isinstance(n, bytes) and isinstance(v, bytes) for n, v in headers)
    assert [tuple(h) for h in headers] == [
        (b"host", b"test.local"),
        (b"x-b", b"first"),
        (b"x-mixed-case", b"Value Kept"),
        (b"x-a", b"caf\xe9"),  # obs-text bytes pass through untouched
        (b"x-b", b"third"),
    ]


def test_http_scope_client_and_server_are_host_port_pairs_of_the_connection(scope_server):
    scope, sock = scope_of(scope_server, request("GET", "/"))
    client_host, client_port = sock.getsockname()
    sock.close()
    assert tuple(scope["client"]) == (client_host, client_port)
    assert tuple(scope["server"]) == ("127.0.0.1", scope_server.port)


def test_root_path_setting_is_in_the_scope_and_prefixes_path_as_uvicorn_does(serve):
    server = serve("asgi_raw:scope_app", *ASGI, "--root-path", "/api")
    r = httpx.get(f"{server.url}/items/1", timeout=10)
    scope = untag(r.json()["scope"])
    assert scope["root_path"] == "/api"
    assert scope["path"] == "/api/items/1"
    assert scope["raw_path"] == b"/api/items/1"


def test_http_scope_state_is_a_copy_of_what_lifespan_startup_stored(scope_server):
    scope, sock = scope_of(scope_server, request("GET", "/"))
    sock.close()
    assert scope["state"]["started_by"] == "lifespan"
    assert isinstance(scope["state"]["worker_pid"], int)


def test_http_scope_state_changes_by_a_request_do_not_leak_into_the_next(serve):
    server = serve("asgi_raw:body_app", *ASGI)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        first = http.get("/pid").json()
        second = http.get("/pid").json()
    assert first["state"]["started_by"] == second["state"]["started_by"] == "lifespan"
    assert "added_by_a_request" not in first["state"]
    assert "added_by_a_request" not in second["state"]


def test_scope_reflects_each_request_on_one_keep_alive_connection(scope_server):
    with RawConnection.to(scope_server) as conn:
        conn.send(
            request("GET", "/one?a=1") + request("POST", "/two", headers=[("Content-Length", "0")])
        )
        first, second = conn.read_responses(2)
    assert untag(first.json()["scope"])["path"] == "/one"
    assert untag(second.json()["scope"])["method"] == "POST"
    assert untag(second.json()["scope"])["query_string"] == b""


# -- request bodies --------------------------------------------------------------------------


@pytest.fixture
def body_server(serve):
    return serve("asgi_raw:body_app", *ASGI)


def test_request_body_with_content_length_arrives_whole_and_ends_with_more_body_false(
    body_server,
):
    payload = bytes(range(256)) * 4000  # ~1 MB
    r = httpx.post(f"{body_server.url}/count", content=payload, timeout=30)
    assert r.status_code == 200
    data = r.json()
    assert sum(data["sizes"]) == len(payload)

    assert data["sha256"] == hashlib.sha256(payload).hexdigest()
    assert data["sizes"][-1] >= 0 and data["messages"] == len(data["sizes"])


def test_empty_request_body_is_one_http_request_message_with_empty_body(body_server):
    r = httpx.post(f"{body_server.url}/count", content=b"", timeout=10)
    assert r.json() == {
        "messages": 1,
        "sizes": [0],
        "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }


def test_chunked_request_body_is_delivered_in_more_body_pieces_as_it_arrives(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("POST", "/count", headers=[("Transfer-Encoding", "chunked")]))
        for piece in (b"a" * 1000, b"b" * 2000, b"c" * 3000):
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.2)
        conn.send(b"0\r\n\r\n")
        data = conn.read_response().json()
    assert sum(data["sizes"]) == 6000
    # the pieces were sent 0.2 s apart: the app must not get them as one message at the end
    assert data["messages"] >= 3, data


def test_request_body_streams_back_before_the_request_has_ended(body_server):
    """Full-duplex echo: the response head and the first piece arrive while the client still
    holds back the rest of its chunked body."""
    with RawConnection.to(body_server) as conn:
        conn.send(request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]))
        conn.send(b"5\r\nfirst\r\n")
        early = conn.quiet_for(2.0)
        assert early.startswith(b"HTTP/1.1 200"), early
        assert b"first" in early
        conn.send(b"6\r\nsecond\r\n0\r\n\r\n")
        resp = conn.read_response()
    assert resp.body == b"firstsecond"
    assert resp.framing == "chunked"


def test_unread_request_body_is_skipped_before_the_next_request_on_the_connection(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(
            request("POST", "/no-read", headers=[("Content-Length", "10")], body=b"0123456789")
            + request("GET", "/fixed")
        )
        first = conn.read_response()
        assert first.body == b"did not read"
        try:
            second = conn.read_response()
        except ConnectionClosed:
            return  # closing instead of draining is allowed, never misparsing the body
        assert second.status == 201
        assert second.body == b"hello world"


def test_expect_100_continue_is_answered_when_the_app_reads_the_body(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(
            request("POST", "/count", headers=[("Content-Length", "5"), ("Expect", "100-continue")])
        )
        interim = conn.read_response()
        assert interim.status == 100
        conn.send(b"hello")
        final = conn.read_response()
    assert sum(final.json()["sizes"]) == 5


def test_expect_100_continue_is_not_sent_when_the_app_answers_without_reading(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(
            request(
                "POST", "/no-read", headers=[("Content-Length", "5"), ("Expect", "100-continue")]
            )
        )
        final = conn.read_response()
    assert final.status == 200
    assert final.body == b"did not read"


def test_receive_after_the_response_is_sent_returns_http_disconnect(serve, tmp_path):
    """ASGI spec: http.disconnect is "sent to the application if receive is called after a
    response has been sent" -- even while the client keeps the connection open."""
    events = Events(tmp_path)
    server = serve("asgi_raw:body_app", *ASGI, env=events.env)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/receive-after-response"))
        assert conn.read_response().body == b"done"
        (after,) = events.wait_for("after-response", timeout=10)
    assert after["type"] == "http.disconnect"
    assert after["waited"] < 2, after


def test_many_slow_requests_run_concurrently_in_one_asgi_worker(body_server):
    """The point of ASGI: 50 requests that each await 3 s are asleep in the app together, not
    one by one (the app counts how many are inside its sleep at once; one by one would be 1)."""
    results: list[httpx.Response] = []

    def one() -> None:
        results.append(httpx.get(f"{body_server.url}/sleep?s=3", timeout=60))

    threads = [threading.Thread(target=one) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [200] * 50
    peak = max(r.json()["peak"] for r in results)
    assert peak >= 25, f"at most {peak} of 50 requests were in the app at once"


# -- response bodies -------------------------------------------------------------------------


def test_streamed_response_without_content_length_is_chunked_and_arrives_incrementally(
    body_server,
):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/stream?n=3&gap=1.0"))
        first = conn.quiet_for(0.7)
        assert b"chunk-0" in first, first
        assert b"chunk-2" not in first
        resp = conn.read_response()
    assert resp.framing == "chunked"
    assert resp.body == b"chunk-0\nchunk-1\nchunk-2\n"
    assert resp.header("x-streamed") == "yes"


def test_streamed_response_to_http_1_0_is_delimited_by_close(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/stream?n=2", version="HTTP/1.0"))
        resp = conn.read_response()
    assert resp.framing == "close"
    assert resp.body == b"chunk-0\nchunk-1\n"


def test_app_content_length_is_kept_and_repeated_headers_are_sent_in_order(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/fixed"))
        resp = conn.read_response()
    assert resp.status == 201
    assert resp.framing == "length"
    assert resp.body == b"hello world"
    assert resp.headers_named("x-custom") == ["one", "two"]
    assert resp.header("content-type") == "text/plain; charset=utf-8"


def test_head_request_gets_the_headers_of_get_and_no_body(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("HEAD", "/fixed") + request("GET", "/fixed"))
        head = conn.read_response("HEAD")
        get = conn.read_response("GET")
    assert head.status == 201
    assert head.header("content-length") == "11"
    assert head.body == b""
    assert get.body == b"hello world"


def test_large_response_reaches_a_slow_reader_intact(body_server):
    sock = body_server.connect(timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.sendall(request("GET", "/big?mb=16", headers=[("Connection", "close")]))
    digest, total, head, buf = hashlib.sha256(), 0, None, b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        if head is None:
            buf += data
            if b"\r\n\r\n" not in buf:
                continue
            head, _, data = buf.partition(b"\r\n\r\n")
        digest.update(data)
        total += len(data)
        if total < 2 * 1024 * 1024:
            time.sleep(0.01)  # read slowly at first: the app must be held back, not fail
    sock.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert total == 16 * 1024 * 1024
    piece = bytes(range(256)) * 256
    assert digest.hexdigest() == hashlib.sha256(piece * 256).hexdigest()


def test_body_shorter_than_content_length_closes_the_connection(serve, tmp_path):
    server = serve("asgi_raw:body_app", *ASGI)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/short-length"))
        with pytest.raises(ConnectionClosed):
            conn.read_response(timeout=10)


def test_body_longer_than_content_length_is_never_sent_past_the_length(serve, tmp_path):
    server = serve("asgi_raw:body_app", *ASGI)
    with RawConnection.to(server) as conn:
        conn.send(request("GET", "/long-length") + request("GET", "/fixed"))
        first = conn.read_response()
        assert first.body == b"1234567890"
        # the 5 extra bytes must not be read as the start of the next response
        try:
            second = conn.read_response()
        except ConnectionClosed:
            return
        assert second.status == 201, second


def test_no_content_response_carries_no_body_even_if_the_app_sends_one(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/no-content-with-body") + request("GET", "/fixed"))
        first = conn.read_response()
        assert first.status == 204
        assert first.header("transfer-encoding") is None
        second = conn.read_response()
    assert second.body == b"hello world"


def test_connection_close_from_the_app_closes_after_the_response(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/close-header"))
        resp = conn.read_response()
        assert resp.body == b"bye"
        assert conn.closed_within(5)


@pytest.mark.parametrize(
    ("loop", "module"), [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("auto", "uvloop")]
)
def test_asgi_loop_setting_picks_the_event_loop_the_app_runs_on(serve, loop, module):
    """``auto`` means uvloop when it is installed, as in uvicorn and gunicorn."""
    if module == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed")
    server = serve("asgi_raw:body_app", *ASGI, "--asgi-loop", loop)
    assert httpx.get(f"{server.url}/loop", timeout=10).json()["module"].startswith(module)


def test_empty_more_body_pieces_do_not_end_a_chunked_response(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/empty-pieces") + request("GET", "/fixed"))
        first = conn.read_response()
        second = conn.read_response()
    assert first.framing == "chunked"
    assert first.body == b"abc"
    assert second.body == b"hello world"


def test_asgi_responses_carry_date_and_server_headers(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/fixed"))
        assert_date_and_server(conn.read_response())


def test_access_log_records_asgi_requests(serve):
    server = serve("asgi_raw:body_app", *ASGI, "--access-logfile", "-")
    httpx.get(f"{server.url}/fixed?q=1", timeout=10)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not server.stdout_lines:
        time.sleep(0.05)
    assert any('"GET /fixed?q=1 HTTP/1.1" 201 11' in line for line in server.stdout_lines), (
        server.stdout_lines
    )


def test_loop_blocked_past_timeout_gets_the_worker_killed_and_replaced(serve):
    server = serve("asgi_raw:body_app", *ASGI, "-w", "1", "--timeout", "2")
    first_pid = httpx.get(f"{server.url}/pid", timeout=10).json()["pid"]
    try:
        r = httpx.get(f"{server.url}/block?s=30", timeout=20)
    except httpx.HTTPError:
        pass  # the connection went down with the killed worker
    else:
        assert r.status_code >= 500, r  # an error answer is fine too, the app's 200 is not
    server.wait_for_log(r"WORKER TIMEOUT", timeout=15)
    deadline = time.monotonic() + 15
    while True:
        try:
            pid = httpx.get(f"{server.url}/pid", timeout=5).json()["pid"]
            if pid != first_pid:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "no replacement worker answered"
        time.sleep(0.2)


def test_pathsend_extension_sends_the_file_with_its_length(serve, tmp_path):
    blob = os.urandom(3 * 1024 * 1024 + 7)
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    server = serve("asgi_raw:body_app", *ASGI, env={"ASGI_PATHSEND_FILE": str(path)})
    with RawConnection.to(server, timeout=30) as conn:
        conn.send(request("GET", "/pathsend") + request("HEAD", "/pathsend"))
        get = conn.read_response()
        head = conn.read_response("HEAD")
    assert get.status == 200, get
    assert get.framing == "length"
    assert get.header("content-length") == str(len(blob))
    assert get.body == blob
    assert head.header("content-length") == str(len(blob))
    assert head.body == b""


def test_keep_alive_connection_serves_many_asgi_requests(body_server):
    with RawConnection.to(body_server) as conn:
        for _ in range(20):
            conn.send(request("POST", "/count", headers=[("Content-Length", "3")], body=b"abc"))
            assert conn.read_response().json()["sizes"] == [3]


def test_pipelined_asgi_requests_are_answered_in_order(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(
            request("POST", "/count", headers=[("Content-Length", "1")], body=b"1")
            + request("POST", "/count", headers=[("Transfer-Encoding", "chunked")])
            + chunked(b"22")
            + request("GET", "/fixed")
        )
        a, b, c = conn.read_responses(3)
    assert a.json()["sizes"] == [1]
    assert sum(b.json()["sizes"]) == 2
    assert c.body == b"hello world"


def test_pipelined_request_behind_a_slow_stream_is_answered_after_it(body_server):
    with RawConnection.to(body_server) as conn:
        conn.send(request("GET", "/stream?n=3&gap=0.3") + request("GET", "/fixed"))
        slow = conn.read_response()
        fast = conn.read_response()
    assert slow.body == b"chunk-0\nchunk-1\nchunk-2\n"
    assert fast.body == b"hello world"


# -- errors: 500 before the head, a cut connection after it ----------------------------------


@pytest.fixture
def bad_server(serve, tmp_path):
    events = Events(tmp_path)
    server = serve("asgi_raw:misbehaving_app", *ASGI, env=events.env)
    server.events = events
    return server


def get(server, path: str) -> RawConnection:
    conn = RawConnection.to(server)
    conn.send(request("GET", path))
    return conn


def test_exception_before_response_start_gives_500_and_logs_traceback(bad_server):
    with get(bad_server, "/raise-before-start") as conn:
        resp = conn.read_response()
    assert resp.status == 500
    bad_server.wait_for_log(r"RuntimeError: boom before start")
    assert "Traceback" in bad_server.log


def test_exception_after_response_start_cuts_the_body_instead_of_ending_it(bad_server):
    with get(bad_server, "/raise-after-start") as conn:
        with pytest.raises(ConnectionClosed):
            conn.read_response()
        # the head and the partial body did go out; the response never completed
        assert b"partial" in conn.buf or conn.eof
    bad_server.wait_for_log(r"RuntimeError: boom after start")


def test_app_returning_without_a_response_gives_500(bad_server):
    with get(bad_server, "/return-without-response") as conn:
        resp = conn.read_response()
    assert resp.status == 500


def test_body_before_start_raises_in_the_app_and_gives_500(bad_server):
    with get(bad_server, "/body-before-start") as conn:
        resp = conn.read_response()
    assert resp.status == 500
    assert b"too early" not in resp.body
    assert bad_server.events.wait_for("send-raised")[0]["path"] == "/body-before-start"


def test_second_response_start_raises_in_the_app_and_never_completes_a_200(bad_server):
    with get(bad_server, "/start-twice") as conn:
        try:
            resp = conn.read_response()
        except ConnectionClosed:
            resp = None
    # either the server held the head back and answers 500, or it had sent the first head and
    # now cuts the connection: never a complete response carrying the app's later body
    if resp is not None:
        assert resp.status == 500, resp
    assert bad_server.events.wait_for("send-raised")[0]["path"] == "/start-twice"


def test_send_after_response_completed_raises_in_the_app_and_keeps_the_response(bad_server):
    with get(bad_server, "/send-after-complete") as conn:
        resp = conn.read_response()
    assert resp.status == 200
    assert resp.body == b"complete"
    assert bad_server.events.wait_for("send-raised")[0]["path"] == "/send-after-complete"
    # the worker survives and serves the next request
    with get(bad_server, "/fine") as conn:
        assert conn.read_response().body == b"fine"


@pytest.mark.parametrize("path", ["/bad-status", "/str-header", "/crlf-header"])
def test_malformed_response_start_raises_in_the_app_and_gives_500(bad_server, path):
    with get(bad_server, path) as conn:
        resp = conn.read_response()
    assert resp.status == 500
    assert bad_server.events.wait_for("send-raised")[0]["path"] == path


def test_worker_keeps_serving_after_app_errors(bad_server):
    for path in ("/raise-before-start", "/return-without-response", "/raise-after-start"):
        conn = get(bad_server, path)
        try:
            conn.read_response()
        except ConnectionClosed:
            pass
        conn.close()
    with get(bad_server, "/fine") as conn:
        assert conn.read_response().body == b"fine"


# -- disconnects -----------------------------------------------------------------------------


@pytest.fixture
def disconnect_server(serve, tmp_path):
    events = Events(tmp_path)
    server = serve("asgi_raw:disconnect_app", *ASGI, env=events.env)
    server.events = events
    return server


def test_http_disconnect_is_delivered_when_the_client_closes(disconnect_server):
    conn = RawConnection.to(disconnect_server)
    conn.send(request("POST", "/wait", headers=[("Content-Length", "4")], body=b"data"))
    disconnect_server.events.wait_for("body")
    conn.close()
    (after,) = disconnect_server.events.wait_for("after-body")
    assert after["type"] == "http.disconnect"
    assert disconnect_server.events.named("body")[0]["length"] == 4


def test_http_disconnect_is_delivered_when_the_client_aborts_an_upload(disconnect_server):
    conn = RawConnection.to(disconnect_server)
    conn.send(request("POST", "/upload", headers=[("Content-Length", "1000000")]) + b"x" * 5000)
    time.sleep(0.5)
    conn.close()
    (ended,) = disconnect_server.events.wait_for("upload-ended", timeout=10)
    assert ended["how"] == "http.disconnect", ended
    assert ended["received"] <= 5000


def test_streaming_app_stops_soon_after_the_client_goes_away(disconnect_server):
    conn = RawConnection.to(disconnect_server)
    conn.send(request("GET", "/stream-forever"))
    assert conn.quiet_for(0.5).startswith(b"HTTP/1.1 200")
    conn.close()
    (stopped,) = disconnect_server.events.wait_for("stream-stopped", timeout=10)
    assert stopped["how"] in ("http.disconnect", "send raised"), stopped
    if stopped["how"] == "send raised":
        # ASGI spec 2.4: sending on a closed connection raises an OSError subclass
        assert stopped["error"] in {c.__name__ for c in _oserror_classes()}, stopped


def test_send_after_client_disconnect_raises_oserror_under_spec_2_4(disconnect_server):
    """ASGI spec 2.4 (announced in scope["asgi"]["spec_version"]): send() on a closed
    connection raises an OSError subclass. Starlette's StreamingResponse relies on exactly that
    to stop a stream once it sees spec 2.4."""
    conn = RawConnection.to(disconnect_server)
    conn.send(request("GET", "/stream-unwatched"))
    assert conn.quiet_for(0.5).startswith(b"HTTP/1.1 200")
    conn.close()
    (stopped,) = disconnect_server.events.wait_for("unwatched-stopped", timeout=25)
    assert stopped["how"] == "send raised", stopped
    assert stopped["is_oserror"], stopped


def _oserror_classes():
    todo, seen = [OSError], []
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen + [type("ClientDisconnected", (OSError,), {})]


# -- worker recycling and the connection limit -----------------------------------------------


def test_max_requests_recycles_asgi_workers_and_each_runs_lifespan(serve, tmp_path):
    events = Events(tmp_path)
    server = serve("asgi_raw:body_app", *ASGI, "-w", "1", "--max-requests", "5", env=events.env)
    pids: list[int] = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        # until three workers took turns (a retiring worker answers until its replacement is
        # ready, so how many requests each serves depends on how fast the machine boots one)
        while len(set(pids)) < 3 and len(pids) < 400:
            r = http.get("/pid", headers={"Connection": "close"})
            assert r.status_code == 200  # recycling never fails a request
            pids.append(r.json()["pid"])
            time.sleep(0.05)
    per_pid = {p: pids.count(p) for p in set(pids)}
    assert len(per_pid) >= 3, per_pid
    # each replaced worker served its 5 and then asked to go because of --max-requests
    for pid in set(pids) - {pids[-1]}:
        assert per_pid[pid] >= 5, per_pid
        server.wait_for_log(rf"\[{pid}\] .*Autorestarting worker after current request")
    # each worker ran its own lifespan startup, and the retired ones their shutdown
    started = {e["pid"] for e in events.wait_for("lifespan.startup", count=len(per_pid))}
    assert set(per_pid) <= started
    events.wait_for("lifespan.shutdown", count=len(per_pid) - 1)


def test_requests_past_worker_connections_get_503_and_capacity_comes_back(serve):
    server = serve("asgi_raw:body_app", *ASGI, "-w", "1", "--worker-connections", "2")
    results: list[int] = []

    def slow() -> None:
        r = httpx.get(f"{server.url}/sleep?s=2", timeout=15)
        results.append(r.status_code)

    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.7)  # both slow requests are inside the app now
    started = time.monotonic()
    over = httpx.get(f"{server.url}/pid", timeout=15)
    assert over.status_code == 503, over.text
    assert time.monotonic() - started < 1.5, "the refusal must not wait for a free slot"
    for t in threads:
        t.join()
    assert results == [200, 200]
    assert httpx.get(f"{server.url}/pid", timeout=10).status_code == 200


# -- choosing the ASGI interface -------------------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ("-k", "asgi"),
        ("--interface", "asgi"),
        ("-k", "uvicorn.workers.UvicornWorker"),
        ("-k", "uvicorn_worker.UvicornWorker"),
        ("--interface", "auto"),
    ],
    ids=["k-asgi", "interface-asgi", "uvicorn-worker", "uvicorn-worker-pkg", "interface-auto"],
)
def test_each_way_of_asking_for_asgi_serves_an_asgi_3_app(serve, flags):
    server = serve("asgi_raw:scope_app", *flags)
    r = httpx.get(f"{server.url}/via", timeout=10)
    assert r.status_code == 200
    assert untag(r.json()["scope"])["path"] == "/via"


def test_interface_auto_serves_an_asgi_2_double_callable(serve):
    server = serve("asgi_raw:asgi2_app", "--interface", "auto")
    r = httpx.get(f"{server.url}/two", timeout=10)
    assert r.status_code == 200
    assert r.text == "asgi2 says hi to /two"


def test_asgi_worker_serves_an_asgi_2_double_callable(serve):
    server = serve("asgi_raw:asgi2_app", *ASGI)
    r = httpx.get(f"{server.url}/k", timeout=10)
    assert r.status_code == 200
    assert r.text == "asgi2 says hi to /k"


def test_interface_auto_still_serves_a_wsgi_app_as_wsgi(serve):
    server = serve("echo:app", "--interface", "auto")
    r = httpx.get(f"{server.url}/w?x=1", timeout=10)
    assert r.status_code == 200
    assert r.json()["PATH_INFO"] == "/w"
    assert r.json()["QUERY_STRING"] == "x=1"


def test_interface_auto_serves_a_wsgi_class_as_wsgi_not_asgi_2(serve):
    server = serve("asgi_raw:WsgiClassApp", "--interface", "auto")
    r = httpx.get(f"{server.url}/cls", timeout=10)
    assert r.status_code == 200
    assert r.text == "wsgi class at /cls"


def test_interface_auto_serves_a_flask_app_object_as_wsgi(serve):
    server = serve("flaskapp:app", "--interface", "auto")
    r = httpx.get(f"{server.url}/", timeout=10)
    assert r.status_code == 200
    assert r.text == "hello from flask"


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "auto"])
def test_asgi_loop_choice_serves_requests(serve, loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed")
    server = serve("asgi_raw:scope_app", *ASGI, "--asgi-loop", loop)
    assert httpx.get(f"{server.url}/", timeout=10).status_code == 200


def test_loop_alias_is_accepted_like_asgi_loop(serve):
    server = serve("asgi_raw:scope_app", *ASGI, "--loop", "asyncio")
    assert httpx.get(f"{server.url}/", timeout=10).status_code == 200


def test_unknown_asgi_loop_is_refused_at_startup():
    done = run_ferricorn("-b", "127.0.0.1:0", *ASGI, "--asgi-loop", "tokio", "asgi_raw:scope_app")
    assert done.returncode != 0
    assert "tokio" in done.stderr
