"""The Flask rows of bench/run.py: one WSGI app, two routes, loaded as ``flaskapp:app``.

- ``GET /json`` (row ``flask_json``): a small dict through ``flask.jsonify``.
- ``GET /page`` (row ``flask_jinja``): ``templates/page.html`` rendered with 20 items.

What a typical small Flask service does per request, nothing more: the rows measure the server
plus Flask's own routing, request/response objects and Jinja, the same for every server. Changing
this file makes earlier results incomparable (see bench/README.md).
"""

from __future__ import annotations

from flask import Flask, jsonify, render_template

app = Flask(__name__)

# Twenty rows, as a list view of a real page would show; built once, rendered per request.
ITEMS = [
    {"id": i, "name": f"Item number {i}", "price": round(1.25 * i + 3, 2), "in_stock": i % 3 != 0}
    for i in range(1, 21)
]


@app.get("/json")
def json_route():
    return jsonify(message="Hello, World!")


@app.get("/page")
def page_route():
    return render_template("page.html", title="Items", items=ITEMS)
