"""The recipes in docs/deploy/ as shipped: each test reads the file (nginx.conf, the systemd
units, the Dockerfile, kubernetes.yaml), runs what it says with only paths, ports and the app
swapped for test ones, and checks the numbers in it agree with ferricorn's behaviour.

Needs nginx and openssl (Debian packages nginx, openssl) and systemd-socket-activate (Debian
package systemd); each test that needs one is skipped, naming the package, when it is missing.
There is no Docker engine or cluster here: the image build and the cluster are not tested, the
commands they would run are.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from conftest import APPS
from helpers_nginx import needs_nginx, nginx  # noqa: F401 - nginx is a fixture
from websockets.sync.client import connect

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"
#: The placeholders the recipes use for the user's project and its socket.
RECIPE_APP = "myproject.wsgi"
RECIPE_SOCKET = "/run/ferricorn/ferricorn.sock"
SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")
OPENSSL = shutil.which("openssl")


class Running:
    """A process started from a recipe's command line, with its stderr collected."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            cwd=APPS,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def log(self) -> str:
        return "\n".join(self.lines)

    def wait_for(
        self, pattern: str, timeout: float = 30.0, count: int = 1
    ) -> re.Match[str]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for line in list(self.lines) if (m := rx.search(line))]
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None and not found:
                time.sleep(0.2)  # let the pump finish
                break
            time.sleep(0.05)
        raise AssertionError(f"no {count}x {pattern!r} in:\n{self.log}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def run() -> Iterator[Any]:
    started: list[Running] = []

    def start(argv: list[str], env: dict[str, str] | None = None) -> Running:
        started.append(Running(argv, env))
        return started[-1]

    yield start
    for r in started:
        r.stop()


def ferricorn_argv(words: list[str], app: str) -> list[str]:
    """A recipe's ferricorn command line, run from this checkout's Python with the test app
    in place of the recipe's."""
    assert Path(words[0]).name == "ferricorn", words
    assert words[-1] == RECIPE_APP, f"the recipe's app comes last: {words}"
    return [sys.executable, "-m", "ferricorn", *words[1:-1], app]


def option(words: list[str], name: str) -> str:
    return words[words.index(name) + 1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slow_request(url: str, results: list[Any], **client: Any) -> threading.Thread:
    """GET url in a thread; the response (or the exception) lands in results."""

    def go() -> None:
        try:
            with httpx.Client(timeout=60, **client) as c:
                results.append(c.get(url))
        except Exception as exc:  # noqa: BLE001 - the test asserts on it
            results.append(exc)

    t = threading.Thread(target=go)
    t.start()
    return t


def stop_with_inflight_request(
    r: Running, sig: signal.Signals, url: str, probe_addr: Any, **client: Any
) -> tuple[float, bytes]:
    """Sends ``sig`` while /slow?seconds=2 runs; returns how long the process took to exit and
    what a probe on a connection opened before the signal got. The slow request must end 200."""
    results: list[Any] = []
    t = slow_request(url + "/slow?seconds=2", results, **client)
    time.sleep(0.5)
    family = socket.AF_UNIX if isinstance(probe_addr, str) else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.settimeout(10)
    probe.connect(probe_addr)
    started = time.monotonic()
    r.proc.send_signal(sig)
    time.sleep(0.5)
    probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = probe.recv(4096)
    probe.close()
    t.join(60)
    r.proc.wait(60)
    elapsed = time.monotonic() - started
    assert isinstance(results[0], httpx.Response), results
    assert results[0].status_code == 200
    assert r.proc.returncode == 0, r.log
    return elapsed, answer


# --- nginx ---------------------------------------------------------------------------------


def render_nginx(tmp_path: Path, sock: Path, http_port: int, https_port: int) -> str:
    """docs/deploy/nginx.conf with temporary ports, socket and certificate."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"]
        + ["-subj", "/CN=example.com", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    text = (DEPLOY / "nginx.conf").read_text()
    for old, new in [
        (f"server unix:{RECIPE_SOCKET} ", f"server unix:{sock} "),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
        ("/etc/ssl/certs/example.com.pem", str(cert)),
        ("/etc/ssl/private/example.com.key", str(key)),
    ]:
        assert text.count(old) == 1, f"the recipe changed: {old!r} is not in it once"
        text = text.replace(old, new)
    return text


def nginx_recipe_command() -> list[str]:
    """The ferricorn command the nginx recipe's header tells the reader to run."""
    for line in (DEPLOY / "nginx.conf").read_text().splitlines():
        if line.startswith("#") and line.lstrip("# ").startswith("ferricorn "):
            return shlex.split(line.lstrip("# "))
    raise AssertionError("docs/deploy/nginx.conf no longer shows the ferricorn command")


@needs_nginx
@pytest.mark.skipif(
    OPENSSL is None, reason="openssl is not installed (Debian package: openssl)"
)
def test_nginx_recipe_proxies_https_uploads_and_websockets(
    run,
    nginx,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
):
    sock = tmp_path / "ferricorn.sock"
    words = nginx_recipe_command()
    assert option(words, "--bind") == f"unix:{RECIPE_SOCKET}"
    words[words.index("--bind") + 1] = f"unix:{sock}"
    server = run(ferricorn_argv(words, "deploy_app:app"))
    server.wait_for(rf"Listening at: unix:{re.escape(str(sock))} ")
    http_port, https_port = free_port(), free_port()
    nginx(
        render_nginx(tmp_path, sock, http_port, https_port), ("127.0.0.1", https_port)
    )
    base = f"https://127.0.0.1:{https_port}"

    with httpx.Client(
        verify=False, timeout=30, headers={"Host": "example.com"}
    ) as client:
        seen = client.get(
            base + "/", headers={"X-Forwarded-For": "203.0.113.66"}
        ).json()
        # the app learns the client's scheme, and the address nginx saw, not a claimed one
        assert seen["scheme"] == "https"
        assert seen["x_forwarded_proto"] == "https"
        assert seen["x_forwarded_for"] == "127.0.0.1"
        assert seen["host"] == "example.com"
        # a body bigger than nginx's 1m default passes client_max_body_size
        body = os.urandom(20 << 20)
        up = client.post(base + "/upload", content=body).json()
        assert up["length"] == len(body)
        assert up["sha256"] == hashlib.sha256(body).hexdigest()
        probe = client.get(base + "/healthz")
        assert (probe.status_code, probe.text) == (200, "OK\n")
    redirect = httpx.get(
        f"http://127.0.0.1:{http_port}/a?b=1",
        headers={"Host": "example.com"},
        timeout=10,
    )
    assert redirect.status_code == 301
    assert redirect.headers["location"] == "https://example.com/a?b=1"

    tls = ssl.create_default_context()
    tls.check_hostname = False
    tls.verify_mode = ssl.CERT_NONE
    with connect(f"wss://127.0.0.1:{https_port}/ws", ssl=tls, open_timeout=10) as ws:
        ws.send("through nginx")
        assert ws.recv(10) == "through nginx"
        ws.send(b"\x00\x01" * 40000)
        assert ws.recv(10) == b"\x00\x01" * 40000


# --- systemd -------------------------------------------------------------------------------


def unit(name: str) -> dict[str, str]:
    """A unit file's Key=Value lines (sections merged; the recipes repeat no key)."""
    values: dict[str, str] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            assert key not in values, f"{name}: {key} twice"
            values[key.strip()] = value.strip()
    return values


def seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)\s*(s|min)?", value)
    assert m, f"a time span this test reads: {value!r}"
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


@pytest.mark.skipif(
    SOCKET_ACTIVATE is None,
    reason="systemd-socket-activate is not installed (Debian package: systemd)",
)
def test_systemd_units_socket_activation_reload_and_graceful_stop(run, tmp_path: Path):
    service, sock_unit = unit("ferricorn.service"), unit("ferricorn.socket")
    assert sock_unit["ListenStream"] == RECIPE_SOCKET, "the nginx recipe points there"
    assert service["Requires"] == "ferricorn.socket"
    words = shlex.split(service["ExecStart"])
    assert not {"-b", "--bind"} & set(words), "the socket comes from systemd"
    graceful = float(option(words, "--graceful-timeout"))
    timeout_stop = seconds(service["TimeoutStopSec"])
    assert graceful < timeout_stop, "systemd must not SIGKILL a graceful stop"
    assert service["KillMode"] == "mixed"

    sock = tmp_path / "ferricorn.sock"
    activate = [SOCKET_ACTIVATE, "-l", str(sock), "-E", "PYTHONUNBUFFERED=1"]
    # debug lines say where the sockets came from; the recipe's own flags stay as they are
    activate += ["-E", "FERRICORN_CMD_ARGS=--log-level debug"]
    r = run([*activate, *ferricorn_argv(words, "deploy_app:wsgi")])
    deadline = time.monotonic() + 10
    while not sock.exists():
        assert time.monotonic() < deadline and r.proc.poll() is None, r.log
        time.sleep(0.05)
    inode = sock.stat().st_ino
    client = httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=30)
    url = "http://localhost"
    # the first connection starts ferricorn (systemd's Accept=no); it waits in the backlog
    assert client.get(url + "/").json()["scheme"] == "http"
    r.wait_for(r"Sockets: 1 inherited from systemd socket activation \(LISTEN_FDS\)")
    pid = r.proc.pid  # systemd-socket-activate execs ferricorn in its place: $MAINPID
    r.wait_for(rf"Listening at: unix:{re.escape(str(sock))} \({pid}\)")
    workers = int(option(words, "--workers"))
    r.wait_for(r"Booting worker with pid", count=workers)
    assert client.get(url + "/healthz").text == "OK\n"

    reload = shlex.split(service["ExecReload"].replace("$MAINPID", str(pid)))
    subprocess.run(reload, check=True, timeout=10)
    r.wait_for(r"Handling signal: hup")
    r.wait_for(r"Booting worker with pid", count=2 * workers)
    assert client.get(url + "/").status_code == 200
    assert sock.stat().st_ino == inode, "HUP keeps systemd's socket"
    assert r.log.count("Listening at:") == 1, "HUP neither rebinds nor re-announces"

    kill = signal.Signals[service["KillSignal"]]
    elapsed, probe = stop_with_inflight_request(
        r, kill, url, str(sock), transport=client._transport
    )
    assert probe.startswith(b"HTTP/1.1 503 "), probe
    assert elapsed < graceful < timeout_stop
    assert sock.exists(), "the socket file belongs to ferricorn.socket and stays"
    client.close()


