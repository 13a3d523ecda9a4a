"""A pytest plugin (``-p gunicorn_docker_suite``) that lets gunicorn's docker-based ASGI suites
(``tests/docker/asgi_compliance``, ``tests/docker/asgi_framework_compat`` in the gunicorn
sdist) run against a ferricorn started on the ports they expect, with no docker.

Loaded only by the subprocess pytest that tests/test_asgi_compliance.py runs. It:

- makes the suite's conftest skip what only docker's TLS services need: no certificate
  generation (``generate_self_signed_cert``), no waiting for HTTPS on 8445/8444
  (``wait_for_https_service``) — ferricorn has no TLS yet;
- deselects the tests that need TLS or HTTP/2 (markers ``ssl``/``http2``, or the
  ``gunicorn_ssl_url`` / ``nginx_ssl_url`` / ``http2_client`` fixtures);
- for the framework suite, deselects the frameworks not listed in
  ``$FERRICORN_COMPAT_FRAMEWORKS`` (comma-separated), i.e. those we could not start;
- deselects the tests named in ``$FERRICORN_NOT_APPLICABLE`` (a JSON object: node id suffix
  such as ``test_x.py::TestY::test_z`` -> reason), which test what docker's setup adds rather
  than the server (e.g. nginx's proxy headers).

A ``docker`` shim that exits 0 stands in for docker itself (put first on PATH by the caller).
Deselected tests are written, one node id a line, to ``$FERRICORN_DESELECTED`` if set.
"""

from __future__ import annotations

import json
import os

TLS_OR_H2_FIXTURES = {"gunicorn_ssl_url", "nginx_ssl_url", "http2_client"}
TLS_OR_H2_MARKERS = ("ssl", "http2")


def pytest_plugin_registered(plugin, manager):
    if hasattr(plugin, "wait_for_https_service"):
        plugin.wait_for_https_service = lambda host, port, timeout=180: True
    if hasattr(plugin, "generate_self_signed_cert"):
        plugin.generate_self_signed_cert = lambda certs_dir: None


def _reason(item) -> str | None:
    fixtures = TLS_OR_H2_FIXTURES & set(getattr(item, "fixturenames", ()))
    if fixtures:
        return "needs TLS/HTTP/2 (fixture " + ", ".join(sorted(fixtures)) + ")"
    for name in TLS_OR_H2_MARKERS:
        if item.get_closest_marker(name):
            return f"needs TLS/HTTP/2 (marker {name})"
    not_applicable = json.loads(os.environ.get("FERRICORN_NOT_APPLICABLE", "{}"))
    for suffix, why in not_applicable.items():
        if item.nodeid.endswith(suffix):
            return why
    wanted = os.environ.get("FERRICORN_COMPAT_FRAMEWORKS")
    callspec = getattr(item, "callspec", None)
    if wanted is not None and callspec is not None and "framework" in callspec.params:
        if callspec.params["framework"] not in wanted.split(","):
            return f"framework {callspec.params['framework']} not started"
    return None


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        reason = _reason(item)
        (drop if reason else keep).append((item, reason))
    if not drop:
        return
    items[:] = [item for item, _ in keep]
    config.hook.pytest_deselected(items=[item for item, _ in drop])
    out = os.environ.get("FERRICORN_DESELECTED")
    if out:
        with open(out, "w", encoding="utf-8") as f:
            for item, reason in drop:
                f.write(f"{item.nodeid}\t{reason}\n")
