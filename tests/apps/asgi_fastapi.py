"""A real FastAPI app for tests/test_asgi_frameworks.py.

Background tasks append to the file named by ``$ASGI_BG_FILE``.
"""

from __future__ import annotations

import asyncio
import os

from fastapi import (
    BackgroundTasks,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field

app = FastAPI()


class Item(BaseModel):
    name: str = Field(min_length=1)
    price: float = Field(gt=0)
    tags: list[str] = []


def api_key(x_api_key: str = Header(default="")) -> str:
    """A dependency: the caller's key, or 401."""
    if x_api_key != "sesame":
        raise HTTPException(status_code=401, detail="bad api key")
    return x_api_key


@app.get("/")
async def index():
    return {"hello": "fastapi"}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None, limit: int = 10):
    return {"item_id": item_id, "q": q, "limit": limit}


@app.post("/items", status_code=201)
async def create_item(item: Item):
    return {"created": item.model_dump(), "total_with_tax": round(item.price * 1.2, 2)}


@app.get("/secret")
async def secret(key: str = Depends(api_key)):
    return {"key": key}


@app.get("/sync")
def sync_endpoint():
    # a plain def endpoint runs in Starlette's thread pool
    return {"sync": True}


@app.get("/stream")
async def stream(n: int = 5):
    async def lines():
        for i in range(n):
            yield f"line {i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/forever")
async def forever():
    """An endless stream (think server-sent events) that notes when it is closed."""

    async def ticks():
        try:
            while True:
                yield b"tick\n"
                await asyncio.sleep(0.01)
        finally:
            write_marker("stream-closed")

    return StreamingResponse(ticks(), media_type="text/plain")


def write_marker(text: str) -> None:
    with open(os.environ["ASGI_BG_FILE"], "a", encoding="utf-8") as f:
        f.write(text + "\n")


@app.post("/background", status_code=202)
async def background(word: str, tasks: BackgroundTasks):
    tasks.add_task(write_marker, f"done:{word}")
    return {"queued": word}


@app.get("/boom")
async def boom():
    raise RuntimeError("fastapi endpoint exploded")


@app.get("/text", response_class=PlainTextResponse)
async def text():
    return "plain ünïcode"


@app.websocket("/ws/chat/{room}")
async def chat(websocket: WebSocket, room: str, name: str = "anon"):
    await websocket.accept()
    await websocket.send_json({"joined": room, "name": name})
    try:
        while True:
            data = await websocket.receive_text()
            if data == "bye":
                await websocket.close(code=4000, reason="see you")
                return
            await websocket.send_text(f"{name}@{room}: {data}")
    except WebSocketDisconnect:
        return


@app.websocket("/ws/bytes")
async def ws_bytes(websocket: WebSocket):
    await websocket.accept()
    try:
        while True:
            data = await websocket.receive_bytes()
            await websocket.send_bytes(data[::-1])
    except WebSocketDisconnect:
        return
