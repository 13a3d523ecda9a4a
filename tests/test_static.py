"""``--static /url=/dir``: files answered by the I/O thread, never by the Python app.

Requests go over raw sockets so that nothing normalises the paths under test (``..``,
``%2e%2e``, ``%2f``) or decodes the body behind our back.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from email.utils import formatdate
from pathlib import Path

import pytest
from conftest import run_ferricorn
from helpers_http import RawConnection, Response

CSS = b"body { color: red; }\n" * 50
GZ = gzip.compress(CSS)
BR = b"pretend-brotli-bytes"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``tmp_path/public`` (the mount) with a sibling secret outside it."""
    public = tmp_path / "public"
    (public / "css").mkdir(parents=True)
    (public / "css" / "site.css").write_bytes(CSS)
    (public / "css" / "site.css.gz").write_bytes(GZ)
    (public / "css" / "site.css.br").write_bytes(BR)
    (public / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (public / "only-gz.js").write_bytes(b"console.log(1)\n")
    (public / "only-gz.js.gz").write_bytes(gzip.compress(b"console.log(1)\n"))
    (tmp_path / "app.py").write_bytes(b"SECRET = 1\n")
    os.symlink(tmp_path / "app.py", public / "escape.py")
    os.symlink("../app.py", public / "escape-rel.py")
    os.symlink("css/site.css", public / "inside.css")
    return tmp_path


def request(server, path: str, method: str = "GET", headers: dict | None = None) -> Response:
    lines = [f"{method} {path} HTTP/1.1", "Host: test"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with RawConnection.to(server) as conn:
        conn.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        return conn.read_response(method)


@pytest.fixture
def server(serve, tree: Path):
    return serve(
        "access_apps:app",
        "--static",
        f"/static={tree / 'public'}",
        "--static-max-age",
        "600",
    )


def test_a_file_is_served_with_its_type_length_and_validators(server):
    r = request(server, "/static/css/site.css")
    assert r.status == 200, r
    assert r.body == CSS
    assert r.header("Content-Type") == "text/css; charset=utf-8"
    assert r.header("Content-Length") == str(len(CSS))
    assert r.header("Cache-Control") == "public, max-age=600"
    assert r.header("Accept-Ranges") == "bytes"
    assert r.header("Vary") == "Accept-Encoding"
    assert r.header("Content-Encoding") is None
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', r.header("ETag") or ""), r
    assert r.header("Last-Modified")
    png = request(server, "/static/logo.png")
    assert (png.status, png.header("Content-Type")) == (200, "image/png")


def test_head_sends_the_headers_only(server):
    r = request(server, "/static/css/site.css", method="HEAD")
    assert r.status == 200
    assert r.header("Content-Length") == str(len(CSS))
    assert r.body == b""


def test_the_app_still_serves_everything_else(server):
    r = request(server, "/hello")
    assert (r.status, r.body, r.header("X-Trace")) == (200, b"hello", "t-1")
    # only whole segments match the prefix
    assert request(server, "/staticfile").body == b"hello"


def test_several_requests_share_one_connection(server):
    with RawConnection.to(server) as conn:
        for path in ["/static/css/site.css", "/static/nope", "/hello", "/static/logo.png"]:
            conn.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
            r = conn.read_response()
            assert not r.has_token("Connection", "close"), r
        assert r.status == 200


def test_if_none_match_gives_304(server):
    tag = request(server, "/static/css/site.css").header("ETag")
    r = request(server, "/static/css/site.css", headers={"If-None-Match": tag})
    assert r.status == 304
    assert r.body == b""
    assert r.header("ETag") == tag
    other = request(server, "/static/css/site.css", headers={"If-None-Match": '"nope"'})
    assert other.status == 200


def test_if_modified_since_gives_304(server, tree: Path):
    mtime = (tree / "public" / "css" / "site.css").stat().st_mtime
    r = request(
        server,
        "/static/css/site.css",
        headers={"If-Modified-Since": formatdate(mtime + 5, usegmt=True)},
    )
    assert r.status == 304
    old = request(
        server,
        "/static/css/site.css",
        headers={"If-Modified-Since": formatdate(mtime - 3600, usegmt=True)},
    )
    assert old.status == 200


def test_a_single_range_gives_206(server):
    r = request(server, "/static/css/site.css", headers={"Range": "bytes=5-14"})
    assert r.status == 206
    assert r.body == CSS[5:15]
    assert r.header("Content-Range") == f"bytes 5-14/{len(CSS)}"
    tail = request(server, "/static/css/site.css", headers={"Range": "bytes=-7"})
    assert (tail.status, tail.body) == (206, CSS[-7:])


def test_a_range_past_the_end_gives_416(server):
    r = request(server, "/static/css/site.css", headers={"Range": f"bytes={len(CSS)}-"})
    assert r.status == 416
    assert r.header("Content-Range") == f"bytes */{len(CSS)}"


def test_multiple_ranges_get_the_whole_file(server):
    r = request(server, "/static/css/site.css", headers={"Range": "bytes=0-1,5-6"})
    assert (r.status, r.body) == (200, CSS)


@pytest.mark.parametrize(
    ("accept", "body", "coding"),
    [
        ("gzip", GZ, "gzip"),
        ("gzip, deflate, br", BR, "br"),
        ("br;q=0.5, gzip", GZ, "gzip"),
        ("identity", CSS, None),
    ],
)
def test_precompressed_siblings_follow_accept_encoding(server, accept, body, coding):
    r = request(server, "/static/css/site.css", headers={"Accept-Encoding": accept})
    assert r.status == 200
    assert r.body == body
    assert r.header("Content-Encoding") == coding
    assert r.header("Content-Type") == "text/css; charset=utf-8"
    assert r.header("Vary") == "Accept-Encoding"


def test_a_range_applies_to_the_encoded_file(server):
    r = request(
        server, "/static/css/site.css", headers={"Accept-Encoding": "gzip", "Range": "bytes=0-9"}
    )
    assert (r.status, r.body) == (206, GZ[:10])
    assert r.header("Content-Range") == f"bytes 0-9/{len(GZ)}"


def test_brotli_falls_back_to_gzip_when_only_gzip_exists(server):
    r = request(server, "/static/only-gz.js", headers={"Accept-Encoding": "br, gzip"})
    assert r.header("Content-Encoding") == "gzip"
    assert gzip.decompress(r.body) == b"console.log(1)\n"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../app.py",
        "/static/%2e%2e/app.py",
        "/static/css/..%2f..%2fapp.py",
        "/static/%2e%2e%2fapp.py",
        "/static/css%5c..%5c..%5capp.py",
        "/static/a%00.css",
        "/static/escape.py",
        "/static/escape-rel.py",
        "/static/css",
        "/static/css/",
        "/static/",
        "/static/missing.css",
    ],
)
def test_escapes_and_directories_are_not_found(server, path):
    r = request(server, path)
    assert r.status == 404, r
    assert b"SECRET" not in r.body


