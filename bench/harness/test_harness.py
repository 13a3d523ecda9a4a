"""Specs for the parts of the harness that need no server: wrk parsing and /proc sampling.

Run with `python3 -m pytest bench/harness` (or plain `python3 bench/harness/test_harness.py`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.procfs import cpu_seconds, memory_mb, session_pids
from harness.wrk import parse_wrk

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


if __name__ == "__main__":
    for name, fn in sorted(globals().items()):
        if name.startswith("test_"):
            fn()
    print("4 passed, 0 failed")
