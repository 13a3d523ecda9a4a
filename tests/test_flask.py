"""A real Flask app (tests/apps/flaskapp.py) served by ferricorn and driven with httpx."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from conftest import APPS


@pytest.fixture
def flask_server(serve):
    return serve("flaskapp:app")


@pytest.fixture
def http(flask_server):
    with httpx.Client(base_url=flask_server.url, timeout=30) as c:
        yield c


def test_flask_index_page(http):
    r = http.get("/")
    assert r.status_code == 200
    assert r.text == "hello from flask"
    assert r.headers["content-type"].startswith("text/html")


def test_flask_urlencoded_form_post(http):
    r = http.post("/form", data={"name": "Zoë & co", "colour": ["red", "green"]})
    assert r.status_code == 200
    assert r.json() == {"name": "Zoë & co", "colours": ["red", "green"]}


def test_flask_multipart_file_upload(http):
    blob = os.urandom(1_500_000)
    r = http.post(
        "/upload",
        files={"document": ("report.bin", blob, "application/octet-stream")},
        data={"note": "quarterly"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "filename": "report.bin",
        "content_type": "application/octet-stream",
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "note": "quarterly",
    }


def test_flask_redirect_points_to_target_and_can_be_followed(http):
    r = http.get("/old-place")
    assert r.status_code == 302
    assert r.headers["location"] == "/new-place?ref=old"
    followed = http.get("/old-place", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.text == "arrived from old"


def test_flask_cookie_is_set_and_read_back(http):
    r = http.get("/cookie/set", params={"flavour": "oatmeal"})
    assert r.status_code == 200
    assert "flavour=oatmeal" in r.headers["set-cookie"]
    assert http.get("/cookie/get").json() == {"flavour": "oatmeal"}


def test_flask_session_persists_across_requests(http):
    assert [http.post("/session/visit").json()["visits"] for _ in range(3)] == [1, 2, 3]


def test_flask_json_round_trip(http):
    r = http.post("/json", json={"numbers": [1, 2, 3.5], "name": "ünïcode"})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "received": {"numbers": [1, 2, 3.5], "name": "ünïcode"},
        "total": 6.5,
    }


def test_flask_streaming_response_with_request_context(http):
    with http.stream("GET", "/stream", params={"n": 50, "who": "ada"}) as r:
        assert r.status_code == 200
        assert r.headers.get("transfer-encoding") == "chunked"
        body = r.read().decode()
    assert body == "".join(f"line {i} for ada\n" for i in range(50))


def test_flask_send_file_serves_exact_bytes(http):
    r = http.get("/source")
    assert r.status_code == 200
    assert r.content == (APPS / "flaskapp.py").read_bytes()


def test_flask_routes_percent_encoded_unicode_path(http):
    r = http.get("/caf%C3%A9")
    assert r.status_code == 200
    assert r.text == "unicode route"


def test_flask_unknown_route_is_404(http):
    r = http.get("/no/such/page")
    assert r.status_code == 404


def test_flask_wrong_method_is_405(http):
    assert http.get("/form").status_code == 405


def test_flask_exception_is_500_and_logged_through_wsgi_errors(flask_server, http):
    r = http.get("/boom")
    assert r.status_code == 500
    flask_server.wait_for_log(r"RuntimeError: flask-boom-marker")
    assert http.get("/").status_code == 200


def test_flask_sees_script_name_as_script_root(serve):
    server = serve("flaskapp:app", env={"SCRIPT_NAME": "/shop"})
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/shop/urls")
        redirect = c.get("/shop/old-place")
    assert r.json() == {
        "script_root": "/shop",
        "path": "/urls",
        "url": "/shop/new-place",
    }
    assert redirect.headers["location"] == "/shop/new-place?ref=old"
