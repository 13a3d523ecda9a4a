"""``ferricorn ctl``: a client for the master's control socket (gunicorn's protocol).

Usage: ``ferricorn ctl [-s SOCKET] [-j] [COMMAND ...]``. With a command it runs it and exits
(0, or 1 with ``Error: ...`` on stderr); without one it opens a prompt. Replies are shown as
tables, or as the raw JSON ``data`` with ``-j``. The wire format is gunicorn's: a 4-byte
big-endian length, then a JSON object; ``gunicornc`` talks to the same socket.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import struct
import sys
from collections.abc import Callable
from typing import Any

# replies are small, except `dump stacks` of many workers
MAX_REPLY = 64 * 1024 * 1024


class CtlError(Exception):
    """The server answered with an error, or could not be reached."""


def default_socket() -> str:
    """gunicorn's default: ``$XDG_RUNTIME_DIR/gunicorn.ctl``, else ``~/.gunicorn/gunicorn.ctl``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "gunicorn.ctl")
    return os.path.join(os.path.expanduser("~"), ".gunicorn", "gunicorn.ctl")


class Client:
    """One connection to the control socket; requests are numbered from 1."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.path = path
        self._next_id = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(path)
        except OSError as e:
            self._sock.close()
            raise CtlError(f"cannot connect to {path}: {e.strerror or e}") from e

    def close(self) -> None:
        self._sock.close()

    def call(self, command: str) -> Any:
        """Sends one command line; returns the reply's ``data`` or raises ``CtlError``."""
        self._next_id += 1
        payload = json.dumps(
            {"id": self._next_id, "command": command, "args": []}
        ).encode()
        try:
            self._sock.sendall(struct.pack(">I", len(payload)) + payload)
            (length,) = struct.unpack(">I", self._read(4))
            if length > MAX_REPLY:
                raise CtlError(f"reply too large: {length} bytes")
            reply = json.loads(self._read(length))
        except (OSError, ValueError) as e:
            raise CtlError(f"communication error: {e}") from e
        if not isinstance(reply, dict):
            raise CtlError("malformed reply")
        if reply.get("status") != "ok":
            raise CtlError(str(reply.get("error", "unknown error")))
        return reply.get("data", {})

    def _read(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                raise CtlError("connection closed by the server")
            buf += chunk
        return bytes(buf)


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    cells = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers).rstrip(), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*r).rstrip() for r in cells]
    return lines


def _beat(v: object) -> str:
    return "n/a" if v is None else f"{v}s ago"


def _workers(data: dict[str, Any]) -> str:
    ws = data.get("workers", [])
    if not ws:
        return "No workers running"
    rows: list[list[object]] = [
        [
            w.get("pid"),
            w.get("age"),
            "yes" if w.get("booted") else "no",
            _beat(w.get("last_heartbeat")),
        ]
        for w in ws
    ]
    return "\n".join(
        [
            *_table(["PID", "AGE", "BOOTED", "LAST_BEAT"], rows),
            "",
            f"Total: {len(ws)} workers",
        ]
    )


def _requests(data: dict[str, Any]) -> str:
    reqs = data.get("requests", [])
    lines = []
    if reqs:
        rows: list[list[object]] = [
            [
                r.get("pid"),
                r.get("method"),
                f"{r.get('age', 0):.3f}s",
                r.get("path", "") + ("..." if r.get("truncated") else ""),
            ]
            for r in reqs
        ]
        lines = _table(["PID", "METHOD", "AGE", "PATH"], rows) + [""]
    lines.append(f"Total: {len(reqs)} requests in progress")
    if data.get("untracked"):
        lines.append(
            f"(and {data['untracked']} more not shown: the per-worker table is full)"
        )
    return "\n".join(lines)


def _stacks(data: dict[str, Any]) -> str:
    out = []
    for w in data.get("workers", []):
        out.append(f"=== worker {w.get('pid')} ===")
        if w.get("error"):
            out.append(f"({w['error']})")
        out.append(str(w.get("stacks", "")).rstrip())
        out.append("")
    return "\n".join(out).rstrip() or "No workers running"


def _stats(data: dict[str, Any]) -> str:
    up = data.get("uptime")
    if isinstance(up, (int, float)):
        h, rest = divmod(int(up), 3600)
        m, s = divmod(rest, 60)
        uptime = f"{h}h {m}m {s}s" if h else f"{m}m {s}s" if m else f"{s}s"
    else:
        uptime = "unknown"
    pairs = [
        ("Uptime", uptime),
        ("PID", data.get("pid")),
        ("Workers current", data.get("workers_current")),
        ("Workers target", data.get("workers_target")),
        ("Workers spawned", data.get("workers_spawned")),
        ("Workers killed", data.get("workers_killed")),
        ("Reloads", data.get("reloads")),
    ]
    return "\n".join(f"{k + ':':<18}{v}" for k, v in pairs)


