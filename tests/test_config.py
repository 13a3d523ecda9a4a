"""Configuration sources: gunicorn.conf.py (and -c PATH / python:MODULE), GUNICORN_CMD_ARGS and
FERRICORN_CMD_ARGS, their precedence, conf-file validation, -k, --check-config, --print-config.

Every case writes a real conf file into a temporary directory and runs ``python -m ferricorn``
there; resolved values are read back from ``--print-config``.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import textwrap
from pathlib import Path

import httpx
import pytest
from conftest import run_ferricorn

APP = """
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"configured"]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding ``app.py`` (WSGI app ``app:app``) and nothing else."""
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def ferricorn(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ferricorn to completion with only the given *_CMD_ARGS variables set."""
    full_env = {k: v for k, v in os.environ.items() if not k.endswith("_CMD_ARGS")}
    full_env.pop("WEB_CONCURRENCY", None)
    full_env.pop("PORT", None)
    full_env.update(env or {})
    return run_ferricorn(*args, cwd=cwd, env=full_env, timeout=60)


def printed(*args: str, cwd: Path, env: dict[str, str] | None = None) -> dict[str, str]:
    """``--print-config`` parsed into ``{name: value}``."""
    result = ferricorn("--print-config", *args, cwd=cwd, env=env)
    assert result.returncode == 0, result.stderr
    config = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        assert sep, f"not a `name = value` line: {line!r}"
        config[name.strip()] = value
    return config


# --- the conf file ---------------------------------------------------------------------------


def test_conf_file_values_are_python_objects_converted_by_each_setting(project):
    write(
        project,
        "gunicorn.conf.py",
        """
        import multiprocessing
        bind = ["127.0.0.1:0"]
        workers = multiprocessing.cpu_count() * 2 + 1
        preload_app = True
        threads = "3"
        """,
    )
    config = printed("app:app", cwd=project)
    assert config["workers"] == str(multiprocessing.cpu_count() * 2 + 1)
    assert config["bind"] == "['127.0.0.1:0']"
    assert config["preload_app"] == "True"
    assert config["threads"] == "3"
    assert config["timeout"] == "30"


def test_print_config_is_sorted_aligned_name_equals_value(project):
    result = ferricorn("--print-config", "app:app", cwd=project)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    names = [line.split(" ")[0] for line in lines]
    assert names == sorted(names)
    assert len({line.index(" = ") for line in lines}) == 1
    for name in ("bind", "workers", "worker_class", "config", "wsgi_app", "post_fork"):
        assert name in names


def test_a_single_string_bind_becomes_a_list(project):
    write(project, "gunicorn.conf.py", 'bind = "127.0.0.1:0"\n')
    assert printed("app:app", cwd=project)["bind"] == "['127.0.0.1:0']"


def test_default_gunicorn_conf_py_is_read_from_the_start_directory(project):
    write(project, "gunicorn.conf.py", "workers = 3\n")
    assert printed("app:app", cwd=project)["workers"] == "3"


def test_ferricorn_conf_py_is_the_fallback_default(project):
    write(project, "ferricorn.conf.py", "workers = 4\n")
    assert printed("app:app", cwd=project)["workers"] == "4"
    write(project, "gunicorn.conf.py", "workers = 3\n")
    assert printed("app:app", cwd=project)["workers"] == "3"


