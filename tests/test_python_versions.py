"""Every other CPython on the machine (pyenv's 3.12 and 3.13 here, and any 3.9+ on PATH): build
ferricorn for it, serve a WSGI and an ASGI app, stop with TERM. The wheel's metadata claims
3.9-3.13; this is what backs the claim on each interpreter that is actually present."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "py-smoke"
READY = re.compile(r"Listening at: (http://\S+) ")

WSGI = """\
import sys

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("wsgi on %d.%d" % sys.version_info[:2]).encode()]
"""

ASGI = """\
import sys

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200})
    body = ("asgi on %d.%d" % sys.version_info[:2]).encode()
    await send({"type": "http.response.body", "body": body})
"""


def other_pythons() -> list[tuple[str, Path]]:
    """(X.Y, interpreter) for each CPython 3.9+ found, other than the one running the tests."""
    found: dict[str, Path] = {}
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob("3.*/bin/python3")) if pyenv.is_dir() else []
    for minor in range(9, 20):
        on_path = shutil.which(f"python3.{minor}")
        if on_path:
            candidates.append(Path(on_path))
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for exe in candidates:
        try:
            out = subprocess.run(
                [str(exe), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        major, minor_s = out.split(".")
        if out != current and major == "3" and int(minor_s) >= 9 and out not in found:
            found[out] = exe
    return sorted(found.items(), key=lambda kv: int(kv[0].split(".")[1]))


PYTHONS = other_pythons()


def install(version: str, exe: Path) -> Path:
    """A venv for `exe` with ferricorn built for it (debug profile); returns its bin dir."""
    maturin = Path(sys.executable).parent / "maturin"
    if not maturin.exists():
        pytest.skip("maturin is not installed beside the test interpreter (make test installs it)")
    venv = CACHE / version
    if not (venv / "bin" / "python").exists():
        subprocess.run([str(exe), "-m", "venv", str(venv)], check=True, timeout=300)
    wheels = CACHE / f"wheels-{version}"
    shutil.rmtree(wheels, ignore_errors=True)
    subprocess.run(
        [str(maturin), "build", "--quiet", "--profile", "dev", "-i", str(exe), "-o", str(wheels)],
        cwd=ROOT,
        check=True,
        timeout=1200,
    )
    (wheel,) = wheels.glob("*.whl")
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--force-reinstall",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    return venv / "bin"


def serve_once(bindir: Path, cwd: Path, *args: str) -> str:
    """Starts ferricorn from `bindir`, fetches `/`, stops it with TERM; returns the body."""
    proc = subprocess.Popen(
        [str(bindir / "ferricorn"), "-b", "127.0.0.1:0", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        url = None
        deadline = time.monotonic() + 60
        log = []
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            log.append(line)
            m = READY.search(line)
            url = m.group(1) if m else None
        assert url, "".join(log)
        for _ in range(100):
            try:
                with urllib.request.urlopen(url + "/", timeout=10) as r:
                    return r.read().decode()
            except OSError:
                time.sleep(0.1)  # the worker is still booting
        raise AssertionError("never answered:\n" + "".join(log))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0


@pytest.mark.skipif(not PYTHONS, reason="no other CPython 3.9+ on this machine (pyenv or PATH)")
@pytest.mark.parametrize(("version", "exe"), PYTHONS, ids=[v for v, _ in PYTHONS])
def test_serves_wsgi_and_asgi_on_other_pythons(version: str, exe: Path, tmp_path: Path):
    bindir = install(version, exe)
    (tmp_path / "smoke_wsgi.py").write_text(WSGI)
    (tmp_path / "smoke_asgi.py").write_text(ASGI)
    assert serve_once(bindir, tmp_path, "smoke_wsgi:app") == f"wsgi on {version}"
    assert serve_once(bindir, tmp_path, "-k", "asgi", "smoke_asgi:app") == f"asgi on {version}"
