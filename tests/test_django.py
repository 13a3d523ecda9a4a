"""A real minimal Django project (tests/apps/djangoproj) served by ferricorn, driven with httpx."""

from __future__ import annotations

import hashlib
import os

import httpx
import pytest
from conftest import APPS

APP = "djangoproj.wsgi:application"


@pytest.fixture
def django_server(serve):
    return serve(APP)


@pytest.fixture
def http(django_server):
    with httpx.Client(base_url=django_server.url, timeout=30) as c:
        yield c


def csrf_token(http: httpx.Client) -> str:
    """GET the form page, which sets the csrftoken cookie, and return the cookie's value."""
    r = http.get("/contact/")
    assert r.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in r.text
    return http.cookies["csrftoken"]


def test_django_index_page(http):
    r = http.get("/")
    assert r.status_code == 200
    assert r.text == "hello from django"


def test_django_form_post_with_csrf_token_is_accepted(http):
    token = csrf_token(http)
    r = http.post(
        "/contact/",
        data={
            "csrfmiddlewaretoken": token,
            "name": "Zoë",
            "topic": ["billing", "bugs"],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"thanks": "Zoë", "topics": ["billing", "bugs"]}


def test_django_form_post_with_csrf_header_is_accepted(http):
    token = csrf_token(http)
    r = http.post("/contact/", data={"name": "Ada"}, headers={"X-CSRFToken": token})
    assert r.status_code == 200, r.text
    assert r.json()["thanks"] == "Ada"


def test_django_form_post_without_csrf_token_is_forbidden(http):
    r = http.post("/contact/", data={"name": "Mallory"})
    assert r.status_code == 403


def test_django_multipart_file_upload(http):
    token = csrf_token(http)
    blob = os.urandom(
        3_000_000
    )  # larger than FILE_UPLOAD_MAX_MEMORY_SIZE: goes to a temp file
    r = http.post(
        "/upload/",
        data={"csrfmiddlewaretoken": token, "note": "big one"},
        files={"document": ("data.bin", blob, "application/octet-stream")},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "name": "data.bin",
        "size": len(blob),
        "sha256": hashlib.sha256(blob).hexdigest(),
        "note": "big one",
    }


def test_django_redirect_points_to_named_url(http):
    r = http.get("/go/")
    assert r.status_code == 302
    assert r.headers["location"] == "/target/"
    assert http.get("/go/", follow_redirects=True).text == "you made it"


def test_django_append_slash_redirects(http):
    r = http.get("/target")
    assert r.status_code == 301
    assert r.headers["location"] == "/target/"


def test_django_cookie_is_set_and_read_back(http):
    r = http.get("/cookie/set/", params={"flavour": "ginger"})
    assert r.status_code == 200
    assert "flavour=ginger" in r.headers["set-cookie"]
    assert http.get("/cookie/get/").json() == {"flavour": "ginger"}


def test_django_session_persists_across_requests(http):
    counts = [http.get("/visits/").json()["visits"] for _ in range(3)]
    assert counts == [1, 2, 3]
    assert "sessionid" in http.cookies


def test_django_streaming_response_is_sent_chunked(http):
    with http.stream("GET", "/stream/", params={"n": 200}) as r:
        assert r.status_code == 200
        assert "content-length" not in r.headers
        assert r.headers.get("transfer-encoding") == "chunked"
        body = r.read().decode()
    assert body == "".join(f"row {i}\n" for i in range(200))


def test_django_file_response_serves_exact_bytes(http):
    r = http.get("/source/")
    assert r.status_code == 200
    assert r.content == (APPS / "djangoproj" / "views.py").read_bytes()


def test_django_routes_percent_encoded_unicode_path(http):
    r = http.get("/caf%C3%A9/")
    assert r.status_code == 200
    assert r.text == "unicode route"


def test_django_unknown_url_is_404(http):
    assert http.get("/no/such/page/").status_code == 404


def test_django_view_exception_is_500_and_logged(django_server, http):
    r = http.get("/boom/")
    assert r.status_code == 500
    django_server.wait_for_log(r"RuntimeError: django-boom-marker")
    assert http.get("/").status_code == 200


def test_django_disallowed_host_is_400(http):
    r = http.get("/", headers={"Host": "evil.example"})
    assert r.status_code == 400


def test_django_uses_script_name_for_reversed_urls(serve):
    server = serve(APP, env={"SCRIPT_NAME": "/site"})
    with httpx.Client(base_url=server.url, timeout=30) as c:
        r = c.get("/site/go/")
        assert r.status_code == 302
        assert r.headers["location"] == "/site/target/"
        assert c.get("/site/go/", follow_redirects=True).text == "you made it"
