"""A real front end: nginx (skipped when it is not installed) listening on a unix socket and
forwarding to ferricorn over TCP with the headers a TLS-terminating proxy sets.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from helpers_http import RawConnection, request

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx is not installed")

CONF = """
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen unix:{dir}/nginx.sock;
        location / {{
            proxy_pass http://127.0.0.1:{port};
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For 198.51.100.23;
            proxy_set_header X-Forwarded-Proto https;
        }}
    }}
}}
"""


@pytest.fixture
def nginx_in_front(tmp_path: Path):
    procs = []

    def start(server) -> Path:
        (tmp_path / "nginx.conf").write_text(CONF.format(dir=tmp_path, port=server.port))
        proc = subprocess.Popen(
            [NGINX, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        sock = tmp_path / "nginx.sock"
        deadline = time.monotonic() + 10
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log = tmp_path / "error.log"
                pytest.fail("nginx did not start: " + (log.read_text() if log.exists() else ""))
            time.sleep(0.05)
        return sock

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)


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
