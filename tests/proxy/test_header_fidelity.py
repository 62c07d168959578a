"""What the upstream hears and the browser gets where headers decide: requests from another
session, Clear-Site-Data, Accept-Encoding, odd content codings, partial answers, HEAD, downloads.
The upstream is the raw one: it records every request head as it arrived."""

from __future__ import annotations

import gzip
import json
import re
import socket
import urllib.parse
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cobrowse.settings import Settings
from proxy import compression, cookie_sync
from proxy.egress import EgressPolicy
from tests.proxy import fake_dns as dns
from tests.proxy.conftest import DOMAIN, Harness, OpenSession
from tests.proxy.raw_upstream import RecordingUpstream

PAGE_LINK = "<a href='{origin}/secret'>x</a>"


def _send(conn: socket.socket, head: str, body: bytes = b"") -> None:
    conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)


@pytest.fixture
def up(redis_url: str, namespace: str) -> Iterator[tuple[Harness, RecordingUpstream, OpenSession]]:
    upstream = RecordingUpstream({})
    link = PAGE_LINK.format(origin=upstream.origin).encode()
    html = b"<html><body>" + link + b"<p>hello</p></body></html>"

    def ok(conn: socket.socket) -> None:
        _send(conn, "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 2\n", b"ok")

    def login(conn: socket.socket) -> None:
        _send(conn, "HTTP/1.1 200 OK\nContent-Type: text/plain\nSet-Cookie: sess=1; Path=/\n"
                    "Set-Cookie: theme=dark; Path=/app\nSet-Cookie: hidden=1; Path=/; HttpOnly\n"
                    "Content-Length: 2\n", b"ok")

    def logout(conn: socket.socket) -> None:
        _send(conn, 'HTTP/1.1 200 OK\nContent-Type: text/plain\nClear-Site-Data: "cookies", "storage"\n'
                    "Content-Length: 2\n", b"ok")

    def odd_coding(conn: socket.socket) -> None:
        _send(conn, f"HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Encoding: utf-8\n"
                    f"Content-Length: {len(html)}\n", html)

    def partial(conn: socket.socket) -> None:
        _send(conn, f"HTTP/1.1 206 Partial Content\nContent-Type: text/html\n"
                    f"Content-Range: bytes 0-{len(html) - 1}/9999\nContent-Length: {len(html)}\n", html)

    def head(conn: socket.socket) -> None:  # what a HEAD of a compressed page says
        _send(conn, "HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Encoding: gzip\nContent-Length: 129\n")

    def head_plain(conn: socket.socket) -> None:
        _send(conn, "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 77\n")

    def head_untyped(conn: socket.socket) -> None:
        _send(conn, "HTTP/1.1 200 OK\nContent-Length: 77\n")

    def download(conn: socket.socket) -> None:
        _send(conn, f"HTTP/1.1 200 OK\nContent-Type: text/html\n"
                    f'Content-Disposition: attachment; filename="page.html"\n'
                    f"Content-Length: {len(html)}\n", html)

    def latin(conn: socket.socket) -> None:  # a cookie value in Latin-1, as some servers send
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nSet-Cookie: lang=caf\xe9; Path=/\r\n"
                     b"Content-Length: 2\r\n\r\nok")

    def sheet(conn: socket.socket) -> None:  # a stylesheet served as an attachment (S3 and others)
        css = f"p {{ background: url({upstream.origin}/bg.png) }}".encode()
        _send(conn, f"HTTP/1.1 200 OK\nContent-Type: text/css\nContent-Disposition: attachment\n"
                    f"Content-Length: {len(css)}\n", css)

    def tagged(conn: socket.socket) -> None:  # a page with validators, resumable upstream
        _send(conn, f'HTTP/1.1 200 OK\nContent-Type: text/html\nETag: "p1"\nAccept-Ranges: bytes\n'
                    f"Last-Modified: Mon, 30 Nov 2026 00:00:00 GMT\nContent-Length: {len(html)}\n", html)

    big = b"<html><body>" + link * 200 + b"</body></html>"
    zipped = gzip.compress(big)

    def big_gzipped(conn: socket.socket) -> None:  # as most servers send a page
        _send(conn, f'HTTP/1.1 200 OK\nContent-Type: text/html\nContent-Encoding: gzip\nETag: "p2"\n'
                    f"Content-Length: {len(zipped)}\n", zipped)

    def unchanged(conn: socket.socket) -> None:  # a revalidated page
        _send(conn, 'HTTP/1.1 304 Not Modified\nContent-Type: text/html\nETag: "p2"\n')

    data = b'{"items": [' + b",".join(b'"item"' for _ in range(400)) + b"]}"

    def big_json(conn: socket.socket) -> None:  # streams untouched
        _send(conn, f"HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: {len(data)}\n", data)

    upstream.scripts["/tagged"] = tagged
    upstream.scripts["/big-gzipped"] = big_gzipped
    upstream.scripts["/unchanged"] = unchanged
    upstream.scripts["/big-json"] = big_json
    upstream.scripts.update({"/ok": ok, "/login": login, "/logout": logout, "/odd-coding": odd_coding,
                             "/partial": partial, "/head": head, "/download": download, "/latin": latin,
                             "/sheet": sheet, "/head-plain": head_plain, "/head-untyped": head_untyped})
    settings = Settings(host="127.0.0.1", proxy_port=0, proxy_domain=DOMAIN,
                        dev_allow_origins=(upstream.origin,), upstream_timeout_s=5.0)
    harness = Harness(settings, redis_url, namespace)
    try:
        yield harness, upstream, harness.open_session((upstream.origin,))
    finally:
        upstream.close()
        harness.close()


