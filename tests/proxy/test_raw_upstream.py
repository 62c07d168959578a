"""Upstream framings only a raw socket sends: bodiless chunked responses, bodies that end with
their connection, untyped bodies split anywhere, connections dropped without an answer."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from cobrowse.settings import Settings
from proxy import addons, buffering
from tests.proxy.conftest import DOMAIN, Harness, OpenSession, read_until_closed
from tests.proxy.raw_upstream import RawUpstream, RecordingUpstream

LIMIT = 32 * 1024


def _page(upstream: RawUpstream, filler: int = 0) -> bytes:
    link = f"<a id='abs' href='{upstream.origin}/secret'>x</a>"
    return b"<html><body>" + link.encode() + b"y" * filler + b"</body></html>"


def _scripts(upstream: RawUpstream) -> dict:
    def not_modified(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nETag: \"x\"\r\n\r\n")

    def ok(conn: socket.socket) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok")

    def split(conn: socket.socket) -> None:
        """Untyped and chunked: a first chunk of whitespace, then HTML past the limit."""
        body = _page(upstream, LIMIT + 8000)
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n\n\n\n\r\n")
        conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))

    def spaces(conn: socket.socket) -> None:
        """Untyped, 600 bytes of whitespace before the HTML (browsers sniff past 512 bytes)."""
        body = b" " * 600 + _page(upstream)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def unknown(conn: socket.socket) -> None:
        body = _page(upstream)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: unknown/unknown\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))

    def binary(conn: socket.socket) -> None:
        body = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 96  # 24 KiB: a worker's size, under the limit
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def text(size: int) -> Callable[[socket.socket], None]:
        """Untyped plain text (an absolute link in it), chunked: ``size`` bytes and more."""
        def handler(conn: socket.socket) -> None:
            line = b"Release notes: see %s/secret for the rest.\r\n" % upstream.origin.encode()
            body = line * (size // len(line) + 1)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for start in range(0, len(body), 4096):
                chunk = body[start : start + 4096]
                conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            conn.sendall(b"0\r\n\r\n")

        return handler

    def http10_stall(conn: socket.socket) -> bool:
        """HTTP/1.0, no length: the body ends when the connection does; it stops half-way."""
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html><body>part one")
        upstream.stop.wait(10)
        try:
            conn.sendall(b" part two</body></html>")
        except OSError:
            pass  # the proxy gave up on it
        upstream.rest_sent.set()
        return True

    def drop(conn: socket.socket) -> bool:
        return True  # closes without a word

    def closing(conn: socket.socket) -> bool:
        body = _page(upstream)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        return True

    def disguised(conn: socket.socket) -> None:
        """Labelled HTML, starting like a GIF: a browser parses it as HTML all the same."""
        body = b"GIF89a" + _page(upstream)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))

    def lax_type(*types: bytes) -> Callable[[socket.socket], None]:
        """Content-Types a browser does not take as given (it sniffs, or takes the last)."""
        def handler(conn: socket.socket) -> None:
            body = _page(upstream)
            fields = b"".join(b"Content-Type: %s\r\n" % t for t in types)
            conn.sendall(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (fields, len(body), body))

        return handler

    def xml(conn: socket.socket) -> None:
        body = (b"<?xml version='1.0'?><html xmlns='http://www.w3.org/1999/xhtml'><body>"
                b"<a href='%s/secret'>x</a></body></html>" % upstream.origin.encode())
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml; charset=utf-8\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def xsl(conn: socket.socket) -> None:
        body = b"<?xml version='1.0'?><x><a href='%s/secret'>x</a></x>" % upstream.origin.encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xsl\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))

    def smuggled(conn: socket.socket) -> None:
        """Types whose quoted parameters hide a second type from a naive reader."""
        body = _page(upstream)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png; a=\"\\\"\", text/html\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))

    def sheet(*types: bytes) -> Callable[[socket.socket], None]:
        def handler(conn: socket.socket) -> None:
            body = b"p{background:url(%s/secret.png)}" % upstream.origin.encode()
            fields = b"".join(b"Content-Type: %s\r\n" % t for t in types)
            conn.sendall(b"HTTP/1.1 200 OK\r\n%sContent-Length: %d\r\n\r\n%s" % (fields, len(body), body))

        return handler

    def big_untyped(conn: socket.socket) -> None:
        body = b"\x89PNG\r\n\x1a\n" + b"\x00" * (LIMIT + 100)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    def switch(conn: socket.socket) -> bool:
        """A protocol switch nobody asked for, then a page, then whatever comes next on it raw."""
        body = _page(upstream)
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"
                     b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nSet-Cookie: tunnel=1\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        conn.settimeout(3)
        with contextlib.suppress(OSError):
            while data := conn.recv(65536):
                upstream.tunnelled.append(data)
        return True

    def long_head(size: int) -> Callable[[socket.socket], bool]:
        def handler(conn: socket.socket) -> bool:
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Long: %s\r\n\r\nok" % (b"a" * size))
            return True

        return handler

    def interim(*heads: bytes) -> Callable[[socket.socket], None]:
        def handler(conn: socket.socket) -> None:
            conn.sendall(b"".join(heads) + b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

        return handler

    early = b"HTTP/1.1 103 Early Hints\r\nLink: </static/site.css>; rel=preload; as=style\r\n\r\n"
    return {"/early": interim(early), "/continue-early": interim(b"HTTP/1.1 100 Continue\r\n\r\n", early),
            "/switch": switch, "/head-100k": long_head(100_000), "/head-300k": long_head(300_000),
            "/disguised": disguised, "/no-slash": lax_type(b"html"),
            "/spaced": lax_type(b"text/html charset=utf-8"), "/two": lax_type(b"text/plain", b"text/html"),
            "/xml": xml, "/big-untyped": big_untyped, "/xsl": xsl, "/smuggled": smuggled,
            "/sheet-untyped": sheet(), "/sheet-plain": sheet(b"text/plain; charset=utf-8"),
            "/sheet-invalid": sheet(b"text/css charset=utf-8"), "/sheet-html": sheet(b"text/html"),
            "/xml-smuggle": lax_type(b'application/xml; charset="x, text/html"'),
            "/304": not_modified, "/ok": ok, "/split": split, "/spaces": spaces, "/unknown": unknown,
            "/text": text(2000), "/big-text": text(LIMIT + 5000),
            "/binary": binary, "/h10": http10_stall, "/drop": drop, "/close": closing}


@pytest.fixture
def raw(redis_url: str, namespace: str) -> Iterator[tuple[Harness, RecordingUpstream, OpenSession]]:
    upstream = RecordingUpstream({})
    upstream.tunnelled = []  # type: ignore[attr-defined]
    upstream.scripts.update(_scripts(upstream))
    settings = Settings(host="127.0.0.1", proxy_port=0, proxy_domain=DOMAIN,
                        dev_allow_origins=(upstream.origin,), upstream_timeout_s=3.0, max_rewrite_bytes=LIMIT)
    harness = Harness(settings, redis_url, namespace)
    try:
        yield harness, upstream, harness.open_session((upstream.origin,))
    finally:
        upstream.close()
        harness.close()


def _connection(harness: Harness, s: OpenSession) -> tuple[http.client.HTTPConnection, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", harness.port, timeout=10)
    headers = {"Host": harness.host(s, s.origins[0]), "Cookie": f"__cb_{s.sid}={harness.credential(s)}"}
    return conn, headers


def _get(conn: http.client.HTTPConnection, path: str, headers: dict[str, str]) -> tuple[int, dict, bytes]:
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


def test_a_bodiless_chunked_response_leaves_the_connection_clean(raw: tuple) -> None:
    """A 304 may carry ``Transfer-Encoding: chunked``; the browser must get no body (not even the
    last chunk), or it reads that as the start of its next response."""
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        received = b""
        sock.sendall(f"GET /304 HTTP/1.1\r\n{head}\r\n".encode())
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        first, _, rest = received.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 304") and b"transfer-encoding" not in first.lower()
        sock.sendall(f"GET /ok HTTP/1.1\r\n{head}\r\n".encode())
        while not rest.endswith(b"ok"):
            rest += sock.recv(65536)
        assert rest.startswith(b"HTTP/1.1 200")  # nothing in between


@pytest.mark.parametrize("path", ["/early", "/continue-early"])
def test_interim_answers_before_the_page_are_dropped(raw: tuple, path: str) -> None:
    """``103 Early Hints`` (and a stray ``100``) before the answer: mitmproxy's HTTP/1 client took
    the first for the answer, and the page never came (the browser waited for it)."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        for _ in range(2):  # and the connection goes on
            status, _, body = _get(conn, path, headers)
            assert (status, body) == (200, b"ok")


