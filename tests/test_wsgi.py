"""WSGI conformance: PEP 3333 plus the environ keys gunicorn sets.

Apps wrapped in ``wsgiref.validate.validator`` are driven through many request shapes; each
such test checks the response and that the server's error log holds no validator complaint.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid

import httpx
import pytest
from conftest import recv_until_closed

# Lines that mean the validator (or anything else) complained inside the server process.
COMPLAINTS = (
    "Traceback",
    "AssertionError",
    "WSGIWarning",
    "Exception ignored",
    "garbage collected without being closed",
    "[ERROR]",
)


def client(server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def raw_exchange(server, request: bytes) -> bytes:
    """Send ``request`` bytes on a new connection and read until the server closes it."""
    with server.connect() as sock:
        sock.sendall(request)
        return recv_until_closed(sock)


def split_response(data: bytes) -> tuple[str, dict[str, list[str]], bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return status, headers, body


def environ_of(server, path: str = "/", **kwargs) -> dict:
    with client(server) as c:
        r = c.get(path, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()


def assert_log_clean(server) -> None:
    """Write a marker through wsgi.errors, wait for it, then check nothing complained before."""
    marker = f"log-marker-{uuid.uuid4().hex}"
    with client(server) as c:
        assert c.get(f"/__log_marker__/{marker}").status_code == 200
    server.wait_for_log(marker)
    bad = [line for line in server.lines if any(c in line for c in COMPLAINTS)]
    assert not bad, "server log has complaints:\n" + server.log


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- validator-wrapped apps through many request shapes --------------------------------------

LARGE = bytes(range(256)) * 4096  # 1 MiB


def chunks_of(data: bytes, size: int = 7000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


SHAPES = {
    "get": ("GET", "/plain", None),
    "get-with-query": ("GET", "/q?a=1&b=two", None),
    "delete": ("DELETE", "/thing/1", None),
    "options": ("OPTIONS", "/", None),
    "post-content-length": ("POST", "/form", b"name=value&other=1"),
    "post-empty": ("POST", "/empty", b""),
    "post-chunked": ("POST", "/chunked", "chunked-small"),
    "post-large-content-length": ("POST", "/large", LARGE),
    "post-large-chunked": ("POST", "/large-chunked", "chunked-large"),
    "put": ("PUT", "/resource", b'{"k": "v"}'),
    "patch": ("PATCH", "/resource", b"patch body"),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_validated_echo_app_answers_every_request_shape_without_complaints(
    serve, shape
):
    method, path, body = SHAPES[shape]
    if body == "chunked-small":
        expected, content = b"hello chunked world", chunks_of(b"hello chunked world", 5)
    elif body == "chunked-large":
        expected, content = LARGE, chunks_of(LARGE)
    else:
        expected, content = body or b"", body
    server = serve("wsgi_apps:validated_echo")
    with client(server) as c:
        r = c.request(method, path, content=content)
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["method"] == method
    assert got["path"] == path.split("?")[0]
    assert got["length"] == len(expected)
    assert got["sha256"] == sha(expected)
    assert int(r.headers["content-length"]) == len(r.content)
    assert_log_clean(server)


def test_validated_app_answers_head_with_headers_and_no_body(serve):
    server = serve("wsgi_apps:validated_echo")
    with client(server) as c:
        get = c.get("/same")
        head = c.head("/same")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == "application/json"
    # The echo body names the method, so HEAD's would be one byte longer than GET's.
    assert int(head.headers["content-length"]) == len(get.content) + 1
    assert_log_clean(server)


def test_validated_app_head_over_raw_socket_sends_no_body_bytes(serve):
    server = serve("wsgi_apps:validated_echo")
    data = raw_exchange(
        server, b"HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    status, headers, body = split_response(data)
    assert status.startswith("HTTP/1.1 200")
    assert body == b""
    assert int(headers["content-length"][0]) > 0
    assert_log_clean(server)


def test_validated_app_serves_http_1_0_request(serve):
    server = serve("wsgi_apps:validated_echo")
    data = raw_exchange(
        server,
        b"POST /old HTTP/1.0\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nabcd",
    )
    status, _, body = split_response(data)
    assert status.startswith("HTTP/1.")
    assert " 200" in status
    assert json.loads(body)["sha256"] == sha(b"abcd")
    assert_log_clean(server)


def test_validated_readline_and_readlines_split_body_on_newlines(serve):
    server = serve("wsgi_apps:validated_lines")
    with client(server) as c:
        r = c.post("/", content=b"first line\nsecond\nthird\nfourth")
    assert r.status_code == 200, r.text
    assert r.json() == ["first line\n", "seco", "nd\n", "third\n", "fourth"]
    assert_log_clean(server)


def test_validated_generator_response_is_streamed_chunked(serve):
    server = serve("wsgi_apps:validated_generator")
    with client(server) as c:
        r = c.get("/")
    assert r.status_code == 200
    assert r.text == "".join(f"line {i}\n" for i in range(50))
    assert r.headers.get("transfer-encoding") == "chunked"
    assert_log_clean(server)


def test_validated_write_callable_app_sends_written_then_returned_bytes(serve):
    server = serve("wsgi_apps:validated_write")
    with client(server) as c:
        r = c.get("/")
    assert r.status_code == 200
    assert r.text == "one two three"
    assert_log_clean(server)


def test_validated_file_wrapper_app_serves_the_file_bytes(serve, tmp_path):
    blob = os.urandom(300_000)
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    server = serve("wsgi_apps:validated_file")
    with client(server) as c:
        r = c.get("/", params={"path": str(path)})
    assert r.status_code == 200
    assert r.content == blob
    assert_log_clean(server)


def test_validated_204_response_has_no_body(serve):
    server = serve("wsgi_apps:validated_empty")
    with client(server) as c:
        r = c.get("/")
    assert r.status_code == 204
    assert r.content == b""
    assert_log_clean(server)


def test_keep_alive_connection_serves_many_validated_requests(serve):
    server = serve("wsgi_apps:validated_echo")
    with client(server) as c:
        for i in range(20):
            body = f"request {i}".encode()
            r = c.post(f"/n/{i}", content=body)
            assert r.status_code == 200
            assert r.json()["sha256"] == sha(body)
    assert_log_clean(server)


# --- environ keys ----------------------------------------------------------------------------


def test_environ_has_the_pep3333_constants(serve):
    server = serve("wsgi_apps:environ_app")
    env = environ_of(server)
    assert env["wsgi.version"] == [1, 0]
    assert env["wsgi.url_scheme"] == "http"
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is False
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input_terminated"] is True
    assert env["_file_wrapper_callable"] is True
    assert env["_input_methods"] == ["read", "readline", "readlines", "__iter__"]
    assert env["_errors_methods"] == ["write", "writelines", "flush"]


def test_environ_multithread_is_true_with_two_threads(serve):
    server = serve("wsgi_apps:environ_app", "--threads", "2")
    assert environ_of(server)["wsgi.multithread"] is True


def test_environ_request_line_keys(serve):
    server = serve("wsgi_apps:environ_app")
    env = environ_of(server, "/some/path?a=1&b=%20x&c")
    assert env["REQUEST_METHOD"] == "GET"
    assert env["SCRIPT_NAME"] == ""
    assert env["PATH_INFO"] == "/some/path"
    assert env["QUERY_STRING"] == "a=1&b=%20x&c"
    assert env["RAW_URI"] == "/some/path?a=1&b=%20x&c"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_environ_server_and_remote_addresses_are_strings(serve):
    server = serve("wsgi_apps:environ_app")
    with server.connect() as sock:
        local_port = sock.getsockname()[1]
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status, _, body = split_response(recv_until_closed(sock))
    assert " 200 " in status
    env = json.loads(body)
    assert env["SERVER_NAME"] == "127.0.0.1"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["REMOTE_PORT"] == str(local_port)


def test_environ_server_protocol_is_http_1_0_as_sent(serve):
    server = serve("wsgi_apps:environ_app")
    status, _, body = split_response(raw_exchange(server, b"GET /old HTTP/1.0\r\n\r\n"))
    assert " 200 " in status
    env = json.loads(body)
    assert env["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert env["PATH_INFO"] == "/old"


def test_environ_content_type_and_length_have_no_http_prefix(serve):
    server = serve("wsgi_apps:environ_app")
    with client(server) as c:
        r = c.post("/", content=b"hello", headers={"Content-Type": "text/plain"})
    env = r.json()
    assert env["CONTENT_TYPE"] == "text/plain"
    assert env["CONTENT_LENGTH"] == "5"
    assert "HTTP_CONTENT_TYPE" not in env
    assert "HTTP_CONTENT_LENGTH" not in env


def test_environ_maps_headers_to_http_keys(serve):
    server = serve("wsgi_apps:environ_app")
    env = environ_of(
        server, headers={"X-Custom-Thing": "value 1", "Accept": "text/html"}
    )
    assert env["HTTP_X_CUSTOM_THING"] == "value 1"
    assert env["HTTP_ACCEPT"] == "text/html"
    assert env["HTTP_HOST"] == f"{server.host}:{server.port}"


def test_environ_joins_repeated_headers_with_comma(serve):
    server = serve("wsgi_apps:environ_app")
    env = environ_of(
        server, headers=[("X-Multi", "one"), ("X-Multi", "two"), ("X-Multi", "three")]
    )
    assert env["HTTP_X_MULTI"] == "one,two,three"


def test_environ_drops_headers_with_underscores(serve):
    server = serve("wsgi_apps:environ_app")
    env = environ_of(
        server,
        headers=[("X-Auth-User", "real"), ("X_Auth_User", "spoofed"), ("X_Other", "1")],
    )
    assert env["HTTP_X_AUTH_USER"] == "real"
    assert "HTTP_X_OTHER" not in env
    assert "spoofed" not in json.dumps(env)


def test_environ_path_info_is_percent_decoded_latin1(serve):
    server = serve("wsgi_apps:environ_app")
    env = environ_of(server, "/caf%C3%A9/a%20b")
    assert env["PATH_INFO"] == "/caf\xc3\xa9/a b"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/a b"
    assert env["RAW_URI"] == "/caf%C3%A9/a%20b"


def test_environ_script_name_from_env_is_stripped_from_path_info(serve):
    server = serve("wsgi_apps:environ_app", env={"SCRIPT_NAME": "/mount"})
    env = environ_of(server, "/mount/sub/path?x=1")
    assert env["SCRIPT_NAME"] == "/mount"
    assert env["PATH_INFO"] == "/sub/path"
    assert env["QUERY_STRING"] == "x=1"
    assert env["RAW_URI"] == "/mount/sub/path?x=1"


def test_environ_script_name_alone_gives_empty_path_info(serve):
    server = serve("wsgi_apps:environ_app", env={"SCRIPT_NAME": "/mount"})
    env = environ_of(server, "/mount")
    assert env["SCRIPT_NAME"] == "/mount"
    assert env["PATH_INFO"] == ""


def test_environ_values_without_dot_are_native_strings(serve):
    server = serve("wsgi_apps:environ_app")
    with client(server) as c:
        env = c.post("/x?y=1", content=b"z", headers={"X-A": "b"}).json()
    for key, value in env.items():
        if "." not in key and not key.startswith("_"):
            assert isinstance(value, str), (key, value)


# --- start_response rules --------------------------------------------------------------------


def test_start_response_with_exc_info_before_body_replaces_status_and_headers(serve):
    server = serve("wsgi_apps:exc_info_replace_app")
    with client(server) as c:
        r = c.get("/")
    assert r.status_code == 503
    assert r.headers["x-replaced"] == "yes"
    assert "x-first-call" not in r.headers
    assert r.text == "custom error page"


def test_start_response_with_exc_info_after_body_reraises_and_aborts(serve):
    server = serve("wsgi_apps:exc_info_after_body_app")
    data = raw_exchange(server, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _, body = split_response(data)
    assert status.startswith("HTTP/1.1 200")
    assert b"first part" in body
    assert b"must not be sent" not in body
    assert not body.endswith(b"0\r\n\r\n"), (
        "a chunked terminator made the truncated body look whole"
    )
    server.wait_for_log("original-failure-marker")


def test_status_reason_phrase_is_sent_as_given(serve):
    server = serve("wsgi_apps:status_app")
    data = raw_exchange(
        server,
        b"GET /?status=299%20Fine%20And%20Dandy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    status, _, body = split_response(data)
    assert status == "HTTP/1.1 299 Fine And Dandy"
    assert body == b"status body"


# --- write() and file_wrapper ----------------------------------------------------------------


def test_write_callable_output_precedes_returned_iterable(serve):
    server = serve("wsgi_apps:write_app")
    with client(server) as c:
        assert c.get("/").text == "one two three"


def test_write_callable_alone_with_empty_iterable_sends_everything(serve):
    server = serve("wsgi_apps:write_only_app")
    with client(server) as c:
        r = c.get("/")
    assert r.status_code == 200
    assert r.text == "".join(f"line {i}\n" for i in range(5))


def test_file_wrapper_serves_a_real_file_byte_for_byte(serve, tmp_path):
    blob = os.urandom(2_000_000)
    path = tmp_path / "big.bin"
    path.write_bytes(blob)
    server = serve("wsgi_apps:file_app")
    with client(server) as c:
        r = c.get("/", params={"path": str(path)})
    assert r.status_code == 200
    assert r.headers["content-length"] == str(len(blob))
    assert sha(r.content) == sha(blob)


def test_file_wrapper_without_content_length_serves_whole_file(serve, tmp_path):
    blob = os.urandom(123_457)
    path = tmp_path / "odd.bin"
    path.write_bytes(blob)
    server = serve("wsgi_apps:file_no_length_app")
    with client(server) as c:
        r = c.get("/", params={"path": str(path)})
    assert r.status_code == 200
    assert r.content == blob


def test_file_wrapper_head_sends_no_body(serve, tmp_path):
    path = tmp_path / "small.bin"
    path.write_bytes(b"x" * 5000)
    server = serve("wsgi_apps:file_app")
    with client(server) as c:
        r = c.head("/", params={"path": str(path)})
    assert r.status_code == 200
    assert r.headers["content-length"] == "5000"
    assert r.content == b""


def test_file_wrapper_falls_back_to_read_and_closes_objects_without_fileno(
    serve, tmp_path
):
    record = tmp_path / "record.txt"
    server = serve("wsgi_apps:blob_app", env={"FERRICORN_TEST_RECORD": str(record)})
    with client(server) as c:
        r = c.get("/")
    assert r.status_code == 200
    assert r.text == "".join(f"blob line {i}\n" for i in range(2000))
    wait_for_file_text(record, "blob closed")


def wait_for_file_text(path, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {path}")


# --- wsgi.input ------------------------------------------------------------------------------

BODY = b"alpha\nbeta\ngamma"


@pytest.mark.parametrize(
    ("mode", "n", "pieces"),
    [
        ("read", 0, ["alpha\nbeta\ngamma"]),
        ("read_n", 4, ["alph", "a\nbe", "ta\ng", "amma"]),
        ("readline", 0, ["alpha\n", "beta\n", "gamma"]),
        ("readline_n", 3, ["alp", "ha\n", "bet", "a\n", "gam", "ma"]),
        ("readlines", 0, ["alpha\n", "beta\n", "gamma"]),
        ("iter", 0, ["alpha\n", "beta\n", "gamma"]),
        ("mixed", 0, ["alpha\n", "bet", "a\n", "gamma"]),
    ],
)
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_input_method_returns_expected_pieces(serve, mode, n, pieces, framing):
    server = serve("wsgi_apps:input_app")
    content = BODY if framing == "content-length" else chunks_of(BODY, 5)
    with client(server) as c:
        r = c.post("/", params={"mode": mode, "n": n}, content=content)
    assert r.status_code == 200, r.text
    assert r.json() == {"pieces": pieces, "after_eof": ""}


def test_input_iteration_over_many_lines_yields_each_line(serve):
    body = b"".join(f"line number {i}\n".encode() for i in range(5000))
    server = serve("wsgi_apps:input_app")
    with client(server) as c:
        r = c.post("/", params={"mode": "iter"}, content=chunks_of(body, 999))
    pieces = r.json()["pieces"]
    assert len(pieces) == 5000
    assert pieces[0] == "line number 0\n"
    assert pieces[-1] == "line number 4999\n"


def test_input_is_empty_for_get_without_body(serve):
    server = serve("wsgi_apps:input_app")
    with client(server) as c:
        r = c.get("/", params={"mode": "read"})
    assert r.json() == {"pieces": [""], "after_eof": ""}


# --- wsgi.errors -----------------------------------------------------------------------------


def test_wsgi_errors_writes_reach_the_error_log(serve):
    server = serve("wsgi_apps:errors_app")
    msg = f"note-from-app-{uuid.uuid4().hex}"
    with client(server) as c:
        assert c.get("/", params={"msg": msg}).status_code == 200
    server.wait_for_log(msg + r"$")
    server.wait_for_log(msg + r" \(writelines\)")
