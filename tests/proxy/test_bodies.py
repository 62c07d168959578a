"""Bodies: rewritten ones decoded with limits, others streamed untouched (Range, downloads),
size limits give the "too large" page, slow upstreams the 504 page."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from proxy import buffering, rewrite_pool
from tests.conftest import wait_until
from tests.proxy.conftest import Harness, OpenSession, Sites, make_settings
from tests.proxy.raw_upstream import RawUpstream, handshakeless_origin, unconnectable_origin
from tests.proxy.sites import VIDEO


@contextlib.contextmanager
def _harness(
    sites: Sites, redis_url: str, namespace: str, origin: str = "", **settings: Any
) -> Iterator[tuple[Harness, OpenSession, str, str]]:
    """A proxy with its own settings and a session on ``origin`` (the shop by default); on the way
    out the shop's stalled responses are released (so its server stops at once) and the proxy is
    closed."""
    harness = Harness(make_settings(sites, **settings), redis_url, namespace)
    try:
        yield (harness, *harness.session_on(origin or sites.shop.origin))
    finally:
        sites.shop.release.set()
        harness.close()


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_compressed_html_is_decoded_and_rewritten(harness: Harness, sites: Sites, coding: str) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    r = harness.get(s, host, f"/encoded?enc={coding}", credential=credential)
    assert r.status_code == 200
    assert "content-encoding" not in r.headers
    assert f'href="{harness.url(s, sites.shop.origin + "/about")}"' in r.text


def test_decompression_bomb_is_refused_as_too_large(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    r = harness.get(s, host, "/bomb", credential=credential)
    assert r.status_code == 502 and "Page too large" in r.text


def test_video_range_requests_stream_untouched(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    r = harness.get(s, host, "/video.mp4", credential=credential, headers={"range": "bytes=1000-1999"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 1000-1999/{len(VIDEO)}"
    assert r.content == VIDEO[1000:2000]
    full = harness.get(s, host, "/video.mp4", credential=credential)
    assert full.content == VIDEO


def test_download_keeps_its_disposition(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    r = harness.get(s, host, "/download", credential=credential)
    assert r.headers["content-disposition"] == 'attachment; filename="report.csv"'
    assert r.content == b"report,1\n" * 1000


def test_non_rewritten_bodies_stream_without_waiting_for_the_end(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    cookie = f"__cb_{s.sid}={credential}"
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(f"GET /drip HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n".encode())
        received = b""
        while b"first-chunk;" not in received:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the first chunk"
            received += chunk
        assert b"rest" not in received  # upstream has not finished: the proxy did not buffer
        sites.shop.release.set()
        while b"rest" not in received:
            chunk = sock.recv(65536)
            assert chunk
            received += chunk


def test_rewrite_workers_zero_keeps_every_page_in_threads(
    sites: Sites, redis_url: str, namespace: str
) -> None:
    with _harness(sites, redis_url, namespace, rewrite_workers=0) as (harness, s, credential, host):
        for kb in (64, 400):
            r = harness.get(s, host, f"/big?kb={kb}", credential=credential)
            assert r.status_code == 200 and "/__cobrowse/runtime.js" in r.text
        assert not harness.proxy.ctx.rewrite_pool.processes_started


def test_a_page_held_in_its_rewrite_does_not_stall_other_sessions(
    sites: Sites, redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewriting runs off the event loop: while one session's page is held in its rewrite (a
    thread here), another session's requests are answered."""
    started, release = threading.Event(), threading.Event()
    real = rewrite_pool.rewrite

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(10), "the rewrite was never released"
        return real(*args, **kwargs)

    monkeypatch.setattr(rewrite_pool, "rewrite", held)
    with _harness(sites, redis_url, namespace, rewrite_workers=0) as (harness, s, credential, host):
        other, other_credential, other_host = harness.session_on(sites.shop.origin)
        with ThreadPoolExecutor(1) as executor:
            page = executor.submit(harness.get, s, host, "/about", credential=credential)
            assert started.wait(10)
            r = harness.get(other, other_host, "/api/items", credential=other_credential)
            assert r.status_code == 200 and r.json()["items"] == ["mug", "tee"]
            assert not page.done()  # answered while the page was still in its rewrite
            release.set()
            answer = page.result(timeout=20)
        assert answer.status_code == 200 and "/__cobrowse/runtime.js" in answer.text


