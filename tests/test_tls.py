"""TLS termination (``--certfile``/``--keyfile``, rustls): real clients over https and wss.

Each test makes its own throwaway PKI with ``cryptography``: a CA, a server certificate for
localhost / 127.0.0.1 and a client certificate, all signed by that CA; clients verify the server
against the CA, as production clients would.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import APPS
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

WSGI = "tls_apps:wsgi_app"
ASGI = "tls_apps:asgi_app"


@dataclass
class Pki:
    dir: Path
    ca: Path
    cert: Path
    key: Path
    client_cert: Path
    client_key: Path

    def tls_args(self) -> list[str]:
        return ["--certfile", str(self.cert), "--keyfile", str(self.key)]

    def context(self, client_cert: bool = False) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if client_cert:
            ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _leaf(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    cn: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return cert, key


def make_pki(dir: Path) -> Pki:
    dir.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("ferricorn test CA"))
        .issuer_name(_name("ferricorn test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server, server_key = _leaf(
        ca_cert,
        ca_key,
        "localhost",
        [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        ExtendedKeyUsageOID.SERVER_AUTH,
    )
    client, client_key = _leaf(
        ca_cert,
        ca_key,
        "test client",
        [x509.DNSName("client.example")],
        ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    pki = Pki(
        dir,
        dir / "ca.pem",
        dir / "server.pem",
        dir / "server.key",
        dir / "client.pem",
        dir / "client.key",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.key, server_key)
    pki.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(pki.client_key, client_key)
    return pki


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def https(server) -> str:
    return f"https://{server.host}:{server.port}"


def served_cert(server, pki: Pki) -> bytes:
    """The DER certificate the server presents (verified against the test CA)."""
    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        pki.context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        assert der is not None
        return der


# --- basics -----------------------------------------------------------------------------------


def test_httpx_gets_https_with_a_verified_certificate_and_https_scheme(serve, pki):
    server = serve(WSGI, *pki.tls_args())
    assert "Listening at: https://127.0.0.1:" in server.log
    r = httpx.get(https(server) + "/scheme", verify=pki.context())
    assert r.status_code == 200
    assert r.json()["scheme"] == "https"


def test_curl_with_cacert(serve, pki):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install curl)")
    server = serve(WSGI, *pki.tls_args())
    out = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki.ca), https(server) + "/"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"hello over tls\n"


def test_keep_alive_carries_several_requests_on_one_tls_connection(serve, pki):
    server = serve(WSGI, *pki.tls_args())
    conn = http.client.HTTPSConnection(
        server.host, server.port, context=pki.context(), timeout=10
    )
    try:
        seen = set()
        for _ in range(5):
            conn.request("GET", "/scheme")
            r = conn.getresponse()
            assert r.status == 200
            assert json.loads(r.read())["scheme"] == "https"
            assert conn.sock is not None
            seen.add(id(conn.sock))
        assert len(seen) == 1
    finally:
        conn.close()


def test_megabytes_up_and_down_arrive_intact(serve, pki):
    server = serve(WSGI, *pki.tls_args())
    upload = random.Random(5).randbytes(6 * 1024 * 1024 + 13)
    with httpx.Client(verify=pki.context(), timeout=60) as client:
        r = client.post(https(server) + "/digest", content=upload)
        assert r.json() == {
            "length": len(upload),
            "sha256": hashlib.sha256(upload).hexdigest(),
        }
        size = 5 * 1024 * 1024 + 7
        r = client.get(https(server) + "/download", params={"size": size, "seed": 9})
        assert r.status_code == 200
        expect = random.Random(9).randbytes(size)
        assert (
            hashlib.sha256(r.content).hexdigest() == hashlib.sha256(expect).hexdigest()
        )


def test_static_files_and_file_wrapper_go_out_encrypted_with_ranges(
    serve, pki, tmp_path
):
    static = tmp_path / "static"
    static.mkdir()
    data = random.Random(3).randbytes(3 * 1024 * 1024 + 5)
    (static / "big.bin").write_bytes(data)
    server = serve(WSGI, *pki.tls_args(), "--static", f"/static={static}")
    with httpx.Client(verify=pki.context(), timeout=60) as client:
        r = client.get(https(server) + "/static/big.bin")
        assert r.status_code == 200
        assert r.content == data
        r = client.get(
            https(server) + "/static/big.bin", headers={"Range": "bytes=1000-1999"}
        )
        assert r.status_code == 206
        assert r.content == data[1000:2000]
        r = client.get(
            https(server) + "/file", params={"path": str(static / "big.bin")}
        )
        assert r.status_code == 200
        assert r.content == data


def test_a_unix_socket_listener_serves_tls_too(serve, pki, tmp_path):
    path = tmp_path / "tls.sock"
    serve(WSGI, *pki.tls_args(), "-b", f"unix:{path}")
    transport = httpx.HTTPTransport(uds=str(path), verify=pki.context())
    with httpx.Client(transport=transport) as client:
        r = client.get("https://localhost/scheme")
    assert r.json()["scheme"] == "https"


def test_a_proxy_header_before_the_handshake_names_the_client(serve, pki):
    server = serve(WSGI, *pki.tls_args(), "--proxy-protocol", "v1")
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        raw.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 443\r\n")
        with pki.context().wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(
                b"GET /scheme HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
            got = b""
            while chunk := tls.recv(65536):
                got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), got
    assert json.loads(body) == {"scheme": "https", "remote": "203.0.113.7"}


# --- ASGI ---------------------------------------------------------------------------------


def test_asgi_scope_says_https_and_carries_the_tls_extension(serve, pki):
    server = serve(ASGI, *pki.tls_args())
    r = httpx.get(https(server) + "/", verify=pki.context())
    body = r.json()
    assert body["scheme"] == "https"
    tls = body["tls"]
    assert tls["tls_version"] in (0x0303, 0x0304)
    assert isinstance(tls["cipher_suite"], int) and tls["cipher_suite"] > 0
    assert tls["client_cert_chain"] == []


def test_websocket_over_wss_echoes_and_sees_wss(serve, pki):
    from websockets.sync.client import connect

    server = serve(ASGI, *pki.tls_args())
    uri = f"wss://{server.host}:{server.port}/ws"
    with connect(uri, ssl=pki.context(), open_timeout=10) as ws:
        assert ws.recv(timeout=10) == "wss"
        ws.send("ping over tls")
        assert ws.recv(timeout=10) == "ping over tls"
        blob = random.Random(1).randbytes(200_000)
        ws.send(blob)
        assert ws.recv(timeout=10) == blob


# --- client certificates ------------------------------------------------------------------


def _client_args(pki: Pki, reqs: int) -> list[str]:
    return [*pki.tls_args(), "--ca-certs", str(pki.ca), "--cert-reqs", str(reqs)]


def test_required_client_certificates_admit_only_clients_with_one(serve, pki):
    server = serve(ASGI, *_client_args(pki, 2))
    r = httpx.get(https(server) + "/", verify=pki.context(client_cert=True))
    assert r.status_code == 200
    # leaf first; OpenSSL also sends the CA it found in its trust store
    chain = r.json()["tls"]["client_cert_chain"]
    assert chain[0].strip() == pki.client_cert.read_text().strip()
    with pytest.raises(
        (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)
    ):
        httpx.get(https(server) + "/", verify=pki.context())
    assert server.proc.poll() is None


def test_optional_client_certificates_admit_both(serve, pki):
    server = serve(ASGI, *_client_args(pki, 1))
    with_cert = httpx.get(https(server) + "/", verify=pki.context(client_cert=True))
    assert len(with_cert.json()["tls"]["client_cert_chain"]) >= 1
    without = httpx.get(https(server) + "/", verify=pki.context())
    assert without.json()["tls"]["client_cert_chain"] == []


# --- failures -----------------------------------------------------------------------------


def test_plain_http_to_the_tls_port_is_refused_quickly_and_the_worker_lives_on(
    serve, pki
):
    server = serve(WSGI, *pki.tls_args())
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        started = time.monotonic()
        got = b""
        try:
            while chunk := s.recv(4096):
                got += chunk
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 4
    # no HTTP answer: a TLS alert (content type 21) or nothing
    assert not got.startswith(b"HTTP/"), got
    r = httpx.get(https(server) + "/scheme", verify=pki.context())
    assert r.status_code == 200
    assert "WORKER TIMEOUT" not in server.log and "exited" not in server.log


def _run_expecting_failure(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ferricorn", "-b", "127.0.0.1:0", *args, WSGI],
        cwd=APPS,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_an_invalid_certfile_stops_the_server_before_it_binds(pki):
    pki.cert.write_text("not a certificate\n")
    out = _run_expecting_failure(*pki.tls_args())
    assert out.returncode != 0
    assert "--certfile / certfile" in out.stderr, out.stderr
    assert "Listening at" not in out.stderr


def test_a_key_that_does_not_match_stops_the_server_before_it_binds(pki):
    out = _run_expecting_failure(
        "--certfile", str(pki.cert), "--keyfile", str(pki.client_key)
    )
    assert out.returncode != 0
    assert "--keyfile / keyfile" in out.stderr, out.stderr
    assert "does not belong" in out.stderr
    assert "Listening at" not in out.stderr


def test_old_protocol_versions_and_unknown_ciphers_are_refused_by_name(pki):
    out = _run_expecting_failure(*pki.tls_args(), "--ssl-version", "TLSv1_1")
    assert out.returncode != 0
    assert "--ssl-version" in out.stderr, out.stderr
    out = _run_expecting_failure(*pki.tls_args(), "--ciphers", "ECDHE+AESGCM:WHATEVER")
    assert out.returncode != 0
    assert "--ciphers" in out.stderr and "WHATEVER" in out.stderr, out.stderr


def test_tls13_only_and_a_cipher_list_are_honoured(serve, pki):
    server = serve(WSGI, *pki.tls_args(), "--ssl-version", "TLSv1_3")
    ctx = pki.context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises((httpx.ConnectError, httpx.ReadError)):
        httpx.get(https(server) + "/", verify=ctx)
    r = httpx.get(https(server) + "/", verify=pki.context())
    assert r.status_code == 200
    # gunicorn's docs point at OWASP's lists; with TLS 1.2 forced one of its suites is used
    owasp = "ECDHE-ECDSA-AES256-GCM-SHA384:DHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"
    server = serve(WSGI, *pki.tls_args(), "--ciphers", owasp)
    with socket.create_connection((server.host, server.port), timeout=10) as raw:
        ctx = pki.context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            cipher = tls.cipher()
            assert cipher is not None
            assert cipher[0] in (
                "ECDHE-ECDSA-AES256-GCM-SHA384",
                "ECDHE-ECDSA-CHACHA20-POLY1305",
            )


def test_an_ssl_context_hook_is_warned_about(serve, pki, tmp_path):
    conf = tmp_path / "conf.py"
    conf.write_text(
        "def ssl_context(config, default_ssl_context_factory):\n    return None\n"
    )
    server = serve(WSGI, *pki.tls_args(), "-c", str(conf))
    server.wait_for_log(r"ssl_context hook has no effect")


# --- renewal ------------------------------------------------------------------------------


def test_hup_after_replacing_the_files_serves_the_new_certificate(serve, pki, tmp_path):
    server = serve(WSGI, *pki.tls_args(), "-w", "1")
    old = served_cert(server, pki)
    renewed = make_pki(tmp_path / "renewed")
    # a new CA signed the renewed certificate: from now on the client trusts only that one
    os.replace(renewed.cert, pki.cert)
    os.replace(renewed.key, pki.key)
    os.replace(renewed.ca, pki.ca)
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_for_log(r"Handling signal: hup")
    deadline = time.monotonic() + 30
    new = old
    while time.monotonic() < deadline:
        try:
            new = served_cert(server, pki)
        except ssl.SSLError:
            new = old  # an old worker, still serving the old certificate
        if new != old:
            break
        time.sleep(0.2)
    assert new != old
    assert new == ssl.PEM_cert_to_DER_cert(pki.cert.read_text())
    assert server.proc.poll() is None


def test_hup_with_a_broken_certificate_keeps_the_running_workers(serve, pki):
    server = serve(WSGI, *pki.tls_args(), "-w", "1")
    before = served_cert(server, pki)
    pki.cert.write_text("truncated by a failed renewal\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    server.wait_for_log(r"cannot set up TLS: --certfile / certfile", timeout=30)
    assert served_cert(server, pki) == before
    assert server.proc.poll() is None


def test_alpn_selects_http11_when_the_client_offers_h2_too(serve, pki):
    server = serve(WSGI, *pki.tls_args())
    ctx = pki.context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection((server.host, server.port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.selected_alpn_protocol() == "http/1.1"


@pytest.mark.parametrize("app", [WSGI, ASGI])
def test_alpn_h2_serves_http2_over_tls_when_http_protocols_prefers_it(serve, pki, app):
    server = serve(app, *pki.tls_args(), "--http-protocols", "h2,h1")
    ctx = pki.context()
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with httpx.Client(http2=True, verify=ctx) as client:
        replies = [client.get(https(server) + "/scheme") for _ in range(3)]
    for r in replies:
        assert r.status_code == 200
        assert r.http_version == "HTTP/2"
        assert r.json()["scheme"] == "https"
    # a client that only speaks HTTP/1.1 is still served on the same port
    r = httpx.get(https(server) + "/scheme", verify=pki.context())
    assert r.http_version == "HTTP/1.1" and r.status_code == 200
