"""Gunicorn's own black-box ASGI suites, run against ferricorn.

The gunicorn 27.0.1 sdist (fetched at test time by tests/gunicorn_sdist.py, never vendored)
ships two docker-based suites under ``tests/docker/``:

- ``asgi_compliance``: its docker-compose serves ``apps.main_app:app`` with
  ``-k asgi -w 2 --worker-connections 1000 --asgi-disconnect-grace-period 0`` on
  127.0.0.1:8000, behind nginx on 8080, plus TLS + HTTP/2 copies on 8445 (gunicorn) and 8444
  (nginx). Its conftest shells out to ``docker info``/``compose build``/``up``/``down`` and then
  waits for the four ports.
- ``asgi_framework_compat``: one container per framework (django 8001, fastapi 8002,
  starlette 8003, quart 8004, litestar 8005, blacksheep 8006), each ``-k asgi -w 1
  --worker-connections 100``; every test is parametrized over the frameworks.

Here ferricorn plays the containers: it serves the same app from the suite's own directory on
the same ports (both 8000 and 8080 for the compliance suite: the 8080 "nginx" is ferricorn
itself), a ``docker`` shim that exits 0 stands first on PATH, and
tests/plugins/gunicorn_docker_suite.py drops what needs TLS or HTTP/2, which ferricorn has
not got. The suite then runs unmodified in a subprocess ``pytest`` writing JUnit XML, and this
module asserts that every test that ran passed, except the commented KNOWN_FAILURES.

The ports are fixed by the suites; when one is taken the case is skipped, naming it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import TESTS, Server
from gunicorn_sdist import GUNICORN, extract_tree

PLUGIN_DIR = TESTS / "plugins"
SUITE_TIMEOUT = 1500  # seconds for one whole subprocess run

# Tests that check docker's setup rather than the server: not run (deselected, and listed).
NOT_APPLICABLE = {
    # 8080 is nginx in docker-compose, adding X-Forwarded-For/X-Real-IP from nginx.conf; here
    # 8080 is ferricorn itself and no proxy adds them.
    "test_http_compliance.py::TestProxyRequests::test_proxy_headers_forwarded": (
        "checks nginx's proxy_set_header; no nginx in front of ferricorn here"
    ),
}

# Tests of gunicorn's suites that fail against ferricorn for a reason we accept for now, as
# "<file>::<Class>::<test>" (parametrized ids included). Keep this short; each needs a reason.
KNOWN_FAILURES: dict[str, str] = {}

COMPAT_KNOWN_FAILURES: dict[str, str] = {}


@dataclass
class SuiteResult:
    passed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    deselected: dict[str, str] = field(default_factory=dict)
    output: str = ""

    def summary(self) -> str:
        return (
            f"{len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped by the suite, {len(self.deselected)} not run here "
            "(TLS, HTTP/2, nginx, frameworks not started)"
        )


# -- helpers ---------------------------------------------------------------------------------


def suite_dir(name: str) -> Path:
    try:
        return extract_tree(f"tests/docker/{name}")
    except Exception as exc:  # can't fetch = can't run, not "ferricorn is wrong"
        pytest.skip(f"gunicorn {GUNICORN} sdist suite tests/docker/{name} unavailable: {exc}")


def require_free(*ports: int) -> None:
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                pytest.skip(f"gunicorn's suite needs fixed port {port}, which is taken: {exc}")


def require_modules(*modules: str) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"gunicorn's suite needs the {module!r} package (tests/requirements.txt)")


def docker_shim(tmp_path: Path) -> Path:
    """A directory holding a ``docker`` that accepts any command and exits 0."""
    shim = tmp_path / "docker-shim"
    shim.mkdir()
    docker = shim / "docker"
    docker.write_text("#!/bin/sh\n# stands in for docker: ferricorn already serves the ports\n")
    docker.chmod(0o755)
    return shim


def start(app: str, cwd: Path, ports: list[int], *args: str) -> Server:
    binds = [a for p in ports for a in ("-b", f"127.0.0.1:{p}")]
    server = Server([*binds, "-k", "asgi", *args, app], cwd, None)
    try:
        server.wait_ready(60)
    except RuntimeError as exc:
        pytest.fail(f"ferricorn did not start {app} from {cwd}: {exc}")
    return server


def run_suite(directory: Path, tmp_path: Path, extra_args: list[str], env: dict) -> SuiteResult:
    xml_path = tmp_path / "junit.xml"
    deselected_path = tmp_path / "deselected.tsv"
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    full_env = dict(os.environ)
    full_env.update(env)
    full_env["PATH"] = f"{docker_shim(tmp_path)}{os.pathsep}{full_env.get('PATH', '')}"
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PLUGIN_DIR), full_env.get("PYTHONPATH", "")) if p
    )
    full_env["FERRICORN_DESELECTED"] = str(deselected_path)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(ini),
        "--rootdir",
        str(directory),
        "-p",
        "gunicorn_docker_suite",
        "-p",
        "no:cacheprovider",
        "-q",
        "-rfE",
        "--tb=short",
        f"--junitxml={xml_path}",
        *extra_args,
    ]
    try:
        done = subprocess.run(
            cmd,
            cwd=directory,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=SUITE_TIMEOUT,
        )
        output = done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace") if exc.stdout else ""
        pytest.fail(f"gunicorn's suite did not finish in {SUITE_TIMEOUT}s; output so far:\n{out}")
    if not xml_path.exists():
        pytest.fail(f"gunicorn's suite wrote no JUnit XML (exit {done.returncode}):\n{output}")
    result = SuiteResult(output=output)
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = junit_id(case)
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        skipped = case.find("skipped")
        if problem is not None:
            detail = (problem.get("message") or "") + "\n" + (problem.text or "")
            if name in result.failed:  # a teardown error after a failure: keep both
                result.failed[name] += "\n" + detail
            else:
                result.failed[name] = detail
        elif skipped is not None:
            result.skipped[name] = skipped.get("message") or ""
        elif name not in result.failed:
            result.passed.append(name)
    result.passed = [n for n in dict.fromkeys(result.passed) if n not in result.failed]
    if deselected_path.exists():
        for line in deselected_path.read_text().splitlines():
            node, _, reason = line.partition("\t")
            result.deselected[node] = reason
    return result


def junit_id(case: ET.Element) -> str:
    """``file.py::Class::test[param]`` from a JUnit ``testcase`` (classname is dotted)."""
    parts = (case.get("classname") or "").split(".")
    name = case.get("name") or ""
    # classname is "<package>.<module>[.<Class>]"; keep module file and class
    for i, part in enumerate(parts):
        if part.startswith("test_"):
            module, classes = part + ".py", parts[i + 1 :]
            return "::".join([module, *classes, name])
    return "::".join([*parts, name])


def check(result: SuiteResult, known: dict[str, str], what: str) -> None:
    print(f"\n{what}: {result.summary()}")
    for name, reason in sorted(result.skipped.items()):
        print(f"  skipped by the suite: {name}: {reason[:120]}")
    assert result.passed, f"{what}: no test passed; output:\n{result.output[-6000:]}"
    unexpected = {n: d for n, d in result.failed.items() if n not in known}
    fixed = sorted(n for n in known if n in result.passed)
    report = "\n\n".join(f"{n}\n{d.strip()[:1500]}" for n, d in sorted(unexpected.items()))
    assert not unexpected, (
        f"{what}: {len(unexpected)} unexpected failures ({result.summary()}):\n\n{report}"
    )
    assert not fixed, f"{what}: known failures now pass, drop them from the list: {fixed}"


# -- asgi_compliance -------------------------------------------------------------------------


def test_gunicorn_asgi_compliance_suite_passes_without_tls_and_http2(tmp_path):
    require_modules("pytest_asyncio", "websockets", "starlette", "fastapi")
    directory = suite_dir("asgi_compliance")
    require_free(8000, 8080)
    server = start(
        "apps.main_app:app",
        directory,
        [8000, 8080],
        "-w",
        "2",
        "--worker-connections",
        "1000",
        "--asgi-disconnect-grace-period",
        "0",
    )
    try:
        result = run_suite(
            directory, tmp_path, ["."], {"FERRICORN_NOT_APPLICABLE": json.dumps(NOT_APPLICABLE)}
        )
    finally:
        server.stop()
    check(result, KNOWN_FAILURES, "gunicorn asgi_compliance")


# -- asgi_framework_compat -------------------------------------------------------------------

FRAMEWORKS = {
    # name: (port, app, modules it needs)
    "django": (8001, "asgi:application", ("django", "channels")),
    "fastapi": (8002, "app:app", ("fastapi",)),
    "starlette": (8003, "app:app", ("starlette",)),
    "quart": (8004, "app:app", ("quart",)),
    "litestar": (8005, "app:app", ("litestar",)),
    "blacksheep": (8006, "app:app", ("blacksheep",)),
}


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_gunicorn_asgi_framework_compat_suite_passes_for_each_installed_framework(tmp_path):
    require_modules("pytest_asyncio", "websockets", "httpx")
    directory = suite_dir("asgi_framework_compat")
    servers, absent = [], {}
    try:
        for name, (port, app, modules) in FRAMEWORKS.items():
            missing = [m for m in modules if importlib.util.find_spec(m) is None]
            if missing:
                absent[name] = f"package {missing} not installed"
                continue
            if not port_free(port):
                absent[name] = f"port {port} taken"
                continue
            servers.append(
                start(
                    app,
                    directory / "frameworks" / f"{name}_app",
                    [port],
                    "-w",
                    "1",
                    "--worker-connections",
                    "100",
                    "--asgi-loop",
                    "auto",
                )
            )
        running = [n for n in FRAMEWORKS if n not in absent]
        if not running:
            pytest.skip(f"no framework of gunicorn's compat suite could be started: {absent}")
        for name, why in absent.items():
            print(f"framework {name} not run: {why}")
        result = run_suite(
            directory,
            tmp_path,
            ["tests", "--skip-docker-check"],
            {"FERRICORN_COMPAT_FRAMEWORKS": ",".join(running)},
        )
    finally:
        for server in servers:
            server.stop()
    check(result, COMPAT_KNOWN_FAILURES, f"gunicorn asgi_framework_compat ({', '.join(running)})")