# --- Docker --------------------------------------------------------------------------------


def dockerfile() -> dict[str, Any]:
    """The instructions the test relies on: ENV (merged), ENTRYPOINT and CMD (exec form),
    STOPSIGNAL, and HEALTHCHECK's command (shell form)."""
    text = (DEPLOY / "Dockerfile").read_text()
    joined = re.sub(
        r"\\\n",
        " ",
        "\n".join(
            line for line in text.splitlines() if not line.lstrip().startswith("#")
        ),
    )
    out: dict[str, Any] = {"ENV": {}}
    for line in joined.splitlines():
        instruction, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        if instruction == "ENV":
            out["ENV"].update(word.split("=", 1) for word in shlex.split(rest))
        elif instruction in ("ENTRYPOINT", "CMD"):
            out[instruction] = json.loads(rest)
        elif instruction == "STOPSIGNAL":
            out[instruction] = rest
        elif instruction == "HEALTHCHECK":
            out[instruction] = rest.split(" CMD ", 1)[1]
    return out


def run_healthcheck(command: str, port: int) -> int:
    """The HEALTHCHECK command as Docker runs it (sh -c, in the container's env)."""
    assert command.startswith("python ")
    command = shlex.quote(sys.executable) + command[len("python") :]
    env = dict(os.environ, PORT=str(port))
    return subprocess.run(
        ["sh", "-c", command], check=False, env=env, capture_output=True, timeout=15
    ).returncode