def _listeners(data: dict[str, Any]) -> str:
    ls = data.get("listeners", [])
    rows: list[list[object]] = [
        [x.get("address"), x.get("type"), x.get("fd")] for x in ls
    ]
    return "\n".join(
        [*_table(["ADDRESS", "TYPE", "FD"], rows), "", f"Total: {len(ls)} listeners"]
    )


def _config(data: dict[str, Any]) -> str:
    return "\n".join(
        f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in sorted(data.items())
    )


def _help(data: dict[str, Any]) -> str:
    cmds: dict[str, str] = data.get("commands", {})
    width = max(map(len, cmds), default=0)
    return "\n".join(
        ["Available commands:", ""]
        + [f"  {c:<{width}}  {d}" for c, d in sorted(cmds.items())]
    )


def _all(data: dict[str, Any]) -> str:
    lines = ["ARBITER (master)", f"  PID: {data.get('arbiter', {}).get('pid')}", ""]
    lines.append(f"WEB WORKERS ({data.get('web_worker_count', 0)})")
    ws = data.get("web_workers", [])
    rows: list[list[object]] = [
        [
            w.get("pid"),
            w.get("age"),
            "yes" if w.get("booted") else "no",
            _beat(w.get("last_heartbeat")),
        ]
        for w in ws
    ]
    lines += (
        ["  " + line for line in _table(["PID", "AGE", "BOOTED", "LAST_BEAT"], rows)]
        if ws
        else ["  (none)"]
    )
    lines += ["", "DIRTY ARBITER"]
    dirty = data.get("dirty_arbiter")
    lines.append(
        f"  PID: {dirty.get('pid')}" if isinstance(dirty, dict) else "  (not running)"
    )
    return "\n".join(lines)


def _dirty(data: dict[str, Any]) -> str:
    if not data.get("enabled"):
        return "Dirty arbiter not running"
    return json.dumps(data, indent=2)


FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "show workers": _workers,
    "show requests": _requests,
    "show stats": _stats,
    "show listeners": _listeners,
    "show config": _config,
    "show all": _all,
    "show dirty": _dirty,
    "help": _help,
}


def render(command: str, data: Any) -> str:
    """A reply as a person reads it: a table for the show commands, else key: value lines."""
    words = command.lower().split()
    key = " ".join(words[:2])
    if isinstance(data, dict):
        if key in FORMATS:
            return FORMATS[key](data)
        if key == "dump stacks":
            return _stacks(data)
        if data.get("success") is False:
            return f"Failed: {data.get('error')}"
        return "\n".join(f"{k}: {v}" for k, v in data.items()) or "OK"
    return json.dumps(data, indent=2)


def run_one(client: Client, command: str, as_json: bool) -> int:
    try:
        data = client.call(command)
    except CtlError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(data, indent=2) if as_json else render(command, data))
    return 0


def interactive(client: Client, as_json: bool) -> int:
    try:
        import readline  # noqa: F401  (line editing for input())
    except ImportError:
        pass
    print(f"Connected to {client.path}. Type 'help' for commands, 'quit' to leave.")
    while True:
        try:
            line = input("ferricorn> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if line.lower() in ("quit", "exit", "q"):
            return 0
        if line:
            run_one(client, line, as_json)


def main(argv: list[str]) -> int:
    """``argv`` is what follows ``ctl``."""
    parser = argparse.ArgumentParser(
        prog="ferricorn ctl",
        description="Drive a running ferricorn (or gunicorn) through its control socket.",
    )
    parser.add_argument(
        "-s", "--socket", default=default_socket(), help="control socket path"
    )
    parser.add_argument(
        "-j", "--json", action="store_true", help="print the reply's data as JSON"
    )
    parser.add_argument(
        "-c", "--command", help="the command, as one string (gunicornc's form)"
    )
    parser.add_argument("words", nargs="*", help="the command, e.g. show workers")
    args = parser.parse_args(argv)
    command = args.command or " ".join(args.words)
    try:
        client = Client(os.path.abspath(args.socket))
    except CtlError as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    try:
        if command.strip():
            return run_one(client, command, args.json)
        return interactive(client, args.json)
    finally:
        client.close()
