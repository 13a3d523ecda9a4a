"""The soak benchmark's pure parts: the HUP/kill schedule, which process is which as workers come
and go, wrk segment parsing, error attribution, and the flatness rule. bench/soak.py does the I/O
(processes, /proc, wrk) and soak_report.py renders the page; everything here is plain data in,
plain data out, so that bench/test_soak.py can check it without a server.

Units: memory in KiB as /proc gives it, times in seconds since the load started.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field

from harness.wrk import parse_wrk

KIB_PER_MIB = 1024

# The flatness rule (docs/soak.md states it): a series is flat when its least-squares slope over
# the part judged, projected over the whole run, is below REL_LIMIT of where it started or below
# the absolute floor, whichever is larger. Floors: allocator noise for memory, a stray fd or two.
REL_LIMIT = 0.05
RSS_FLOOR_KIB = 2 * KIB_PER_MIB
FD_FLOOR = 2.0

# How many samples the start and end values are medians of.
EDGE_SAMPLES = 5

# Order of simultaneous events: HUP first, then the kill lands on a worker the HUP is replacing.
_EVENT_ORDER = {"hup": 0, "kill": 1}


def schedule(duration: float, hup_every: float, kill_every: float) -> list[tuple[float, str]]:
    """(time, "hup"|"kill") of every event strictly inside the run; 0 disables a kind."""
    out: list[tuple[float, str]] = []
    for every, kind in ((hup_every, "hup"), (kill_every, "kill")):
        if every <= 0:
            continue
        k = 1
        while k * every < duration:
            out.append((k * every, kind))
            k += 1
    return sorted(out, key=lambda e: (e[0], _EVENT_ORDER[e[1]]))


@dataclass
class Stat:
    """One process at one sample, from /proc: parent, VmRSS and RssAnon (KiB), fds, threads."""

    ppid: int
    rss: int
    anon: int
    fds: int
    threads: int


@dataclass
class Proc:
    """A process of the server over its life. `generation` is the number of HUPs sent before it
    was first seen (the master's is 0); `cause` says how it ended: killed (our SIGKILL),
    retired (replaced after a HUP), exited (anything else), or None while alive."""

    pid: int
    role: str
    born: float
    generation: int = 0
    died: float | None = None
    cause: str | None = None
    killed_at: float | None = None


@dataclass
class Tracker:
    """Bookkeeping of a run: the events sent and the processes seen, sample by sample."""

    master: int
    procs: dict[int, Proc] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    samples: list[dict] = field(default_factory=list)
    # samples taken between two wrk runs, when no client is connected (fds then are the
    # process's own, not its connections')
    idle: list[dict] = field(default_factory=list)
    hups: int = 0

    def note_event(self, t: float, kind: str, pid: int) -> None:
        """Record a HUP sent to the master (`pid`) or a SIGKILL sent to worker `pid`; a kill
        also records the fds its victim had at the last sample (its connections among them)."""
        event = {"t": round(t, 3), "kind": kind, "pid": pid}
        if kind == "kill":
            last = self.samples[-1]["p"] if self.samples else {}
            event["fds"] = last[str(pid)][2] if str(pid) in last else None
        self.events.append(event)
        if kind == "hup":
            self.hups += 1
        elif kind == "kill" and pid in self.procs:
            self.procs[pid].killed_at = t

    def observe(self, t: float, stats: dict[int, Stat]) -> None:
        """One sample of every process of the server's session, keyed by pid."""
        row: dict[str, list[int]] = {}
        for pid, st in stats.items():
            if pid == self.master:
                role = "master"
            elif st.ppid == self.master:
                role = "worker"
            else:
                continue  # not ours to judge (e.g. a helper process an app started)
            proc = self.procs.get(pid)
            if proc is None:
                gen = 0 if role == "master" else self.hups
                proc = self.procs[pid] = Proc(pid, role, round(t, 3), gen)
            row[str(pid)] = [st.rss, st.anon, st.fds, st.threads]
        for proc in self.procs.values():
            if proc.died is None and str(proc.pid) not in row:
                proc.died = round(t, 3)
                if proc.killed_at is not None:
                    proc.cause = "killed"
                elif proc.generation < self.hups:
                    proc.cause = "retired"
                else:
                    proc.cause = "exited"
        self.samples.append({"t": round(t, 3), "p": row})

    def observe_idle(self, t: float, stats: dict[int, Stat]) -> None:
        """A sample between two wrk runs. It only reads the bookkeeping (the sampler thread
        keeps it), so a process not seen by `observe` yet is left out."""
        row = {str(pid): [st.rss, st.anon, st.fds, st.threads]
               for pid, st in stats.items() if pid in self.procs}
        self.idle.append({"t": round(t, 3), "p": row})

    def workers(self) -> list[int]:
        """Workers alive at the last sample, not already sent a SIGKILL."""
        return sorted(
            p.pid
            for p in self.procs.values()
            if p.role == "worker" and p.died is None and p.killed_at is None
        )

    def to_json(self) -> dict:
        return {
            "master": self.master,
            "events": self.events,
            "procs": {str(p.pid): vars(p) for p in self.procs.values()},
            "samples": self.samples,
            "idle": self.idle,
        }


# --- wrk segments and errors ------------------------------------------------------------------

_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
ERROR_KINDS = ("non2xx", "connect", "read", "write", "timeout")


def parse_segment(out: str, t0: float, t1: float) -> dict:
    """One wrk run of the load (`--latency` output) as a segment of the run's time line."""
    res = parse_wrk(out)
    seg = {
        "t0": round(t0, 3),
        "t1": round(t1, 3),
        "requests": int(res["requests"]),
        "rps": res["rps"],
        "p50": res["p50"],
        "p99": res["p99"],
    }
    m = _SOCKET.search(out)
    for kind, value in zip(ERROR_KINDS[1:], m.groups() if m else (0, 0, 0, 0)):
        seg[kind] = int(value)
    m = _NON2XX.search(out)
    seg["non2xx"] = int(m.group(1)) if m else 0
    return seg


def segment_cause(seg: dict, events: list[dict], kill_grace: float, hup_grace: float) -> str:
    """What a segment's errors are put down to: "kill" if a SIGKILL fell in it or `kill_grace`
    seconds before it, else "hup" likewise with `hup_grace`, else "none"."""
    cause = "none"
    for e in events:
        grace = kill_grace if e["kind"] == "kill" else hup_grace
        if e["t"] <= seg["t1"] and e["t"] + grace >= seg["t0"]:
            if e["kind"] == "kill":
                return "kill"
            cause = "hup"
    return cause


def attribute_errors(
    segments: list[dict], events: list[dict], kill_grace: float, hup_grace: float
) -> dict[str, dict[str, int]]:
    """Errors summed per cause ("kill", "hup", "none"), per kind (`ERROR_KINDS`), plus the
    number of segments and of requests under each cause."""
    kinds = (*ERROR_KINDS, "segments", "requests")
    out = {c: {k: 0 for k in kinds} for c in ("kill", "hup", "none")}
    for seg in segments:
        row = out[segment_cause(seg, events, kill_grace, hup_grace)]
        row["segments"] += 1
        row["requests"] += seg["requests"]
        for kind in ERROR_KINDS:
            row[kind] += seg.get(kind, 0)
    return out


def errors_of(seg: dict) -> int:
    return sum(seg.get(k, 0) for k in ERROR_KINDS)


# --- the flatness rule ------------------------------------------------------------------------


def lsq_slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over t; 0 with fewer than two distinct times."""
    if len(points) < 2:
        return 0.0
    tm = statistics.fmean(t for t, _ in points)
    ym = statistics.fmean(y for _, y in points)
    sxx = sum((t - tm) ** 2 for t, _ in points)
    if sxx == 0:
        return 0.0
    return sum((t - tm) * (y - ym) for t, y in points) / sxx


def pooled_slope(windows: list[list[tuple[float, float]]]) -> float:
    """One slope for many short series that may sit at different levels (workers of one run):
    each is centred on its own means, then all are fitted together, so a level difference
    between workers is not read as growth and a long window weighs more than a short one."""
    sxy = sxx = 0.0
    for pts in windows:
        if len(pts) < 2:
            continue
        tm = statistics.fmean(t for t, _ in pts)
        ym = statistics.fmean(y for _, y in pts)
        sxy += sum((t - tm) * (y - ym) for t, y in pts)
        sxx += sum((t - tm) ** 2 for t, _ in pts)
    return sxy / sxx if sxx else 0.0


def verdict(start: float, slope: float, duration: float, floor: float) -> dict:
    """The rule: growth = slope × duration; flat when growth < max(REL_LIMIT × start, floor)."""
    growth = slope * duration
    limit = max(REL_LIMIT * start, floor)
    return {
        "start": start,
        "slope_per_min": slope * 60,
        "growth": growth,
        "limit": limit,
        "flat": growth < limit,
    }


def judge_series(points: list[tuple[float, float]], duration: float, floor: float) -> dict:
    """One long-lived series (the master's RSS or fds, the total): the slope is fitted over its
    second half (the first holds the warm-up), start and end are medians of its first and last
    `EDGE_SAMPLES` points."""
    if not points:
        return {"n": 0, "flat": True, "start": 0, "end": 0, "min": 0, "max": 0,
                "slope_per_min": 0, "growth": 0, "limit": floor}
    ys = [y for _, y in points]
    mid = (points[0][0] + points[-1][0]) / 2
    out = verdict(statistics.median(ys[:EDGE_SAMPLES]),
                  lsq_slope([p for p in points if p[0] >= mid]), duration, floor)
    out.update(n=len(points), end=statistics.median(ys[-EDGE_SAMPLES:]), min=min(ys), max=max(ys))
    return out


def series(raw: dict, pid: int, column: int, source: str = "samples") -> list[tuple[float, float]]:
    """(t, value) of one process over the samples it appears in; column 0 RSS, 1 RssAnon,
    2 fds, 3 threads. `source` "idle" reads the samples taken between two wrk runs, when no
    client is connected.

    Left out: samples taken once the soak had sent the process SIGKILL, and samples without
    memory (RSS 0: the process was exiting, its memory already gone). They show a death, not
    the process's use."""
    key = str(pid)
    proc = raw["procs"].get(key, {})
    killed = proc.get("killed_at")
    return [
        (s["t"], s["p"][key][column])
        for s in raw.get(source, [])
        if key in s["p"] and s["p"][key][0] > 0 and (killed is None or s["t"] < killed)
    ]


def total_series(raw: dict, column: int = 0) -> list[tuple[float, float]]:
    return [(s["t"], sum(v[column] for v in s["p"].values())) for s in raw["samples"]]


def worker_windows(
    raw: dict, column: int, min_life: float, source: str = "samples"
) -> dict[int, list[tuple[float, float]]]:
    """Each worker that lived at least `min_life` seconds (first to last sample): its samples
    over the second half of its life (the first half is its boot and warm-up)."""
    out = {}
    for key, proc in raw["procs"].items():
        if proc["role"] != "worker":
            continue
        life = series(raw, int(key), column)
        if len(life) < 2 or life[-1][0] - life[0][0] < min_life:
            continue
        mid = (life[0][0] + life[-1][0]) / 2
        pts = [p for p in series(raw, int(key), column, source) if p[0] >= mid]
        if len(pts) >= 2:
            out[int(key)] = pts
    return out


def event_steps(points: list[tuple[float, float]], events: list[dict], kind: str,
                span: float = 5.0) -> list[float]:
    """How much a series moved across each event of `kind`: the median of its values in the
    `span` seconds after the event minus the median in the `span` seconds before."""
    steps = []
    for e in events:
        if e["kind"] != kind:
            continue
        before = [y for t, y in points if e["t"] - span <= t < e["t"]]
        after = [y for t, y in points if e["t"] < t <= e["t"] + span]
        if before and after:
            steps.append(statistics.median(after) - statistics.median(before))
    return steps


def generation_rows(raw: dict, min_life: float) -> list[dict]:
    """Per generation of workers (HUPs before their birth): how many, when born, and the
    medians of their RSS at the first sample, their plateau (second half of a life of at least
    `min_life` s) and their last sample, of their lives, and how they ended."""
    windows = worker_windows(raw, 0, min_life)
    rows: dict[int, dict] = {}
    for key, proc in raw["procs"].items():
        if proc["role"] != "worker":
            continue
        pts = series(raw, int(key), 0)
        if not pts:
            continue
        row = rows.setdefault(proc["generation"], {"born": [], "first": [], "plateau": [],
                                                   "last": [], "life": [], "causes": {}})
        row["born"].append(proc["born"])
        row["first"].append(pts[0][1])
        row["last"].append(pts[-1][1])
        row["life"].append(pts[-1][0] - pts[0][0])
        if int(key) in windows:
            row["plateau"].append(statistics.median(y for _, y in windows[int(key)]))
        cause = proc["cause"] or "alive"
        row["causes"][cause] = row["causes"].get(cause, 0) + 1
    out = []
    for gen in sorted(rows):
        r = rows[gen]

        def med(values: list[float]) -> float | None:
            return statistics.median(values) if values else None

        out.append({"generation": gen, "workers": len(r["born"]), "born_first": min(r["born"]),
                    "born_last": max(r["born"]), "first": med(r["first"]),
                    "plateau": med(r["plateau"]), "last": med(r["last"]),
                    "life": med(r["life"]), "causes": r["causes"]})
    return out


def analyse(raw: dict) -> dict:
    """Every figure the report states, from a run's raw JSON (bench/results/soak-*.json)."""
    args = raw["args"]
    duration = float(raw["duration"])
    master = raw["master"]
    min_life = float(args["min_life"])
    out: dict = {"duration": duration}
    out["master_rss"] = judge_series(series(raw, master, 0), duration, RSS_FLOOR_KIB)
    out["master_fds"] = judge_series(series(raw, master, 2), duration, FD_FLOOR)
    out["total_rss"] = judge_series(total_series(raw, 0), duration, RSS_FLOOR_KIB)
    master_rss = series(raw, master, 0)
    out["master_steps"] = {
        kind: event_steps(master_rss, raw["events"], kind) for kind in ("hup", "kill")
    }

    workers = [p for p in raw["procs"].values() if p["role"] == "worker"]
    out["workers_seen"] = len(workers)
    out["worker_causes"] = {
        c: sum(1 for p in workers if (p["cause"] or "alive") == c)
        for c in ("killed", "retired", "exited", "alive")
    }
    # A worker's fds under load follow its connections; between two wrk runs none is open, so
    # its fds are judged on those idle samples (a connection never closed shows there).
    for name, column, floor, source in (("rss", 0, RSS_FLOOR_KIB, "samples"),
                                        ("fds", 2, FD_FLOOR, "idle")):
        windows = worker_windows(raw, column, min_life, source)
        starts = [series(raw, pid, column, source)[0][1] for pid in windows]
        plateaus = {pid: statistics.median(y for _, y in pts) for pid, pts in windows.items()}
        start = statistics.median(plateaus.values()) if plateaus else 0.0
        each = sorted(lsq_slope(pts) * 60 for pts in windows.values())
        within = verdict(start, pooled_slope(list(windows.values())), duration, floor)
        within.update(
            judged=len(windows),
            first_sample_median=statistics.median(starts) if starts else 0.0,
            each_slope_per_min_median=statistics.median(each) if each else 0.0,
            each_slope_per_min_max=each[-1] if each else 0.0,
        )
        out[f"workers_{name}"] = within
        # across generations: does a fresh worker settle higher than its predecessors did?
        born = [(raw["procs"][str(pid)]["born"], plateau) for pid, plateau in plateaus.items()]
        drift = verdict(start, lsq_slope(sorted(born)), duration, floor)
        drift["judged"] = len(born)
        out[f"generations_{name}"] = drift
    out["generations"] = generation_rows(raw, min_life)
    threads: dict[str, list[int]] = {"master": [], "worker": []}
    for s in raw["samples"]:
        for key, v in s["p"].items():
            threads[raw["procs"][key]["role"]].append(v[3])
    out["threads"] = {r: [min(v), max(v)] if v else [0, 0] for r, v in threads.items()}

    segs = raw["segments"]
    g = args["kill_grace"], args["hup_grace"]
    out["errors"] = attribute_errors(segs, raw["events"], *g)
    out["requests"] = sum(s["requests"] for s in segs)
    wall = sum(s["t1"] - s["t0"] for s in segs)
    out["mean_rps"] = out["requests"] / wall if wall else 0.0
    out["error_segments"] = [
        dict(s, cause=segment_cause(s, raw["events"], *g)) for s in segs if errors_of(s)
    ]
    judged = ("master_rss", "master_fds", "workers_rss", "workers_fds", "generations_rss",
              "generations_fds")
    out["not_flat"] = [k for k in judged if not out[k]["flat"]]
    out["flat"] = not out["not_flat"]
    return out
