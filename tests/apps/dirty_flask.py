"""A Flask app calling a dirty app (tests/test_dirty.py)."""

from __future__ import annotations

from ferricorn.dirty import DirtyAppError, get_dirty_client
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/echo")
def echo():
    data = request.get_json()
    result = get_dirty_client().execute(
        "dirty_apps:Counter", "echo", *data["args"], **data["kwargs"]
    )
    return jsonify(result)


@app.get("/incr")
def incr():
    return jsonify(get_dirty_client().execute("dirty_apps:Counter", "incr"))


@app.get("/fail")
def fail():
    try:
        get_dirty_client().execute("dirty_apps:Counter", "fail", "flask saw it")
    except DirtyAppError as e:
        return jsonify(
            {"error": type(e).__name__, "message": e.message, "action": e.action}
        ), 502
    return "unreachable", 500