def test_chdir_does_not_move_the_default_conf_file(project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    write(elsewhere, "gunicorn.conf.py", "workers = 6\n")
    write(project, "gunicorn.conf.py", "workers = 3\n")
    config = printed(
        "--chdir", str(elsewhere), "--pythonpath", str(project), "app:app", cwd=project
    )
    assert config["workers"] == "3"


def test_dash_c_names_the_file_and_replaces_the_default(project):
    write(project, "gunicorn.conf.py", "workers = 3\n")
    write(project, "conf/prod.py", "workers = 5\n")
    assert printed("-c", "conf/prod.py", "app:app", cwd=project)["workers"] == "5"
    assert (
        printed("--config", "file:conf/prod.py", "app:app", cwd=project)["workers"]
        == "5"
    )


def test_python_module_form_imports_the_config_from_the_start_directory(project):
    write(project, "settings/__init__.py", "")
    write(project, "settings/web.py", "workers = 7\nbind = ['127.0.0.1:0']\n")
    config = printed("-c", "python:settings.web", "app:app", cwd=project)
    assert config["workers"] == "7"
    assert config["bind"] == "['127.0.0.1:0']"


def test_wsgi_app_names_the_app_when_the_command_line_does_not(project):
    write(project, "gunicorn.conf.py", 'wsgi_app = "app:app"\n')
    result = ferricorn("--check-config", cwd=project)
    assert result.returncode == 0, result.stderr
    assert printed(cwd=project)["wsgi_app"] == "app:app"


def test_imports_private_names_and_modules_are_not_settings(project):
    write(
        project,
        "gunicorn.conf.py",
        """
        import os
        from os import environ
        from multiprocessing import cpu_count
        _helper = 3
        workers = cpu_count()
        """,
    )
    result = ferricorn("--check-config", "app:app", cwd=project)
    assert result.returncode == 0, result.stderr


def test_upper_case_constants_are_not_settings(project):
    write(project, "gunicorn.conf.py", 'BASE_DIR = "/srv"\nworkers = 2\n')
    assert printed("app:app", cwd=project)["workers"] == "2"


def test_a_public_helper_is_an_unknown_name_with_a_hint(project):
    write(project, "gunicorn.conf.py", "def helper():\n    return 2\n")
    result = ferricorn("app:app", cwd=project)
    assert result.returncode == 1
    assert 'unknown setting "helper"' in result.stderr
    assert 'start helper names with "_"' in result.stderr


def test_hooks_are_stored_and_shown(project):
    write(
        project,
        "gunicorn.conf.py",
        """
        def post_fork(server, worker):
            pass

        def post_request(worker, req):
            pass
        """,
    )
    config = printed("app:app", cwd=project)
    assert config["post_fork"] == "<post_fork()>"
    assert config["post_request"] == "<post_request()>"
    assert config["pre_fork"] == "None"


# --- conf-file errors ------------------------------------------------------------------------


def test_unknown_name_is_an_error_naming_file_name_and_nearest_setting(project):
    write(project, "gunicorn.conf.py", "worker = 4\n")
    result = ferricorn("-b", "127.0.0.1:0", "app:app", cwd=project)
    assert result.returncode == 1
    assert result.stderr == (
        'error: gunicorn.conf.py: unknown setting "worker" (did you mean "workers"?)\n'
    )
    assert "Listening" not in result.stderr


def test_wrong_type_is_an_error_naming_file_name_value_and_example(project):
    write(project, "gunicorn.conf.py", 'workers = "four"\n')
    result = ferricorn("app:app", cwd=project)
    assert result.returncode == 1
    assert result.stderr == (
        'error: gunicorn.conf.py: workers = "four": expected a positive integer, '
        "e.g. workers = 4\n"
    )


def test_unsupported_python_type_is_quoted_by_its_repr(project):
    write(project, "gunicorn.conf.py", "timeout = 2.5\n")
    result = ferricorn("app:app", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: gunicorn.conf.py: timeout = 2.5: expected"
    ), result.stderr


def test_hook_with_the_wrong_arity_is_refused(project):
    write(project, "gunicorn.conf.py", "def post_fork(server):\n    pass\n")
    result = ferricorn("app:app", cwd=project)
    assert result.returncode == 1
    assert "gunicorn.conf.py: post_fork = " in result.stderr
    assert "expected a callable taking 2 positional arguments, not 1" in result.stderr
    assert "e.g. def post_fork(server, worker): ..." in result.stderr


def test_a_conf_file_that_raises_shows_its_traceback(project):
    write(
        project, "gunicorn.conf.py", "workers = 1\nraise RuntimeError('boom in conf')\n"
    )
    result = ferricorn("app:app", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "error: failed to read config file gunicorn.conf.py:\n"
    )
    assert "RuntimeError: boom in conf" in result.stderr


def test_a_missing_dash_c_file_is_an_error(project):
    result = ferricorn("-c", "missing.py", "app:app", cwd=project)
    assert result.returncode == 1
    assert result.stderr == (
        "error: failed to read config file missing.py: 'missing.py' doesn't exist\n"
    )


def test_unimplemented_gunicorn_settings_are_accepted_with_a_warning(project):
    write(project, "gunicorn.conf.py", 'http_parser = "python"\n')
    result = ferricorn(
        "--check-config", "--do-handshake-on-connect", "app:app", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    warnings = [
        line for line in result.stderr.splitlines() if line.startswith("warning: ")
    ]
    assert len(warnings) == 2, result.stderr
    assert any("--http-parser / http_parser has no effect" in w for w in warnings)
    assert any(
        "--do-handshake-on-connect / do_handshake_on_connect has no effect" in w
        for w in warnings
    )


# --- precedence ------------------------------------------------------------------------------


def test_file_then_gunicorn_cmd_args_then_argv(project):
    write(project, "gunicorn.conf.py", "workers = 2\nthreads = 2\nbacklog = 2\n")
    env = {"GUNICORN_CMD_ARGS": "--threads 3 --backlog 3"}
    config = printed("--backlog", "4", "app:app", cwd=project, env=env)
    assert (config["workers"], config["threads"], config["backlog"]) == ("2", "3", "4")


def test_ferricorn_cmd_args_apply_after_gunicorn_cmd_args(project):
    env = {"GUNICORN_CMD_ARGS": "-w 2 --threads 2", "FERRICORN_CMD_ARGS": "--threads 5"}
    config = printed("app:app", cwd=project, env=env)
    assert (config["workers"], config["threads"]) == ("2", "5")


def test_gunicorn_cmd_args_are_split_like_a_shell(project):
    env = {"GUNICORN_CMD_ARGS": "--name 'my shop' --bind=127.0.0.1:0"}
    config = printed("app:app", cwd=project, env=env)
    assert config["proc_name"] == "my shop"
    assert config["bind"] == "['127.0.0.1:0']"


def test_gunicorn_cmd_args_may_name_the_conf_file(project):
    write(project, "other.py", "workers = 9\n")
    env = {"GUNICORN_CMD_ARGS": "-c other.py"}
    assert printed("app:app", cwd=project, env=env)["workers"] == "9"


def test_gunicorn_cmd_args_must_not_contain_the_app(project):
    result = ferricorn(
        "app:app", cwd=project, env={"GUNICORN_CMD_ARGS": "-w 2 other:app"}
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        'error: GUNICORN_CMD_ARGS: found the APP_MODULE "other:app"'
    ), result.stderr


def test_a_bad_value_in_gunicorn_cmd_args_names_the_variable(project):
    result = ferricorn(
        "app:app", cwd=project, env={"GUNICORN_CMD_ARGS": "--workers four"}
    )
    assert result.returncode == 2
    assert result.stderr.startswith(
        'error: GUNICORN_CMD_ARGS: --workers / workers = "four": expected a positive integer'
    ), result.stderr


# --- -k / --worker-class ---------------------------------------------------------------------


@pytest.mark.parametrize("worker", ["gevent", "eventlet", "tornado"])
def test_green_thread_workers_are_refused_suggesting_threads(project, worker):
    result = ferricorn("-k", worker, "app:app", cwd=project)
    assert result.returncode == 2
    assert (
        f'--worker-class / worker_class = "{worker}": ferricorn has no {worker} workers'
        in (result.stderr)
    )
    assert "--threads N" in result.stderr


@pytest.mark.parametrize("worker", ["asgi", "uvicorn.workers.UvicornWorker"])
def test_asgi_worker_classes_are_accepted_as_asgi(project, worker):
    config = printed("--worker-class", worker, "app:app", cwd=project)
    assert config["worker_class"] == "asgi"


def test_worker_class_in_the_conf_file_is_checked_too(project):
    write(project, "gunicorn.conf.py", 'worker_class = "gevent"\n')
    result = ferricorn("app:app", cwd=project)
    assert result.returncode == 1
    assert result.stderr.startswith(
        'error: gunicorn.conf.py: worker_class = "gevent": '
    )


@pytest.mark.parametrize("worker", ["sync", "gunicorn.workers.gthread.ThreadWorker"])
def test_sync_and_gthread_workers_serve_wsgi(serve, project, worker):
    server = serve("app:app", "-k", worker, cwd=project)
    response = httpx.get(server.url + "/", timeout=30)
    assert response.status_code == 200
    assert response.text == "configured"


def test_a_conf_file_configures_a_running_server(serve, project):
    write(
        project,
        "gunicorn.conf.py",
        "workers = 2\nthreads = 2\nworker_class = 'gthread'\n",
    )
    server = serve("app:app", cwd=project)
    assert httpx.get(server.url + "/", timeout=30).status_code == 200


# --- --check-config --------------------------------------------------------------------------


def test_check_config_prints_nothing_and_exits_zero(project):
    write(project, "gunicorn.conf.py", "workers = 2\n")
    result = ferricorn("--check-config", "app:app", cwd=project)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_check_config_fails_when_the_app_does_not_import(project):
    result = ferricorn("--check-config", "nosuchmodule:app", cwd=project)
    assert result.returncode == 1
    assert "No module named 'nosuchmodule'" in result.stderr


def test_check_config_reports_conf_errors(project):
    write(project, "gunicorn.conf.py", "threds = 2\n")
    result = ferricorn("--check-config", "app:app", cwd=project)
    assert result.returncode == 1
    assert '(did you mean "threads"?)' in result.stderr
