"""The gunicorn sdist that gunicorn-derived tests read (request corpus, setting names).

Downloaded once with pip into ``.cache/gunicorn-corpus/sdist`` (never vendored); callers
extract what they need next to it, under ``.cache/gunicorn-corpus/gunicorn-VERSION/``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

GUNICORN = "27.0.1"
REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "gunicorn-corpus"


def _pip_commands() -> list[list[str]]:
    cmds = [[sys.executable, "-m", "pip"]]
    cmds += [[p] for p in (shutil.which("pip3"), shutil.which("pip")) if p]
    return cmds


def download_sdist() -> Path:
    """Path of ``gunicorn-VERSION.tar.gz``, downloaded if not cached; raises if pip can't."""
    download = CACHE / "sdist"
    download.mkdir(parents=True, exist_ok=True)
    sdists = sorted(download.glob(f"gunicorn-{GUNICORN}.tar.gz"))
    if sdists:
        return sdists[0]
    errors = []
    for pip in _pip_commands():
        cmd = [
            *pip,
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"gunicorn=={GUNICORN}",
            "-d",
            str(download),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as exc:
            errors.append(f"{' '.join(pip)}: {exc}")
            continue
        if done.returncode == 0:
            break
        errors.append(f"{' '.join(pip)}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    sdists = sorted(download.glob(f"gunicorn-{GUNICORN}.tar.gz"))
    if not sdists:
        raise RuntimeError("; ".join(errors) or "pip produced no sdist")
    return sdists[0]


def extract_tree(subdir: str) -> Path:
    """Extract ``gunicorn-VERSION/<subdir>/`` from the sdist (once) and return where it is:
    ``.cache/gunicorn-corpus/gunicorn-VERSION/<subdir>``. Raises if the sdist can't be had or
    has no such directory."""
    root = CACHE / f"gunicorn-{GUNICORN}" / subdir
    if (root / ".complete").is_file():
        return root
    sdist = download_sdist()
    prefix = f"gunicorn-{GUNICORN}/{subdir.strip('/')}/"
    staging = root.with_name(root.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    found = 0
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if not (member.isfile() and member.name.startswith(prefix)):
                continue
            rel = member.name[len(prefix) :]
            if ".." in Path(rel).parts:
                continue
            out = staging / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
            found += 1
    if not found:
        raise RuntimeError(f"gunicorn {GUNICORN} sdist has no {subdir}/")
    (staging / ".complete").write_text(f"{found} files\n")
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return root
