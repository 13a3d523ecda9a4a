"""The dirty socket's wire format, shared by the client, the dirty worker and the stash.

One call is one connection: the client sends a frame (4-byte big-endian length, then a
pickle of ``(app_path, action, args, kwargs)``); the dirty worker that accepts it answers
``ACK`` + its pid (4 bytes) as soon as it starts the call, then its reply frames (below).
The ack tells the client whether the call was started: a worker dying before it means the
call never ran (retried), after it means it may have partly run (reported, never retried).

Reply frames are ``("ok", result)``, ``("err", error_dict)``, or for an action returning a
generator, ``("chunk", item)`` frames then ``("end", None)`` (or ``err``).

Reading bytes is apart from making sense of them (``started_by``, ``frame_size``,
``frame_object``), so that the blocking client, the asyncio client and the servers share one
reading of the format.
"""

from __future__ import annotations

import os
import pickle
import socket
import struct
from typing import Any

ACK = b"A"
ACK_SIZE = 5
MAX_FRAME = 1 << 31
HEAD_SIZE = 4  # a frame's big-endian length
_LEN = struct.Struct(">I")


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


def request(app_path: str, action: str, args: Any, kwargs: Any) -> bytes:
    """The frame a client sends to start one call."""
    return frame((app_path, action, args, kwargs))


def ack(pid: int | None = None) -> bytes:
    return ACK + _LEN.pack(pid if pid is not None else os.getpid())


def parse_ack(data: bytes) -> int:
    if len(data) != ACK_SIZE or data[:1] != ACK:
        raise ValueError("bad acknowledgement")
    return int(_LEN.unpack(data[1:])[0])


def started_by(head: bytes) -> int | None:
    """The pid in the ack a client read (``ACK_SIZE`` bytes asked, fewer at EOF); ``None`` when
    the worker went away before acking, i.e. before starting the call; ``ValueError`` when the
    bytes are not an ack."""
    if len(head) < ACK_SIZE:
        return None
    return parse_ack(head)


def frame_size(head: bytes) -> int:
    """The payload size a frame's ``HEAD_SIZE``-byte head announces; ``EOFError`` if the peer
    closed before sending all of it."""
    if len(head) < HEAD_SIZE:
        raise EOFError
    return int(_LEN.unpack(head)[0])


def frame_object(data: bytes, size: int) -> Any:
    """The object in a frame's payload (``size`` bytes asked, fewer at EOF)."""
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Reads exactly ``n`` bytes; fewer only at EOF."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> Any:
    """One frame's object from a blocking socket; ``EOFError`` if the peer closed first."""
    size = frame_size(recv_exact(sock, HEAD_SIZE))
    return frame_object(recv_exact(sock, size), size)
