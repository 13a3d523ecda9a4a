"""Gunicorn's own request corpus, replayed over a real socket against ferricorn.

Gunicorn ships raw requests in ``tests/requests/{valid,invalid}/NAME.http``, each paired with
``NAME.py``. This module fetches them from the gunicorn sdist at test time (never vendored),
turns each pair into one test, and checks ferricorn end to end instead of a parser in isolation:

- valid: every request in the file reaches the echo app (``tests/apps/echo.py``) with the
  method, path, query, headers (as ``HTTP_*`` / ``CONTENT_*`` keys) and exact body the ``.py``
  describes, and the app is called exactly once per described request;
- invalid: the app never gets the request (for errors inside a chunked body: never finishes
  reading it), and the server answers 4xx/5xx or closes.

Format of a pair (our reading of gunicorn's ``tests/treq.py``): in ``.http`` real newlines
are layout only; the escapes ``\\r\\n``, ``\\n``, ``\\t``, ``\\0`` and ``\\xHH`` stand for
bytes. ``.py`` is Python that sets ``request`` to a dict (or a list of dicts for pipelined
requests) or, for invalid files, to gunicorn's exception class; it may also change settings on
``cfg``. We exec it with stand-ins (a recording ``cfg``, placeholder exception classes, our own
``uri()``) so gunicorn itself is never imported.

Adaptations, each deliberate:

- ferricorn refuses HTTP/1.1 requests without Host (RFC 9112 §3.2), which gunicorn's parser
  tests don't send. We add ``Host: t`` after each such request line (and expect it back), so
  the case still tests what it was written for.
- Settings that ferricorn takes as flags (the three request limits, forwarded_allow_ips and
  proxy_protocol) become flags of a server started for that case; a case that needs any other
  setting is skipped, naming it.
- A few valid cases conflict with ferricorn's own spec and are skipped with the reason.
"""

from __future__ import annotations

import builtins
import re
import shutil
import tarfile
import types
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import pytest
from apps.echo import CALL_LOG_ENV
from gunicorn_sdist import CACHE, GUNICORN, download_sdist
from helpers_http import CallLog, ConnectionClosed, RawConnection, ServerPool

HOST_VALUE = "t"

SETTING_FLAGS = {
    "limit_request_line": "--limit-request-line",
    "limit_request_fields": "--limit-request-fields",
    "limit_request_field_size": "--limit-request-field_size",
    "forwarded_allow_ips": "--forwarded-allow-ips",
    # True becomes "True", which --proxy-protocol reads as auto, as gunicorn's validator does
    "proxy_protocol": "--proxy-protocol",
}

# Valid in gunicorn, refused by ferricorn's spec on purpose.
SPEC_DIVERGENCES = {
    name: "gunicorn passes 'gzip' through as a transfer coding; ferricorn answers 501 to unknown "
    "codings (test_malformed.py::test_unknown_transfer_coding_gets_501_and_close)"
    for name in ("025", "025_line", "rfc9112_smuggle_gzip_chunked_01")
} | {
    name: "gunicorn accepts 'identity' before 'chunked'; 'identity' left the transfer-coding "
    "registry with RFC 7230, so ferricorn treats it as an unknown coding (501)"
    for name in ("029", "030", "rfc9112_smuggle_te_identity_chunked_01")
}

# gunicorn errors raised while reading a chunked body, after the app may already be running.
BODY_ERRORS = {"InvalidChunkSize", "ChunkMissingTerminator", "InvalidChunkExtension"}


# -- fetching the corpus --------------------------------------------------------------------


def fetch_corpus() -> Path:
    """Return ``.../requests`` holding ``valid/`` and ``invalid/``; download once into .cache/."""
    root = CACHE / f"gunicorn-{GUNICORN}" / "requests"
    if (root / "valid").is_dir() and (root / "invalid").is_dir():
        return root
    sdist = download_sdist()
    staging = root.parent / "staging"
    shutil.rmtree(staging, ignore_errors=True)
    wanted = re.compile(
        rf"^gunicorn-{re.escape(GUNICORN)}/tests/requests/(valid|invalid)/([\w.-]+\.(?:http|py))$"
    )
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            m = wanted.match(member.name)
            if not (m and member.isfile()):
                continue
            out = staging / m.group(1) / m.group(2)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(tar.extractfile(member).read())
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return root


try:
    CORPUS = fetch_corpus()
except Exception as exc:  # any failure to fetch means "can't run", not "ferricorn is wrong"
    pytest.skip(
        f"gunicorn {GUNICORN} sdist (request corpus) unavailable: {exc}",
        allow_module_level=True,
    )


# -- reading a case -------------------------------------------------------------------------

ESCAPE = re.compile(rb"\\(r\\n|n|t|0|x[0-9A-Fa-f]{2})")