def test_dockerfile_command_binds_port_uses_web_concurrency_and_stops_on_stopsignal(
    run,
):
    d = dockerfile()
    words = d["ENTRYPOINT"] + d["CMD"]
    assert not {"-b", "--bind", "-w", "--workers"} & set(words), (
        "PORT and WEB_CONCURRENCY decide"
    )
    health_path = option(words, "--health-path")
    assert f"/{health_path.strip('/')}'" in d["HEALTHCHECK"], (
        "the healthcheck probes --health-path"
    )
    assert d["STOPSIGNAL"] == "SIGTERM", "ferricorn's graceful stop"
    graceful = float(option(words, "--graceful-timeout"))
    assert graceful < 10, "docker stop's default timeout is 10 s"

    port = free_port()
    env = {**os.environ, **d["ENV"], "PORT": str(port)}
    r = run(ferricorn_argv(words, "deploy_app:wsgi"), env)
    r.wait_for(rf"Listening at: http://0\.0\.0\.0:{port} ")
    concurrency = int(d["ENV"]["WEB_CONCURRENCY"])
    r.wait_for(rf"Using worker: sync \({concurrency} workers, ")
    r.wait_for(r"Booting worker with pid", count=concurrency)
    url = f"http://127.0.0.1:{port}"
    assert httpx.get(url + "/", timeout=30).status_code == 200
    assert run_healthcheck(d["HEALTHCHECK"], port) == 0

    sig = signal.Signals[d["STOPSIGNAL"]]
    elapsed, probe = stop_with_inflight_request(r, sig, url, ("127.0.0.1", port))
    assert probe.startswith(b"HTTP/1.1 503 "), probe
    assert elapsed < graceful
    assert run_healthcheck(d["HEALTHCHECK"], port) != 0, "a stopped server is unhealthy"


