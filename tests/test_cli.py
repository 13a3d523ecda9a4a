"""The command line: version and help, gunicorn's APP forms, import failures, bad flag values,
--chdir / --pythonpath, and the shape of the startup log."""

from __future__ import annotations

import re
import textwrap

import httpx
import pytest
from conftest import run_ferricorn

LOG_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] \[\d+\] \[(DEBUG|INFO|WARNING|ERROR|CRITICAL)\] "
)
BIND = ("-b", "127.0.0.1:0")


def body_of(server, path: str = "/") -> str:
    r = httpx.get(server.url + path, timeout=30)
    assert r.status_code == 200, r.text
    return r.text


def write_module(directory, name: str, source: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.py").write_text(textwrap.dedent(source))


HELLO_MODULE = """
    def app(environ, start_response):
        body = b"hello from " + __name__.encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
"""


# --- --version and --help --------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version_flag_prints_version_and_exits_zero(flag):
    result = run_ferricorn(flag)
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        r"ferricorn \(version \d+\.\d+\.\d+\S*\)", result.stdout.strip()
    ), result.stdout


def test_version_matches_the_python_package():
    import ferricorn

    assert (
        run_ferricorn("--version").stdout.strip()
        == f"ferricorn (version {ferricorn.__version__})"
    )


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_flag_lists_options_and_exits_zero(flag):
    result = run_ferricorn(flag)
    assert result.returncode == 0, result.stderr
    assert "usage" in result.stdout.lower()
    for option in ("--bind", "--threads", "--chdir", "--pythonpath", "--log-level"):
        assert option in result.stdout


# --- APP forms -------------------------------------------------------------------------------


def test_missing_app_argument_exits_nonzero_with_message():
    result = run_ferricorn(*BIND)
    assert result.returncode != 0
    assert "app" in (result.stderr + result.stdout).lower()


def test_module_alone_serves_its_application_callable(serve):
    server = serve("wsgi_apps")
    assert body_of(server) == "default application"


def test_module_colon_callable_serves_that_callable(serve):
    server = serve("wsgi_apps:ok_app")
    assert body_of(server) == "ok"


def test_factory_call_without_arguments_serves_its_result(serve):
    server = serve("wsgi_apps:create_app()")
    assert body_of(server) == "made by create_app"


def test_factory_call_with_literal_arguments_serves_its_result(serve):
    server = serve("wsgi_apps:make_app('x', n=2)")
    assert body_of(server) == "x:2"


def test_startup_log_names_version_listen_address_and_app(serve):
    import ferricorn

    server = serve("wsgi_apps:ok_app")
    startup = server.lines[
        : next(i for i, l in enumerate(server.lines) if "Listening at:" in l) + 1
    ]
    for line in startup:
        assert LOG_LINE.match(line), line
    listening = server.wait_for_log(r"Listening at:")
    assert (
        f"Listening at: http://127.0.0.1:{server.port} ({server.proc.pid})" in listening
    )
    assert re.search(
        rf"\[INFO\] .*ferricorn {re.escape(ferricorn.__version__)}", server.log
    ), server.log
    # The app is named once the worker has loaded it.
    server.wait_for_log(r"wsgi_apps:ok_app")


# --- import failures -------------------------------------------------------------------------


def test_missing_module_exits_nonzero_naming_it():
    result = run_ferricorn(*BIND, "no_such_module_xyz:app", timeout=20)
    assert result.returncode != 0
    assert "no_such_module_xyz" in result.stderr


def test_missing_attribute_exits_nonzero_naming_it():
    result = run_ferricorn(*BIND, "wsgi_apps:no_such_attribute", timeout=20)
    assert result.returncode != 0
    assert "no_such_attribute" in result.stderr


def test_module_alone_without_application_exits_nonzero_naming_it(tmp_path):
    write_module(tmp_path, "noapp", "VALUE = 1\n")
    result = run_ferricorn(*BIND, "noapp", cwd=tmp_path, timeout=20)
    assert result.returncode != 0
    assert "application" in result.stderr


def test_non_callable_app_exits_nonzero():
    result = run_ferricorn(*BIND, "wsgi_apps:NOT_CALLABLE", timeout=20)
    assert result.returncode != 0
    assert "callable" in result.stderr.lower()


