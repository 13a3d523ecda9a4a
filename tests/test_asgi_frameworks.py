"""Real ASGI frameworks served by ferricorn: FastAPI (tests/apps/asgi_fastapi.py), Starlette
with lifespan state (tests/apps/asgi_starlette.py) and Django's ASGI handler
(tests/apps/asgi_django.py)."""

from __future__ import annotations

import concurrent.futures
import json
import time

import httpx
import pytest
from helpers_asgi import ASGI, Events

pytest.importorskip("fastapi", reason="FastAPI is not installed (tests/requirements.txt)")
websockets = pytest.importorskip("websockets", reason="the websockets client is not installed")
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

# -- FastAPI ---------------------------------------------------------------------------------


@pytest.fixture
def bg_file(tmp_path):
    path = tmp_path / "background.txt"
    path.touch()
    return path


@pytest.fixture
def fastapi_server(serve, bg_file):
    return serve("asgi_fastapi:app", *ASGI, env={"ASGI_BG_FILE": str(bg_file)})


@pytest.fixture
def fastapi(fastapi_server):
    with httpx.Client(base_url=fastapi_server.url, timeout=30) as c:
        yield c


def test_fastapi_index_returns_json(fastapi):
    r = fastapi.get("/")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"hello": "fastapi"}


def test_fastapi_path_and_query_parameters_are_parsed_and_typed(fastapi):
    r = fastapi.get("/items/42", params={"q": "zoë & co", "limit": "3"})
    assert r.status_code == 200
    assert r.json() == {"item_id": 42, "q": "zoë & co", "limit": 3}


def test_fastapi_bad_path_parameter_is_422(fastapi):
    r = fastapi.get("/items/not-a-number")
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["path", "item_id"]


def test_fastapi_pydantic_body_is_validated_and_echoed(fastapi):
    r = fastapi.post("/items", json={"name": "lamp", "price": 10, "tags": ["home"]})
    assert r.status_code == 201
    assert r.json() == {
        "created": {"name": "lamp", "price": 10.0, "tags": ["home"]},
        "total_with_tax": 12.0,
    }


@pytest.mark.parametrize(
    ("body", "bad_field"),
    [({"name": "", "price": 1}, "name"), ({"name": "x", "price": -1}, "price"), ({}, "name")],
)
def test_fastapi_invalid_body_is_422_naming_the_field(fastapi, body, bad_field):
    r = fastapi.post("/items", json=body)
    assert r.status_code == 422
    assert ["body", bad_field] in [e["loc"] for e in r.json()["detail"]]


def test_fastapi_malformed_json_body_is_422(fastapi):
    r = fastapi.post("/items", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_fastapi_dependency_rejects_and_accepts(fastapi):
    assert fastapi.get("/secret").status_code == 401
    assert fastapi.get("/secret").json() == {"detail": "bad api key"}
    r = fastapi.get("/secret", headers={"X-API-Key": "sesame"})
    assert r.status_code == 200
    assert r.json() == {"key": "sesame"}


def test_fastapi_sync_endpoint_runs_in_the_threadpool(fastapi):
    assert fastapi.get("/sync").json() == {"sync": True}


def test_fastapi_streaming_response_is_chunked_and_complete(fastapi):
    with fastapi.stream("GET", "/stream", params={"n": 20}) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        assert "content-length" not in r.headers
        lines = list(r.iter_lines())
    assert lines == [f"line {i}" for i in range(20)]


def test_fastapi_background_task_runs_after_the_response(fastapi, bg_file):
    r = fastapi.post("/background", params={"word": "fern"})
    assert r.status_code == 202
    assert r.json() == {"queued": "fern"}
    deadline = time.monotonic() + 10
    while "done:fern" not in bg_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bg_file.read_text() == "done:fern\n"


def test_fastapi_endless_stream_is_closed_when_the_client_goes_away(fastapi_server, bg_file):
    errors_before = fastapi_server.log.count("Exception in ASGI application")
    with httpx.Client(base_url=fastapi_server.url, timeout=10) as client:
        with client.stream("GET", "/forever") as r:
            lines = r.iter_lines()
            assert [next(lines) for _ in range(3)] == ["tick"] * 3
    deadline = time.monotonic() + 10
    while "stream-closed" not in bg_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert bg_file.read_text() == "stream-closed\n", "the endless generator was never closed"
    # a client that leaves is not an application error
    time.sleep(0.2)
    assert fastapi_server.log.count("Exception in ASGI application") == errors_before


def test_fastapi_unhandled_exception_is_500_and_logged(fastapi, fastapi_server):
    r = fastapi.get("/boom")
    assert r.status_code == 500
    fastapi_server.wait_for_log(r"RuntimeError: fastapi endpoint exploded")
    # the worker is fine afterwards
    assert fastapi.get("/").status_code == 200


def test_fastapi_unknown_route_is_404_and_wrong_method_405(fastapi):
    assert fastapi.get("/nope").status_code == 404
    assert fastapi.delete("/items/1").status_code == 405


def test_fastapi_plain_text_response_is_utf8(fastapi):
    r = fastapi.get("/text")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.text == "plain ünïcode"


def test_fastapi_websocket_chat_greets_echoes_and_closes_with_code(fastapi_server):
    url = f"ws://{fastapi_server.host}:{fastapi_server.port}/ws/chat/lobby?name=ada"
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=10)) == {"joined": "lobby", "name": "ada"}
        ws.send("hi all")
        assert ws.recv(timeout=10) == "ada@lobby: hi all"
        ws.send("bye")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
    assert info.value.rcvd.code == 4000
    assert info.value.rcvd.reason == "see you"


