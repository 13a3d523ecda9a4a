"""Writes the seed corpora in fuzz/corpus/<target>/: a few valid inputs per target, encoded the
way src/fuzz_api/ reads them (a flags byte, then length-prefixed pieces). Re-run after changing
a target's input layout; reproducers of fixed crashes (crash-*, named by libFuzzer) are kept.

    python3 fuzz/make_seeds.py
"""

from __future__ import annotations

import struct
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"


def piece(b: bytes | str) -> bytes:
    """One length-prefixed piece (at most 255 bytes)."""
    raw = b.encode() if isinstance(b, str) else b
    assert len(raw) < 256, raw
    return bytes([len(raw)]) + raw


def uwsgi_packet(pairs: list[tuple[str, str]]) -> bytes:
    block = b""
    for k, v in pairs:
        kb, vb = k.encode(), v.encode()
        block += struct.pack("<H", len(kb)) + kb + struct.pack("<H", len(vb)) + vb
    return b"\x00" + struct.pack("<H", len(block)) + b"\x00" + block


V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

GET = b"GET /a%20b?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n"
POST = (
    b"POST /form HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
)
CHUNKED = (
    b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
    b"Expect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
)
HEADS = [
    GET,
    POST,
    CHUNKED,
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://example.com/p?q HTTP/1.1\r\nHost: example.com\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    b"\r\nGET /x HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nCookie: a=1\r\n\r\n",
    b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Obs: caf\xe9\r\nX_Dropped: 1\r\n\r\n",
]

