"""Reads a callgrind output file into self costs per (object, function) and the inclusive cost of
every call between functions. Stdlib only; used by callgrind_run.py and its specs.

Only the `Ir` event (instructions) is read: callgrind's default and the one that repeats under load.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

_NAMED = re.compile(r"^\((\d+)\)(?: (.*))?$")


@dataclass
class Profile:
    total: int = 0
    # (object, function) -> instructions executed in the function itself
    self_cost: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    # (caller object, caller fn, callee object, callee fn) -> instructions of those calls, inclusive
    calls: dict[tuple[str, str, str, str], int] = field(default_factory=lambda: defaultdict(int))


def _name(value: str, table: dict[str, str]) -> str:
    """Callgrind's name compression: `(7) name` defines id 7, a later `(7)` refers to it."""
    m = _NAMED.match(value)
    if not m:
        return value
    if m.group(2) is not None:
        table[m.group(1)] = m.group(2)
    return table.get(m.group(1), value)


def _cost(line: str) -> int:
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 else 0


def parse(text: str) -> Profile:
    prof = Profile()
    obs: dict[str, str] = {}
    fns: dict[str, str] = {}
    files: dict[str, str] = {}
    ob = fn = ""
    cob: str | None = None
    cfn = ""
    in_call = False
    for line in text.splitlines():
        if not line:
            continue
        c = line[0]
        if c.isdigit() or c in "+-*":
            cost = _cost(line)
            if in_call:
                prof.calls[(ob, fn, cob if cob is not None else ob, cfn)] += cost
                in_call = False
                cob = None
            else:
                prof.self_cost[(ob, fn)] += cost
            continue
        key, _, value = line.partition("=")
        if key == "ob":
            ob = _name(value, obs)
        elif key == "fn":
            fn = _name(value, fns)
            cob = None
        elif key == "cob":
            cob = _name(value, obs)
        elif key == "cfn":
            cfn = _name(value, fns)
        elif key in ("fl", "fi", "fe", "cfi", "cfl"):
            _name(value, files)
        elif key == "calls":
            in_call = True
        elif line.startswith(("summary:", "totals:")):
            prof.total = max(prof.total, _cost(line.replace(":", "", 1)))
    if not prof.total:
        prof.total = sum(prof.self_cost.values())
    return prof