def test_module_failing_on_import_exits_nonzero_with_traceback(tmp_path):
    write_module(tmp_path, "broken", "import this_dependency_is_not_installed\n")
    result = run_ferricorn(*BIND, "broken:app", cwd=tmp_path, timeout=20)
    assert result.returncode != 0
    assert "Traceback" in result.stderr
    assert "this_dependency_is_not_installed" in result.stderr


def test_module_raising_on_import_exits_nonzero_with_its_error(tmp_path):
    write_module(
        tmp_path, "exploding", "raise RuntimeError('exploded during import')\n"
    )
    result = run_ferricorn(*BIND, "exploding:app", cwd=tmp_path, timeout=20)
    assert result.returncode != 0
    assert "RuntimeError: exploded during import" in result.stderr


def test_factory_raising_exits_nonzero_with_its_error(tmp_path):
    write_module(
        tmp_path,
        "badfactory",
        """
        def create():
            raise ValueError("factory refused")
        """,
    )
    result = run_ferricorn(*BIND, "badfactory:create()", cwd=tmp_path, timeout=20)
    assert result.returncode != 0
    assert "factory refused" in result.stderr


# --- flag values -----------------------------------------------------------------------------


def test_non_integer_threads_value_names_the_flag_and_value():
    result = run_ferricorn(*BIND, "--threads", "four", "wsgi_apps:ok_app", timeout=20)
    assert result.returncode != 0
    assert "--threads" in result.stderr
    assert "four" in result.stderr


def test_unknown_flag_exits_nonzero_naming_it():
    result = run_ferricorn(*BIND, "--no-such-flag", "wsgi_apps:ok_app", timeout=20)
    assert result.returncode != 0
    assert "--no-such-flag" in result.stderr


def test_threads_flag_is_accepted(serve):
    server = serve("wsgi_apps:ok_app", "--threads", "4")
    assert body_of(server) == "ok"


def test_log_level_debug_is_accepted(serve):
    server = serve("wsgi_apps:ok_app", "--log-level", "debug")
    assert body_of(server) == "ok"


# --- --chdir and --pythonpath ----------------------------------------------------------------


def test_chdir_makes_app_in_that_directory_importable(serve, tmp_path):
    write_module(tmp_path / "project", "elsewhere_app", HELLO_MODULE)
    (tmp_path / "cwd").mkdir()
    server = serve(
        "elsewhere_app:app", "--chdir", str(tmp_path / "project"), cwd=tmp_path / "cwd"
    )
    assert body_of(server) == "hello from elsewhere_app"


def test_chdir_changes_the_working_directory_of_the_app(serve, tmp_path):
    write_module(
        tmp_path / "project",
        "cwd_app",
        """
        import os

        def app(environ, start_response):
            body = os.getcwd().encode()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]
        """,
    )
    (tmp_path / "cwd").mkdir()
    server = serve(
        "cwd_app:app", "--chdir", str(tmp_path / "project"), cwd=tmp_path / "cwd"
    )
    assert body_of(server) == str((tmp_path / "project").resolve())


def test_pythonpath_makes_app_importable(serve, tmp_path):
    write_module(tmp_path / "lib", "pathapp", HELLO_MODULE)
    (tmp_path / "cwd").mkdir()
    server = serve(
        "pathapp:app", "--pythonpath", str(tmp_path / "lib"), cwd=tmp_path / "cwd"
    )
    assert body_of(server) == "hello from pathapp"


def test_pythonpath_accepts_comma_separated_directories(serve, tmp_path):
    write_module(tmp_path / "one", "helper_mod", 'GREETING = b"greeting from helper"\n')
    write_module(
        tmp_path / "two",
        "uses_helper",
        """
        from helper_mod import GREETING

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [GREETING]
        """,
    )
    (tmp_path / "cwd").mkdir()
    paths = f"{tmp_path / 'one'},{tmp_path / 'two'}"
    server = serve("uses_helper:app", "--pythonpath", paths, cwd=tmp_path / "cwd")
    assert body_of(server) == "greeting from helper"