def test_fastapi_websocket_binary_messages(fastapi_server):
    url = f"ws://{fastapi_server.host}:{fastapi_server.port}/ws/bytes"
    with connect(url) as ws:
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=10) == b"\x03\x02\x01"


def test_fastapi_unknown_websocket_route_is_refused(fastapi_server):
    url = f"ws://{fastapi_server.host}:{fastapi_server.port}/ws/nowhere"
    with pytest.raises(InvalidStatus) as info:
        connect(url, open_timeout=10)
    assert info.value.response.status_code == 403


def test_fastapi_concurrent_requests_are_all_answered(fastapi):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: fastapi.get(f"/items/{i}").json()["item_id"], range(40)))
    assert results == list(range(40))


# -- Starlette lifespan state ----------------------------------------------------------------


def test_starlette_lifespan_state_is_visible_to_requests_and_shared_by_reference(serve, tmp_path):
    events = Events(tmp_path)
    server = serve("asgi_starlette:app", *ASGI, env=events.env)
    with httpx.Client(base_url=server.url, timeout=10) as http:
        first = http.get("/state").json()
        second = http.get("/state").json()
    assert first == {"x": "from-lifespan", "pool_open": True, "uses": 1, "same_worker": True}
    # state is a shallow copy per request: the pool object itself is shared
    assert second["uses"] == 2
    assert server.stop() == 0
    (shutdown,) = events.wait_for("starlette.shutdown")
    assert shutdown["uses"] == 2


def test_starlette_lifespan_off_leaves_request_state_empty(serve):
    server = serve("asgi_starlette:app", *ASGI, "--asgi-lifespan", "off")
    r = httpx.get(f"{server.url}/state", timeout=10)
    assert r.status_code == 500  # request.state.pool does not exist without startup


# -- Django ASGI -----------------------------------------------------------------------------


@pytest.fixture
def django(serve):
    pytest.importorskip("django", reason="Django is not installed")
    server = serve("asgi_django:application", *ASGI)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def test_django_async_view_sees_method_path_query_and_headers(django):
    r = django.get("/async/", params={"q": "ünï"}, headers={"X-Probe": "p1"})
    assert r.status_code == 200
    assert r.json() == {
        "view": "async",
        "method": "GET",
        "path": "/async/",
        "query": "ünï",
        "header": "p1",
        "scheme": "http",
    }


def test_django_sync_view_runs_under_asgi(django):
    r = django.get("/sync/7/")
    assert r.status_code == 200
    assert r.text == "sync view got 7"


def test_django_post_json_body_is_read(django):
    r = django.post("/json/", json={"numbers": [1, 2, 3.5]})
    assert r.status_code == 201
    assert r.json()["sum"] == 6.5


def test_django_streaming_response_is_complete(django):
    r = django.get("/stream/")
    assert r.status_code == 200
    assert r.text == "part 0;part 1;part 2;"


def test_django_common_middleware_redirects_missing_slash(django):
    r = django.get("/async")
    assert r.status_code == 301
    assert r.headers["location"] == "/async/"


def test_django_404_from_a_view_and_from_the_resolver(django):
    assert django.get("/missing/").status_code == 404
    assert django.get("/not/a/route/").status_code == 404