def test_connections_are_kept_alive_on_both_sides(harness: Harness, sites: Sites) -> None:
    """Chunked upstream bodies, rewritten or streamed, leave both connections reusable: one
    client connection and one upstream connection carry every request."""
    s, credential, host = harness.session_on(sites.shop.origin)
    conn = http.client.HTTPConnection("127.0.0.1", harness.port, timeout=10)
    headers = {"Host": host, "Cookie": f"__cb_{s.sid}={credential}"}
    try:
        for path in ("/chunks", "/chunks?type=image/png", "/chunks", "/about", "/chunks?type=image/png"):
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, path
            assert not response.will_close, f"{path}: the proxy closed the client connection"
            if "png" in path:
                assert body.startswith(b"\x89PNG")
            elif path == "/chunks":
                assert harness.url(s, sites.shop.origin + "/about").encode() in body
    finally:
        conn.close()
    assert sites.shop.hits["/chunks"] == 4
    assert len(sites.shop.connections) == 1, "the proxy opened a new upstream connection per request"


def test_html_over_the_rewrite_limit_gets_the_too_large_page(
    sites: Sites, redis_url: str, namespace: str
) -> None:
    with _harness(sites, redis_url, namespace, max_rewrite_bytes=32 * 1024) as (harness, s, credential, host):
        for query in ("kb=64", "kb=64&chunked=1"):
            r = harness.get(s, host, f"/big?{query}", credential=credential)
            assert r.status_code == 502, query
            assert "Page too large" in r.text and "xxxx" not in r.text
        ok = harness.get(s, host, "/big?kb=16", credential=credential)
        assert ok.status_code == 200 and "x" * 1000 in ok.text


def test_a_chunked_page_over_the_limit_is_refused_as_it_arrives(
    sites: Sites, redis_url: str, namespace: str
) -> None:
    """The limit holds while a body without Content-Length arrives: the proxy answers as soon as
    64 KiB are in, while upstream still holds the rest back (it never buffers past the limit)."""
    with _harness(sites, redis_url, namespace, max_rewrite_bytes=32 * 1024) as (harness, s, credential, host):
        r = harness.get(s, host, "/stall?kb=64", credential=credential)
        assert not sites.shop.stall_done.is_set()  # answered while upstream still held the rest back
        assert r.status_code == 502 and "Page too large" in r.text and "xxxx" not in r.text
        # the next request of the session is served as usual
        assert harness.get(s, host, "/about", credential=credential).status_code == 200


def test_an_untyped_body_over_the_limit_streams_on_untouched(
    sites: Sites, redis_url: str, namespace: str
) -> None:
    """A body with no Content-Type is buffered to be sniffed; past the limit, one that does not
    start like HTML is streamed on as it is, not refused."""
    with _harness(sites, redis_url, namespace, max_rewrite_bytes=32 * 1024) as (harness, s, credential, host):
        sites.shop.release.set()
        r = harness.get(s, host, "/stall?kb=64&type=none", credential=credential)
        assert r.status_code == 200
        # no destination given: it may be shown as a document, so it must not be sniffed
        assert r.headers["content-type"] == "application/octet-stream"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.content.startswith(b"\x89PNG") and r.content.endswith(b"releasedend")
        assert len(r.content) == 64 * 1024 + len(b"releasedend")


def test_a_buffered_body_that_stops_arriving_gets_the_504_page(
    sites: Sites, redis_url: str, namespace: str
) -> None:
    with _harness(sites, redis_url, namespace, upstream_timeout_s=1.5) as (harness, s, credential, host):
        r = harness.get(s, host, "/stall?kb=4", credential=credential)
        assert not sites.shop.stall_done.is_set()  # answered while upstream still held the rest back
        assert r.status_code == 504 and "Site too slow" in r.text
        # slow but alive: a chunk every 0.1 s for 3.5 s, more than twice the timeout in total
        slow = harness.get(s, host, "/stall?kb=4&every=0.1", credential=credential)
        assert slow.status_code == 200 and slow.text.endswith("</body></html>")


def test_slow_upstream_gets_the_504_page(sites: Sites, redis_url: str, namespace: str) -> None:
    with _harness(sites, redis_url, namespace, upstream_timeout_s=0.5) as (harness, s, credential, host):
        r = harness.get(s, host, "/slow?s=5&tag=504-page", credential=credential)
        assert r.status_code == 504 and "Site too slow" in r.text
        # answered by the timeout, not after the upstream's late answer
        assert "504-page" not in sites.shop.slow_answered
        assert harness.get(s, host, "/about", credential=credential).status_code == 200


def _live_upstream_connections(harness: Harness) -> tuple[int, list[str]]:
    """The proxy's client connections and its upstream connection tasks not yet done."""
    async def look() -> tuple[int, list[str]]:
        ps = harness.proxy.ctx.connections.proxyserver
        tasks = [t.get_name() for t in asyncio.all_tasks()
                 if t.get_name().startswith("server connection handler") and not t.done()]
        return len(ps.connections), tasks

    return harness.call(look())