def decode_http(text: bytes) -> bytes:
    """Bytes on the wire for one ``.http`` file (see the module docstring)."""

    def sub(m: re.Match) -> bytes:
        e = m.group(1)
        return {b"r\\n": b"\r\n", b"n": b"\n", b"t": b"\t", b"0": b"\x00"}.get(e) or bytes(
            [int(e[1:], 16)]
        )

    data = ESCAPE.sub(sub, text.replace(b"\n", b""))
    assert b"\\" not in data, "unknown escape in corpus file"
    return data


def uri(raw: str) -> dict:
    # A target starting with "//" is a path, not a network location (RFC 9112 §3.2.1).
    parts = urlsplit("/." + raw) if raw.startswith("//") else urlsplit(raw)
    path = parts.path[2:] if raw.startswith("//") else parts.path
    return {"raw": raw, "path": path, "query": parts.query, "fragment": parts.fragment}


class RecordingConfig:
    """Stands in for gunicorn's Config: remembers which settings a case changes."""

    def __init__(self) -> None:
        self.changed: dict[str, object] = {}

    def set(self, name: str, value: object) -> None:
        self.changed[name] = value


class StandInModule(types.ModuleType):
    """``gunicorn.*`` for the exec'd ``.py``: ``Config`` and any exception class by name."""

    classes: dict[str, type] = {}

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr == "Config":
            return RecordingConfig
        if attr[:1].islower():
            return StandInModule(f"{self.__name__}.{attr}")
        return self.classes.setdefault(attr, type(attr, (Exception,), {}))


def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "gunicorn" or name.startswith("gunicorn."):
        return StandInModule(name if fromlist else "gunicorn")
    return builtins.__import__(name, globals, locals, fromlist, level)


def load_expectation(path: Path) -> tuple[object, dict[str, object]]:
    """``(request, changed settings)`` from a case's ``.py``."""
    namespace = {
        "__builtins__": {**vars(builtins), "__import__": _import},
        "__name__": "corpus_case",
        "uri": uri,
        "cfg": RecordingConfig(),
    }
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return namespace["request"], namespace["cfg"].changed


def server_args(name: str, changed: dict[str, object]) -> list[str]:
    """Flags for the settings a case changes; skips the case when one has no flag."""
    args = []
    for setting, value in changed.items():
        if setting == "limit_request_field_size" and value == 0:
            pytest.skip(
                f"{name}: limit_request_field_size=0 means 'unlimited' in gunicorn's docs, "
                "but its parser falls back to 8190 and the case asserts that"
            )
        if setting not in SETTING_FLAGS:
            pytest.skip(f"{name}: needs gunicorn setting {setting}={value!r}, not a ferricorn flag")
        if setting == "limit_request_line" and isinstance(value, int) and value > 8190:
            value = 8190  # gunicorn clamps larger values to 8190; ferricorn refuses them outright
        args += [SETTING_FLAGS[setting], str(value)]
    return args


def cases(kind: str) -> list:
    return [pytest.param(p.stem, id=p.stem) for p in sorted((CORPUS / kind).glob("*.http"))]


# -- the server -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def call_log(tmp_path_factory) -> CallLog:
    return CallLog(tmp_path_factory.mktemp("corpus") / "calls.jsonl")


@pytest.fixture(scope="module")
def pool(call_log):
    servers = ServerPool(env={CALL_LOG_ENV: str(call_log.path)})
    yield servers
    servers.stop_all()


def assert_alive(server) -> None:
    assert server.proc.poll() is None, "ferricorn exited:\n" + server.log
    with RawConnection.to(server) as conn:
        conn.send(b"GET /alive HTTP/1.1\r\nHost: t\r\n\r\n")
        assert conn.read_response().status == 200


# -- valid ----------------------------------------------------------------------------------


def add_host(wire: bytes, expected: list[dict]) -> bytes:
    """Insert Host after each HTTP/1.1 request line that has none; expect it in the environ."""
    pos = 0
    for exp in expected:
        line = (
            f"{exp['method']} {exp['uri']['raw']} HTTP/{exp['version'][0]}.{exp['version'][1]}\r\n"
        )
        at = wire.find(line.encode("latin-1"), pos)
        assert at >= 0, f"request line {line!r} not found in the corpus bytes"
        pos = at + len(line)
        if exp["version"] == (1, 1) and not any(k == "HOST" for k, _ in exp["headers"]):
            wire = wire[:pos] + f"Host: {HOST_VALUE}\r\n".encode() + wire[pos:]
            exp["headers"] = [*exp["headers"], ("HOST", HOST_VALUE)]
    return wire


def environ_key(header: str) -> str:
    key = header.upper().replace("-", "_")
    return key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key


def header_entries(env: dict) -> dict[str, str]:
    found = {k: v for k, v in env.items() if k.startswith("HTTP_")}
    found.update({k: env[k] for k in ("CONTENT_TYPE", "CONTENT_LENGTH") if env.get(k)})
    return found


