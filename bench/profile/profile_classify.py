"""Sorts a worker's callgrind instructions into where they went: I/O thread, bridge, Python, libc.

Thread 1 (the process's main thread) is the app thread: ferricorn runs the app (WSGI) or the
event loop (ASGI) on the Python main thread; every other thread is the tokio I/O thread (the
worker starts no other threads with --threads 1). On the app thread, ferricorn's own functions
(bridge, job queue, pyo3) count as bridge, and so do the CPython C-API functions ferricorn calls
directly unless they call back into Python code (object calls, iteration: that is the app).
"""

from __future__ import annotations

import re
from pathlib import Path

from cgparse import Profile, parse

# CPython entry points through which the bridge runs the app (call it, iterate its result, close
# it, await its coroutine); everything else ferricorn calls in CPython is the bridge's own work.
_RUNS_PYTHON = re.compile(
    r"Call|Vectorcall|PyIter_Next|PyEval|PyObject_GetIter|_PyGen|PyRun|PyImport|Py_RunMain"
)


def _is_ours(ob: str) -> bool:
    return "_ferricorn" in ob


def _is_python(ob: str) -> bool:
    name = Path(ob).name
    return name.startswith(("python", "libpython")) or ".cpython-" in name and not _is_ours(ob)


def thread_parts(prof: Profile) -> dict[str, int]:
    ours = sum(c for (ob, _f), c in prof.self_cost.items() if _is_ours(ob))
    py = sum(c for (ob, _f), c in prof.self_cost.items() if _is_python(ob))
    capi = sum(
        c
        for (cob, _cf, ob, fn), c in prof.calls.items()
        if _is_ours(cob) and _is_python(ob) and not _RUNS_PYTHON.search(fn)
    )
    return {"total": prof.total, "ours": ours, "python": py, "capi": min(capi, py)}


def classify(files: list[str]) -> dict[str, int]:
    """Instructions of the I/O thread and of the app thread, split as the module doc says.

    `files` are one worker's callgrind files, one per thread (`--separate-threads=yes`), named
    `...-01`, `...-02`, ...; `-01` is the main thread.
    """
    app = {"total": 0, "ours": 0, "python": 0, "capi": 0}
    io = 0
    for f in files:
        t = thread_parts(parse(Path(f).read_text()))
        if f.endswith("-01"):
            app = t
        else:
            io += t["total"]
    return {
        "I/O thread (Rust: tokio, HTTP, framing)": io,
        "bridge on the app thread (Rust, pyo3)": app["ours"],
        "bridge's own CPython C-API calls": app["capi"],
        "Python (interpreter, framework, app)": app["python"] - app["capi"],
        "app thread, other libraries (libc, sqlite, ...)": app["total"] - app["ours"]
        - app["python"],
    }


def difference(loaded: dict[str, int], idle: dict[str, int]) -> dict[str, int]:
    """What the load added: the same start-up and shut-down cost is in both runs."""
    return {k: loaded[k] - idle.get(k, 0) for k in loaded}


def render(app: str, requests: int, parts: dict[str, int]) -> str:
    total = sum(parts.values())
    lines = [
        f"{app}: {requests} requests, "
        f"{total / max(1, requests):,.0f} instructions per request in the worker",
        "| part | instructions / request | share |",
        "|---|---:|---:|",
    ]
    for name, cost in parts.items():
        lines.append(
            f"| {name} | {cost / max(1, requests):,.0f} | {cost / max(1, total) * 100:.1f}% |"
        )
    return "\n".join(lines)