@pytest.mark.parametrize("hangs_in", ["tcp connect", "tls handshake"])
def test_an_upstream_whose_connect_never_completes_gets_the_504_page(
    sites: Sites, redis_url: str, namespace: str, hangs_in: str
) -> None:
    """The upstream timeout covers opening the connection, its TCP connect (mitmproxy has no
    connect timeout of its own: the OS's answers after about two minutes) and its TLS handshake:
    a navigation gets the 504 page, a fetch its JSON form, in time; nothing of the attempt is
    left, and the session's next page works."""
    timeout = 1.0
    origin = unconnectable_origin if hangs_in == "tcp connect" else handshakeless_origin
    with origin() as hung:
        allowed = {"dev_allow_origins": (hung, sites.shop.origin), "upstream_timeout_s": timeout}
        with _harness(sites, redis_url, namespace, **allowed) as (harness, _s, _c, _h):
            s = harness.open_session((hung, sites.shop.origin))
            credential = harness.credential(s)
            for mode, accept in (("navigate", "text/html"), ("cors", "*/*")):
                started = time.monotonic()
                r = harness.get(s, harness.host(s, hung), "/", credential=credential, timeout=timeout + 4,
                                headers={"sec-fetch-mode": mode, "accept": accept})
                elapsed = time.monotonic() - started
                assert r.status_code == 504, (mode, r.status_code, r.text[:200])
                assert elapsed >= timeout, (mode, elapsed)  # the client's own limit bounds it above
                if mode == "navigate":
                    assert "Site too slow" in r.text and r.headers["content-type"].startswith("text/html")
                else:
                    assert r.json()["error"] == "upstream_timeout"
            wait_until(lambda: _live_upstream_connections(harness) == (0, []),
                       lambda: f"connections and upstream tasks left: {_live_upstream_connections(harness)}",
                       timeout_s=5)
            shop = harness.get(s, harness.host(s, sites.shop.origin), "/about", credential=credential)
            assert shop.status_code == 200 and ">About</h1>" in shop.text


def test_pages_are_rewritten_in_the_lane_of_their_size(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    pool = harness.proxy.ctx.rewrite_pool
    small = harness.get(s, host, "/big?kb=8", credential=credential)
    assert "/__cobrowse/runtime.js" in small.text
    assert not pool.processes_started
    medium = harness.get(s, host, "/big?kb=64", credential=credential)
    assert "/__cobrowse/runtime.js" in medium.text and "x" * 64 * 1024 in medium.text
    assert pool.started("medium") and not pool.started("large")
    large = harness.get(s, host, "/big?kb=400", credential=credential)
    assert large.status_code == 200
    assert "/__cobrowse/runtime.js" in large.text and "x" * 400 * 1024 in large.text
    assert pool.started("large")


BOUNDARY = 4096


def _html_of(size: int) -> bytes:
    head, tail = b"<!doctype html><html><body>", b"</body></html>"
    return head + b"x" * (size - len(head) - len(tail)) + tail


@pytest.fixture
def exact_upstream() -> Iterator[RawUpstream]:
    """``/{kind}/{n}`` answers n bytes of HTML at once, chunked: /held keeps its connection open
    after them (until the test ends), /whole ends the body there; /declared sends them with a
    ``Content-Length``."""
    upstream = RawUpstream({})

    def send(conn: socket.socket, size: int, end: bool) -> bool:
        body = _html_of(size)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"%x\r\n%s\r\n" % (len(body), body) + (b"0\r\n\r\n" if end else b""))
        if not end:
            upstream.stop.wait(30)
        return not end

    def declared(conn: socket.socket, size: int) -> bool:
        body = _html_of(size)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))
        return False

    for size in (BOUNDARY, BOUNDARY + 1):
        upstream.scripts[f"/held/{size}"] = lambda conn, size=size: send(conn, size, False)
        upstream.scripts[f"/whole/{size}"] = lambda conn, size=size: send(conn, size, True)
        upstream.scripts[f"/declared/{size}"] = lambda conn, size=size: declared(conn, size)
    try:
        yield upstream
    finally:
        upstream.close()


