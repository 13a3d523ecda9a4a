"""A small but real Flask application, served as ``flaskapp:app``."""

from __future__ import annotations

import hashlib
from pathlib import Path

from flask import (
    Flask,
    Response,
    jsonify,
    make_response,
    redirect,
    request,
    send_file,
    session,
    stream_with_context,
    url_for,
)

app = Flask(__name__)
app.secret_key = "ferricorn-tests-not-a-secret"


@app.get("/")
def index():
    return "hello from flask"


@app.post("/form")
def form():
    return jsonify(name=request.form["name"], colours=request.form.getlist("colour"))


@app.post("/upload")
def upload():
    f = request.files["document"]
    data = f.read()
    return jsonify(
        filename=f.filename,
        content_type=f.mimetype,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        note=request.form.get("note"),
    )


@app.get("/old-place")
def old_place():
    return redirect(url_for("new_place", ref="old"))


@app.get("/new-place")
def new_place():
    return f"arrived from {request.args.get('ref')}"


@app.get("/cookie/set")
def cookie_set():
    resp = make_response("cookie set")
    resp.set_cookie("flavour", request.args["flavour"], httponly=True)
    return resp


@app.get("/cookie/get")
def cookie_get():
    return jsonify(flavour=request.cookies.get("flavour"))


@app.post("/session/visit")
def session_visit():
    session["visits"] = session.get("visits", 0) + 1
    return jsonify(visits=session["visits"])


@app.post("/json")
def json_echo():
    data = request.get_json()
    return jsonify(received=data, total=sum(data["numbers"]))


@app.get("/stream")
def stream():
    count = int(request.args.get("n", "5"))

    def generate():
        # request is only usable here because of stream_with_context
        who = request.args["who"]
        for i in range(count):
            yield f"line {i} for {who}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@app.get("/source")
def source():
    return send_file(Path(__file__), mimetype="text/x-python")


@app.get("/café")
def cafe():
    return "unicode route"


@app.get("/urls")
def urls():
    return jsonify(
        script_root=request.script_root, path=request.path, url=url_for("new_place")
    )


@app.get("/boom")
def boom():
    raise RuntimeError("flask-boom-marker")
