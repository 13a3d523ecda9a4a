"""A real front end: nginx (skipped when it is not installed) listening on a unix socket and
forwarding to ferricorn over TCP with the headers a TLS-terminating proxy sets.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from helpers_http import RawConnection, request
from nginx_helper import needs_nginx, nginx  # noqa: F401 - nginx is a fixture

pytestmark = needs_nginx

SERVER = """
    server {{
        listen unix:{dir}/nginx.sock;
        location / {{
            proxy_pass http://127.0.0.1:{port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For 198.51.100.23;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
"""


@pytest.fixture
def nginx_in_front(nginx, tmp_path: Path):  # noqa: F811 - the fixture imported above
    def start(server) -> Path:
        sock = tmp_path / "nginx.sock"
        nginx(SERVER.format(dir=tmp_path, port=server.port), sock)
        return sock

    return start


def through(sock_path: Path) -> dict:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(sock_path))
    with RawConnection(sock) as conn:
        conn.send(request())
        resp = conn.read_response()
        assert resp.status == 200, resp
        return resp.json()


@pytest.mark.parametrize("app", ["edge_apps:wsgi_peer", "edge_apps:asgi_peer"])
def test_behind_nginx_the_app_sees_https(serve, nginx_in_front, app):
    data = through(nginx_in_front(serve(app)))
    if "wsgi.url_scheme" in data:
        assert data["wsgi.url_scheme"] == "https"
        # the client address stays the proxy's: gunicorn 27 does not read X-Forwarded-For
        assert data["REMOTE_ADDR"] == "127.0.0.1"
        assert data["HTTP_X_FORWARDED_FOR"] == "198.51.100.23"
    else:
        assert data["scheme"] == "https"
        assert data["client"][0] == "127.0.0.1"


def test_behind_an_untrusted_nginx_the_scheme_stays_http(serve, nginx_in_front):
    server = serve("edge_apps:wsgi_peer", "--forwarded-allow-ips", "10.0.0.0/8")
    assert through(nginx_in_front(server))["wsgi.url_scheme"] == "http"