def test_a_connection_must_bring_a_request_in_time(raw: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slowloris: connections that never complete (or trickle) a head or a body would be held
    without a credential. A connection has ``HEAD_TIMEOUT_S`` for a complete request, from when
    it opens and from the end of each answer (an idle keep-alive connection is closed then)."""
    harness, upstream, s = raw
    monkeypatch.setattr(addons, "HEAD_TIMEOUT_S", 1.0)
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\nHost: x")  # a head never finished
        assert read_until_closed(sock) == b""
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        # a body trickled without a credential (a chunk now and then keeps it from being idle)
        sock.sendall(b"POST /ok HTTP/1.1\r\nHost: nobody\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"1\r\na\r\n")
        assert read_until_closed(sock) == b""
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(b"GET /ok HTTP/1.1\r\n" + head + b"\r\n")
        answer = read_until_closed(sock)  # answered, then closed once idle for as long
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")


def test_only_a_valid_credential_lifts_the_deadline(raw: tuple, monkeypatch: pytest.MonkeyPatch) -> None:
    """A request whose head carries the session's credential may take its time over its body (an
    agent's slow upload); one with a ``__cb_{sid}`` cookie that is not a credential has until the
    deadline, as one without (or anyone could hold connections with a made-up cookie)."""
    harness, upstream, s = raw
    monkeypatch.setattr(addons, "HEAD_TIMEOUT_S", 1.0)
    host = harness.host(s, s.origins[0])
    chunked = "POST /ok HTTP/1.1\r\nHost: {}\r\nCookie: __cb_{}={}\r\nTransfer-Encoding: chunked\r\n"
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as agent:
        credential = harness.credential(s)
        agent.sendall(chunked.format(host, s.sid, credential).encode() + b"Connection: close\r\n\r\n")
        with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as bogus:
            bogus.sendall(chunked.format(host, s.sid, "bogus").encode() + b"\r\n1\r\na\r\n")
            assert read_until_closed(bogus) == b""  # closed at its deadline, after the agent's
        agent.sendall(b"0\r\n\r\n")  # the agent's connection, older, is still open
        answer = read_until_closed(agent)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    assert upstream.connections == 1


def test_floods_a_head_limit_would_not_see_are_cut_too(raw: tuple) -> None:
    """Blank lines before a request line are allowed, but h11 takes away one per read: 200 KB
    of them stalled the request behind (and a flood grew the buffer for ever). What a client
    pipelines while its request is answered (browsers do not) waits in the buffer: past a
    head's limit the connection closes. A NUL in the request target gets 400."""
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    blank_first = b"\r\n" * 100_000 + b"GET /ok HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n"
    answer = harness.raw_exchange(blank_first)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(b"GET /h10 HTTP/1.1\r\n" + head + b"\r\nGET /ok HTTP/1.1\r\nX: " + b"a" * 100_000)
        assert b"HTTP/1.1 200" not in read_until_closed(sock)  # closed, the pipelined request never served
    answer = harness.raw_exchange(b"GET /o\x00k HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


def test_requests_pipelined_past_the_head_limit_close_the_connection(raw: tuple) -> None:
    """Complete, small requests, pipelined behind one being answered: once more than
    ``MAX_REQUEST_HEAD`` (64 KiB) of them wait in the buffer, the connection closes and none of
    them is served (under the limit they would be, one after the other)."""
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    one = b"GET /ok HTTP/1.1\r\n" + head + b"\r\n"
    last = b"GET /ok HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n"
    pipelined = one * (66 * 1024 // len(one) + 1) + last
    assert 66 * 1024 < len(pipelined) < 70 * 1024
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(b"GET /h10 HTTP/1.1\r\n" + head + b"\r\n" + pipelined)
        assert read_until_closed(sock) == b""  # closed while /h10 was still on its way
    assert b"/ok" not in [h.split(b" ")[1] for h in upstream.heads]  # (/h10 may have gone)


def test_a_request_body_over_the_limit_gets_413_before_the_gate_reads_it_whole(
    raw: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mitmproxy reads a request's whole body before the gate runs: past ``MAX_REQUEST_BODY``
    (declared, or arriving chunked) the client gets the 413 page and the connection closes, with
    or without a credential; nothing reaches the upstream. (Bodies under it: test_cookies_headers.)"""
    harness, upstream, s = raw
    monkeypatch.setattr(buffering, "MAX_REQUEST_BODY", 64 * 1024)
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    before = upstream.connections
    declared = b"POST /ok HTTP/1.1\r\nHost: nobody\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 1000
    chunked = b"POST /ok HTTP/1.1\r\n" + head + b"Transfer-Encoding: chunked\r\n\r\n" + \
        b"4000\r\n" + b"y" * 0x4000 + b"\r\n"
    expecting = b"POST /ok HTTP/1.1\r\nHost: nobody\r\nContent-Length: 99999999\r\n"
    expecting += b"Expect: 100-continue\r\n\r\n"
    for request, repeat in ((declared, 1), (chunked, 8), (expecting + b"x", 1)):
        with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(request)
                for _ in range(repeat - 1):
                    sock.sendall(b"4000\r\n" + b"y" * 0x4000 + b"\r\n")
            received = read_until_closed(sock)
        assert received.startswith(b"HTTP/1.1 413") and b"Request too large" in received  # no 100
    assert upstream.connections == before
    small = b"GET /ok HTTP/1.1\r\n" + head + b"Content-Length: 0\r\nConnection: close\r\n\r\n"
    assert harness.raw_exchange(small).startswith(b"HTTP/1.1 200")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # mitmproxy's TLS, as in production
def test_a_tls_handshake_on_the_plain_http_listener_is_closed(raw: tuple) -> None:
    """TLS ends at the load balancer: mitmproxy would otherwise answer a ClientHello with a
    certificate it makes up for any name, and serve the proxy over it."""
    harness, upstream, s = raw
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    host = harness.host(s, s.origins[0]).split(":")[0]
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            with context.wrap_socket(sock, server_hostname=host):
                pass
    assert upstream.connections == 0


def test_an_http2_preface_is_closed_quietly(raw: tuple, caplog: pytest.LogCaptureFixture) -> None:
    """The listener speaks HTTP/1: mitmproxy logged a warning for every HTTP/2 preface (anyone
    could fill the log); it is closed without a word."""
    harness, upstream, s = raw
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(addons.H2_PREFACE)
        assert read_until_closed(sock) == b""
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(addons.H2_PREFACE[:10])  # in two reads: mitmproxy's HTTP/1 layer gets it
        time.sleep(0.2)
        with contextlib.suppress(OSError):
            sock.sendall(addons.H2_PREFACE[10:])
        read_until_closed(sock)
    assert not [r for r in caplog.records if "HTTP/2" in r.getMessage()]


def test_the_proxys_own_paths_however_written_never_go_upstream(raw: tuple) -> None:
    """``/%5F%5Fcobrowse/enter?ticket=...`` is not the upstream's: a ticket in it never goes there."""
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    for path in (b"/%5F%5Fcobrowse/enter?ticket=T", b"//__cobrowse/enter?ticket=T", b"/%5f%5fcobrowse/x",
                 b"/./__cobrowse/enter?ticket=T", b"/%2e/__cobrowse/enter?ticket=T",
                 b"/x/../__cobrowse/enter?ticket=T", b"/%5C__cobrowse/enter?ticket=T"):
        request = b"GET " + path + b" HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n"
        assert harness.raw_exchange(request).startswith(b"HTTP/1.1 404"), path
    assert upstream.connections == 0


def test_trace_and_malformed_header_fields_never_go_upstream(raw: tuple) -> None:
    """TRACE would echo the jar's cookies (HttpOnly ones too) back to the client; a lone CR or a
    NUL in a header field (mitmproxy lets them through) may end a line for the upstream: the
    client gets 400 and the upstream nothing at all (a lenient upstream would take the rest for
    another header)."""
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"Connection: close\r\n"
    trace = harness.raw_exchange(b"TRACE /ok HTTP/1.1\r\n" + head + b"\r\n")
    assert trace.startswith(b"HTTP/1.1 405")
    for bad in (b"X-A: a\rSet-Cookie: z=1", b"X-A: a\x00b"):  # (in a name mitmproxy refuses them)
        answer = harness.raw_exchange(b"GET /ok HTTP/1.1\r\n" + head + bad + b"\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400"), (bad, answer[:100])
    assert upstream.connections == 0


def test_a_worker_script_is_fetched_without_the_browsers_validators(raw: tuple) -> None:
    """The browser may revalidate a worker's script with the validators of a copy it holds as a
    plain script: a 304 would hand the worker that copy, without the runtime. A worker's module
    imports (cors) and other requests keep them."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    validators = {"If-None-Match": '"v1"', "If-Modified-Since": "Mon, 30 Nov 2026 00:00:00 GMT"}
    with contextlib.closing(conn):
        for dest, mode in (("worker", "same-origin"), ("sharedworker", "same-origin"), ("worker", "cors"),
                           ("script", "no-cors")):
            extra = {"Sec-Fetch-Dest": dest, "Sec-Fetch-Mode": mode, **validators}
            assert _get(conn, "/ok", {**headers, **extra})[0] == 200
            names = {name for name, _ in upstream.fields()}
            kept = {"if-none-match", "if-modified-since"} <= names
            assert kept == (mode == "cors" or dest == "script"), (dest, mode, names)


def test_an_empty_framed_body_goes_upstream_with_its_length(raw: tuple) -> None:
    """``POST`` with ``Content-Length: 0`` (or an empty chunked body): the upstream is told the
    body is empty; a request that came without a body goes without framing."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        for method, extra, length in (("POST", {"Content-Length": "0"}, ["0"]),
                                      ("POST", {"Transfer-Encoding": "chunked"}, ["0"]), ("GET", {}, [])):
            conn.putrequest(method, "/ok", skip_host=True, skip_accept_encoding=True)
            for name, value in {**headers, **extra}.items():
                conn.putheader(name, value)
            conn.endheaders(b"0\r\n\r\n" if "Transfer-Encoding" in extra else None)
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, b"ok")
            fields = upstream.fields()
            assert [v for n, v in fields if n == "content-length"] == length, (method, extra, fields)
            assert "transfer-encoding" not in dict(fields)


def test_a_protocol_switch_nobody_asked_for_gets_a_page_not_a_tunnel(raw: tuple) -> None:
    """An upstream that answers a plain request with ``101`` would turn the browser's connection
    into a raw pipe to it: its page unrewritten, and the browser's next requests on that
    connection, credential cookie included, sent to it as they are. The browser gets the "bad
    content" page instead, and the connection closes."""
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(f"GET /switch HTTP/1.1\r\n{head}\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        first, _, _ = received.partition(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 502") and b"connection: close" in first.lower()
        with contextlib.suppress(OSError):
            sock.sendall(f"GET /second HTTP/1.1\r\n{head}\r\n".encode())
            while chunk := sock.recv(65536):
                received += chunk
    assert b"101" not in received.split(b"\r\n", 1)[0] and b"tunnel=1" not in received
    assert b"secret" not in received  # the upstream's page never reached the browser
    assert not any(b"__cb_" in data for data in upstream.tunnelled)


def test_a_request_head_over_64_kib_gets_431_and_the_connection_closes(raw: tuple) -> None:
    """mitmproxy reads a head for as long as it grows: without a limit anyone who can connect
    fills the proxy's memory (no credential needed). A long but sane head still passes."""
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    flood = b"GET /ok HTTP/1.1\r\nHost: nobody\r\nX: " + b"a" * 4_000_000  # never ends
    answer = harness.raw_exchange(flood)
    assert answer.startswith(b"HTTP/1.1 431") and b"connection: close" in answer.lower()
    start = b"GET /ok HTTP/1.1\r\n" + head + b"Connection: close\r\nX-Big: "

    def sized(total: int) -> bytes:
        return start + b"b" * (total - len(start) - 4) + b"\r\n\r\n"

    answer = harness.raw_exchange(sized(64 * 1024 - 16))  # just under
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    answer = harness.raw_exchange(sized(64 * 1024 + 16))  # just over
    assert answer.startswith(b"HTTP/1.1 431") and b"connection: close" in answer.lower()
    assert len(upstream.heads) == 1


def test_a_flood_of_cookies_the_proxy_did_not_set_is_expired(raw: tuple) -> None:
    """A page that got round the runtime can plant cookies for the whole proxy domain, which the
    browser then sends to every session (``proxy.foreign_cookies``): a flood of them is expired
    by the answer, and by the 431 page of a head they made too large; a few are left alone, and
    so are the proxy's own."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        _expire_foreign_cookies(harness, upstream, s, conn, headers)


def _set_cookies(response: http.client.HTTPResponse) -> list[str]:
    response.read()
    return [v for k, v in response.getheaders() if k.lower() == "set-cookie" and "Max-Age=0" in v]


def _expire_foreign_cookies(
    harness: Harness, upstream: RecordingUpstream, s: OpenSession, conn: http.client.HTTPConnection,
    headers: dict[str, str],
) -> None:
    own = f"__cb_{s.sid}={harness.credential(s)}; __cb_abcdefghij={'C' * 43}; __Host-cbjv_{s.sid}=%5B%5D"
    headers["Cookie"] = own + "; _ga=GA1.2.3; consent=yes"  # a parent domain's, say: left alone
    conn.request("GET", "/ok", headers=headers)
    assert _set_cookies(conn.getresponse()) == []
    upstream.scripts["/ok/deep/er/file"] = upstream.scripts["/ok"]
    flood = "; ".join(f"j{i}={'v' * 4000}" for i in range(5))
    headers["Cookie"] = f"{own}; {flood}"
    conn.request("GET", "/ok/deep/er/file?x=1", headers=headers)
    assert _set_cookies(conn.getresponse()) == [
        f"j{i}=; Max-Age=0; Domain={DOMAIN}; Path={path}; Secure{partitioned}"  # localhost names
        for path in ("/", "/ok", "/ok/", "/ok/deep", "/ok/deep/", "/ok/deep/er", "/ok/deep/er/")
        for i in range(5)
        for partitioned in ("", "; Partitioned")
    ]
    # over the 64 KiB a head may have: the 431 page expires what it could read
    flood = "; ".join(f"j{i}é={'v' * 3900}" for i in range(20))  # named in UTF-8, say
    start = f"GET /ok HTTP/1.1\r\nHost: {headers['Host']}\r\nConnection: close\r\n"
    big = f"{start}Cookie: {own}; {flood}\r\n\r\n".encode()
    answer = harness.raw_exchange(big)
    assert answer.startswith(b"HTTP/1.1 431")
    whole = [i for i in range(20) if f"j{i}é={'v' * 3900};".encode() in big[: 64 * 1024]]
    assert whole == list(range(len(whole))) and len(whole) > 10  # those the proxy could read
    for i in whole:
        for path in ("/", "/ok"):
            expiry = f"set-cookie: j{i}é=; Max-Age=0; Domain={DOMAIN}; Path={path}; Secure\r\n"
            assert expiry.encode() in answer  # the name's own bytes
    assert f"j{len(whole) + 1}é=".encode() not in answer  # past the limit
    assert b"__cb_" not in answer and b"cbjv" not in answer
    # a host outside the proxy domain gets the page and no expiry
    elsewhere = big.replace(headers["Host"].encode(), b"x.example.com")
    answer = harness.raw_exchange(elsewhere)
    assert answer.startswith(b"HTTP/1.1 431") and b"set-cookie" not in answer.lower()


def test_an_upstream_head_over_256_kib_gets_the_502_page(raw: tuple) -> None:
    harness, upstream, s = raw
    _, headers = _connection(harness, s)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
    answer = harness.raw_exchange(b"GET /head-100k HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    answer = harness.raw_exchange(b"GET /head-300k HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 502") and b"Site unreachable" in answer


def test_an_upstream_that_closes_does_not_close_the_browsers_connection(raw: tuple) -> None:
    """A rewritten page from an upstream that says ``Connection: close`` is sent with its length:
    the browser keeps its connection; the proxy opens a new one upstream for the next request."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        for _ in range(2):
            status, got, _ = _get(conn, "/close", headers)
            assert status == 200 and "connection" not in got
        sock = conn.sock
        status, _, body = _get(conn, "/ok", headers)
        assert status == 200 and body == b"ok" and conn.sock is sock
    assert upstream.connections == 3


def test_an_untyped_body_split_after_whitespace_is_sniffed_whole(raw: tuple) -> None:
    """Over the limit, an untyped body streams on only if its start is not HTML: the start is
    the first bytes of the body, however the chunks split it."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        status, _, body = _get(conn, "/split", headers)
    assert status == 502 and b"Page too large" in body
    assert (upstream.origin + "/secret").encode() not in body


def test_untyped_and_unknown_typed_html_is_rewritten(raw: tuple) -> None:
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    proxied = harness.url(s, upstream.origin + "/secret").encode()
    with contextlib.closing(conn):
        for path in ("/spaces", "/unknown"):
            status, got, body = _get(conn, path, headers)
            assert status == 200 and got["content-type"].startswith("text/html"), path
            assert proxied in body and (upstream.origin + "/secret").encode() not in body, path


def test_an_untyped_body_that_is_not_html_passes_and_is_not_sniffed(raw: tuple) -> None:
    """As a document it must not be sniffed into HTML; as a script, an image or a font it keeps
    no type (``nosniff`` would block an untyped script)."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        for dest in ("document", "iframe", None):
            extra = {"Sec-Fetch-Dest": dest} if dest else {}
            status, got, body = _get(conn, "/binary", {**headers, **extra})
            assert status == 200 and body.startswith(b"\x89PNG")
            assert got["content-type"] == "application/octet-stream", dest
            assert got["x-content-type-options"] == "nosniff", dest
            assert "sec-fetch-dest" in got["vary"].lower(), dest
        for dest in ("script", "image", "font"):  # a stylesheet is CSS whatever it is (below)
            status, got, body = _get(conn, "/binary", {**headers, "Sec-Fetch-Dest": dest})
            assert status == 200 and body.startswith(b"\x89PNG")
            assert "content-type" not in got and "x-content-type-options" not in got, dest
    assert not harness.proxy.ctx.rewrite_pool.processes_started  # sniffed in place, not in a worker


@pytest.mark.parametrize("path", ["/text", "/big-text"])  # buffered whole; streamed past the limit
def test_an_untyped_text_body_shows_as_text(raw: tuple, path: str) -> None:
    """As a browser shows it (no binary data byte at its start): text/plain, never sniffed into
    HTML; elsewhere it keeps no type, as before."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        status, got, body = _get(conn, path, {**headers, "Sec-Fetch-Dest": "document"})
        assert status == 200 and body.startswith(b"Release notes: see ") and len(body) > 2000
        assert got["content-type"] == "text/plain" and got["x-content-type-options"] == "nosniff"
        status, got, _ = _get(conn, path, {**headers, "Sec-Fetch-Dest": "script"})
        assert status == 200 and "content-type" not in got and "x-content-type-options" not in got


def test_a_body_cut_short_by_the_idle_timeout_is_not_served_as_complete(raw: tuple) -> None:
    """The upstream's body ends with its connection (HTTP/1.0): closing it on the idle timeout
    makes the part received look complete. The browser gets the 504 page, and the timeout leaves
    no mark on its connection: the next failure there is itself (502), not another 504."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        status, _, body = _get(conn, "/h10", headers)
        assert status == 504 and b"Site too slow" in body and b"part one" not in body
        assert not upstream.rest_sent.is_set()  # answered while upstream still held the rest back
        status, _, body = _get(conn, "/drop", headers)
        assert status == 502 and b"Site unreachable" in body


@pytest.mark.parametrize(("path", "page", "status"), [("/drop", "upstream_unreachable", 502),
                                                      ("/split", "too_large", 502)])
def test_failed_exchanges_answer_fetch_with_json(raw: tuple, path: str, page: str, status: int) -> None:
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        got_status, got, body = _get(conn, path, {**headers, "Sec-Fetch-Mode": "cors"})
    assert got_status == status and got["content-type"] == "application/json"
    assert json.loads(body)["error"] == page


def test_labelled_html_that_starts_like_an_image_is_rewritten_unless_shown_as_media(raw: tuple) -> None:
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    secret = (upstream.origin + "/secret").encode()
    with contextlib.closing(conn):
        for dest in ("document", "iframe", None):  # (as a stylesheet it is CSS: test below)
            extra = {"Sec-Fetch-Dest": dest} if dest else {}
            status, got, body = _get(conn, "/disguised", {**headers, **extra})
            assert status == 200 and secret not in body, dest
            assert "sec-fetch-dest" in got["vary"].lower(), dest
        status, got, body = _get(conn, "/disguised", {**headers, "Sec-Fetch-Dest": "image"})
        assert body.startswith(b"GIF89a") and secret in body  # an <img>: untouched
        assert "sec-fetch-dest" in got["vary"].lower()
        assert got["content-type"] == "application/octet-stream"
        assert got["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/no-slash", "/spaced", "/two", "/smuggled"])
def test_content_types_are_read_as_browsers_read_them(raw: tuple, path: str) -> None:
    """``html`` is no type (the HTML is sniffed); ``text/html charset=utf-8`` is read as Chromium
    reads it; of two Content-Types the last counts, and a quoted, escaped quote does not hide
    the second one. The page is rewritten, with one Content-Type."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = response.read()
    assert response.status == 200
    assert response.headers.get_all("content-type") == ["text/html; charset=utf-8"]
    assert harness.url(s, upstream.origin + "/secret").encode() in body
    assert (upstream.origin + "/secret").encode() not in body


def test_an_xml_document_is_never_rendered_with_its_links(raw: tuple) -> None:
    """XML (here XHTML served as application/xml) passes untouched: shown as a document it would
    have live links that were not rewritten, so a document gets it as plain text; a fetch gets
    it as it is."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        status, got, _ = _get(conn, "/xml", {**headers, "Sec-Fetch-Dest": "document"})
        assert status == 200 and got["content-type"] == "text/plain; charset=utf-8"
        assert got["x-content-type-options"] == "nosniff" and "sec-fetch-dest" in got["vary"].lower()
        status, got, _ = _get(conn, "/xml", {**headers, "Sec-Fetch-Dest": "empty"})
        assert got["content-type"] == "application/xml; charset=utf-8" and "x-content-type-options" not in got


def test_an_untyped_body_announced_over_the_limit_streams_but_is_never_sniffed(raw: tuple) -> None:
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        status, got, body = _get(conn, "/big-untyped", {**headers, "Sec-Fetch-Dest": "document"})
        assert status == 200 and len(body) == LIMIT + 108
        assert got["content-type"] == "application/octet-stream"
        assert got["x-content-type-options"] == "nosniff"
        status, got, body = _get(conn, "/big-untyped", {**headers, "Sec-Fetch-Dest": "image"})
        assert status == 200 and "content-type" not in got
        assert "sec-fetch-dest" in got["vary"].lower()


def test_an_xsl_or_smuggling_xml_type_is_not_rendered_either(raw: tuple) -> None:
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        for path in ("/xsl", "/xml-smuggle"):
            conn.request("GET", path, headers={**headers, "Sec-Fetch-Dest": "document"})
            response = conn.getresponse()
            response.read()
            types = response.headers.get_all("content-type")
            assert len(types) == 1 and types[0].startswith("text/plain") and "html" not in types[0], path


@pytest.mark.parametrize(("path", "sent"), [("/sheet-untyped", None),
                                            ("/sheet-plain", "text/plain; charset=utf-8"),
                                            ("/sheet-invalid", "text/css"),
                                            ("/sheet-html", "text/html")])
def test_a_stylesheet_is_rewritten_whatever_its_type(raw: tuple, path: str, sent: str | None) -> None:
    """Chromium applies an untyped stylesheet (a quirks-mode page even a same-origin one of any
    type): loaded as a stylesheet, a body is rewritten as CSS and keeps the type it came with."""
    harness, upstream, s = raw
    conn, headers = _connection(harness, s)
    with contextlib.closing(conn):
        status, got, body = _get(conn, path, {**headers, "Sec-Fetch-Dest": "style"})
    assert status == 200 and (upstream.origin + "/secret.png").encode() not in body
    assert harness.url(s, upstream.origin + "/secret.png").encode() in body
    assert got.get("content-type") == (None if sent is None else sent.split(";")[0] + "; charset=utf-8")