def _get(
    harness: Harness, s: OpenSession, upstream: RecordingUpstream, path: str, **kwargs: Any
) -> httpx.Response:
    return harness.get(s, harness.host(s, upstream.origin), path, credential=harness.credential(s), **kwargs)


def test_a_page_of_another_session_cannot_reach_this_one(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    """Every proxy origin is on one site, so the browser sends this session's credential with a
    request a page of another session makes (a form post, a fetch): the other visitor's site
    could act in this one with this visitor's cookies. Refused, and nothing goes upstream."""
    harness, upstream, s = up
    other = harness.open_session((upstream.origin,))
    mine = f"http://{harness.host(s, upstream.origin)}"
    theirs = f"http://{harness.host(other, upstream.origin)}"
    for headers in ({"origin": theirs}, {"referer": theirs + "/page"}, {"origin": "null", "referer": theirs}):
        headers = {**headers, "sec-fetch-mode": "navigate"}
        r = _get(harness, s, upstream, "/ok", method="POST", headers=headers)
        assert r.status_code == 403 and "another co-browsing session" in r.text, headers
    # a page that hides where it is (no-referrer, an opaque origin) posting from another origin
    # of the proxy's site: its credential comes along, it could be another session's page
    for headers in (
        {"origin": "null", "sec-fetch-mode": "navigate"},  # a form a script submitted
        {"sec-fetch-mode": "no-cors"},  # a beacon
        # the proxy's own path (writes the jar), even in a form the agent submitted
        {"origin": "null", "sec-fetch-mode": "navigate", "sec-fetch-user": "?1",
         "path": "/__cobrowse/cookies"},
    ):
        path = headers.pop("path", "/ok")
        headers = {**headers, "sec-fetch-site": "same-site"}
        r = _get(harness, s, upstream, path, method="POST", headers=headers)
        assert r.status_code == 403 and "another co-browsing session" in r.text, headers
    assert upstream.heads == []
    # ...but a page posting to its own origin, the agent's frame loading a page (no referrer), and
    # a client that is no browser's page go on
    for method, headers in (
        ("POST", {"origin": "null", "sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate"}),
        # a form the agent submitted (a click) from a page whose referrer policy hides it
        ("POST", {"origin": "null", "sec-fetch-site": "same-site", "sec-fetch-mode": "navigate",
                  "sec-fetch-user": "?1"}),
        ("GET", {"sec-fetch-site": "same-site", "sec-fetch-mode": "navigate"}),
        ("POST", {}),
    ):
        assert _get(harness, s, upstream, "/ok", method=method, headers=headers).status_code == 200, headers
    # its own pages, the console and other sites are not another session: the upstream is asked,
    # and an origin that is not this session's goes as null (one the upstream does not trust)
    for origin, sent in ((mine, upstream.origin), ("http://cobrowse.localhost:8000", "null"),
                         ("https://elsewhere.example", "null")):
        r = _get(harness, s, upstream, "/ok", method="POST", headers={"origin": origin})
        assert r.status_code == 200
        assert ("origin", sent) in upstream.fields()


def test_clear_site_data_cookies_empties_the_jar_and_the_rest_goes_on(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    harness, upstream, s = up
    _get(harness, s, upstream, "/login")
    _get(harness, s, upstream, "/ok")
    (cookie,) = [value for name, value in upstream.fields() if name == "cookie"]
    assert sorted(cookie.split("; ")) == ["hidden=1", "sess=1"]
    r = _get(harness, s, upstream, "/logout")
    # "storage" is the proxy origin's own; "cookies" in the browser would clear every session's
    # credential (they share the proxy's site)
    assert r.headers.get_list("clear-site-data") == ['"storage"']
    _get(harness, s, upstream, "/ok")
    assert [name for name, _ in upstream.fields()].count("cookie") == 0  # logged out


def test_clear_site_data_from_an_insecure_origin_clears_nothing(
    up: tuple[Harness, RecordingUpstream, OpenSession], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Browsers apply ``Clear-Site-Data`` only from a potentially trustworthy origin: from plain
    http on a name (not loopback) the jar keeps its cookies, as the browser would."""
    harness, upstream, _ = up
    dns.install(monkeypatch).answers["plain.test"] = [["127.0.0.1"]]
    origin = f"http://plain.test:{upstream.port}"
    harness.proxy.ctx.egress = EgressPolicy((*harness.settings.dev_allow_origins, origin))
    s = harness.open_session((origin,))
    credential, host = harness.credential(s), harness.host(s, origin)
    harness.get(s, host, "/login", credential=credential)
    r = harness.get(s, host, "/logout", credential=credential)
    assert r.status_code == 200 and "clear-site-data" not in r.headers
    harness.get(s, host, "/ok", credential=credential)
    (cookie,) = [value for name, value in upstream.fields() if name == "cookie"]
    assert sorted(cookie.split("; ")) == ["hidden=1", "sess=1"]  # still logged in


def test_a_request_in_absolute_form_goes_upstream_in_origin_form(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    """``GET http://{proxy host}/ok``: the upstream gets ``GET /ok``, never a URL that names the
    proxy's host or the address the connection was pinned to."""
    harness, upstream, s = up
    host = harness.host(s, upstream.origin)
    answer = harness.raw_exchange(
        f"GET http://{host}/ok HTTP/1.1\r\nHost: {host}\r\nCookie: __cb_{s.sid}={harness.credential(s)}\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert upstream.heads[-1].startswith(b"GET /ok HTTP/1.1\r\n")


def test_the_browser_holds_the_jars_script_view_for_the_runtime(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    """``__cbjv_{sid}``: the origin's script-visible cookies on every path (the runtime filters by its
    document's), in document.cookie order; sent only when the browser's copy is not the jar's."""
    harness, upstream, s = up
    view = f"__Host-cbjv_{s.sid}"
    r = _get(harness, s, upstream, "/login")
    sent = r.headers.get_list("set-cookie")
    (value,) = [c.split(";")[0].split("=", 1)[1] for c in sent if c.startswith(view + "=")]
    assert json.loads(urllib.parse.unquote(value)) == [["theme", "dark", "/app"], ["sess", "1", "/"]]
    again = _get(harness, s, upstream, "/ok", headers={"cookie": f"{view}={value}"})
    assert not [c for c in again.headers.get_list("set-cookie") if c.startswith(view + "=")]
    assert all("cbjv" not in v for _, v in upstream.fields())  # a proxy cookie: never upstream
    cleared = _get(harness, s, upstream, "/logout", headers={"cookie": f"{view}={value}"})
    assert f"{view}=%5B%5D; Path=/; SameSite=Lax; Secure" in cleared.headers.get_list("set-cookie")
    # too large for a cookie: a digest, and the runtime asks the proxy
    big = [("c", "v" * 5000, "/")]
    assert cookie_sync.view_value(big).startswith("!") and len(cookie_sync.view_value(big)) == 17


@pytest.mark.parametrize(
    ("sent", "heard"),
    [
        ("identity", "identity"),  # a Range request must get the bytes it names
        ("identity;q=1, *;q=0", "identity;q=1, gzip;q=0, deflate;q=0, br;q=0, zstd;q=0"),
        ("gzip, deflate, br, zstd, dcb, dcz", "gzip, deflate, br, zstd"),  # what the proxy decodes
        ("compress", "identity"),
    ],
)
def test_accept_encoding_is_narrowed_to_what_the_proxy_decodes(
    up: tuple[Harness, RecordingUpstream, OpenSession], sent: str, heard: str
) -> None:
    harness, upstream, s = up
    _get(harness, s, upstream, "/ok", headers={"accept-encoding": sent})
    assert ("accept-encoding", heard) in upstream.fields()


def test_a_content_coding_no_browser_knows_shows_the_body_as_it_came(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    harness, upstream, s = up
    r = _get(harness, s, upstream, "/odd-coding", headers={"sec-fetch-dest": "document"})
    assert r.status_code == 200 and "<p>hello</p>" in r.text
    assert "/__cobrowse/runtime.js" in r.text  # rewritten as a page
    assert f"{upstream.origin}/secret" not in r.text  # its link mapped


def test_a_part_of_a_page_goes_as_it_came_and_never_as_a_document(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    harness, upstream, s = up
    fetched = _get(harness, s, upstream, "/partial", headers={"range": "bytes=0-", "sec-fetch-dest": "empty"})
    assert fetched.status_code == 206
    assert fetched.headers["content-type"] == "text/html"
    assert "__cobrowse" not in fetched.text and "bytes 0-" in fetched.headers["content-range"]
    as_document = {"range": "bytes=0-", "sec-fetch-dest": "document"}
    shown = _get(harness, s, upstream, "/partial", headers=as_document)
    assert shown.headers["content-type"] == "application/octet-stream"
    assert shown.headers["x-content-type-options"] == "nosniff"


def test_a_rewritten_page_names_its_destination_in_its_validator_and_is_never_resumed(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    """proxy/validators.py: the page's copy and a script's copy of one URL differ, so their tags
    do; no date validator (it cannot say which copy); and no range of the upstream's bytes may
    complete a rewritten copy."""
    harness, upstream, s = up
    page = _get(harness, s, upstream, "/tagged", headers={"sec-fetch-dest": "document"})
    fetched = _get(harness, s, upstream, "/tagged", headers={"sec-fetch-dest": "empty"})
    assert page.headers["etag"] == '"p1.cbr-document"' and fetched.headers["etag"] == '"p1.cbr-empty"'
    for answer in (page, fetched):
        assert "last-modified" not in answer.headers
        assert answer.headers["accept-ranges"] == "none"
    other_copy = {"sec-fetch-dest": "document", "if-none-match": '"p1.cbr-empty"'}
    _get(harness, s, upstream, "/tagged", headers=other_copy)
    assert ("if-none-match", '"p1.cbr-empty"') in upstream.fields()  # never the upstream's "p1"


def test_a_head_of_a_rewritten_type_names_no_length_or_coding(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    """A GET of it is rewritten: another length, and decoded."""
    harness, upstream, s = up
    r = _get(harness, s, upstream, "/head", method="HEAD")
    assert r.status_code == 200
    assert "content-encoding" not in r.headers and r.headers.get("content-length") != "129"
    # what a GET rewrites whatever its type: a stylesheet, a worker's script, an untyped body
    rewritten = (("/head-plain", "style"), ("/head-plain", "worker"), ("/head-untyped", "document"))
    for path, dest in rewritten:
        r = _get(harness, s, upstream, path, method="HEAD", headers={"sec-fetch-dest": dest})
        assert r.headers.get("content-length") != "77", (path, dest)
    plain = _get(harness, s, upstream, "/head-plain", method="HEAD", headers={"sec-fetch-dest": "empty"})
    assert plain.headers["content-length"] == "77"  # passes as it is: its length holds


def test_a_download_is_the_file_the_site_sends(up: tuple[Harness, RecordingUpstream, OpenSession]) -> None:
    """Browsers save an attachment, never render it: the file is the site's, not a rewritten copy
    carrying the runtime's config (the visitor's script-visible cookies among it)."""
    harness, upstream, s = up
    _get(harness, s, upstream, "/login")
    r = _get(harness, s, upstream, "/download", headers={"sec-fetch-dest": "document"})
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    link = PAGE_LINK.format(origin=upstream.origin).encode()
    assert r.content == b"<html><body>" + link + b"<p>hello</p></body></html>"
    assert "theme" not in r.text
    assert r.headers["content-type"] == "application/octet-stream"  # never shown (an <object>)
    # a subresource is never downloaded: a stylesheet sent as an attachment is still applied
    sheet = _get(harness, s, upstream, "/sheet", headers={"sec-fetch-dest": "style"})
    assert f"{upstream.origin}/bg.png" not in sheet.text and "cobrowse.localhost" in sheet.text


def test_a_cookie_value_in_latin_1_breaks_nothing(up: tuple[Harness, RecordingUpstream, OpenSession]) -> None:
    harness, upstream, s = up
    r = _get(harness, s, upstream, "/latin")
    assert r.status_code == 200
    view = "%5B%5B%22lang%22%2C%22caf%5Cudce9%22%2C%22%2F%22%5D%5D"
    assert f"__Host-cbjv_{s.sid}={view}" in r.headers["set-cookie"]
    assert _get(harness, s, upstream, "/ok").status_code == 200
    assert ("cookie", "lang=caf\udce9") in [(n, v.encode("latin-1").decode("utf-8", "surrogateescape"))
                                             for n, v in upstream.fields()]


def _raw(harness: Harness, s: OpenSession, upstream: RecordingUpstream, path: str,
         headers: dict[str, str]) -> tuple[httpx.Headers, bytes]:
    """The answer's headers and its body as it came on the wire (not decoded)."""
    credential = f"__cb_{s.sid}={harness.credential(s)}"
    all_headers = {"host": harness.host(s, upstream.origin), "cookie": credential, **headers}
    with harness.client() as c, c.stream("GET", path, headers=all_headers) as r:
        assert r.status_code == 200
        return r.headers, b"".join(r.iter_raw())


def _clockless(page: bytes) -> bytes:
    """``page`` with the runtime config's ``now`` (the proxy's clock as it answered) set to 0."""
    out, count = re.subn(rb"(now(?:&quot;|&#34;|\")\s*:\s*)[-+0-9.e]+", rb"\g<1>0", page)
    assert count == 1, page[:300]
    return out


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate, br, zstd", "zstd"),  # what Chromium sends over https
        ("gzip, deflate, br", "br"),
        ("gzip, deflate", "gzip"),
        ("zstd;q=0.1, gzip", "gzip"),
        ("*", "zstd"),
        ("deflate", None),  # the one coding browsers disagree on: never sent
        ("identity", None),
        ("br;q=0, *;q=0", None),
    ],
)
def test_rewritten_bodies_go_in_a_coding_the_browser_accepts(
    up: tuple[Harness, RecordingUpstream, OpenSession], accept: str, coding: str | None
) -> None:
    """The upstream sends its page gzipped (as most do); the proxy decodes it to rewrite it, and
    the agent's browser gets it compressed again (it would be 4 to 5 times larger otherwise)."""
    harness, upstream, s = up
    nav = {"sec-fetch-dest": "document", "sec-fetch-mode": "navigate"}
    headers, raw = _raw(harness, s, upstream, "/big-gzipped", {**nav, "accept-encoding": accept})
    _, plain = _raw(harness, s, upstream, "/big-gzipped", {**nav, "accept-encoding": "identity"})
    assert headers.get("content-encoding") == coding
    assert int(headers["content-length"]) == len(raw)
    body = compression.decode(raw, coding or "", 10_000_000)
    # the same page but for the proxy's time in the runtime's config (each answer's own)
    assert _clockless(body) == _clockless(plain)
    assert b"cobrowse-config" in body and harness.host(s, upstream.origin).encode() in body
    if coding:
        assert len(raw) * 5 < len(body)
    assert "accept-encoding" in [v.strip().lower() for v in headers["vary"].split(",")]
    assert headers["etag"] == '"p2.cbr-document"'  # whatever the coding (see the next test)


def test_a_compressed_copys_validator_still_names_the_upstreams(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    """The tag of a compressed copy is the copy's as ever: a script that read the page writes
    with ``If-Match`` and the upstream gets its own strong tag back (made weak, it never matches:
    412). A 304 or a HEAD for a page says ``Vary: Accept-Encoding`` as its 200 would."""
    harness, upstream, s = up
    fetch = {"sec-fetch-dest": "empty", "sec-fetch-mode": "cors", "accept-encoding": "zstd"}
    headers, _ = _raw(harness, s, upstream, "/big-gzipped", fetch)
    assert headers["content-encoding"] == "zstd" and headers["etag"] == '"p2.cbr-empty"'
    _get(harness, s, upstream, "/ok", headers={**fetch, "if-match": headers["etag"]})
    assert ("if-match", '"p2"') in upstream.fields()
    r = _get(harness, s, upstream, "/unchanged", headers={**fetch, "if-none-match": headers["etag"]})
    assert r.status_code == 304 and "accept-encoding" in r.headers["vary"].lower()
    assert ("if-none-match", '"p2"') in upstream.fields()
    r = _get(harness, s, upstream, "/head", method="HEAD", headers={"accept-encoding": "zstd"})
    assert "content-encoding" not in r.headers and "accept-encoding" in r.headers["vary"].lower()


def test_small_or_untouched_bodies_are_not_compressed_again(
    up: tuple[Harness, RecordingUpstream, OpenSession],
) -> None:
    harness, upstream, s = up
    accept = {"accept-encoding": "gzip, br, zstd"}
    # a fetched fragment of under 1 KiB: the coding's own bytes are not worth it
    headers, raw = _raw(harness, s, upstream, "/tagged", {**accept, "sec-fetch-dest": "empty"})
    assert "content-encoding" not in headers and raw.startswith(b"<html>")
    # not rewritten (JSON streams untouched): as the upstream sent it, however large
    headers, raw = _raw(harness, s, upstream, "/big-json", accept)
    assert "content-encoding" not in headers and raw.startswith(b'{"items"') and len(raw) > 2048
