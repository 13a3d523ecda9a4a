"""Pieces shared by the ASGI test modules: the events file the apps write, and tag decoding."""

from __future__ import annotations

from pathlib import Path

from apps.asgi_raw import EVENTS_ENV
from helpers_events import EventFile

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


class Events(EventFile):
    """The file an ASGI test app appends to through ``$ASGI_EVENTS``."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path / "asgi-events.jsonl", EVENTS_ENV)
