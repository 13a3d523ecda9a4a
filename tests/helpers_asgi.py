"""Pieces shared by the ASGI test modules: the events file the apps write, and tag decoding."""

from __future__ import annotations

import json
import time
from pathlib import Path

from apps.asgi_raw import EVENTS_ENV

ASGI = ("-k", "asgi")


def untag(value):
    """Inverse of ``apps.asgi_raw.tag``: bytes and tuples come back as bytes and tuples."""
    if isinstance(value, list):
        return [untag(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return value["__bytes__"].encode("latin-1")
        if set(value) == {"__tuple__"}:
            return tuple(untag(v) for v in value["__tuple__"])
        return {k: untag(v) for k, v in value.items()}
    return value


class Events:
    """The JSON-lines file an app appends to through ``$ASGI_EVENTS``."""

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "asgi-events.jsonl"
        self.path.touch()

    @property
    def env(self) -> dict[str, str]:
        return {EVENTS_ENV: str(self.path)}

    def all(self) -> list[dict]:
        text = self.path.read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def named(self, event: str) -> list[dict]:
        return [e for e in self.all() if e["event"] == event]

    def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
        """Wait until ``event`` was recorded ``count`` times; return those records."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.named(event)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"event {event!r} x{count} not recorded in {timeout}s: {self.all()}")