# --- Kubernetes ----------------------------------------------------------------------------


def test_kubernetes_probes_and_grace_period_agree_with_ferricorn(run):
    docs = list(yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    service = next(d for d in docs if d["kind"] == "Service")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = container["args"]
    env = {e["name"]: e["value"] for e in container["env"]}
    (port,) = container["ports"]

    # numbers that must agree with each other
    assert port["containerPort"] == int(env["PORT"]), "ferricorn binds 0.0.0.0:$PORT"
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]
    health_path = option(args, "--health-path")
    graceful = float(option(args, "--graceful-timeout"))
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert (get["path"], get["port"]) == (health_path, port["name"]), probe
    live = container["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > graceful, (
        "liveness must not kill a pod that is draining"
    )
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    grace = pod["terminationGracePeriodSeconds"]
    assert float(pre_stop[1]) + graceful < grace, (
        "preStop + graceful stop fit the grace period"
    )
    assert container["resources"]["requests"]["cpu"] == env["WEB_CONCURRENCY"]
    assert "memory" in container["resources"]["limits"]

    # the container's command, run here: ENTRYPOINT ferricorn + these args
    local_port = free_port()
    proc_env = {**os.environ, **env, "PORT": str(local_port)}
    r = run(ferricorn_argv(["ferricorn", *args], "deploy_app:wsgi"), proc_env)
    r.wait_for(rf"Listening at: http://0\.0\.0\.0:{local_port} ")
    r.wait_for(r"Booting worker with pid", count=int(env["WEB_CONCURRENCY"]))
    url = f"http://127.0.0.1:{local_port}"
    ready = httpx.get(url + health_path, timeout=30)
    assert (ready.status_code, ready.text) == (200, "OK\n")
    elapsed, probe = stop_with_inflight_request(
        r, signal.SIGTERM, url, ("127.0.0.1", local_port)
    )
    assert probe.startswith(b"HTTP/1.1 503 "), "a draining pod fails its probes"
    assert elapsed < graceful < grace
