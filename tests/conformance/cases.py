"""Our HTTP/1.1 conformance and request-smuggling corpus, written from RFC 9112 and RFC 9110.

Every :class:`Case` is data: the raw bytes a client sends on one fresh connection, the RFC
section it comes from, and what must follow, in order:

- a :class:`Seen` per request that must reach the app, exactly as the app must receive it
  (method, target, headers in arrival order as the app sees them, body), answered 200 by the app;
- an ``int`` for an error status the server itself must answer (then the connection closes and
  nothing after it is answered: a smuggled request never becomes a request).

``closed`` says whether the server must close the connection after the last response; when it
must not, the test sends one more request on the same connection, which proves the server
framed everything before it exactly where the RFC puts the message boundaries.

Written from the RFCs (gunicorn's own corpus is replayed separately by
tests/test_gunicorn_corpus.py; nothing here is copied from it). Where the RFC leaves a choice,
the choice is in ``tests/conformance/README.md`` and the case's ``note``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

HOST = "example.com"

# Server command lines the cases run against (besides the default one).
SMALL_LIMITS = (
    "--limit-request-line",
    "100",
    "--limit-request-fields",
    "5",
    "--limit-request-field_size",
    "50",
    "--limit-request-body",
    "64",
)
NO_LINE_OR_FIELD_COUNT_LIMIT = ("--limit-request-line", "0", "--limit-request-fields", "0")
# gunicorn's switches that relax its parser. ferricorn accepts them (so gunicorn configs load)
# and stays strict: the cases below pin that.
GUNICORN_LENIENT = (
    "--permit-obsolete-folding",
    "--strip-header-spaces",
    "--casefold-http-method",
    "--permit-unconventional-http-method",
    "--permit-unconventional-http-version",
)


def split_target(target: str) -> tuple[str, str]:
    """(path still percent-encoded, query) of a request-target per its form (RFC 9112 §3.2)."""
    if target == "*":
        return "*", ""
    if target.startswith("/"):
        rest = target
    elif "://" in target:
        after = target.split("://", 1)[1]
        cut = min((i for i in (after.find(c) for c in "/?#") if i >= 0), default=len(after))
        rest = after[cut:]
    else:  # authority-form
        return "", ""
    rest = rest.split("#", 1)[0]
    path, _, query = rest.partition("?")
    return path or "/", query


@dataclass(frozen=True)
class Seen:
    """One request as the app must receive it."""

    method: str = "GET"
    target: str = "/"
    headers: tuple[tuple[str, str], ...] = (("Host", HOST),)
    body: bytes = b""
    version: str = "1.1"

    @property
    def raw_path(self) -> str:
        return split_target(self.target)[0]

    @property
    def path(self) -> bytes:
        """The percent-decoded path (PATH_INFO as latin-1, the scope's ``path`` as UTF-8)."""
        return unquote_to_bytes(self.raw_path)

    @property
    def query(self) -> str:
        return split_target(self.target)[1]


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    rfc: str
    wire: bytes
    expect: tuple[Seen | int, ...]
    closed: bool
    args: tuple[str, ...] = ()
    # the error is inside the body: the app may have been called, but never reads a whole body
    in_body: bool = False
    note: str = ""
    seen: tuple[Seen, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seen", tuple(e for e in self.expect if isinstance(e, Seen)))

    @property
    def valid(self) -> bool:
        return all(isinstance(e, Seen) for e in self.expect)


CASES: list[Case] = []


def _enc(part: str | bytes) -> bytes:
    return part.encode("latin-1") if isinstance(part, str) else part


def msg(line: str | bytes, *fields: str | bytes, body: bytes = b"", host: bool = True) -> bytes:
    """A request: ``line``, ``Host: example.com`` (unless ``host=False``), ``fields``, body."""
    head = [_enc(line)] + ([f"Host: {HOST}".encode()] if host else []) + [_enc(f) for f in fields]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def seen(
    method: str = "GET",
    target: str = "/",
    *fields: tuple[str, str],
    body: bytes = b"",
    version: str = "1.1",
    host: bool = True,
) -> Seen:
    headers = ((("Host", HOST),) if host else ()) + tuple(fields)
    return Seen(method, target, headers, body, version)


def chunked(*parts: bytes, trailer: bytes = b"") -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n" + trailer + b"\r\n"


def valid(
    family: str,
    rfc: str,
    name: str,
    wire: bytes,
    *expect: Seen,
    closed: bool = False,
    args: tuple[str, ...] = (),
    note: str = "",
) -> None:
    CASES.append(Case(name, family, rfc, wire, expect, closed, args, note=note))


def invalid(
    family: str,
    rfc: str,
    name: str,
    wire: bytes,
    status: int,
    *,
    served: tuple[Seen, ...] = (),
    in_body: bool = False,
    args: tuple[str, ...] = (),
    note: str = "",
) -> None:
    CASES.append(Case(name, family, rfc, wire, (*served, status), True, args, in_body, note))


TE = ("Transfer-Encoding", "chunked")


# == request line ============================================================================
F = "request-line"

valid(F, "9112 §3", "get_origin_form", msg("GET / HTTP/1.1"), seen())
valid(
    F,
    "9112 §3.2.1",
    "path_and_query",
    msg("GET /a/b?x=1&y=2 HTTP/1.1"),
    seen("GET", "/a/b?x=1&y=2"),
)
valid(
    F,
    "9112 §3.2.1",
    "percent_encoded_path_is_decoded_query_is_not",
    msg("GET /caf%C3%A9%20x%2Fy?q=%20&r=%C3%A9 HTTP/1.1"),
    seen("GET", "/caf%C3%A9%20x%2Fy?q=%20&r=%C3%A9"),
)
valid(F, "9112 §3.2.1", "empty_query", msg("GET /p? HTTP/1.1"), seen("GET", "/p?"))
valid(F, "9112 §3.2.1", "double_slash_path", msg("GET //a//b HTTP/1.1"), seen("GET", "//a//b"))
valid(
    F,
    "9112 §3.2.1",
    "fragment_kept_in_raw_target_only",
    msg("GET /p?q=1#frag HTTP/1.1"),
    seen("GET", "/p?q=1#frag"),
    note="not in the request-target grammar; accepted as gunicorn does, never in path or query",
)
for m in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE"):
    valid(F, "9110 §9.3", f"method_{m.lower()}", msg(f"{m} /m HTTP/1.1"), seen(m, "/m"))
valid(F, "9110 §9.3.2", "method_head", msg("HEAD /h HTTP/1.1"), seen("HEAD", "/h"))
for m in ("PURGE", "M-SEARCH", "PROPFIND", "BASELINE-CONTROL", "M3THOD", "ABCDEFGHIJKLMNOPQRST"):
    valid(F, "9110 §9.1", f"extension_method_{m.lower()}", msg(f"{m} / HTTP/1.1"), seen(m, "/"))
valid(
    F,
    "9112 §2.2",
    "one_leading_empty_line_ignored",
    b"\r\n" + msg("GET /after-crlf HTTP/1.1"),
    seen("GET", "/after-crlf"),
)
valid(
    F,
    "9112 §2.3",
    "http10_without_host_closes",
    msg("GET /old HTTP/1.0", host=False),
    seen("GET", "/old", version="1.0", host=False),
    closed=True,
)
valid(
    F,
    "9112 §9.3",
    "http10_keep_alive_stays_open",
    msg("GET /old HTTP/1.0", "Connection: keep-alive", host=False),
    seen("GET", "/old", ("Connection", "keep-alive"), version="1.0", host=False),
)
valid(F, "9112 §3.2.4", "asterisk_form_options", msg("OPTIONS * HTTP/1.1"), seen("OPTIONS", "*"))
valid(
    F,
    "9112 §3.2.2",
    "absolute_form",
    msg("GET http://example.com/a?b=1 HTTP/1.1"),
    seen("GET", "http://example.com/a?b=1"),
)
valid(
    F,
    "9112 §3.2.2",
    "absolute_form_https_with_port",
    msg("GET https://example.com:8443/x HTTP/1.1", "Host: example.com:8443", host=False),
    seen("GET", "https://example.com:8443/x", ("Host", "example.com:8443"), host=False),
)
valid(
    F,
    "9112 §3.2.2",
    "absolute_form_without_path_is_slash",
    msg("GET http://example.com HTTP/1.1"),
    seen("GET", "http://example.com"),
)
valid(
    F,
    "9112 §3.2.2",
    "absolute_form_scheme_is_case_insensitive",
    msg("GET HTTP://example.com/s HTTP/1.1"),
    seen("GET", "HTTP://example.com/s"),
)
valid(
    F,
    "9112 §3.2.2",
    "absolute_form_authority_wins_over_host",
    b"GET http://a.example/p HTTP/1.1\r\nHost: b.example\r\nX-A: 1\r\n\r\n",
    seen("GET", "http://a.example/p", ("Host", "a.example"), ("X-A", "1"), host=False),
    note="RFC 9112 §3.2.2: the origin server MUST ignore Host and use the target's authority",
)
valid(
    F,
    "9112 §3.2.2",
    "absolute_form_http10_gets_host_from_target",
    msg("GET http://a.example:81/p HTTP/1.0", host=False),
    seen("GET", "http://a.example:81/p", ("Host", "a.example:81"), version="1.0", host=False),
    closed=True,
)
valid(
    F,
    "9112 §3.2.3",
    "connect_authority_form_then_close",
    b"CONNECT 127.0.0.1:8080 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    seen("CONNECT", "127.0.0.1:8080", ("Host", "127.0.0.1:8080"), host=False),
    closed=True,
    note="RFC 9110 §9.3.6: after a 2xx to CONNECT the client reads a tunnel; we close instead",
)
valid(
    F,
    "9112 §3",
    "request_line_at_limit",
    msg("GET /" + "a" * 86 + " HTTP/1.1"),
    seen("GET", "/" + "a" * 86),
    args=SMALL_LIMITS,
)
valid(
    F,
    "9112 §3",
    "long_request_line_without_limit",
    msg("GET /" + "b" * 6000 + " HTTP/1.1"),
    seen("GET", "/" + "b" * 6000),
    args=NO_LINE_OR_FIELD_COUNT_LIMIT,
)

for name, line, status in [
    ("lowercase_method", b"get / HTTP/1.1", 400),
    ("mixed_case_method", b"Get / HTTP/1.1", 400),
    ("hash_in_method", b"GE#T / HTTP/1.1", 400),
    ("two_letter_method", b"GO / HTTP/1.1", 400),
    ("method_over_20_chars", b"ABCDEFGHIJKLMNOPQRSTU / HTTP/1.1", 400),
    ("non_ascii_method", b"G\xc9T / HTTP/1.1", 400),
    ("tab_separators", b"GET\t/\tHTTP/1.1", 400),
    ("double_space", b"GET  / HTTP/1.1", 400),
    ("trailing_space", b"GET / HTTP/1.1 ", 400),
    ("leading_space", b" GET / HTTP/1.1", 400),
    ("missing_target", b"GET HTTP/1.1", 400),
    ("http09_simple_request", b"GET /", 400),
    ("version_lowercase", b"GET / http/1.1", 400),
    ("version_two_digit_major", b"GET / HTTP/10.1", 400),
    ("version_without_minor", b"GET / HTTP/1", 400),
    ("version_trailing_garbage", b"GET / HTTP/1.1x", 400),
    ("version_no_slash", b"GET / HTTP1.1", 400),
    ("version_http09", b"GET / HTTP/0.9", 505),
    ("version_http20", b"GET / HTTP/2.0", 505),
    ("version_http12", b"GET / HTTP/1.2", 505),
    ("del_in_target", b"GET /a\x7fb HTTP/1.1", 400),
    ("utf8_in_target", b"GET /caf\xc3\xa9 HTTP/1.1", 400),
    ("query_only_target", b"GET ?x=1 HTTP/1.1", 400),
    ("relative_target", b"GET ../etc/passwd HTTP/1.1", 400),
    ("asterisk_form_on_post", b"POST * HTTP/1.1", 400),
    ("asterisk_with_path", b"OPTIONS */x HTTP/1.1", 400),
    ("authority_form_on_post", b"POST example.com:80 HTTP/1.1", 400),
    ("connect_origin_form", b"CONNECT / HTTP/1.1", 400),
    ("connect_without_port", b"CONNECT example.com HTTP/1.1", 400),
    ("connect_absolute_form", b"CONNECT http://example.com:443/ HTTP/1.1", 400),
    ("absolute_form_ftp_scheme", b"GET ftp://example.com/f HTTP/1.1", 400),
    ("absolute_form_empty_host", b"GET http:///p HTTP/1.1", 400),
    ("absolute_form_bad_host", b'GET http://a"b/p HTTP/1.1', 400),
    ("absolute_form_bad_port", b"GET http://example.com:8x/p HTTP/1.1", 400),
]:
    rfc = "9112 §2.3" if "version" in name else "9112 §3"
    invalid(F, rfc, name, msg(line), status)
invalid(
    F,
    "9112 §3",
    "request_line_over_limit",
    msg("GET /" + "a" * 87 + " HTTP/1.1"),
    414,
    args=SMALL_LIMITS,
)
invalid(
    F,
    "9112 §2.2",
    "two_leading_empty_lines",
    b"\r\n\r\n" + msg("GET / HTTP/1.1"),
    400,
    note="one empty line is ignored (SHOULD); more is not a request",
)
invalid(
    F, "9112 §2.2", "bare_lf_after_request_line", b"GET / HTTP/1.1\nHost: example.com\r\n\r\n", 400
)
invalid(
    F, "9112 §2.2", "bare_cr_after_request_line", b"GET / HTTP/1.1\rHost: example.com\r\n\r\n", 400
)
invalid(
    F,
    "9112 §3.2",
    "absolute_form_without_host_on_http11",
    msg("GET http://example.com/ HTTP/1.1", host=False),
    400,
    note="the target's authority does not excuse the missing Host field",
)


# == header field syntax =====================================================================
F = "header-syntax"

valid(
    F,
    "9112 §5.1",
    "no_space_after_colon",
    msg("GET / HTTP/1.1", "X-A:1"),
    seen("GET", "/", ("X-A", "1")),
)
valid(
    F,
    "9112 §5.1",
    "ows_around_value_trimmed",
    msg("GET / HTTP/1.1", "X-A: \t  v  \t"),
    seen("GET", "/", ("X-A", "v")),
)
valid(
    F,
    "9110 §5.5",
    "inner_whitespace_kept",
    msg("GET / HTTP/1.1", "X-A: a  b\tc"),
    seen("GET", "/", ("X-A", "a  b\tc")),
)
valid(
    F,
    "9110 §5.5",
    "empty_value",
    msg("GET / HTTP/1.1", "X-Empty:"),
    seen("GET", "/", ("X-Empty", "")),
)
valid(
    F,
    "9110 §5.5",
    "obs_text_in_value",
    msg("GET / HTTP/1.1", b"X-A: \x80caf\xe9\xff"),
    seen("GET", "/", ("X-A", "\x80caf\xe9\xff")),
)
valid(
    F,
    "9110 §5.5",
    "visible_punctuation_in_value",
    msg("GET / HTTP/1.1", 'X-A: "q" (c) <a>; b=c, d'),
    seen("GET", "/", ("X-A", '"q" (c) <a>; b=c, d')),
)
valid(
    F,
    "9110 §5.1",
    "token_punctuation_in_name",
    msg("GET / HTTP/1.1", "X-A.B~C!: v"),
    seen("GET", "/", ("X-A.B~C!", "v")),
)
valid(
    F,
    "9110 §5.1",
    "names_are_case_insensitive",
    msg("GET / HTTP/1.1", "x-lower: 1", "X-UPPER: 2"),
    seen("GET", "/", ("x-lower", "1"), ("X-UPPER", "2")),
)
valid(
    F,
    "9110 §5.3",
    "repeated_field_kept_in_order",
    msg("GET / HTTP/1.1", "X-A: 1", "X-B: b", "X-A: 2"),
    seen("GET", "/", ("X-A", "1"), ("X-B", "b"), ("X-A", "2")),
)
valid(
    F,
    "9110 §5.1",
    "underscore_name_dropped",
    msg("GET / HTTP/1.1", "X_Custom: forged", "X-Custom: real"),
    seen("GET", "/", ("X-Custom", "real")),
    note="gunicorn's header_map=drop: X_Custom and X-Custom would share one environ key",
)
valid(
    F,
    "9112 §5",
    "fields_at_count_limit",
    msg("GET / HTTP/1.1", *[f"X-{i}: v" for i in range(4)]),
    seen("GET", "/", *[(f"X-{i}", "v") for i in range(4)]),
    args=SMALL_LIMITS,
)
valid(
    F,
    "9112 §5",
    "field_at_size_limit",
    msg("GET / HTTP/1.1", "X-A: " + "v" * 43),
    seen("GET", "/", ("X-A", "v" * 43)),
    args=SMALL_LIMITS,
)
valid(
    F,
    "9112 §5",
    "many_fields_without_count_limit",
    msg("GET / HTTP/1.1", *[f"X-{i}: v" for i in range(150)]),
    seen("GET", "/", *[(f"X-{i}", "v") for i in range(150)]),
    args=NO_LINE_OR_FIELD_COUNT_LIMIT,
)
valid(
    F,
    "9112 §5",
    "hundred_fields_is_the_default_limit",
    msg("GET / HTTP/1.1", *[f"X-{i}: v" for i in range(99)]),
    seen("GET", "/", *[(f"X-{i}", "v") for i in range(99)]),
)

for name, field_line in [
    ("space_before_colon", b"X-A : v"),
    ("tab_before_colon", b"X-A\t: v"),
    ("space_in_name", b"X A: v"),
    ("slash_in_name", b"X/A: v"),
    ("at_in_name", b"X@A: v"),
    ("brackets_in_name", b"X[A]: v"),
    ("quote_in_name", b'"X": v'),
    ("non_ascii_name", b"X-\xe9: v"),
    ("nul_in_name", b"X-\x00A: v"),
    ("nul_in_value", b"X-A: a\x00b"),
    ("bel_in_value", b"X-A: a\x07b"),
    ("esc_in_value", b"X-A: a\x1bb"),
    ("vertical_tab_in_value", b"X-A: a\x0bb"),
    ("form_feed_in_value", b"X-A: a\x0cb"),
    ("bare_cr_in_value", b"X-A: a\rb"),
    ("line_without_colon", b"X-A v"),
    ("whitespace_only_line", b" "),
]:
    invalid(
        F,
        "9110 §5.1/§5.5" if "value" in name else "9112 §5",
        name,
        msg("GET / HTTP/1.1", field_line),
        400,
    )
invalid(
    F,
    "9112 §5.2",
    "obs_fold_with_space",
    msg("GET / HTTP/1.1", "X-A: a", " b"),
    400,
    note="RFC 9112 §5.2: a server MUST reject obs-fold with 400 or replace it; we reject",
)
invalid(F, "9112 §5.2", "obs_fold_with_tab", msg("GET / HTTP/1.1", "X-A: a", "\tb"), 400)
invalid(
    F,
    "9112 §2.2",
    "whitespace_before_first_field",
    b"GET / HTTP/1.1\r\n Host: example.com\r\n\r\n",
    400,
    note="RFC 9112 §2.2: such a line MUST be rejected or consumed whole; we reject",
)
invalid(
    F,
    "9112 §2.2",
    "bare_lf_between_fields",
    b"GET / HTTP/1.1\r\nHost: example.com\nX-A: 1\r\n\r\n",
    400,
    note="RFC 9112 §2.2 MAY accept bare LF; we never do (see README)",
)
invalid(F, "9112 §2.2", "bare_lf_ends_head", b"GET / HTTP/1.1\r\nHost: example.com\r\n\n", 400)
invalid(F, "9112 §2.2", "all_bare_lf", b"GET / HTTP/1.1\nHost: example.com\n\n", 400)
invalid(
    F,
    "9112 §2.2",
    "bare_cr_ends_field",
    b"GET / HTTP/1.1\r\nHost: example.com\rX-A: 1\r\n\r\n",
    400,
)
invalid(
    F,
    "9112 §5",
    "fields_over_count_limit",
    msg("GET / HTTP/1.1", *[f"X-{i}: v" for i in range(5)]),
    431,
    args=SMALL_LIMITS,
)
invalid(
    F,
    "9112 §5",
    "field_over_size_limit",
    msg("GET / HTTP/1.1", "X-A: " + "v" * 44),
    431,
    args=SMALL_LIMITS,
)
invalid(
    F,
    "9112 §5",
    "over_hundred_fields_by_default",
    msg("GET / HTTP/1.1", *[f"X-{i}: v" for i in range(100)]),
    431,
)
invalid(
    F,
    "9112 §5.2",
    "obs_fold_even_with_permit_obsolete_folding",
    msg("GET / HTTP/1.1", "X-A: a", " b"),
    400,
    args=GUNICORN_LENIENT,
    note="--permit-obsolete-folding is accepted for gunicorn configs and has no effect",
)
invalid(
    F,
    "9112 §5.1",
    "space_before_colon_even_with_strip_header_spaces",
    msg("GET / HTTP/1.1", "X-A : v"),
    400,
    args=GUNICORN_LENIENT,
)
invalid(
    F,
    "9110 §9.1",
    "lowercase_method_even_with_casefold",
    msg("get / HTTP/1.1"),
    400,
    args=GUNICORN_LENIENT,
    note="--casefold-http-method has no effect: methods are case-sensitive",
)
invalid(
    F,
    "9110 §2.5",
    "http12_even_with_unconventional_version",
    msg("GET / HTTP/1.2"),
    505,
    args=GUNICORN_LENIENT,
)


# == Host ====================================================================================
F = "host"

for name, value in [
    ("host_with_port", "example.com:8080"),
    ("host_ipv4_with_port", "127.0.0.1:8000"),
    ("host_ipv6_literal", "[::1]:8000"),
    ("host_ipv6_without_port", "[2001:db8::1]"),
    ("host_trailing_dot", "example.com."),
    ("host_empty_port", "example.com:"),
    ("host_upper_case", "EXAMPLE.Com"),
    ("host_pct_encoded", "ex%41mple.com"),
    ("host_empty_value", ""),
]:
    sent = f"Host: {value}" if value else "Host:"
    valid(
        F,
        "9112 §3.2",
        name,
        msg("GET / HTTP/1.1", sent, host=False),
        seen("GET", "/", ("Host", value), host=False),
    )
for name, value in [
    ("host_with_space", "exa mple.com"),
    ("host_list", "a.example, b.example"),
    ("host_comma_list_no_space", "a.example,b.example"),
    ("host_with_path", "example.com/evil"),
    ("host_with_userinfo", "user@example.com"),
    ("host_port_not_digits", "example.com:80a"),
    ("host_two_colons", "example.com:80:81"),
    ("host_unclosed_ipv6", "[::1:80"),
    ("host_bad_pct", "ex%zzample.com"),
    ("host_non_ascii", "caf\xe9.example"),
]:
    invalid(F, "9112 §3.2", name, msg("GET / HTTP/1.1", f"Host: {value}", host=False), 400)
invalid(F, "9112 §3.2", "duplicate_host_same_value", msg("GET / HTTP/1.1", f"Host: {HOST}"), 400)
invalid(
    F, "9112 §3.2", "duplicate_host_other_case", msg("GET / HTTP/1.1", "host: other.example"), 400
)
invalid(F, "9112 §3.2", "missing_host_http11", msg("GET / HTTP/1.1", "X-A: 1", host=False), 400)
invalid(
    F,
    "9112 §3.2",
    "bad_host_with_absolute_form",
    b"GET http://a.example/ HTTP/1.1\r\nHost: a b\r\n\r\n",
    400,
    note="an invalid Host is refused even when the target's authority replaces it",
)


# == Content-Length ==========================================================================
F = "content-length"


def post_cl(value: str, body: bytes, target: str = "/cl") -> bytes:
    return msg(f"POST {target} HTTP/1.1", f"Content-Length: {value}", body=body)


def cl_seen(value: str, body: bytes, target: str = "/cl", method: str = "POST") -> Seen:
    return seen(method, target, ("Content-Length", value), body=body)


valid(F, "9112 §6.2", "cl_body", post_cl("5", b"hello"), cl_seen("5", b"hello"))
valid(F, "9112 §6.2", "cl_zero", post_cl("0", b""), cl_seen("0", b""))
valid(F, "9110 §8.6", "cl_leading_zeros", post_cl("005", b"hello"), cl_seen("005", b"hello"))
valid(
    F,
    "9110 §8.6",
    "cl_21_digits_of_leading_zeros",
    post_cl("0" * 20 + "5", b"hello"),
    cl_seen("0" * 20 + "5", b"hello"),
    note="1*DIGIT has no length limit; the value must fit",
)
valid(
    F,
    "9112 §5.1",
    "cl_ows_trimmed",
    msg("POST /cl HTTP/1.1", "Content-Length: \t5 \t", body=b"hello"),
    cl_seen("5", b"hello"),
)
valid(
    F,
    "9110 §9.3.1",
    "cl_body_on_get",
    msg("GET /g HTTP/1.1", "Content-Length: 3", body=b"abc"),
    cl_seen("3", b"abc", "/g", "GET"),
)
valid(
    F,
    "9110 §9.3.2",
    "cl_body_on_head",
    msg("HEAD /h HTTP/1.1", "Content-Length: 3", body=b"abc"),
    cl_seen("3", b"abc", "/h", "HEAD"),
)
valid(
    F,
    "9110 §9.3.5",
    "cl_body_on_delete",
    msg("DELETE /d HTTP/1.1", "Content-Length: 3", body=b"abc"),
    cl_seen("3", b"abc", "/d", "DELETE"),
)
valid(
    F,
    "9112 §6.2",
    "cl_every_byte_value",
    post_cl("256", bytes(range(256))),
    cl_seen("256", bytes(range(256))),
)
BIG = bytes(i % 251 for i in range(200_000))
valid(F, "9112 §6.2", "cl_200k_body", post_cl(str(len(BIG)), BIG), cl_seen(str(len(BIG)), BIG))
valid(
    F,
    "9112 §6.2",
    "cl_at_body_limit",
    post_cl("64", b"x" * 64),
    cl_seen("64", b"x" * 64),
    args=SMALL_LIMITS,
)
valid(
    F,
    "9112 §6.2",
    "cl_http10",
    msg("POST /cl HTTP/1.0", "Content-Length: 5", body=b"hello", host=False),
    seen("POST", "/cl", ("Content-Length", "5"), body=b"hello", version="1.0", host=False),
    closed=True,
)
valid(
    F,
    "9112 §6.3",
    "no_length_means_no_body",
    msg("POST /none HTTP/1.1") + msg("GET /next HTTP/1.1"),
    seen("POST", "/none"),
    seen("GET", "/next"),
    note="RFC 9112 §6.3 rule 7: a request without CL or TE has a zero-length body",
)
valid(
    F,
    "9112 §6.3",
    "content_type_and_length",
    msg(
        "POST /ct HTTP/1.1",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Length: 2",
        body=b"ok",
    ),
    seen(
        "POST",
        "/ct",
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Length", "2"),
        body=b"ok",
    ),
)
valid(
    F,
    "9110 §5.1",
    "underscore_content_length_is_not_framing",
    msg("POST /u HTTP/1.1", "Content_Length: 37") + msg("GET /next HTTP/1.1"),
    seen("POST", "/u"),
    seen("GET", "/next"),
    note="the dropped Content_Length never frames a body, so what follows is the next request",
)

for name, value in [
    ("cl_duplicate_equal", ("5", "5")),
    ("cl_duplicate_different", ("5", "6")),
]:
    invalid(
        F,
        "9110 §8.6",
        name,
        msg(
            "POST /cl HTTP/1.1",
            f"Content-Length: {value[0]}",
            f"Content-Length: {value[1]}",
            body=b"hello!",
        ),
        400,
        note="RFC 9110 §8.6 MAY accept identical values; we refuse any repeat, as gunicorn",
    )
for name, value in [
    ("cl_list_equal", "5,5"),
    ("cl_space_inside", "5 5"),
    ("cl_plus_sign", "+5"),
    ("cl_minus_zero", "-0"),
    ("cl_hex", "0x5"),
    ("cl_exponent", "5e0"),
    ("cl_decimal", "5.0"),
    ("cl_letters", "five"),
    ("cl_empty", ""),
    ("cl_u64_overflow", "18446744073709551616"),
    ("cl_huge", "9" * 30),
    ("cl_arabic_indic_digit", "\xd9\xa5"),
    ("cl_semicolon_param", "5;x=1"),
]:
    invalid(F, "9110 §8.6", name, post_cl(value, b"hello"), 400)
invalid(F, "9112 §6.2", "cl_over_body_limit", post_cl("65", b"x" * 65), 413, args=SMALL_LIMITS)
invalid(
    F,
    "9110 §8.6",
    "cl_obs_fold_value",
    msg("POST /cl HTTP/1.1", "Content-Length: 0", " 5", body=b"hello"),
    400,
)


# == Transfer-Encoding =======================================================================
F = "transfer-encoding"


def post_te(value: str, body: bytes, *, version: str = "1.1") -> bytes:
    return msg(f"POST /te HTTP/{version}", f"Transfer-Encoding: {value}", body=body)


def te_seen(value: str, body: bytes) -> Seen:
    return seen("POST", "/te", ("Transfer-Encoding", value), body=body)


valid(
    F,
    "9112 §7.1",
    "te_chunked",
    post_te("chunked", chunked(b"hello")),
    te_seen("chunked", b"hello"),
)
valid(
    F,
    "9112 §7",
    "te_name_case_insensitive",
    post_te("CHUNKED", chunked(b"hi")),
    te_seen("CHUNKED", b"hi"),
)
valid(F, "9112 §7", "te_capitalised", post_te("Chunked", chunked(b"hi")), te_seen("Chunked", b"hi"))
valid(
    F,
    "9112 §5.1",
    "te_leading_tab_is_ows",
    msg("POST /te HTTP/1.1", "Transfer-Encoding:\tchunked", body=chunked(b"hi")),
    te_seen("chunked", b"hi"),
)
valid(
    F,
    "9112 §5.1",
    "te_trailing_space_is_ows",
    msg("POST /te HTTP/1.1", "Transfer-Encoding: chunked  ", body=chunked(b"hi")),
    te_seen("chunked", b"hi"),
)
valid(
    F,
    "9112 §7.1",
    "te_empty_chunked_body",
    post_te("chunked", b"0\r\n\r\n"),
    te_seen("chunked", b""),
)
valid(
    F,
    "9112 §7.1",
    "te_several_chunks",
    post_te("chunked", chunked(b"abc", b"def", b"g")),
    te_seen("chunked", b"abcdefg"),
)
valid(
    F,
    "9110 §9.3.1",
    "te_chunked_on_get",
    msg("GET /te HTTP/1.1", "Transfer-Encoding: chunked", body=chunked(b"q")),
    seen("GET", "/te", TE, body=b"q"),
)
valid(
    F,
    "9110 §5.1",
    "underscore_transfer_encoding_is_not_framing",
    msg(
        "POST /u HTTP/1.1",
        "Transfer_Encoding: chunked",
        "Content-Length: 10",
        body=b"5\r\nhello\r\n",
    ),
    seen("POST", "/u", ("Content-Length", "10"), body=b"5\r\nhello\r\n"),
    note="the dropped Transfer_Encoding neither frames the body nor conflicts with Content-Length",
)

for name, value, status in [
    ("te_chunked_twice", "chunked, chunked", 400),
    ("te_chunked_not_last_gzip", "chunked, gzip", 400),
    ("te_chunked_not_last_unknown", "chunked, foo", 400),
    ("te_chunked_then_identity", "chunked, identity", 400),
    ("te_gzip_before_chunked", "gzip, chunked", 501),
    ("te_identity", "identity", 501),
    ("te_identity_before_chunked", "identity, chunked", 501),
    ("te_gzip_alone", "gzip", 501),
    ("te_xchunked", "xchunked", 501),
    ("te_chunk", "chunk", 501),
    ("te_chunked_with_parameter", "chunked;q=1", 400),
    ("te_quoted_chunked", '"chunked"', 400),
    ("te_empty", "", 400),
    ("te_only_comma", ",", 400),
    ("te_trailing_comma", "chunked,", 400),
    ("te_non_ascii", "chunked\xff", 400),
]:
    note = ""
    if status == 501:
        note = "RFC 9112 §6.1: a coding we do not decode SHOULD get 501"
    if "not_last" in name or "then_identity" in name:
        note = "RFC 9112 §6.3: chunked not final MUST get 400 and close"
    invalid(F, "9112 §6.1", name, post_te(value, chunked(b"hello")), status, note=note)
invalid(
    F,
    "9112 §6.1",
    "te_on_http10",
    post_te("chunked", chunked(b"hello"), version="1.0"),
    400,
    note="RFC 9112 §6.1: TE in HTTP/1.0 means faulty framing; we refuse it, as gunicorn",
)
invalid(
    F,
    "9112 §6.1",
    "te_two_fields_chunked",
    msg(
        "POST /te HTTP/1.1",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: chunked",
        body=chunked(b"x"),
    ),
    400,
)
invalid(
    F,
    "9112 §6.1",
    "te_two_fields_gzip_then_chunked",
    msg(
        "POST /te HTTP/1.1",
        "Transfer-Encoding: gzip",
        "Transfer-Encoding: chunked",
        body=chunked(b"x"),
    ),
    400,
    note="more than one Transfer-Encoding field is refused whatever they hold",
)
invalid(
    F,
    "9110 §5.5",
    "te_vertical_tab_before_chunked",
    msg("POST /te HTTP/1.1", b"Transfer-Encoding: \x0bchunked", body=chunked(b"x")),
    400,
)
invalid(
    F,
    "9112 §5.2",
    "te_obs_folded",
    msg("POST /te HTTP/1.1", "Transfer-Encoding:", " chunked", body=chunked(b"x")),
    400,
)


# == request smuggling: CL.TE, TE.CL, TE.TE and friends ======================================
F = "smuggling"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: example.com\r\n\r\n"
SMUGGLED_CHUNK = b"%x\r\n%s\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)

invalid(
    F,
    "9112 §6.1",
    "cl_te_classic",
    msg("POST /s HTTP/1.1", "Content-Length: 6", "Transfer-Encoding: chunked", body=b"0\r\n\r\nG"),
    400,
    note="RFC 9112 §6.1: CL with TE MAY be processed by TE then closed; we refuse (as gunicorn)",
)
invalid(
    F,
    "9112 §6.1",
    "te_cl_classic",
    msg("POST /s HTTP/1.1", "Transfer-Encoding: chunked", "Content-Length: 4", body=SMUGGLED_CHUNK),
    400,
)
invalid(
    F,
    "9112 §6.1",
    "cl_te_smuggles_request",
    msg(
        "POST /s HTTP/1.1",
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        body=b"0\r\n\r\n" + SMUGGLED,
    ),
    400,
)
invalid(
    F,
    "9112 §6.1",
    "te_cl_zero_length",
    msg(
        "POST /s HTTP/1.1",
        "Transfer-Encoding: chunked",
        "Content-Length: 0",
        body=chunked(SMUGGLED),
    ),
    400,
)
for name, fields, status in [
    ("te_te_second_field_garbage", ("Transfer-Encoding: chunked", "Transfer-Encoding: x"), 400),
    ("te_te_first_field_garbage", ("Transfer-Encoding: x", "Transfer-Encoding: chunked"), 400),
    ("te_te_space_before_colon", ("Transfer-Encoding : chunked",), 400),
    ("te_te_tab_value", ("Transfer-Encoding:\tchunked",), 400),
    ("te_te_xchunked", ("Transfer-Encoding: xchunked",), 400),
    ("te_te_leading_space_line", (" Transfer-Encoding: chunked",), 400),
    ("te_te_nul_in_value", (b"Transfer-Encoding: chunked\x00",), 400),
    ("te_te_vertical_tab", (b"Transfer-Encoding:\x0bchunked",), 400),
    ("te_te_quoted", ('Transfer-Encoding: "chunked"',), 400),
    ("te_te_chunked_identity", ("Transfer-Encoding: chunked, identity",), 400),
    ("te_te_cow", ("Transfer-encoding: cow",), 400),
    (
        "te_te_underscore_dash_mix",
        ("Transfer_Encoding: chunked", "Transfer-Encoding: chunked"),
        400,
    ),
]:
    invalid(
        F,
        "9112 §6.1",
        name,
        msg("POST /s HTTP/1.1", "Content-Length: 4", *fields, body=SMUGGLED_CHUNK),
        status,
        note="whatever one field says, Content-Length next to a Transfer-Encoding never frames",
    )
invalid(
    F,
    "9112 §2.2",
    "te_after_bare_lf",
    b"POST /s HTTP/1.1\r\nHost: example.com\r\nX: y\n"
    b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunked(SMUGGLED),
    400,
)
invalid(
    F,
    "9112 §2.2",
    "te_after_bare_cr",
    b"POST /s HTTP/1.1\r\nHost: example.com\r\nX: y\r"
    b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n" + chunked(SMUGGLED),
    400,
)
invalid(
    F,
    "9110 §8.6",
    "cl_cl_smuggles_request",
    msg("POST /s HTTP/1.1", "Content-Length: 0", f"Content-Length: {len(SMUGGLED)}", body=SMUGGLED),
    400,
)
invalid(
    F,
    "9112 §5.1",
    "cl_space_before_colon",
    msg("POST /s HTTP/1.1", "Content-Length : 44", body=SMUGGLED),
    400,
)
valid(
    F,
    "9112 §6.2",
    "cl_body_that_looks_like_a_request",
    msg("POST /s HTTP/1.1", f"Content-Length: {len(SMUGGLED)}", body=SMUGGLED),
    seen("POST", "/s", ("Content-Length", str(len(SMUGGLED))), body=SMUGGLED),
    note="exactly one request reaches the app; the request-shaped bytes are its body",
)
valid(
    F,
    "9112 §7.1",
    "chunked_body_that_looks_like_a_request",
    post_te("chunked", chunked(SMUGGLED)),
    te_seen("chunked", SMUGGLED),
)
valid(
    F,
    "9112 §6.3",
    "cl_zero_then_real_second_request",
    msg("GET /first HTTP/1.1", "Content-Length: 0") + SMUGGLED,
    seen("GET", "/first", ("Content-Length", "0")),
    seen("GET", "/smuggled"),
    note="a second request after a complete first one is pipelining, not smuggling",
)
invalid(
    F,
    "9112 §7.1",
    "chunk_size_wraps_64_bits",
    post_te("chunked", b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
    400,
    in_body=True,
    note="a parser that wraps 2^64+5 to 5 would read 'hello' and then a smuggled request",
)
invalid(
    F,
    "9112 §7.1",
    "chunk_size_lf_only",
    post_te("chunked", b"5\nhello\r\n0\r\n\r\n" + SMUGGLED),
    400,
    in_body=True,
)
invalid(
    F,
    "9112 §7.1",
    "chunk_data_lf_only",
    post_te("chunked", b"5\r\nhello\n0\r\n\r\n" + SMUGGLED),
    400,
    in_body=True,
)
invalid(
    F,
    "9112 §7.1",
    "chunk_data_longer_than_size",
    post_te("chunked", b"3\r\nhello\r\n0\r\n\r\n" + SMUGGLED),
    400,
    in_body=True,
)
invalid(
    F,
    "9112 §7.1.2",
    "missing_last_crlf_turns_next_request_into_trailer",
    post_te("chunked", b"5\r\nhello\r\n0\r\n" + SMUGGLED),
    400,
    in_body=True,
)
invalid(
    F,
    "9112 §6.1",
    "valid_request_then_cl_te",
    msg("POST /one HTTP/1.1", "Content-Length: 3", body=b"abc")
    + msg(
        "POST /two HTTP/1.1", "Content-Length: 6", "Transfer-Encoding: chunked", body=b"0\r\n\r\nX"
    )
    + SMUGGLED,
    400,
    served=(seen("POST", "/one", ("Content-Length", "3"), body=b"abc"),),
)


# == chunked coding: sizes, extensions, trailers =============================================
F = "chunked"

for name, body, want in [
    ("chunk_size_lower_hex", b"a\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    ("chunk_size_upper_hex", b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
    ("chunk_size_leading_zeros", b"0005\r\nhello\r\n0\r\n\r\n", b"hello"),
    (
        "chunk_size_20_leading_zeros",
        b"0" * 20 + b"5\r\nhello\r\n" + b"0" * 20 + b"\r\n\r\n",
        b"hello",
    ),
    ("last_chunk_with_zeros", b"5\r\nhello\r\n000\r\n\r\n", b"hello"),
    ("ext_name", b"5;foo\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("ext_name_value", b"5;foo=bar\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("ext_quoted_with_separators", b'5;foo="a b;c=d"\r\nhello\r\n0\r\n\r\n', b"hello"),
    ("ext_quoted_pair", b'5;foo="x\\"y"\r\nhello\r\n0\r\n\r\n', b"hello"),
    ("ext_several", b'5;a=1;b;c="3"\r\nhello\r\n0\r\n\r\n', b"hello"),
    ("ext_bws_around_separators", b"5 ;\ta = 1 ; b\r\nhello\r\n0\r\n\r\n", b"hello"),
    ("ext_on_last_chunk", b"5\r\nhello\r\n0;final=yes\r\n\r\n", b"hello"),
    ("trailer_field", b"5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n", b"hello"),
    ("two_trailer_fields", b"5\r\nhello\r\n0\r\nX-A: 1\r\nX-B: 2\r\n\r\n", b"hello"),
    ("hundred_one_byte_chunks", b"1\r\nx\r\n" * 100 + b"0\r\n\r\n", b"x" * 100),
    ("chunk_of_70000_bytes", b"11170\r\n" + b"y" * 70000 + b"\r\n0\r\n\r\n", b"y" * 70000),
    ("chunk_of_crlf_bytes", b"4\r\n\r\n\r\n\r\n0\r\n\r\n", b"\r\n\r\n"),
]:
    note = "trailer fields are read and checked, not handed to the app" if "trailer" in name else ""
    valid(F, "9112 §7.1", name, post_te("chunked", body), te_seen("chunked", want), note=note)
valid(
    F,
    "9112 §7.1.2",
    "trailers_then_pipelined_request",
    post_te("chunked", b"2\r\nhi\r\n0\r\nX-T: 1\r\n\r\n") + msg("GET /after HTTP/1.1"),
    te_seen("chunked", b"hi"),
    seen("GET", "/after"),
)
valid(
    F,
    "9112 §7.1",
    "chunked_at_body_limit",
    post_te("chunked", chunked(b"z" * 64)),
    te_seen("chunked", b"z" * 64),
    args=SMALL_LIMITS,
)

for name, body in [
    ("chunk_size_over_64_bits", b"fffffffffffffffffffffff\r\nx\r\n0\r\n\r\n"),
    ("chunk_size_0x_prefix", b"0x5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_leading_space", b" 5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_trailing_space", b"5 \r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_trailing_tab", b"5\t\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_plus", b"+5\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_decimal_point", b"5.0\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_missing", b";a=1\r\nhello\r\n0\r\n\r\n"),
    ("chunk_size_underscore", b"1_0\r\nhello\r\n0\r\n\r\n"),
    ("ext_empty_name", b"5;\r\nhello\r\n0\r\n\r\n"),
    ("ext_empty_value", b"5;a=\r\nhello\r\n0\r\n\r\n"),
    ("ext_value_only", b"5;=1\r\nhello\r\n0\r\n\r\n"),
    ("ext_space_inside_name", b"5;a b\r\nhello\r\n0\r\n\r\n"),
    ("ext_space_inside_value", b"5;a=b c\r\nhello\r\n0\r\n\r\n"),
    ("ext_unterminated_quote", b'5;a="open\r\nhello\r\n0\r\n\r\n'),
    ("ext_trailing_whitespace", b"5;a \r\nhello\r\n0\r\n\r\n"),
    ("ext_bare_cr", b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
    ("ext_bare_lf", b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
    ("ext_nul", b"5;a\x00\r\nhello\r\n0\r\n\r\n"),
    ("ext_8bit_token", b"5;a=\xe9\r\nhello\r\n0\r\n\r\n"),
    ("ext_very_long", b"5;a=" + b"x" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
    ("data_shorter_than_size", b"5\r\nhell\r\n0\r\n\r\n"),
    ("data_without_crlf", b"5\r\nhello0\r\n\r\n"),
    ("trailer_content_length", b"5\r\nhello\r\n0\r\nCONTENT-LENGTH: 5\r\n\r\n"),
    ("trailer_transfer_encoding", b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
    ("trailer_trailer", b"5\r\nhello\r\n0\r\nTrailer: X\r\n\r\n"),
    ("trailer_authorization", b"5\r\nhello\r\n0\r\nAuthorization: Basic eDp5\r\n\r\n"),
    ("trailer_space_in_name", b"5\r\nhello\r\n0\r\nX A: 1\r\n\r\n"),
    ("trailer_without_colon", b"5\r\nhello\r\n0\r\nX-A\r\n\r\n"),
    ("trailer_obs_fold", b"5\r\nhello\r\n0\r\nX-A: 1\r\n 2\r\n\r\n"),
    ("trailer_bare_lf", b"5\r\nhello\r\n0\r\nX-A: 1\n\r\n"),
    ("trailer_nul_in_value", b"5\r\nhello\r\n0\r\nX-A: a\x00b\r\n\r\n"),
]:
    invalid(
        F,
        "9112 §7.1" if "trailer" not in name else "9110 §6.5",
        name,
        post_te("chunked", body),
        400,
        in_body=True,
    )
invalid(
    F,
    "9112 §7.1",
    "chunked_over_body_limit",
    post_te("chunked", chunked(b"z" * 40, b"z" * 25)),
    413,
    in_body=True,
    args=SMALL_LIMITS,
)


# == pipelining and connection management ====================================================
F = "pipelining"

valid(
    F,
    "9112 §9.3.2",
    "three_pipelined_gets",
    msg("GET /1 HTTP/1.1") + msg("GET /2 HTTP/1.1") + msg("GET /3 HTTP/1.1"),
    seen("GET", "/1"),
    seen("GET", "/2"),
    seen("GET", "/3"),
)
valid(
    F,
    "9112 §9.3.2",
    "post_then_get",
    msg("POST /p HTTP/1.1", "Content-Length: 4", body=b"data") + msg("GET /g HTTP/1.1"),
    seen("POST", "/p", ("Content-Length", "4"), body=b"data"),
    seen("GET", "/g"),
)
valid(
    F,
    "9112 §9.3.2",
    "chunked_then_cl_then_head",
    post_te("chunked", chunked(b"one"))
    + msg("PUT /two HTTP/1.1", "Content-Length: 3", body=b"two")
    + msg("HEAD /three HTTP/1.1"),
    te_seen("chunked", b"one"),
    seen("PUT", "/two", ("Content-Length", "3"), body=b"two"),
    seen("HEAD", "/three"),
)
valid(
    F,
    "9112 §9.6",
    "connection_close_stops_the_pipeline",
    msg("GET /1 HTTP/1.1", "Connection: close") + msg("GET /2 HTTP/1.1"),
    seen("GET", "/1", ("Connection", "close")),
    closed=True,
)
valid(
    F,
    "9112 §9.3",
    "http10_stops_the_pipeline",
    msg("GET /1 HTTP/1.0", host=False) + msg("GET /2 HTTP/1.1"),
    seen("GET", "/1", version="1.0", host=False),
    closed=True,
)
valid(
    F,
    "9112 §9.6",
    "close_token_in_a_list",
    msg("GET /1 HTTP/1.1", "Connection: keep-alive, Close"),
    seen("GET", "/1", ("Connection", "keep-alive, Close")),
    closed=True,
)
valid(
    F,
    "9112 §9.3",
    "http10_keep_alive_then_http11",
    msg("GET /1 HTTP/1.0", "Connection: Keep-Alive", host=False) + msg("GET /2 HTTP/1.1"),
    seen("GET", "/1", ("Connection", "Keep-Alive"), version="1.0", host=False),
    seen("GET", "/2"),
)
invalid(
    F,
    "9112 §9.3.2",
    "valid_then_invalid",
    msg("GET /ok HTTP/1.1") + msg("get /bad HTTP/1.1") + msg("GET /never HTTP/1.1"),
    400,
    served=(seen("GET", "/ok"),),
)
invalid(
    F,
    "9112 §9.3.2",
    "invalid_then_valid",
    msg("GET  /bad HTTP/1.1") + msg("GET /never HTTP/1.1"),
    400,
)


# == Expect ==================================================================================
F = "expect"

valid(
    F,
    "9110 §10.1.1",
    "expect_100_continue_with_body",
    msg("POST /e HTTP/1.1", "Expect: 100-continue", "Content-Length: 5", body=b"hello"),
    seen("POST", "/e", ("Expect", "100-continue"), ("Content-Length", "5"), body=b"hello"),
)
valid(
    F,
    "9110 §10.1.1",
    "expect_is_case_insensitive",
    msg(
        "POST /e HTTP/1.1",
        "Expect: 100-Continue",
        "Transfer-Encoding: chunked",
        body=chunked(b"hi"),
    ),
    seen("POST", "/e", ("Expect", "100-Continue"), TE, body=b"hi"),
)
valid(
    F,
    "9110 §10.1.1",
    "expect_without_body",
    msg("GET /e HTTP/1.1", "Expect: 100-continue"),
    seen("GET", "/e", ("Expect", "100-continue")),
)
valid(
    F,
    "9110 §10.1.1",
    "expect_ignored_on_http10",
    msg("POST /e HTTP/1.0", "Expect: 100-continue", "Content-Length: 2", body=b"ok", host=False),
    seen(
        "POST",
        "/e",
        ("Expect", "100-continue"),
        ("Content-Length", "2"),
        body=b"ok",
        version="1.0",
        host=False,
    ),
    closed=True,
)
invalid(
    F,
    "9110 §10.1.1",
    "unknown_expectation",
    msg("POST /e HTTP/1.1", "Expect: 200-ok", "Content-Length: 0"),
    417,
    note="RFC 9110 §10.1.1 MAY answer 417; gunicorn does, and so do we",
)
invalid(
    F,
    "9110 §10.1.1",
    "expectation_with_parameter",
    msg("POST /e HTTP/1.1", "Expect: 100-continue; x=1", "Content-Length: 0"),
    417,
)


def by_family() -> Counter:
    return Counter(c.family for c in CASES)


_names = [c.name for c in CASES]
assert len(_names) == len(set(_names)), [n for n, k in Counter(_names).items() if k > 1]
