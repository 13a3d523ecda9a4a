"""Starting a real nginx for tests: a throwaway main config (no daemon, every path under the
test's directory) around the ``http {}`` content a test supplies. Tests that need nginx use the
``nginx`` fixture and are skipped, with the package to install, when it is missing.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (Debian package: nginx)"
)

MAIN = """
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
{http}
}}
"""


def _ready(target: Path | tuple[str, int]) -> bool:
    if isinstance(target, Path):
        return target.exists()
    try:
        socket.create_connection(target, timeout=0.2).close()
    except OSError:
        return False
    return True


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[str, Path | tuple[str, int]], Path]]:
    """``nginx(http_conf, ready)`` writes and starts nginx with ``http_conf`` inside its
    ``http {}`` block and returns once ``ready`` (a unix socket path, or a (host, port) it
    listens on) accepts; the directory for its files is returned. Stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []
    directory = tmp_path / "nginx"
    directory.mkdir()

    def start(http_conf: str, ready: Path | tuple[str, int]) -> Path:
        assert NGINX is not None
        conf = directory / "nginx.conf"
        conf.write_text(MAIN.format(dir=directory, http=http_conf))
        proc = subprocess.Popen(
            [NGINX, "-p", str(directory), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        procs.append(proc)
        deadline = time.monotonic() + 10
        while not _ready(ready):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = directory / "error.log"
                stderr = (
                    proc.stderr.read().decode()
                    if proc.poll() is not None and proc.stderr
                    else ""
                )
                pytest.fail(
                    "nginx did not start: "
                    + stderr
                    + (log.read_text() if log.exists() else "")
                )
            time.sleep(0.05)
        return directory

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(10)
