"""Specs for the parts of the harness that need no server: wrk and ws-load parsing, /proc
sampling, the --apps/--servers choice and the report's tables.

Run with `python3 -m pytest bench/harness` (or plain `python3 bench/harness/test_harness.py`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import run

from harness import plot
from harness.common import app_spec
from harness.measure import Sample, _real_ok, lua_body
from harness.procfs import cpu_seconds, memory_mb, session_pids
from harness.publish import document
from harness.report import Cell, render
from harness.servers import server_table
from harness.wrk import parse_wrk, wrk_argv
from harness.wsload import parse_ws_load

WRK_OUT = """Running 3s test @ http://127.0.0.1:8000/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   712.27us    1.02ms  31.15ms   97.18%
    Req/Sec    90.12k     5.21k   97.00k    80.00%
  Latency Distribution
     50%  640.00us
     75%  705.00us
     90%  812.00us
     99%    1.21ms
  271000 requests in 3.00s, 33.08MB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:  90312.44
Transfer/sec:     11.02MB
"""


def test_wrk_output_gives_rps_percentiles_in_ms_and_all_errors():
    res = parse_wrk(WRK_OUT)
    assert res["rps"] == 90312.44
    assert res["p50"] == 0.64
    assert res["p90"] == 0.812
    assert res["p99"] == 1.21
    assert res["requests"] == 271000
    assert res["errors"] == 3 + 2 + 4


def test_wrk_seconds_latency_is_converted_to_ms():
    out = WRK_OUT.replace("1.21ms", "2.50s")
    assert parse_wrk(out)["p99"] == 2500.0


def test_wrk_output_without_latency_block_is_an_error():
    out = WRK_OUT.split("  Latency Distribution")[0] + "Requests/sec:  1.0\n"
    try:
        parse_wrk(out)
    except ValueError as e:
        assert "--latency" in str(e)
    else:
        raise AssertionError("expected ValueError")


def test_session_sampling_sees_this_process():
    sid = os.getsid(0)
    assert os.getpid() in session_pids(sid)
    rss, pss, largest, procs = memory_mb(sid)
    assert procs >= 1 and rss >= largest > 0 and pss > 0
    assert cpu_seconds(sid) >= 0


# What bench/ws-load prints (its first error, if any, goes to stderr, which the harness merges in).
WS_LOAD_OUT = """ws-load: handshake: HTTP error: 503 Service Unavailable
ws-load: ws://127.0.0.1:8000/ 32 connections, 64-byte text messages, 10.00 s
connections: 31
messages: 843210
errors: 1
msgs/sec: 84321.00
latency p50: 0.371 ms
latency p90: 0.502 ms
latency p99: 0.910 ms
"""


def test_ws_load_output_gives_msgs_per_second_latency_and_errors():
    res = parse_ws_load(WS_LOAD_OUT)
    assert res["rps"] == 84321.0
    assert res["requests"] == 843210
    assert res["errors"] == 1
    assert (res["p50"], res["p90"], res["p99"]) == (0.371, 0.502, 0.91)


def test_ws_load_output_without_rate_is_an_error():
    try:
        parse_ws_load(WS_LOAD_OUT.replace("msgs/sec: 84321.00\n", ""))
    except ValueError as e:
        assert "msgs/sec" in str(e)
    else:
        raise AssertionError("expected ValueError")


def test_apps_groups_expand_and_pick_the_servers_of_their_interface():
    args = run.parse_args(["--apps", "asgi_plaintext,asgi_json"])
    assert args.apps == ["asgi_plaintext", "asgi_json"]
    assert args.servers == ["granian-asgi", "uvicorn", "ferricorn-asgi"]
    args = run.parse_args(["--apps", "asgi"])
    assert args.apps[-1] == "asgi_ws_echo" and len(args.apps) == 5
    assert run.parse_args([]).servers == [
        "hyper", "granian", "gunicorn", "gunicorn-gthread", "ferricorn"
    ]


def test_asgi_servers_run_asgi_apps_and_granian_enables_ws_only_for_ws_rows():
    table = server_table(1)
    assert "asgi_ws_echo" in table["ferricorn-asgi"].apps
    assert "asgi_json" not in table["ferricorn"].apps
    assert "json" not in table["uvicorn"].apps
    argv = table["ferricorn-asgi"].argv("asgi_json", 8000)
    assert argv[-1] == "benchapps:asgi_json" and "asgi" in argv and "off" in argv
    assert "--no-ws" in table["granian-asgi"].argv("asgi_json", 8000)
    assert "--no-ws" not in table["granian-asgi"].argv("asgi_ws_echo", 8000)


def _sample(rps: float) -> Sample:
    return Sample(rps, 1.0, 2.0, 3.0, 0, rps * 10, 30, 20, 25, 30, 1, 1.0, 0.5, 0.0, 0.0)


def test_asgi_rows_get_their_own_tables_with_ratios_to_granian_asgi_and_uvicorn():
    args = run.parse_args(["--apps", "asgi_plaintext,asgi_ws_echo", "-r", "1"])
    cells = []
    for app, conns in (("asgi_plaintext", 64), ("asgi_ws_echo", 32)):
        for server, rps in (("granian-asgi", 50000), ("uvicorn", 40000), ("ferricorn-asgi", 60000)):
            cells.append(Cell(app, conns, server, [_sample(rps)]))
    md = render(cells, {"started": "now", "env": {}}, server_table(1), args)
    assert "## ASGI HTTP" in md and "## ASGI websocket echo (ws-load)" in md
    assert "| msgs/s |" in md and "| vs granian-asgi | vs uvicorn |" in md
    assert "| asgi_plaintext | 64 | ferricorn-asgi | 60.0k |" in md
    assert md.count("| 1.20 | 1.50 |") == 2  # ferricorn vs granian-asgi, vs uvicorn, both tables
    assert "Notes:" not in md
    cells[0].samples[0].other_cpu = 0.5
    md = render(cells, {"started": "now", "env": {}}, server_table(1), args)
    assert "- asgi_plaintext/64/granian-asgi: other processes used 50% of a core" in md
    for line in md.splitlines():
        if line.startswith("|"):
            assert line.count("|") == 16, line  # 15 columns, header, separator and rows alike


def test_real_apps_request_their_route_and_the_post_carries_its_lua_script():
    args = run.parse_args(["--apps", "real"])
    assert args.apps == ["flask_json", "flask_jinja", "django_orm", "fastapi_post"]
    # WSGI real apps bring the WSGI servers, fastapi the ASGI ones
    assert "granian" in args.servers and "uvicorn" in args.servers
    argv = wrk_argv(args, "django_orm", 64, 5, 8000)
    assert argv[-1] == "http://127.0.0.1:8000/rows" and "-s" not in argv
    argv = wrk_argv(args, "fastapi_post", 64, 5, 8000)
    assert argv[-1] == "http://127.0.0.1:8000/items"
    assert argv[argv.index("-s") + 1].endswith("post_item.lua")
    assert wrk_argv(args, "echo", 64, 5, 8000)[-2].endswith("post1m.lua")
    table = server_table(1)
    assert table["granian"].argv("flask_jinja", 1)[-1] == "flaskapp:app"
    assert table["ferricorn-asgi"].argv("fastapi_post", 1)[-1] == "fastapiapp:app"
    assert "fastapi_post" not in table["ferricorn"].apps
    assert app_spec("plaintext").target == "benchapps:plaintext"


def test_the_post_check_sends_the_body_wrk_sends_and_knows_a_right_answer():
    body = lua_body(app_spec("fastapi_post").lua)
    assert body.startswith(b'{"name": "Widget"')
    item = b'{"name":"Widget","quantity":4,"total":10.0,"tags":["blue","small"]}'
    assert _real_ok("fastapi_post", item)
    assert not _real_ok("flask_json", b'{"message": "Hello"}')
    page = b'<tr class="odd">' * 20 + b"<p>20 items</p>"
    assert _real_ok("flask_jinja", page)
    assert not _real_ok("flask_jinja", page.replace(b'<tr class="odd">', b"", 1))


def test_report_mode_measures_everything_at_two_connection_counts_and_scales_workers():
    args = run.parse_args(["--report"])
    assert args.connections == [64, 256] and "django_orm" in args.apps
    assert "asgi_ws_echo" in args.apps and args.scale_apps
    plain = run.parse_args([])
    assert plain.connections == [64] and plain.scale_apps == [] and not plain.report
    assert server_table(1, 2)["ferricorn"].argv("json", 1)[1:3] == ["-w", "2"]
    assert server_table(1, 2)["uvicorn"].argv("asgi_json", 1).count("2") == 1


def _report_cells() -> list[Cell]:
    cells = []
    for server, rps in (("hyper", 150000), ("granian", 100000), ("gunicorn-gthread", 50000),
                        ("ferricorn", 120000)):
        cells.append(Cell("plaintext", 64, server, [_sample(rps)]))
    for server, rps in (("granian-asgi", 10000), ("uvicorn", 8000), ("ferricorn-asgi", 12000)):
        cells.append(Cell("fastapi_post", 64, server, [_sample(rps)]))
    for server, w1, w2 in (("granian", 80000, 100000), ("ferricorn", 90000, 135000)):
        cells.append(Cell("plaintext", 64, server, [_sample(w1)], shape="w1"))
        cells.append(Cell("plaintext", 64, server, [_sample(w2)], shape="w2"))
    return cells


def test_the_report_puts_ferricorn_against_each_peer_and_shows_worker_scaling():
    args = run.parse_args(["--report", "-r", "1", "--servers",
                           "hyper,granian,gunicorn-gthread,ferricorn,granian-asgi,uvicorn,"
                           "ferricorn-asgi"])
    md = render(_report_cells(), {"started": "now", "env": {"CPU": "x"}}, server_table(1), args,
                server_table(1, 2))
    assert "## ferricorn against each peer" in md
    # plaintext: / granian 1.20, / uvicorn —, / gthread 2.40, / hyper 0.80
    assert "| plaintext | 64 | 120.0k | 3.00 | 1.20 | — | 2.40 | 0.80 | 3.00 (granian) |" in md
    assert "| fastapi_post | 64 | 12.0k | 3.00 | 1.20 | 1.50 | — | — |" in md
    assert "## Real apps, ASGI (FastAPI)" in md
    assert "## 2-worker scaling" in md and "load generator takes a share" in md
    assert "| plaintext | 64 | ferricorn | 90.0k | 135.0k | 1.50 |" in md
    assert "- **ferricorn**, scaling rows: `ferricorn -w 2 " in md


def test_the_plot_panels_hold_ratios_to_tuned_granian_latency_and_scaling():
    raw = {"cells": [
        {"app": c.app, "conns": c.conns, "server": c.server, "shape": c.shape,
         "samples": [vars(s) for s in c.samples]} for c in _report_cells()
    ]}
    panels = plot.series(raw)
    wsgi = panels["rps / tuned granian, 64 connections (higher is better) — WSGI"]
    assert wsgi["apps"] == ["plaintext"] and "uvicorn" not in wsgi["servers"]
    assert wsgi["servers"]["ferricorn"] == [1.2] and wsgi["servers"]["granian"] == [1.0]
    asgi = panels["rps / tuned granian, 64 connections (higher is better) — ASGI"]
    assert asgi["apps"] == ["fastapi_post"] and asgi["servers"]["uvicorn"] == [0.8]
    assert "ferricorn" not in asgi["servers"]
    scaling = next(v for k, v in panels.items() if k.startswith("-w 2"))
    assert scaling["servers"]["ferricorn"] == [1.5]


def test_a_short_report_run_says_so_above_its_figures():
    args = run.parse_args(["--report", "-d", "2", "-r", "1"])
    page = document("# ferricorn bench now\nbody\n", args, plotted=True)
    assert page.startswith("# Benchmarks\n") and "**Short run**" in page
    assert "![" in page and "(benchmarks.png)" in page and page.endswith("body\n")
    full = document("# ferricorn bench now\nbody\n", run.parse_args(["--report"]), False)
    assert "Short run" not in full and "![" not in full
    shorter = document("# ferricorn bench now\nbody\n", run.parse_args(["--report", "-d", "6"]), 0)
    assert "**Shorter runs**" in shorter and "Short run" not in shorter



def test_a_run_where_no_request_finished_gives_no_ratio_and_a_note():
    args = run.parse_args(["--report", "-r", "1"])
    cells = _report_cells()
    cells[1].samples[0].rps = 0.0  # granian plaintext at 64: nothing finished
    md = render(cells, {"started": "now", "env": {}}, server_table(1), args, server_table(1, 2))
    assert "| plaintext | 64 | 120.0k | 3.00 | — | — | 2.40 | 0.80 |" in md
    assert "- plaintext/64/granian: no request finished within the run" in md

if __name__ == "__main__":
    tests = [fn for name, fn in sorted(globals().items()) if name.startswith("test_")]
    for fn in tests:
        fn()
    print(f"{len(tests)} passed, 0 failed")
