"""The bench venv (pinned peers, ferricorn release build), hyper-hello, and environment facts.

It installs only into bench/.venv and builds only bench/hyper-hello; ferricorn comes from
`pip install` of the repo or a given wheel, never from building the repo in place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harness.common import (
    APP_PINS,
    APPS_DIR,
    CARGO_TARGET,
    DJANGO_DB,
    FERRICORN_MARKER,
    HYPER_BIN,
    HYPER_DIR,
    PINS,
    PIP_SPECS,
    WS_LOAD_DIR,
    REPO,
    VENV,
    VENV_BIN,
    die,
    log,
)


def venv_python(code: str) -> str:
    return subprocess.run(
        [str(VENV_BIN / "python"), "-c", code],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def installed_versions() -> dict[str, str | None]:
    code = (
        "import importlib.metadata as m, json\n"
        "out = {}\n"
        "for n in ('granian', 'gunicorn', 'uvicorn', 'uvloop', 'httptools', 'websockets',\n"
        "          'ferricorn', 'flask', 'jinja2', 'fastapi', 'starlette', 'pydantic',\n"
        "          'django', 'matplotlib'):\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = None\n"
        "print(json.dumps(out))\n"
    )
    return json.loads(venv_python(code))


def pip(*argv: str, env: dict[str, str] | None = None) -> None:
    cmd = [str(VENV_BIN / "python"), "-m", "pip", "--disable-pip-version-check", *argv]
    log("bench: $ " + " ".join(cmd))
    subprocess.run(cmd, check=True, env=env)


def setup_venv() -> None:
    if not (VENV_BIN / "python").exists():
        log(f"bench: creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip("install", "-q", "--upgrade", "pip")
    have = installed_versions()
    if any(have.get(name) != ver for name, ver in {**PINS, **APP_PINS}.items()):
        pip("install", "-q", *PIP_SPECS)


def prepare_django_db(path: Path = DJANGO_DB) -> None:
    """(Re)create the django_orm row's SQLite file, once per bench run and outside any timing."""
    env = dict(os.environ, BENCH_DJANGO_DB=str(path))
    out = subprocess.run(
        [str(VENV_BIN / "python"), "-m", "djangoproj.setupdb"],
        cwd=APPS_DIR,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    log(f"bench: django database {out.strip()}")


def repo_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "status",
                "--porcelain",
                "--",
                "src",
                "python",
                "Cargo.toml",
                "pyproject.toml",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        rev += "+dirty" if dirty else ""
    except (subprocess.CalledProcessError, FileNotFoundError):
        rev = "no commit"
    return f"{rev}, tree {tree_digest()}"


def tree_digest() -> str:
    """A hash of ferricorn's sources as they are now, committed or not.

    Other people edit the repo while benchmarks run, so the git revision alone cannot tell whether
    the installed build still matches the code.
    """
    h = hashlib.sha256()
    paths = [REPO / n for n in ("Cargo.toml", "Cargo.lock", "pyproject.toml")]
    for top in ("src", "python"):
        paths += sorted((REPO / top).rglob("*"))
    for path in paths:
        if (
            not path.is_file()
            or "__pycache__" in path.parts
            or path.suffix in (".so", ".pyc")
        ):
            continue
        h.update(
            str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0"
        )
    return h.hexdigest()[:12]


def ferricorn_importable() -> bool:
    r = subprocess.run(
        [str(VENV_BIN / "python"), "-c", "import ferricorn._ferricorn"],
        check=False,
        capture_output=True,
        text=True,
    )
    return r.returncode == 0


def install_ferricorn(args: argparse.Namespace) -> dict[str, str]:
    """Install ferricorn into the bench venv (release build) and return where it came from."""
    source: dict[str, str] | None = None
    if args.ferricorn_wheel:
        wheel = Path(args.ferricorn_wheel)
        if wheel.is_dir():
            wheels = sorted(
                wheel.glob("ferricorn-*.whl"), key=lambda p: p.stat().st_mtime
            )
            if not wheels:
                die(f"--ferricorn-wheel {wheel}: no ferricorn-*.whl in that directory")
            wheel = wheels[-1]
        if not wheel.is_file():
            die(
                f"--ferricorn-wheel {wheel}: no such file; build one with "
                "`maturin build --release -o DIR` and pass the file or DIR"
            )
        pip("install", "-q", "--force-reinstall", "--no-deps", str(wheel))
        source = {
            "from": f"wheel {wheel}",
            "revision": repo_revision(),
            "installed": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    elif args.rebuild_ferricorn or installed_versions().get("ferricorn") is None:
        log(
            "bench: building ferricorn in release mode from the repo (takes minutes on 2 cores)"
        )
        # A target dir of our own: the repo's target/ belongs to the developers' debug builds, and
        # sharing it would hold cargo's lock on it for the minutes a fat-LTO build takes.
        env = dict(os.environ, CARGO_TARGET_DIR=str(CARGO_TARGET))
        pip("install", "--force-reinstall", "--no-deps", str(REPO), env=env)
        source = {
            "from": f"pip install {REPO} (maturin, release)",
            "revision": repo_revision(),
            "installed": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
    if source is not None:
        FERRICORN_MARKER.write_text(json.dumps(source))
    elif FERRICORN_MARKER.exists():
        source = json.loads(FERRICORN_MARKER.read_text())
        if source.get("revision") != repo_revision():
            log(
                f"bench: warning: ferricorn in {VENV} was built from {source.get('revision')}, the "
                f"repo is at {repo_revision()}; pass --rebuild-ferricorn to measure the current code"
            )
    else:
        source = {
            "from": "already installed (unknown source)",
            "revision": "?",
            "installed": "?",
        }
    if not ferricorn_importable():
        die(
            "ferricorn is installed but `import ferricorn._ferricorn` fails in bench/.venv; "
            "fix the build or leave it out with --servers hyper,granian,gunicorn"
        )
    return source


def build_hyper() -> None:
    if HYPER_BIN.exists():
        return
    if shutil.which("cargo") is None:
        die(
            "hyper-hello is not built and cargo is missing; install Rust or leave `hyper` out "
            "of --servers"
        )
    cmd = [
        "cargo",
        "build",
        "--release",
        "--manifest-path",
        str(HYPER_DIR / "Cargo.toml"),
    ]
    log("bench: $ " + " ".join(cmd))
    subprocess.run(cmd, check=True)


def hyper_version() -> str:
    return _lock_versions(HYPER_DIR, ("hyper", "hyper-util", "tokio"))


def ws_load_version() -> str:
    return _lock_versions(WS_LOAD_DIR, ("tokio-tungstenite", "tungstenite", "tokio"))


def _lock_versions(crate_dir: Path, names: tuple[str, ...]) -> str:
    try:
        text = (crate_dir / "Cargo.lock").read_text()
    except OSError:
        return "?"
    found = {}
    for name in names:
        m = re.search(rf'name = "{re.escape(name)}"\nversion = "([^"]+)"', text)
        found[name] = m.group(1) if m else "?"
    return ", ".join(f"{k} {v}" for k, v in found.items())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def wrk_version() -> str:
    r = subprocess.run(["wrk", "-v"], check=False, capture_output=True, text=True)
    return (
        (r.stdout + r.stderr).splitlines()[0].strip() if (r.stdout + r.stderr) else "?"
    )


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
