"""A Starlette app whose lifespan yields state that requests read (``request.state``).

Lifespan events are appended to ``$ASGI_EVENTS`` (as in asgi_raw.record).
"""

from __future__ import annotations

import contextlib
import os

from asgi_raw import record
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


class Pool:
    """Stands for a connection pool opened at startup and closed at shutdown."""

    def __init__(self) -> None:
        self.open = True
        self.uses = 0


@contextlib.asynccontextmanager
async def lifespan(app):
    pool = Pool()
    record("starlette.startup")
    yield {"pool": pool, "x": "from-lifespan", "pid": os.getpid()}
    pool.open = False
    record("starlette.shutdown", uses=pool.uses)


async def state(request: Request) -> JSONResponse:
    pool = request.state.pool
    pool.uses += 1
    return JSONResponse(
        {
            "x": request.state.x,
            "pool_open": pool.open,
            "uses": pool.uses,
            "same_worker": request.state.pid == os.getpid(),
        }
    )


app = Starlette(routes=[Route("/state", state)], lifespan=lifespan)
