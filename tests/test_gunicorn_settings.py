"""Every setting gunicorn declares is one ferricorn knows.

The names come from gunicorn's own ``gunicorn/config.py`` in the sdist (fetched at test time,
as for the request corpus): each ``class X(Setting)`` with a ``name = "..."``, hooks included.
``ferricorn --print-config`` lists every setting and hook it knows, so each name must appear
there; a name that doesn't would make a gunicorn.conf.py using it fail with "unknown setting".
"""

from __future__ import annotations

import ast
import re
import tarfile
from pathlib import Path

import pytest
from conftest import run_ferricorn
from gunicorn_sdist import CACHE, GUNICORN, download_sdist

MEMBER = f"gunicorn-{GUNICORN}/gunicorn/config.py"


def fetch_config_py() -> Path:
    """gunicorn's config.py, extracted once into .cache/."""
    path = CACHE / MEMBER
    if path.is_file():
        return path
    with tarfile.open(download_sdist()) as tar:
        source = tar.extractfile(MEMBER)
        if source is None:
            raise RuntimeError(f"{MEMBER} is not a file in the sdist")
        data = source.read()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def setting_names(source: str) -> list[str]:
    """``name`` of each ``class X(Setting)`` at module level, in declaration order."""
    names = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.ClassDef):
            continue
        if not any(isinstance(b, ast.Name) and b.id == "Setting" for b in node.bases):
            continue
        for stmt in node.body:
            if (
                isinstance(stmt, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "name" for t in stmt.targets)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                names.append(stmt.value.value)
    return names


try:
    GUNICORN_NAMES = setting_names(fetch_config_py().read_text(encoding="utf-8"))
except Exception as exc:  # any failure to fetch means "can't run", not "ferricorn is wrong"
    pytest.skip(
        f"gunicorn {GUNICORN} sdist (config.py) unavailable: {exc}",
        allow_module_level=True,
    )


def test_gunicorn_config_py_yields_its_settings():
    # a parse that silently found nothing would make the next test pass vacuously
    assert len(GUNICORN_NAMES) > 100
    assert {"bind", "workers", "raw_env", "post_fork"} <= set(GUNICORN_NAMES)


def test_print_config_lists_every_gunicorn_setting():
    result = run_ferricorn("--print-config", "wsgi_apps:ok_app")
    assert result.returncode == 0, result.stderr
    printed = set(re.findall(r"^(\w+)\s+= ", result.stdout, flags=re.MULTILINE))
    missing = [name for name in GUNICORN_NAMES if name not in printed]
    assert not missing, f"gunicorn {GUNICORN} settings unknown to ferricorn: {missing}"


def test_env_reaches_the_app_before_it_is_imported(tmp_path):
    (tmp_path / "envapp.py").write_text(
        "import os\n"
        "assert os.environ['FERRICORN_RAW_ENV'] == 'a=b', os.environ.get('FERRICORN_RAW_ENV')\n"
        "def app(environ, start_response):\n"
        "    return []\n"
    )
    ok = run_ferricorn("--check-config", "-e", "FERRICORN_RAW_ENV=a=b", "envapp:app", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    missing = run_ferricorn("--check-config", "envapp:app", cwd=tmp_path)
    assert missing.returncode != 0


def test_env_without_equals_is_a_usage_error_naming_the_flag():
    result = run_ferricorn("--env", "NOEQUALS", "wsgi_apps:ok_app")
    assert result.returncode == 2
    assert "--env / raw_env" in result.stderr
    assert "has no '='" in result.stderr


def test_conf_file_with_unimplemented_gunicorn_settings_loads_and_warns(tmp_path):
    (tmp_path / "gunicorn.conf.py").write_text(
        'secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}\n'
        'forwarded_allow_ips = "*"\n'
        'forwarder_headers = "SCRIPT_NAME"\n'
        "spew = True\n"
    )
    (tmp_path / "okapp.py").write_text("def app(environ, start_response):\n    return []\n")
    result = run_ferricorn("--print-config", "okapp:app", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # applied since the proxy settings landed: no warning
    assert "secure_scheme_headers has no effect" not in result.stderr
    assert "forwarded_allow_ips has no effect" not in result.stderr
    assert "forwarder_headers has no effect in ferricorn" in result.stderr
    assert "--spew / spew has no effect in ferricorn" in result.stderr
    assert re.search(r"^forwarded_allow_ips\s+= \['\*'\]$", result.stdout, flags=re.MULTILINE)
