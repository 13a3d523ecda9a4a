"""logconfig_dict / --log-config-json / --log-config configure the app's Python logging."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from conftest import run_ferricorn

APP = """\
import logging

log = logging.getLogger("myapp")

def app(environ, start_response):
    log.info("handled %s", environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


def dict_config(path: Path) -> dict:
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(name)s %(levelname)s %(message)s"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}
        },
        "loggers": {"myapp": {"handlers": ["file"], "level": "INFO"}},
    }


def read_until(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text() if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {path}: {content!r}")


def test_logconfig_dict_in_the_conf_file_reaches_every_worker(serve, tmp_path: Path):
    (tmp_path / "logapp.py").write_text(APP)
    out = tmp_path / "app.log"
    (tmp_path / "gunicorn.conf.py").write_text(f"logconfig_dict = {dict_config(out)!r}\n")
    server = serve("logapp:app", "-w", "2", cwd=tmp_path)
    for i in range(4):
        httpx.get(f"{server.url}/r{i}", timeout=10)
    content = read_until(out, "myapp INFO handled /r3")
    assert "myapp INFO handled /r0" in content


def test_log_config_json_file(serve, tmp_path: Path):
    (tmp_path / "logapp.py").write_text(APP)
    out = tmp_path / "app.log"
    config = tmp_path / "logging.json"
    config.write_text(json.dumps(dict_config(out)))
    server = serve("logapp:app", "--log-config-json", str(config), cwd=tmp_path)
    httpx.get(f"{server.url}/json", timeout=10)
    read_until(out, "myapp INFO handled /json")


def test_log_config_ini_file(serve, tmp_path: Path):
    (tmp_path / "logapp.py").write_text(APP)
    out = tmp_path / "app.log"
    ini = tmp_path / "logging.conf"
    ini.write_text(
        "[loggers]\nkeys=root,myapp\n\n[handlers]\nkeys=file\n\n[formatters]\nkeys=plain\n\n"
        "[logger_root]\nlevel=WARNING\nhandlers=\n\n"
        "[logger_myapp]\nlevel=INFO\nhandlers=file\nqualname=myapp\n\n"
        f"[handler_file]\nclass=FileHandler\nformatter=plain\nargs=({str(out)!r},)\n\n"
        "[formatter_plain]\nformat=%(name)s %(message)s\n"
    )
    server = serve("logapp:app", "--log-config", str(ini), cwd=tmp_path)
    httpx.get(f"{server.url}/ini", timeout=10)
    read_until(out, "myapp handled /ini")


def test_a_broken_logging_config_names_the_setting_and_binds_nothing(tmp_path: Path):
    (tmp_path / "logapp.py").write_text(APP)
    (tmp_path / "gunicorn.conf.py").write_text(
        "logconfig_dict = {'version': 1, 'handlers': {'h': {'class': 'no.such.Handler'}}}\n"
    )
    result = run_ferricorn("-b", "127.0.0.1:0", "logapp:app", cwd=tmp_path)
    assert result.returncode == 1
    assert "logconfig_dict" in result.stderr
    assert "Listening at" not in result.stderr