def test_a_buffered_page_of_exactly_the_limit_passes_and_one_byte_more_is_refused_at_once(
    sites: Sites, redis_url: str, namespace: str, exact_upstream: RawUpstream
) -> None:
    origin = exact_upstream.origin
    limited = {"origin": origin, "dev_allow_origins": (origin,), "max_rewrite_bytes": BOUNDARY}
    with _harness(sites, redis_url, namespace, **limited) as (harness, s, credential, host):
        ok = harness.get(s, host, f"/whole/{BOUNDARY}", credential=credential)
        assert ok.status_code == 200 and "x" * 1000 in ok.text
        over = harness.get(s, host, f"/whole/{BOUNDARY + 1}", credential=credential)
        assert over.status_code == 502 and "Page too large" in over.text
        # the byte over the limit is refused as it arrives, though the upstream holds its body open
        held = harness.get(s, host, f"/held/{BOUNDARY + 1}", credential=credential)
        assert held.status_code == 502 and "Page too large" in held.text


def test_a_page_that_declares_exactly_the_limit_passes_and_one_byte_more_is_refused(
    sites: Sites, redis_url: str, namespace: str, exact_upstream: RawUpstream
) -> None:
    # a Content-Length is checked with the headers, before any of the body is read
    origin = exact_upstream.origin
    limited = {"origin": origin, "dev_allow_origins": (origin,), "max_rewrite_bytes": BOUNDARY}
    with _harness(sites, redis_url, namespace, **limited) as (harness, s, credential, host):
        ok = harness.get(s, host, f"/declared/{BOUNDARY}", credential=credential)
        assert ok.status_code == 200 and "x" * 1000 in ok.text
        assert "/__cobrowse/runtime.js" in ok.text  # rewritten, not passed through
        over = harness.get(s, host, f"/declared/{BOUNDARY + 1}", credential=credential)
        assert over.status_code == 502 and "Page too large" in over.text and "xxxx" not in over.text


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "declared"])
def test_a_request_body_of_exactly_the_limit_passes_and_one_byte_more_gets_413(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    monkeypatch.setattr(buffering, "MAX_REQUEST_BODY", BOUNDARY)
    s, credential, host = harness.session_on(sites.shop.origin)

    def post(size: int) -> Any:
        body = b"b" * size
        content = iter([body]) if chunked else body  # an iterator goes chunked, without a length
        return harness.get(s, host, "/echo-body", credential=credential, method="POST", content=content)

    ok = post(BOUNDARY)
    assert ok.status_code == 200 and ok.json()["body"] == "b" * BOUNDARY
    over = post(BOUNDARY + 1)
    assert over.status_code == 413 and "Request too large" in over.text
    assert sites.shop.hits["/echo-body"] == 1


@pytest.mark.parametrize(
    ("broken", "path", "upstream_text"),
    [
        ("on_response_headers", "/about", ">About</h1>"),  # a page to rewrite
        ("on_response_headers", "/download", "report,1"),  # a body that would stream
        ("on_response", "/about", ">About</h1>"),
    ],
)
def test_a_bug_while_answering_gives_the_error_page_and_nothing_of_the_upstream_body(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch, broken: str, path: str,
    upstream_text: str,
) -> None:
    """A response hook that fails must not let the upstream answer through as it came (unrewritten,
    its URLs leaving the session): the agent gets the "internal" page, and the next request works."""
    from proxy import rewriting

    s, credential, host = harness.session_on(sites.shop.origin)

    def bug(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the proxy")

    monkeypatch.setattr(rewriting, broken, bug)
    for mode, accept in (("navigate", "text/html"), ("cors", "*/*")):
        r = harness.get(s, host, path, credential=credential,
                        headers={"sec-fetch-mode": mode, "accept": accept})
        assert r.status_code == 500, (mode, r.status_code, r.text[:200])
        assert upstream_text not in r.text and "a bug in the proxy" not in r.text
        if mode == "cors":
            assert r.json()["error"] == "internal"
    assert sites.shop.hits[path] == 2  # fetched, and refused on the way back
    monkeypatch.undo()
    assert upstream_text in harness.get(s, host, path, credential=credential).text


@pytest.mark.parametrize("kb", [1, 40, 200])  # rewritten in a thread, in a worker, in the large lane
def test_a_document_the_rewriter_cannot_read_gets_the_unreadable_page_and_the_next_one_works(
    harness: Harness, sites: Sites, kb: int
) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    r = harness.get(s, host, f"/broken.svg?kb={kb}", credential=credential,
                    headers={"sec-fetch-mode": "navigate", "accept": "text/html,image/svg+xml"})
    assert r.status_code == 502 and "Unreadable page" in r.text and "unclosed" not in r.text
    for _ in range(3):  # the pool that failed it still rewrites (every worker of the lane)
        page = harness.get(s, host, f"/big?kb={kb}", credential=credential)
        assert page.status_code == 200 and "/__cobrowse/runtime.js" in page.text
