"""The JSON-lines event file test apps append to (one short O_APPEND write per event, from any
worker or thread), read back by the tests. Each app family names the file through its own
environment variable (``$ASGI_EVENTS``, ``$FAULT_APPS_EVENTS``)."""

from __future__ import annotations

import json
import time
from pathlib import Path


class EventFile:
    def __init__(self, path: Path, env_name: str) -> None:
        self.path = path
        self.env_name = env_name
        path.touch()

    @property
    def env(self) -> dict[str, str]:
        return {self.env_name: str(self.path)}

    def all(self) -> list[dict]:
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # the last line, caught while a worker writes it
        return found

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
