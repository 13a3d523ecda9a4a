"""The dirty socket's wire format, shared by the client, the dirty worker and the stash.

One call is one connection: the client sends a frame (4-byte big-endian length, then a
pickle of ``(app_path, action, args, kwargs)``); the dirty worker that accepts it answers
``ACK`` + its pid (4 bytes) as soon as it starts the call, then its reply frames (below). The ack tells the client whether the call was
started: a worker dying before it means the call never ran (retried), after it means it may
have partly run (reported, never retried).

Reply frames are ``("ok", result)``, ``("err", error_dict)``, or for an action returning a
generator, ``("chunk", item)`` frames then ``("end", None)`` (or ``err``).
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
_LEN = struct.Struct(">I")


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


def ack(pid: int | None = None) -> bytes:
    return ACK + _LEN.pack(pid if pid is not None else os.getpid())


def parse_ack(data: bytes) -> int:
    if len(data) != ACK_SIZE or data[:1] != ACK:
        raise ValueError("bad acknowledgement")
    return int(_LEN.unpack(data[1:])[0])


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Reads exactly ``n`` bytes; fewer only at EOF."""
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def recv_frame(sock: socket.socket) -> Any:
    """One frame's object; ``EOFError`` if the peer closed first."""
    head = recv_exact(sock, 4)
    if len(head) < 4:
        raise EOFError
    (size,) = _LEN.unpack(head)
    data = recv_exact(sock, size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)
