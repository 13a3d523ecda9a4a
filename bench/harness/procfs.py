"""Reads /proc for a whole server (every process in its session): memory, CPU, steal.

It only reads; starting and stopping processes is measure.py's job.
"""

from __future__ import annotations

import os

CLK_TCK = os.sysconf("SC_CLK_TCK")


def session_pids(sid: int) -> list[int]:
    """Processes whose session id is `sid` (servers are started with start_new_session)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rfind(b")") + 2 :].split()
        if int(rest[3]) == sid:
            pids.append(int(entry))
    return pids


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return 0
    rest = stat[stat.rfind(b")") + 2 :].split()
    return int(rest[11]) + int(rest[12])  # utime + stime, all threads of the process


def _status_kb(pid: int, path: str, key: bytes) -> int:
    try:
        with open(f"/proc/{pid}/{path}", "rb") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def memory_mb(sid: int) -> tuple[float, float, float, int]:
    """(total RSS, total PSS, largest single RSS, process count) of a session.

    PSS splits the pages that a forked worker shares with its master, so it is the fairest total;
    the largest single RSS is usually the worker, the figure PERFORMANCE.md quotes.
    """
    pids = session_pids(sid)
    rss = [_status_kb(p, "status", b"VmRSS:") for p in pids]
    pss = sum(_status_kb(p, "smaps_rollup", b"Pss:") for p in pids)
    return sum(rss) / 1024.0, pss / 1024.0, max(rss, default=0) / 1024.0, len(pids)


def cpu_seconds(sid: int) -> float:
    return sum(_cpu_ticks(p) for p in session_pids(sid)) / CLK_TCK


def core_ticks(cpus: list[int]) -> tuple[int, int, int]:
    """(busy, steal, total) ticks of the given CPUs since boot, from /proc/stat.

    busy is user + nice + system + irq + softirq, whoever ran; steal is time the hypervisor gave
    our vCPUs to other guests (often not reported at all, then the loss shows as idle time).
    """
    busy = steal = total = 0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *vals = line.split()
                if (
                    name[3:].isdigit()
                    and name.startswith("cpu")
                    and int(name[3:]) in cpus
                ):
                    n = [int(v) for v in vals] + [0] * 8
                    busy += n[0] + n[1] + n[2] + n[5] + n[6]
                    steal += n[7]
                    total += sum(n[:8])
    except (OSError, ValueError):
        pass
    return busy, steal, total
