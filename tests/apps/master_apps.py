"""The WSGI application that the pre-fork master tests serve (``master_apps:app``).

Every response names the process that produced it, so a test can tell workers apart, see
that the master never answers, and notice when a worker has been replaced. Routes that block
print a line to stderr (the server's error log) once they are inside the app, so that a test
can wait for "the request is in flight" instead of sleeping.

- ``/pid``              the serving process's pid
- ``/import-pid``       the pid of the process that imported this module (the master
                        under --preload)
- ``/sleep?s=SECONDS``  sleeps, then answers with the pid
- ``/stuck``            never answers in time: sleeps 60 s inside :func:`stuck_in_the_app`

``MASTER_APPS_IMPORT_DELAY=SECONDS`` in the server's environment makes importing it that slow.
"""

from __future__ import annotations

import os
import sys
import time
from urllib.parse import parse_qs

IMPORT_PID = os.getpid()

# A slow import keeps freshly forked workers busy loading the app for a while, so that a test
# can signal the master while its workers are still booting.
time.sleep(float(os.environ.get("MASTER_APPS_IMPORT_DELAY", "0")))


def _text(start_response, body: str, status: str = "200 OK"):
    data = body.encode()
    start_response(
        status, [("Content-Type", "text/plain"), ("Content-Length", str(len(data)))]
    )
    return [data]


def _say(message: str) -> None:
    print(f"master_apps[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def stuck_in_the_app() -> None:
    """A distinctive frame name: the worker's stack dump on WORKER TIMEOUT must show it."""
    _say("stuck request started")
    time.sleep(60)


def app(environ, start_response):
    path = environ.get("PATH_INFO", "")
    query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    if path == "/pid":
        return _text(start_response, str(os.getpid()))
    if path == "/import-pid":
        return _text(start_response, str(IMPORT_PID))
    if path == "/sleep":
        _say("sleep started")
        time.sleep(float(query.get("s", "1")))
        return _text(start_response, str(os.getpid()))
    if path == "/stuck":
        stuck_in_the_app()
        return _text(start_response, "woke up")
    return _text(start_response, "not found", "404 Not Found")