def test_a_symlink_that_stays_inside_is_served(server):
    r = request(server, "/static/inside.css")
    assert (r.status, r.body) == (200, CSS)


def test_other_methods_get_405_with_allow(server):
    r = request(server, "/static/css/site.css", method="DELETE")
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"


def test_a_body_on_a_static_get_is_skipped(server):
    with RawConnection.to(server) as conn:
        conn.send(b"GET /static/logo.png HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        conn.send(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().status == 200
        assert conn.read_response().body == b"hello"


def test_static_responses_are_in_the_access_log(serve, tree: Path):
    log = tree / "access.log"
    server = serve(
        "access_apps:app",
        "--static",
        f"/static={tree / 'public'}",
        "--access-logfile",
        str(log),
        "--access-logformat",
        '"%(r)s" %(s)s %(b)s',
    )
    request(server, "/static/css/site.css")
    request(server, "/static/nope")
    expected = [
        f'"GET /static/css/site.css HTTP/1.1" 200 {len(CSS)}',
        '"GET /static/nope HTTP/1.1" 404',
    ]
    for _ in range(200):
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= 2:
            break
        time.sleep(0.05)
    assert lines[0] == expected[0]
    assert lines[1].startswith(expected[1])


def test_the_asgi_worker_serves_static_files_too(serve, tree: Path):
    server = serve("asgi_extensions:app", "-k", "asgi", "--static", f"/assets={tree / 'public'}")
    r = request(server, "/assets/css/site.css", headers={"Accept-Encoding": "gzip"})
    assert (r.status, r.body, r.header("Content-Encoding")) == (200, GZ, "gzip")
    # --static-max-age 0 (the default): caches must revalidate, which the ETag makes cheap
    assert r.header("Cache-Control") == "no-cache"
    assert request(server, "/assets/../app.py").status == 404
    assert request(server, "/hooked").body == b"made"


def test_a_missing_directory_is_a_config_error_naming_the_setting(tmp_path: Path):
    result = run_ferricorn("--static", f"/s={tmp_path / 'nope'}", "access_apps:app")
    assert result.returncode == 2
    assert "--static / static_map" in result.stderr
    assert "nope" in result.stderr
