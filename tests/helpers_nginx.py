"""Running a real nginx in front of ferricorn for a test: the binary (tests skip without it), a
config with every temp path under the test's directory, and a start that waits until nginx
listens."""

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
SKIP_REASON = "nginx is not installed (apt-get install nginx)"

# one process, in the foreground, everything it writes under {dir}; {servers} are server blocks
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
{servers}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(where: Path | int) -> bool:
    if isinstance(where, Path):
        return where.exists()
    try:
        socket.create_connection(("127.0.0.1", where), timeout=0.2).close()
        return True
    except OSError:
        return False


class Nginx:
    """Starts nginx processes with a given server block; stops them all at teardown."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.procs: list[subprocess.Popen] = []

    def start(self, servers: str, listening: Path | int) -> None:
        """``servers`` are nginx server blocks; ``listening`` is the unix socket path or TCP
        port (on 127.0.0.1) nginx listens on, which is waited for."""
        assert NGINX is not None
        conf = self.dir / "nginx.conf"
        conf.write_text(CONF.format(dir=self.dir, servers=servers))
        proc = subprocess.Popen(
            [NGINX, "-p", str(self.dir), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while not _listening(listening):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"nginx did not start: {self.error_log()}")
            time.sleep(0.05)

    def error_log(self) -> str:
        log = self.dir / "error.log"
        return log.read_text() if log.exists() else ""

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)


needs_nginx = pytest.mark.skipif(NGINX is None, reason=SKIP_REASON)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[str, Path | tuple[str, int]], Path]]:
    """``nginx(servers, ready)`` starts nginx with ``servers`` inside its ``http {}`` block and
    returns its directory once ``ready`` (a unix socket path, or a (host, port) on 127.0.0.1)
    accepts. Stopped after the test."""
    directory = tmp_path / "nginx"
    directory.mkdir()
    runner = Nginx(directory)

    def start(servers: str, ready: Path | tuple[str, int]) -> Path:
        runner.start(servers, ready if isinstance(ready, Path) else ready[1])
        return directory

    yield start
    runner.stop()
