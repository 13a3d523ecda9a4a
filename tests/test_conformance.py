"""The HTTP/1.1 conformance and request-smuggling corpus (tests/conformance/cases.py), replayed
over real sockets against the WSGI worker and the ASGI worker.

For every case, on a fresh connection, the test sends the case's bytes in one write and then
checks, response by response:

- a request that must reach the app is answered 200 by ``tests/apps/conformance_app.py``, whose
  JSON says exactly what the app received (method, path, raw target, query, version, every
  header as WSGI ``HTTP_*``/``CONTENT_*`` keys or the ASGI scope's header list, whole body);
- an error the server must answer has exactly the expected status;
- then, if the case says the connection closes, it closes with nothing more on it (a smuggled
  request is never answered); if not, one more request on the same connection is answered,
  which proves the server found the end of every message where the RFC puts it;
- the app's own counters (``GET /__count``) went up by exactly the requests that must reach it
  (for an error inside a body: no request finished reading its body).

One server per worker kind and command line serves the whole module (``ServerPool``).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conformance.cases import CASES, HOST, Case, Seen
from helpers_http import ConnectionClosed, RawConnection, Response, ServerPool

WORKERS = {
    "wsgi": ("conformance_app:app", ()),
    "asgi": ("conformance_app:asgi_app", ("-k", "asgi")),
}
COUNT = f"GET /__count HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()


@pytest.fixture(scope="module")
def pool():
    servers = ServerPool()
    yield servers
    servers.stop_all()


def server_for(pool: ServerPool, worker: str, case: Case):
    app, worker_args = WORKERS[worker]
    return pool.get(app, "-w", "1", *worker_args, *case.args)


def read_final(conn: RawConnection, method: str, where: str) -> Response:
    """The next final response; interim ones (100 Continue) are skipped."""
    while True:
        try:
            resp = conn.read_response(method)
        except ConnectionClosed as exc:
            raise AssertionError(f"{where}: closed without a response ({exc})") from None
        if resp.status >= 200:
            return resp


def counts(server) -> Counter:
    with RawConnection.to(server) as conn:
        conn.send(COUNT)
        resp = read_final(conn, "GET", "GET /__count")
    assert resp.status == 200, f"the worker no longer answers: {resp!r}\n{server.log}"
    return Counter(resp.json())


# -- what the app must report, per interface ------------------------------------------------


def wsgi_view(s: Seen) -> dict:
    headers: dict[str, str] = {}
    for name, value in s.headers:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        # PEP 3333 leaves the separator to the server; gunicorn and ferricorn join with ","
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return {
        "method": s.method,
        "path": s.path.decode("latin-1"),
        "raw": s.target,
        "query": s.query,
        "version": f"HTTP/{s.version}",
        "headers": headers,
        "body": s.body.decode("latin-1"),
    }


def asgi_view(s: Seen) -> dict:
    return {
        "method": s.method,
        "path": s.path.decode("utf-8", "replace"),
        "raw_path": s.raw_path,
        "query": s.query,
        "version": s.version,
        "headers": [[name.lower(), value] for name, value in s.headers],
        "body": s.body.decode("latin-1"),
    }


VIEWS = {"wsgi": wsgi_view, "asgi": asgi_view}


# -- the corpus -----------------------------------------------------------------------------


@pytest.mark.parametrize("worker", list(WORKERS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus_case(pool, worker: str, case: Case) -> None:
    server = server_for(pool, worker, case)
    before = counts(server)
    with RawConnection.to(server, timeout=15) as conn:
        try:
            conn.send(case.wire)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before it all went out; the answer is read below
        for i, want in enumerate(case.expect):
            where = f"{case.name} [{case.rfc}] response {i + 1}/{len(case.expect)}"
            if isinstance(want, int):
                resp = read_final(conn, "GET", where)
                assert resp.status == want, f"{where}: want {want}, got {resp!r}"
                continue
            resp = read_final(conn, want.method, where)
            assert resp.status == 200, f"{where}: want the app's 200, got {resp!r}"
            report = resp.header("X-Seen") if want.method == "HEAD" else resp.body
            assert report is not None, f"{where}: no X-Seen on {resp!r}"
            got, expected = json.loads(report), VIEWS[worker](want)
            assert got == expected, f"{where}: the app saw something else" + "".join(
                f"\n  {k}: got {got.get(k)!r}\n  {' ' * len(k)}  want {expected[k]!r}"
                for k in expected
                if got.get(k) != expected[k]
            )
        if case.closed:
            assert conn.closed_within(5), f"{case.name}: connection left open"
            assert conn.buf == b"", f"{case.name}: more after the last response: {conn.buf!r}"
        else:
            conn.send(COUNT)
            resp = read_final(conn, "GET", f"{case.name}: the request after the case")
            assert resp.status == 200 and "calls" in resp.json(), resp
    delta = counts(server) - before
    if case.in_body:
        assert delta["completed"] == len(case.seen), f"{case.name}: app finished a body: {delta}"
    else:
        assert delta["calls"] == delta["completed"] == len(case.seen), (
            f"{case.name}: want {len(case.seen)} request(s) in the app, got {dict(delta)}"
        )


def test_corpus_covers_every_family_both_ways() -> None:
    valid = Counter(c.family for c in CASES if c.valid)
    invalid = Counter(c.family for c in CASES if not c.valid)
    assert len(CASES) >= 150, len(CASES)
    for family in valid | invalid:
        assert invalid[family] > 0, f"{family} has no invalid case"
        assert valid[family] > 0, f"{family} has no valid case"
    assert all(c.rfc for c in CASES)
