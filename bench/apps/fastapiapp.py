"""The FastAPI row of bench/run.py (``fastapi_post``), loaded as ``fastapiapp:app`` (ASGI).

``POST /items`` takes a JSON body validated into a pydantic model and answers through a response
model: request parsing, validation and serialisation, as a typical small API endpoint does.
bench/apps/post_item.lua sends the body. Changing this file makes earlier results incomparable.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel, Field

app = FastAPI()


class Item(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    price: float = Field(gt=0)
    quantity: int = Field(ge=1)
    tags: list[str] = []


class Receipt(BaseModel):
    name: str
    quantity: int
    total: float
    tags: list[str]


@app.post("/items", response_model=Receipt)
async def create_item(item: Item) -> Receipt:
    return Receipt(
        name=item.name,
        quantity=item.quantity,
        total=round(item.price * item.quantity, 2),
        tags=item.tags,
    )
