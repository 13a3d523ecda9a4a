"""Specs for the soak benchmark's parts that need no server: the HUP/kill schedule, which process
is which as workers come and go, wrk run parsing, error attribution, the flatness rule, the
page, the plot's data, the soak app and the command lines.

Run with `python3 bench/test_soak.py` (or `python3 -m pytest bench/test_soak.py`).
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "apps"))

import soak  # noqa: E402
import soakapp  # noqa: E402
from harness.soak import (  # noqa: E402
    RSS_FLOOR_KIB,
    Stat,
    Tracker,
    analyse,
    attribute_errors,
    event_steps,
    judge_series,
    lsq_slope,
    parse_segment,
    pooled_slope,
    schedule,
    segment_cause,
    series,
    verdict,
)
from harness.soak_plot import plot_data  # noqa: E402
from harness.soak_report import render  # noqa: E402

WRK_OUT = """Running 5s test @ http://127.0.0.1:8000/
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.02ms  31.15ms   97.18%
  Latency Distribution
     50%    1.90ms
     75%    2.05ms
     90%    2.40ms
     99%    5.21ms
  40000 requests in 5.00s, 700.08MB read
  Socket errors: connect 0, read 14, write 2, timeout 1
  Non-2xx or 3xx responses: 3
Requests/sec:   8000.00
Transfer/sec:    140.02MB
"""


# --- schedule and bookkeeping -------------------------------------------------------------------


def test_the_schedule_puts_every_event_inside_the_run_hup_before_a_kill_at_the_same_time():
    events = schedule(600, 60, 45)
    hups = [t for t, k in events if k == "hup"]
    kills = [t for t, k in events if k == "kill"]
    assert hups == [60 * k for k in range(1, 10)]  # 540 is the last before 600
    assert kills == [45 * k for k in range(1, 14)]  # 585
    assert [t for t, _ in events] == sorted(t for t, _ in events)
    at_180 = [k for t, k in events if t == 180]
    assert at_180 == ["hup", "kill"]
    assert schedule(600, 0, 45) == [(45 * k, "kill") for k in range(1, 14)]
    assert schedule(600, 0, 0) == []
    assert schedule(60, 60, 0) == []  # an event at the very end would land on nothing


def _stat(ppid: int, rss: int, fds: int = 20) -> Stat:
    return Stat(ppid, rss, rss // 2, fds, 3)


def test_the_tracker_knows_master_workers_generations_and_how_each_worker_ended():
    tr = Tracker(master=100)
    tr.observe(0.0, {100: _stat(1, 20000), 101: _stat(100, 30000), 102: _stat(100, 30000),
                     555: _stat(101, 9999)})  # a grandchild: not ours to judge
    assert set(tr.procs) == {100, 101, 102}
    assert tr.procs[100].role == "master" and tr.procs[101].role == "worker"
    assert tr.workers() == [101, 102]
    tr.note_event(1.0, "kill", 101)
    assert tr.workers() == [102]  # never killed twice
    tr.observe(2.0, {100: _stat(1, 20000), 102: _stat(100, 30000), 103: _stat(100, 10000)})
    assert tr.procs[101].died == 2.0 and tr.procs[101].cause == "killed"
    assert tr.procs[103].generation == 0  # a respawn, not a new generation
    tr.note_event(3.0, "hup", 100)
    tr.observe(4.0, {100: _stat(1, 20000), 102: _stat(100, 30000), 103: _stat(100, 30000),
                     104: _stat(100, 10000), 105: _stat(100, 10000)})
    assert tr.procs[104].generation == 1 and tr.procs[105].generation == 1
    tr.observe(5.0, {100: _stat(1, 20000), 104: _stat(100, 30000), 105: _stat(100, 30000)})
    assert tr.procs[102].cause == "retired" and tr.procs[103].cause == "retired"
    assert tr.procs[104].died is None and tr.workers() == [104, 105]
    tr.observe(6.0, {100: _stat(1, 20000), 104: _stat(100, 30000)})
    assert tr.procs[105].cause == "exited"  # died of something we did not send
    data = json.loads(json.dumps(tr.to_json()))
    assert data["samples"][0]["p"]["101"] == [30000, 15000, 20, 3]
    assert data["events"] == [{"t": 1.0, "kind": "kill", "pid": 101, "fds": 20},
                              {"t": 3.0, "kind": "hup", "pid": 100}]
    assert data["procs"]["104"]["generation"] == 1


# --- wrk runs and errors ------------------------------------------------------------------------


def test_a_wrk_run_gives_its_requests_and_each_kind_of_error_apart():
    seg = parse_segment(WRK_OUT, 10.0, 15.1)
    assert (seg["t0"], seg["t1"], seg["requests"], seg["rps"]) == (10.0, 15.1, 40000, 8000.0)
    assert (seg["non2xx"], seg["connect"], seg["read"], seg["write"], seg["timeout"]) == (
        3, 0, 14, 2, 1)
    assert seg["p99"] == 5.21
    clean = WRK_OUT.replace("  Socket errors: connect 0, read 14, write 2, timeout 1\n", "")
    clean = clean.replace("  Non-2xx or 3xx responses: 3\n", "")
    seg = parse_segment(clean, 0, 5)
    assert [seg[k] for k in ("non2xx", "connect", "read", "write", "timeout")] == [0] * 5


def _seg(t0: float, t1: float, read: int = 0, non2xx: int = 0, requests: int = 1000) -> dict:
    return {"t0": t0, "t1": t1, "requests": requests, "rps": requests / (t1 - t0), "p50": 1,
            "p99": 2, "non2xx": non2xx, "connect": 0, "read": read, "write": 0, "timeout": 0}


def test_errors_are_put_down_to_a_kill_then_a_hup_within_their_grace_else_to_neither():
    events = [{"t": 44.8, "kind": "kill", "pid": 7}, {"t": 60.2, "kind": "hup", "pid": 1}]
    assert segment_cause(_seg(40, 45), events, 3, 10) == "kill"  # the kill is inside
    assert segment_cause(_seg(45, 50), events, 3, 10) == "kill"  # 0.2 s after it
    assert segment_cause(_seg(50, 55), events, 3, 10) == "none"  # past the kill's grace
    assert segment_cause(_seg(65, 70), events, 3, 10) == "hup"
    assert segment_cause(_seg(75, 80), events, 3, 10) == "none"
    both = events + [{"t": 66.0, "kind": "kill", "pid": 8}]
    assert segment_cause(_seg(65, 70), both, 3, 10) == "kill"  # a kill outweighs a HUP
    segs = [_seg(40, 45, read=16), _seg(45, 50, read=2), _seg(50, 55), _seg(65, 70, non2xx=1),
            _seg(80, 85, read=1)]
    by = attribute_errors(segs, events, 3, 10)
    assert by["kill"]["read"] == 18 and by["kill"]["segments"] == 2
    assert by["hup"]["non2xx"] == 1 and by["hup"]["requests"] == 1000
    assert by["none"]["read"] == 1 and by["none"]["segments"] == 2


# --- the flatness rule --------------------------------------------------------------------------


def test_the_slope_is_least_squares_and_pooling_ignores_workers_sitting_at_other_levels():
    line = [(t, 3.0 + 2.0 * t) for t in range(10)]
    assert abs(lsq_slope(line) - 2.0) < 1e-12
    assert lsq_slope([(1.0, 5.0)]) == 0.0 and lsq_slope([(1, 5), (1, 7)]) == 0.0
    # two flat workers, the second one sitting 5 MiB higher: pooled, that is no growth
    low = [(t, 25000.0) for t in range(0, 20)]
    high = [(t, 30000.0) for t in range(20, 40)]
    assert lsq_slope(low + high) > 100  # a plain fit mistakes the level for growth
    assert pooled_slope([low, high]) == 0.0
    grow = [(t, 25000.0 + 10 * t) for t in range(20)]
    assert abs(pooled_slope([grow, [(t + 50, y + 999) for t, y in grow]]) - 10) < 1e-9
    assert pooled_slope([[(1, 2)]]) == 0.0


def test_flat_means_growth_over_the_run_below_five_percent_of_the_start_or_the_floor():
    # 100 MiB start: the limit is 5 MiB; 0.4 KiB/s × 600 s = 240 KiB is flat
    v = verdict(100 * 1024, 0.4, 600, RSS_FLOOR_KIB)
    assert v["flat"] and v["limit"] == 5 * 1024 and abs(v["growth"] - 240) < 1e-9
    # 10 MiB start: 5 % is 0.5 MiB, so the 2 MiB floor is the limit
    assert verdict(10 * 1024, 3.0, 600, RSS_FLOOR_KIB)["flat"]  # 1800 KiB < 2048
    assert not verdict(10 * 1024, 4.0, 600, RSS_FLOOR_KIB)["flat"]  # 2400 KiB
    assert verdict(10 * 1024, -50.0, 600, RSS_FLOOR_KIB)["flat"]  # shrinking is flat
    assert verdict(10 * 1024, 1.0, 600, RSS_FLOOR_KIB)["slope_per_min"] == 60.0


def test_a_series_is_judged_on_its_second_half_so_a_warm_up_is_not_a_leak():
    warm = [(t, 10000.0 + 300 * min(t, 60)) for t in range(600)]  # grows 60 s, then flat
    j = judge_series(warm, 600, RSS_FLOOR_KIB)
    assert j["flat"] and j["slope_per_min"] == 0 and j["n"] == 600
    assert j["start"] == 10000 + 300 * 2 and j["end"] == 28000 and j["max"] == 28000
    leak = [(t, 20000.0 + 5 * t) for t in range(600)]  # 3000 KiB over the run
    assert not judge_series(leak, 600, RSS_FLOOR_KIB)["flat"]
    assert judge_series([], 600, RSS_FLOOR_KIB)["flat"]


def test_a_series_leaves_out_what_a_death_looks_like():
    raw = {"procs": {"7": {"killed_at": 2.5}, "8": {"killed_at": None}},
           "samples": [{"t": 1.0, "p": {"7": [900, 400, 40, 2], "8": [800, 400, 12, 2]}},
                       {"t": 2.0, "p": {"7": [910, 400, 40, 2], "8": [0, 0, 3, 1]}},
                       {"t": 3.0, "p": {"7": [500, 100, 0, 1], "8": [820, 410, 12, 2]}}]}
    assert series(raw, 7, 0) == [(1.0, 900), (2.0, 910)]  # after our SIGKILL: a death
    assert series(raw, 8, 2) == [(1.0, 12), (3.0, 12)]  # no memory: it was exiting


def test_event_steps_measure_how_much_a_series_moved_across_each_event():
    pts = [(t, 100.0 if t < 30 else 164.0) for t in range(60)]
    events = [{"t": 29.5, "kind": "hup", "pid": 1}, {"t": 10.5, "kind": "kill", "pid": 2}]
    assert event_steps(pts, events, "hup") == [64.0]
    assert event_steps(pts, events, "kill") == [0.0]


def synthetic_run(master_leak: float = 0.0, worker_leak: float = 0.0, drift: float = 0.0,
                  fd_leak: float = 0.0, duration: int = 600) -> dict:
    """A run as bench/soak.py saves it, built through the Tracker: two worker slots, HUP every
    60 s, a kill every 45 s, a wrk run every 5 s with an idle sample at its end. RSS in KiB;
    leaks in KiB (fds) per second of a worker's life, `drift` in KiB per second of the run for
    each new worker's plateau. Under load a worker's fds jitter with its connections."""
    tr = Tracker(master=1)
    born: dict[int, float] = {}
    slots = [10, 11]
    next_pid = 12
    events = schedule(duration, 60, 45)
    rng_pick = 0
    for t in range(duration):
        while events and events[0][0] <= t:
            kind = events.pop(0)[1]
            if kind == "hup":
                tr.note_event(t, "hup", 1)
                slots = [next_pid, next_pid + 1]
                next_pid += 2
            else:
                alive = tr.workers()  # as the soak picks: sampled and not killed yet
                victim = alive[rng_pick % len(alive)]
                rng_pick += 1
                tr.note_event(t, "kill", victim)
                if victim in slots:  # else a worker the HUP just retired
                    slots[slots.index(victim)] = next_pid
                    next_pid += 1
        stats = {1: Stat(0, int(20000 + master_leak * t), 10000, 12, 1)}
        for pid in slots:
            b = born.setdefault(pid, t)
            age = t - b
            rss = 10000 if age < 3 else 25000 + drift * b + worker_leak * age
            stats[pid] = Stat(1, int(rss), int(rss) // 2, 40 + (t % 3), 3)
        tr.observe(float(t), stats)
        if t % 5 == 4:
            idle = {pid: Stat(st.ppid, st.rss, st.anon, 12 + int(fd_leak * (t - born[pid]))
                              if pid in born else st.fds, st.threads)
                    for pid, st in stats.items()}
            tr.observe_idle(t + 0.5, idle)
    seg = [_seg(t, t + 5, read=(16 if t and t % 45 == 0 else 0)) for t in range(0, duration, 5)]
    return {
        "meta": {"started": "2026-12-01 11:55:00 UTC", "command": "python3 bench/soak.py",
                 "env": {"machine": "test"}, "server_argv": ["ferricorn", "-w", "2"],
                 "wrk_argv": ["wrk", "-c32"], "results": "soak-x.json", "failures": [],
                 "log": {"levels": {"INFO": 10, "ERROR": 2}, "tracebacks": 0,
                         "messages": {"[ERROR] Worker (pid:N) was sent SIGKILL!": 2}}},
        "args": vars(soak.parse_args(["-d", str(duration)])),
        "duration": float(duration),
        **tr.to_json(),
        "segments": seg,
    }


def test_a_run_without_leaks_is_flat_and_each_kind_of_leak_is_named():
    a = analyse(synthetic_run())
    assert a["flat"] and a["not_flat"] == []
    assert a["workers_rss"]["judged"] >= 20 and abs(a["workers_rss"]["slope_per_min"]) < 1e-6
    assert a["workers_rss"]["first_sample_median"] == 10000 and a["workers_rss"]["start"] == 25000
    assert a["worker_causes"]["killed"] == 13 and a["worker_causes"]["alive"] == 2
    assert a["worker_causes"]["retired"] == a["workers_seen"] - 15
    assert a["errors"]["kill"]["read"] > 0 and a["errors"]["none"]["read"] == 0
    assert a["threads"] == {"master": [1, 1], "worker": [3, 3]}
    assert a["master_steps"]["hup"] == [0] * 9
    gens = a["generations"]
    assert [g["generation"] for g in gens] == list(range(10))  # 9 HUPs
    assert gens[0]["workers"] >= 2 and gens[0]["born_first"] == 0
    assert gens[0]["first"] == 10000 and gens[0]["plateau"] == 25000

    assert analyse(synthetic_run(master_leak=5.0))["not_flat"] == ["master_rss"]
    # 5 KiB/s within each life: 200 KiB in a worker's 40 s, but 2.9 MiB over the run
    assert analyse(synthetic_run(worker_leak=5.0))["not_flat"] == ["workers_rss"]
    assert analyse(synthetic_run(worker_leak=2.0))["flat"]  # 1.2 MiB: under the floor
    # each new worker settles 10 KiB higher per second of the run
    assert analyse(synthetic_run(drift=10.0))["not_flat"] == ["generations_rss"]
    # a connection never closed every 10 s: the idle samples show it, the jitter under load not
    assert analyse(synthetic_run(fd_leak=0.1))["not_flat"] == ["workers_fds"]


def test_the_page_states_the_verdict_rule_numbers_and_how_to_reproduce():
    raw = synthetic_run()
    page = render(raw, analyse(raw), "soak.png", findings="Nothing grew.")
    assert page.startswith("# Soak benchmark\n")
    assert "**Verdict: memory is flat**" in page and "## Findings\n\n(Written by hand" in page
    assert "\n\nNothing grew.\n" in page
    assert "![" in page and "(soak.png)" in page and "Short run" not in page
    assert "`python3 bench/soak.py`" in page and "## The rule" in page
    assert "| master RSS | 600 samples, 2nd half | 19.5 MiB |" in page
    assert "`[ERROR] Worker (pid:N) was sent SIGKILL!` × 2" in page
    assert "| 0 | 3 | 0–45 | 9.8 MiB | 24.4 MiB | 24.4 MiB | 44 | 1 killed, 2 retired |" in page
    assert "| 90.0 | 14 | 42 | 16 |" in page  # the kill's row: victim, its fds, the run's errors
    for line in page.splitlines():
        if line.startswith("| series") or line.startswith("| master") or line.startswith(
                "| workers") or line.startswith("| total"):
            assert line.count("|") == 10, line
    leaky = synthetic_run(master_leak=50.0, duration=120)
    page = render(leaky, analyse(leaky), None)
    assert "**Short run**" in page and "**Verdict: NOT flat**: the master's RSS" in page
    assert "![" not in page


def test_the_plot_draws_each_worker_by_generation_and_errors_where_there_were_some():
    raw = synthetic_run(duration=130)
    d = plot_data(raw)
    assert d["hups"] == [60, 120] and d["kills"] == [45, 90]
    assert [w["generation"] for w in d["workers"]][:2] == [0, 0]
    assert d["generations"] == 3
    assert d["master_rss"][0] == (0.0, 20000 / 1024)
    assert d["errors"] == [(47.5, 16), (92.5, 16)]
    assert len(d["throughput"]) == 26


# --- the app, the load script, the command lines, the log ----------------------------------------


def _wsgi(path: str, body: bytes = b"") -> tuple[str, bytes]:
    seen = []
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "POST" if body else "GET",
               "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)}
    out = b"".join(soakapp.wsgi(environ, lambda status, headers: seen.append(status)))
    return seen[0], out


def test_the_soak_app_routes_to_benchapps_and_answers_404_elsewhere():
    assert _wsgi("/plaintext") == ("200 OK", b"Hello, World!")
    assert json.loads(_wsgi("/json")[1]) == {"message": "Hello, World!"}
    assert _wsgi("/bytes64k")[1] == b"x" * 65536
    assert _wsgi("/echo", b"abc" * 100) == ("200 OK", b"abc" * 100)
    assert _wsgi("/nope")[0] == "404 Not Found"

    async def asgi(path: str, body: bytes = b"") -> tuple[int, bytes]:
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        await soakapp.asgi({"type": "http", "path": path}, receive, send)
        return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

    assert asyncio.run(asgi("/echo", b"xyz")) == (200, b"xyz")
    assert asyncio.run(asgi("/plaintext")) == (200, b"Hello, World!")
    assert asyncio.run(asgi("/")) == (404, b"not found")


def test_the_load_script_cycles_the_four_routes_and_can_pause():
    text = soak.lua_script(0)
    for route in soakapp.ROUTES:
        assert f'"{route}"' in text
    assert 'string.rep("soak", 4096)' in text and len(soak.ECHO_BODY) == 16384
    assert "function delay()" not in text
    assert soak.lua_script(7).endswith("function delay()\n   return 7\nend\n")


def test_the_command_lines_follow_the_options():
    args = soak.parse_args([])
    assert (args.duration, args.hup_every, args.kill_every, args.workers) == (600, 60, 45, 2)
    argv = soak.server_argv(args, 8000)
    assert argv[1:] == ["-w", "2", "-b", "127.0.0.1:8000", "--no-control-socket", "soakapp:wsgi"]
    args = soak.parse_args(["--interface", "asgi", "--server-args", "--max-requests 500", "-w",
                            "3"])
    argv = soak.server_argv(args, 8000)
    assert argv[-1] == "soakapp:asgi" and argv[argv.index("-k") + 1] == "asgi"
    assert argv[argv.index("--max-requests") + 1] == "500" and "3" in argv
    wrk = soak.wrk_argv(args, 5, 8000, Path("x.lua"))
    assert wrk[:5] == ["wrk", "-t1", "-c32", "-d5s", "--timeout"] and wrk[-3:] == [
        "-s", "x.lua", "http://127.0.0.1:8000/"]


def test_the_server_log_is_counted_by_level_and_message():
    text = (
        "[2026-12-01 11:00:00 +0000] [10] [INFO] Booting worker with pid: 11\n"
        "[2026-12-01 11:00:01 +0000] [10] [ERROR] Worker (pid:11) was sent SIGKILL!\n"
        "[2026-12-01 11:00:02 +0000] [10] [ERROR] Worker (pid:12) was sent SIGKILL!\n"
        "Traceback (most recent call last):\n  File \"x\", line 1\n"
        "[2026-12-01 11:00:03 +0000] [10] [WARNING] slow\n"
    )
    s = soak.log_summary(text)
    assert s["levels"] == {"INFO": 1, "ERROR": 2, "WARNING": 1}
    assert s["messages"] == {"[ERROR] Worker (pid:N) was sent SIGKILL!": 2, "[WARNING] slow": 1}
    assert s["tracebacks"] == 1 and s["other_lines"] == 2


if __name__ == "__main__":
    tests = [fn for name, fn in sorted(globals().items()) if name.startswith("test_")]
    for fn in tests:
        fn()
    print(f"{len(tests)} passed, 0 failed")