def assert_same_request(env: dict, exp: dict, where: str) -> None:
    target = exp["uri"]
    assert env["REQUEST_METHOD"] == exp["method"], where
    assert env["SERVER_PROTOCOL"] == "HTTP/{}.{}".format(*exp["version"]), where
    # PATH_INFO is only defined for origin-form and absolute-form targets.
    if target["raw"].startswith("/") or "://" in target["raw"]:
        assert env["PATH_INFO"] == unquote_to_bytes(target["path"]).decode("latin-1"), where
    assert env["QUERY_STRING"] == target["query"], where
    if "RAW_URI" in env:
        assert env["RAW_URI"] == target["raw"], where
    expected: dict[str, list[str]] = {}
    for name, value in exp["headers"]:
        expected.setdefault(environ_key(name), []).append(value)
    got = header_entries(env)
    assert sorted(got) == sorted(expected), f"{where}: header keys differ"
    for key, values in expected.items():
        # Repeated fields are joined with a comma as gunicorn does; PEP 3333 leaves the separator
        # open, so ", " is accepted too.
        assert got[key] in (",".join(values), ", ".join(values)), (
            f"{where}: {key}={got[key]!r}, want {values!r}"
        )
    assert env["body"].encode("latin-1") == exp["body"], f"{where}: body differs"


def must_close_after(exp: dict) -> bool:
    tokens = {
        t.strip().lower() for k, v in exp["headers"] if k == "CONNECTION" for t in v.split(",")
    }
    return (
        exp["method"] == "CONNECT"
        or "close" in tokens
        or (exp["version"] < (1, 1) and "keep-alive" not in tokens)
    )


@pytest.mark.parametrize("name", cases("valid"))
def test_valid_corpus_request_reaches_app_as_described(pool, call_log, name):
    if name in SPEC_DIVERGENCES:
        pytest.skip(f"{name}: {SPEC_DIVERGENCES[name]}")
    request, changed = load_expectation(CORPUS / "valid" / f"{name}.py")
    server = pool.get("echo:app", *server_args(name, changed))
    expected = [dict(r) for r in (request if isinstance(request, list) else [request])]
    for exp in expected:
        if isinstance(exp["body"], str):  # some files write the empty body as ''
            exp["body"] = exp["body"].encode("latin-1")
        declared = [int(v) for k, v in exp["headers"] if k == "CONTENT-LENGTH"]
        if declared and declared[0] != len(exp["body"]):
            pytest.skip(
                f"{name}: Content-Length {declared[0]} but the file holds {len(exp['body'])} "
                "body bytes; gunicorn's parser test ends at EOF, a server on a socket rightly "
                "waits for the rest"
            )
    wire = add_host(decode_http((CORPUS / "valid" / f"{name}.http").read_bytes()), expected)

    mark = call_log.mark()
    with RawConnection.to(server) as conn:
        conn.send(wire)
        for i, exp in enumerate(expected):
            where = f"{name} request #{i + 1} ({exp['method']} {exp['uri']['raw'][:60]})"
            resp = conn.read_response()
            assert resp.status == 200, f"{where}: {resp!r}"
            assert_same_request(resp.json(), exp, where)
        if must_close_after(expected[-1]):
            assert conn.closed_within(5), f"{name}: connection left open after the last request"
        assert conn.buf == b"", (
            f"{name}: unexpected bytes after the last response: {conn.buf[:200]!r}"
        )
    calls = [e for e in call_log.since(mark) if e["event"] == "call"]
    assert len(calls) == len(expected), f"{name}: app called for {[e['raw_uri'] for e in calls]}"


# -- invalid --------------------------------------------------------------------------------


def add_host_to_first_line(wire: bytes) -> bytes:
    head = wire.split(b"\r\n\r\n", 1)[0]
    first, sep, _ = wire.partition(b"\r\n")
    if sep and first.endswith(b" HTTP/1.1") and not re.search(rb"(?im)^host[ \t]*:", head):
        return first + b"\r\n" + f"Host: {HOST_VALUE}\r\n".encode() + wire[len(first) + 2 :]
    return wire


@pytest.mark.parametrize("name", cases("invalid"))
def test_invalid_corpus_request_never_reaches_app(pool, call_log, name):
    error, changed = load_expectation(CORPUS / "invalid" / f"{name}.py")
    server = pool.get("echo:app", *server_args(name, changed))
    wire = add_host_to_first_line(decode_http((CORPUS / "invalid" / f"{name}.http").read_bytes()))
    in_body = getattr(error, "__name__", "") in BODY_ERRORS or name.startswith("rfc9110_trailer_")

    mark = call_log.mark()
    with RawConnection.to(server) as conn:
        conn.send(wire)
        conn.shutdown_write()  # as in gunicorn's tests, the input ends where the file ends
        try:
            resp = conn.read_response()
        except ConnectionClosed:
            resp = None
        if resp is not None:
            assert 400 <= resp.status < 600, (
                f"{name} ({getattr(error, '__name__', error)}): got {resp!r}"
            )
            assert conn.closed_within(5), f"{name}: connection left open after {resp.status}"
    events = call_log.since(mark)
    if in_body:
        assert [e for e in events if e["event"] == "body"] == [], (
            f"{name}: app read a whole body: {events}"
        )
    else:
        assert events == [], f"{name}: app was called: {events}"
    assert_alive(server)
