"""Specs for reading callgrind files and splitting a worker's instructions (no valgrind needed).

Run with `python3 bench/profile/test_profile.py` or `python3 -m pytest bench/profile`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cgparse import parse
from profile_classify import classify, difference, render

# A small file in callgrind's format, with name compression: `(n) name` defines, `(n)` refers.
# main (python) costs 10 itself and calls into ferricorn (inclusive 95); ferricorn's build costs
# 40 itself, calls PyDict_SetItem (25, the bridge's own C-API use) and the app through
# PyObject_Vectorcall (30).
APP_THREAD = """version: 1
creator: callgrind-3.19.0
events: Ir
ob=(1) /usr/lib/libpython3.11.so.1.0
fl=(1) ???
fn=(1) main
0 10
cob=(2) /venv/ferricorn/_ferricorn.cpython-311-x86_64-linux-gnu.so
cfn=(2) _ferricorn::bridge::wsgi::environ::build
calls=1 0
0 95
ob=(2)
fn=(2)
0 40
cob=(1)
cfn=(3) PyDict_SetItem
calls=3 0
0 25
cob=(1)
cfn=(4) PyObject_Vectorcall
calls=1 0
0 30
ob=(1)
fn=(3)
0 25
fn=(4)
0 22
ob=(3) /lib/x86_64-linux-gnu/libc.so.6
fn=(5) malloc
+1 8
totals: 105
"""

IO_THREAD = """events: Ir
ob=(1) /venv/ferricorn/_ferricorn.cpython-311-x86_64-linux-gnu.so
fn=(1) _ferricorn::http::request::parse_head
0 70
summary: 70
"""


def test_self_costs_skip_the_inclusive_cost_lines_of_calls():
    prof = parse(APP_THREAD)
    assert prof.total == 105
    so = "/venv/ferricorn/_ferricorn.cpython-311-x86_64-linux-gnu.so"
    py = "/usr/lib/libpython3.11.so.1.0"
    assert prof.self_cost[(py, "main")] == 10
    assert prof.self_cost[(so, "_ferricorn::bridge::wsgi::environ::build")] == 40
    assert prof.self_cost[(py, "PyObject_Vectorcall")] == 22
    assert prof.self_cost[("/lib/x86_64-linux-gnu/libc.so.6", "malloc")] == 8
    assert prof.calls[(so, "_ferricorn::bridge::wsgi::environ::build", py, "PyDict_SetItem")] == 25
    assert prof.calls[(py, "main", so, "_ferricorn::bridge::wsgi::environ::build")] == 95
    assert sum(prof.self_cost.values()) == prof.total


def test_the_main_thread_is_the_app_and_c_api_calls_that_run_no_python_are_the_bridges():
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "cg.7-01").write_text(APP_THREAD)
        (Path(d) / "cg.7-02").write_text(IO_THREAD)
        parts = classify(sorted(str(p) for p in Path(d).iterdir()))
    assert list(parts.values()) == [70, 40, 25, 10 + 25 + 22 - 25, 8]


def test_the_loaded_run_minus_the_idle_run_is_shared_per_request():
    loaded = {"I/O": 1200, "Python": 5000}
    idle = {"I/O": 200, "Python": 1000}
    parts = difference(loaded, idle)
    assert parts == {"I/O": 1000, "Python": 4000}
    table = render("plaintext", 10, parts)
    assert "500 instructions per request" in table
    assert "| I/O | 100 | 20.0% |" in table and "| Python | 400 | 80.0% |" in table


if __name__ == "__main__":
    tests = [fn for name, fn in sorted(globals().items()) if name.startswith("test_")]
    for fn in tests:
        fn()
    print(f"{len(tests)} passed, 0 failed")