NGINX_VARS = [
    ("QUERY_STRING", "a=1&b=%20"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("REQUEST_URI", "/p%20q?a=1&b=%20"),
    ("PATH_INFO", "/p q"),
    ("DOCUMENT_ROOT", "/srv/www"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "https"),
    ("HTTPS", "on"),
    ("REMOTE_ADDR", "203.0.113.9"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "example.com"),
    ("HTTP_HOST", "example.com"),
    ("HTTP_USER_AGENT", "curl/8"),
    ("HTTP_COOKIE", "a=1"),
]
UWSGI = [
    uwsgi_packet(NGINX_VARS),
    uwsgi_packet(
        [
            ("REQUEST_METHOD", "POST"),
            ("PATH_INFO", "/app/x"),
            ("SCRIPT_NAME", "/app"),
            ("CONTENT_LENGTH", "3"),
            ("REMOTE_ADDR", "unix:"),
            ("HTTP_CONNECTION", "close"),
            ("X_CUSTOM", "v"),
        ]
    )
    + b"abc",
]


def seeds() -> dict[str, list[bytes]]:
    v2_tcp4 = (
        V2_SIG
        + b"\x21\x11"
        + struct.pack(">H", 16)
        + bytes([192, 0, 2, 1, 10, 0, 0, 1, 0xDC, 0x04, 0x01, 0xBB])
        + b"\x04\x00\x01\x00"
    )
    v2_tcp6 = V2_SIG + b"\x21\x21" + struct.pack(">H", 36) + bytes(range(32)) + b"\x1f\x90\x01\xbb"
    return {
        "proxy_protocol": [
            b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET / HTTP/1.1\r\n",
            b"PROXY TCP6 2001:db8::1 ::1 1 2\r\n",
            b"PROXY UNKNOWN\r\n",
            v2_tcp4 + b"GET",
            v2_tcp6,
            V2_SIG + b"\x20\x00\x00\x00",
            b"GET / HTTP/1.1\r\n",
        ],
        "request_head": [bytes([lim, 3]) + h for lim in (0, 1, 2) for h in HEADS[:4]]
        + [bytes([0, 1]) + h for h in HEADS[4:]],
        "chunked_body": [
            bytes([1, 32, 4]) + b"5\r\nhello\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
            bytes([1, 3, 2]) + b"3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT",
            bytes([0x11, 10, 8, 5]) + b"10\r\n0123456789abcdef\r\n0\r\n\r\n",
            bytes([0, 2, 4, 3]) + b"abcdefNEXT",
        ],
        "uwsgi": [bytes([lim, 5]) + p for lim in (0, 1) for p in UWSGI],
        "h2_head": [
            bytes([0x10])
            + piece("GET")
            + piece("https://example.com/a?b=1")
            + bytes([3])
            + piece("cookie")
            + piece("a=1")
            + piece("cookie")
            + piece("b=2")
            + piece("user-agent")
            + piece("h2load")
            + b"Content-Type: text/plain\r\nConnection: close\r\nX-A: 1\r\n",
            bytes([0])
            + piece("POST")
            + piece("/upload")
            + bytes([2])
            + piece("content-length")
            + piece("3")
            + piece("content-type")
            + piece("application/json"),
            bytes([0x10]) + piece("CONNECT") + piece("example.com:443") + bytes([0]),
        ],
        "forwarded": [
            bytes([0])
            + piece("127.0.0.1, ::1, 10.0.0.0/8, *")
            + piece("{'X-FORWARDED-PROTO': 'https', \"x-scheme\": 'it\\'s'}")
            + piece("X-Forwarded-Proto")
            + piece("https"),
            bytes([1])
            + piece("192.168.1.1/24,fd00::/8")
            + piece("{}")
            + piece("X-Forwarded-Ssl")
            + piece("on")
            + piece("X-Forwarded-Proto")
            + piece("http"),
            # IPv4-mapped entries: a dual-stack listener's peers are compared as IPv4
            bytes([0]) + piece("::ffff:10.0.0.1, ::ffff:192.168.0.0/120") + piece("{}"),
        ],
        "bind": [
            b"127.0.0.1:8000\n[::1]:8000\nunix:/run/app.sock\nfd://3\n:8080\nexample.com",
            b"tcp://0.0.0.0:80\nunix:///tmp/s\nlocalhost:8125\nunix:8125\n[fe80::1]",
        ],
        "settings": [
            piece(name) + bytes([kind]) + value.encode()
            for name, kind, value in [
                ("bind", 0, "127.0.0.1:8000"),
                ("bind", 2, "[::1]:80\nunix:/run/s.sock"),
                ("workers", 0, "0x4"),
                ("timeout", 0, "2_048"),
                ("umask", 0, "0022"),
                ("keepalive", 4, "5"),
                ("forwarded_allow_ips", 0, "127.0.0.1,10.0.0.0/8"),
                ("secure_scheme_headers", 3, "{'X-FORWARDED-PROTO': 'https'}"),
                ("access_log_format", 0, '%(h)s "%(r)s" %(s)s %({x-id}i)-10.3s'),
                ("statsd_host", 0, "[::1]:8125"),
                ("worker_class", 0, "uvicorn.workers.UvicornWorker"),
                ("proxy_protocol", 0, "TRUE"),
                ("http_protocols", 0, "h2, h1"),
                ("ciphers", 0, "ECDHE+AESGCM:!aNULL"),
                ("ssl_version", 0, "TLS_SERVER"),
                ("raw_env", 2, "A=1\nB=2"),
                ("dirty_apps", 2, "app:Model:2"),
                ("graceful_timeout", 0, "0.5"),
                ("loglevel", 0, "WARNING"),
                ("health_path", 0, "/healthz"),
                ("static_map", 2, "/static=/tmp"),
                ("raw_env", 0, '\'a b\' "c\\"d" e\\ f'),
            ]
        ],
        "access_log": [
            piece(spec)
            + bytes([3])
            + piece("GET")
            + piece("/app/a%20b?x=1")
            + bytes([4])
            + piece("User-Agent")
            + piece('curl "x"')
            + piece("Content-Type")
            + piece("text/plain")
            + piece("Authorization")
            + piece("Basic dXNlcjpwYXNz")
            + piece("X-Trace")
            + piece("abc")
            + piece("201 Created")
            + piece(b"\x01\x02\x03")
            for spec in [
                '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',
                "%(U)s %(q)s %(m)5s %(H)-10s %(D)s %(M)s %(L)s %(T)s %(p)s %(B)s",
                "%({user-agent}i)s %({content-type}o)s %({path_info}e)s %({remote_port}e)s 100%%",
            ]
        ],
        "static_path": [
            bytes([2])
            + piece("/static")
            + piece("/static/img/")
            + piece(path)
            + bytes([20])
            + piece("bytes=0-9")
            + piece("br;q=0.9, gzip, *;q=0")
            + piece('W/"1f-2a", "x"')
            + piece("Sun, 06 Nov 1994 08:49:37 GMT")
            + bytes([5])
            + b'"1f-2a"'
            for path in ["/static/css/a.css", "/static/img/x.png", "/static/%2e%2e/x", "/other"]
        ],
        "wsgi_environ": [bytes([f]) + h for f in (0, 2, 8) for h in HEADS[:3]]
        + [bytes([1]) + p for p in UWSGI]
        + [bytes([3]) + UWSGI[0]],
        "asgi_scope": [bytes([f]) + h for f in (0x00, 0x12, 0x28) for h in HEADS[:3]]
        + [bytes([1]) + p for p in UWSGI]
        + [bytes([0x13]) + UWSGI[1]],
    }


def main() -> None:
    for target, inputs in seeds().items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
        for i, data in enumerate(inputs):
            (d / f"seed-{i:02d}").write_bytes(data)
        print(f"{target}: {len(inputs)} seeds")


if __name__ == "__main__":
    main()
