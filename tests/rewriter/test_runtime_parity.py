"""The runtime's URL codec computes exactly what rewriter/urls.py computes.

Many URLs (hand-picked edge cases and hypothesis-generated ones) go through ``UrlMapper.to_proxy``
in Python and ``window.__cobrowse.toProxy`` in Chromium, for a document whose upstream URL is
``https://shop.example.com/a/b``; the proxy URLs must be identical, and mapping them back
(``to_upstream`` / ``toUpstream``) must agree too.
"""

from __future__ import annotations

import ipaddress
import string
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_fixtures.fake_proxy import DOMAIN, SID, FakeProxy, browser_session, serve_fake_proxy

from rewriter.exceptions import RewriteError
from rewriter.urls import UrlMapper

pytestmark = pytest.mark.browser

DOC_ORIGIN = "https://shop.example.com"
DOC_URL = DOC_ORIGIN + "/a/b"
LONG_HOST = "a" * 60 + ".example"
KNOWN = [DOC_ORIGIN, "http://upstream.example", f"https://{LONG_HOST}", "http://under_score.example:8080"]

EDGE_CASES = [
    "https://shop.example.com/x?y=1#z",
    "HTTPS:#",  # (relative to the page: an empty fragment, kept)
    "https:?",
    "https:c?#",
    "http://127.0.0.1:8002/",
    "https://my-shop.example/",
    "https://a--b.example/p",
    "http://xn--bcher-kva.example/",
    "http://bücher.example/",
    "https://пример.испытание/путь",
    "http://straße.example/",
    "HTTP://UPPER.Example:8080/Path?Q=A#F",
    "http://user:pw@secret.example/login",
    "http://user@only-user.example/",
    "http://example.com./trailing-dot",
    "http://a.example:80/default-port",
    "https://a.example:443/",
    "https://a.example:80/",
    "http://a.example:65535/",
    "http://a.example:0/port-zero",
    "ws://socket.example/s",
    "wss://socket.example:444/s?x=1",
    "WSS://SOCKET.example/",
    "http://[::1]:8080/p",
    "https://[2001:DB8::1]/",
    "http://[::ffff:1.2.3.4]/mapped",
    "http://[fe80::1:2:3:4]:9/",
    "http://0x7f.1/",
    "http://2130706433/",
    "http://" + LONG_HOST + "/long",
    "https://" + "b" * 63 + ".example/label-too-long",
    "http://" + "c" * 43 + ".example/direct-label-of-63",  # the longest direct label
    "http://" + "c" * 44 + ".example/label-of-64-is-hashed",
    f"http://two.labels.{DOMAIN}/not-a-proxy-host",  # a proxy host has one label before the domain
    "http://under_score.example:8080/x",
    "http://under_score.example/unknown-port",
    "//cdn.example/protocol-relative.js",
    "\\\\cdn.example\\backslashes",
    "https:relative-with-scheme",
    "http:other-scheme-relative",
    "/root/relative?x=1",
    "relative/path",
    "#fragment-only",
    "?query-only",
    "data:text/plain,hello",
    "blob:https://shop.example.com/uuid",
    "mailto:someone@example.com",
    "javascript:void(0)",
    "about:blank",
    "  http://spaces.example/trimmed  ",
    "http://tab\t.example/",
    "ht\rtp://carriage\n-return.example/",
    "https://shop.example.com/%7Euser/%E2%82%AC?q=%20",
    "https://shop.example.com/a,b;c=d/e@f:g",
    "https://x.example/?",
    "https://x.example/#",
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeProxy]:
    with serve_fake_proxy() as server:
        server.known_origins = list(KNOWN)
        server.add(DOC_ORIGIN, "/a/b", "<!doctype html><html><head></head><body>parity</body></html>")
        yield server


@pytest.fixture(scope="module")
def page(browser: Any, fake: FakeProxy) -> Iterator[Any]:
    with browser_session(browser, fake) as session:
        session.page.goto(fake.proxy_url(DOC_URL))
        session.page.wait_for_function("typeof window.__cobrowse === 'object'")
        yield session.page


def python_side(mapper: UrlMapper, url: str) -> str | None:
    try:
        return mapper.to_proxy(url, base=DOC_URL)
    except RewriteError:
        return None


def python_back(mapper: UrlMapper, url: str) -> str | None:
    try:
        return mapper.to_upstream(url)
    except RewriteError:
        return None


def as_requested(page: Any, urls: list[str | None]) -> list[str | None]:
    """Python's outputs as the browser requests them: Python keeps path and query byte for byte
    (``/путь``, ``\\x``), the browser percent-encodes and normalises them on the wire."""
    return list(
        page.evaluate(
            "(urls) => urls.map((u) => u && /^(https?|wss?):/.test(u) ? new URL(u).href : u)",
            urls,
        )
    )


def compare(page: Any, fake: FakeProxy, urls: list[str]) -> None:
    mapper = fake.mapper
    js = page.evaluate(
        """(urls) => urls.map((u) => {
             const p = window.__cobrowse.toProxy(u);
             return [p, window.__cobrowse.toUpstream(p)];
           })""",
        urls,
    )
    py_raw = [python_side(mapper, url) for url in urls]
    py_all = as_requested(page, py_raw)
    blocked = fake.proxy_url("http://cobrowse-blocked.invalid/")
    mismatches = []
    for url, py_proxy, (js_proxy, js_back) in zip(urls, py_all, js, strict=True):
        if py_proxy is None:  # Python refuses it: the runtime must not let it out either
            if js_proxy != blocked and js_proxy != url:
                mismatches.append((url, "refused by Python", js_proxy))
            continue
        if py_proxy != js_proxy:
            mismatches.append((url, py_proxy, js_proxy))
            continue
        if py_proxy != url:  # mapped: the way back must agree as well
            py_back = as_requested(page, [python_back(mapper, py_proxy)])[0]
            if py_back != js_back:
                mismatches.append((py_proxy, py_back, js_back))
    assert mismatches == []


def test_edge_cases_map_identically(page: Any, fake: FakeProxy) -> None:
    compare(page, fake, EDGE_CASES)


def test_edge_cases_are_not_identity(page: Any, fake: FakeProxy) -> None:
    """The comparison above is not vacuous: the absolute URLs really get mapped, x labels included."""
    mapped = page.evaluate("(urls) => urls.map((u) => window.__cobrowse.toProxy(u))", EDGE_CASES[:3])
    assert all(f".cobrowse.localhost:{fake.port}/" in m for m in mapped)
    long_label = page.evaluate(
        "(u) => new URL(window.__cobrowse.toProxy(u)).hostname", f"http://{LONG_HOST}/"
    )
    assert long_label.startswith(SID + "x") and len(long_label.split(".")[0]) == 24
    assert (
        page.evaluate(
            "(u) => window.__cobrowse.toUpstream(window.__cobrowse.toProxy(u))", f"https://{LONG_HOST}/k?v"
        )
        == f"https://{LONG_HOST}/k?v"
    )


def proxy_host_urls(port: int) -> list[str]:
    """URLs on hosts under the proxy domain: this session's proxy origins (mapped already, kept)
    and everything else there (another session, another port or scheme, a name that is no label
    of this session), which both sides map as upstream URLs (docs/PROTOCOL.md)."""
    own = f"{SID}s-shop-example-com.{DOMAIN}"
    return [
        f"http://{own}:{port}/return?to=%2Fa&b=c#f",
        f"http://{own}:{port}",
        f"ws://{own}:{port}/socket",
        f"HTTP://{own.upper()}:{port}/Path",
        f"http://user:pw@{own}:{port}/a",
        f"  http://{own}:{port}/a\\b?c",
        f"http://{SID}h-cobrowse--blocked-invalid.{DOMAIN}:{port}/",
        f"http://{SID}x{'a' * 13}.{DOMAIN}:{port}/hashed-unknown",
        f"http://{SID}x{'a' * 12}1.{DOMAIN}:{port}/not-base32",
        f"http://{SID}s443-shop-example-com.{DOMAIN}:{port}/non-canonical",
        f"http://zzzzzzzzzzs-shop-example-com.{DOMAIN}:{port}/another-session",
        f"http://help.{DOMAIN}:{port}/an-upstream-name",
        f"http://{own}:{port + 1}/another-port",
        f"http://{own}/default-port",
        f"https://{own}:{port}/another-scheme",
        f"wss://{own}:{port}/another-ws-scheme",
        f"//{own}:{port}/protocol-relative-https",
    ]


def test_urls_on_proxy_hosts_map_identically(page: Any, fake: FakeProxy) -> None:
    urls = proxy_host_urls(fake.port)
    compare(page, fake, urls)
    mapped = page.evaluate("(urls) => urls.map((u) => window.__cobrowse.toProxy(u))", urls)
    assert mapped[0] == urls[0] and mapped[7] == urls[7]  # kept: not vacuous
    assert mapped[10].startswith(f"http://{SID}x")  # another session's host: mapped into this one


# labels of proxy hosts the codec never makes: no upstream URL for them, on either side
BACK_LABELS = [
    f"{SID}h-upstream-example",  # a real one, so that the comparison is not vacuous
    f"{SID}h080-upstream-example",  # the port not as the codec writes it
    f"{SID}h0-upstream-example",
    f"{SID}h1000000-upstream-example",
    f"{SID}h-upstream---example",  # an odd run of hyphens
    f"{SID}h-upstream-example-",
    f"{SID}s443-upstream-example",  # the default port written out
    f"{SID}i-0x0x0x0x0x0x0x1",  # an IPv6 address not in its shortest form
    f"{SID}x" + "a" * 13,  # a hashed label of no known origin
    f"{SID}q-upstream-example",  # no such kind
    "zzzzzzzzzzh-upstream-example",  # another session
    f"{SID}h-upstream-example.{SID}h-cdn-example",  # two labels before the proxy domain
]


def test_proxy_hosts_decode_identically(page: Any, fake: FakeProxy) -> None:
    urls = [f"http://{label}.{DOMAIN}:{fake.port}/p?q" for label in BACK_LABELS]
    js = page.evaluate("(urls) => urls.map((u) => window.__cobrowse.toUpstream(u))", urls)
    py = as_requested(page, [python_back(fake.mapper, url) for url in urls])
    assert js == py
    assert py[0] == "http://upstream.example/p?q" and py[1:] == [None] * (len(BACK_LABELS) - 1)


# --------------------------------------------------------------------------------------------
# generated URLs

LDH = string.ascii_lowercase + string.digits
dns_label = st.builds(
    lambda first, middle, last: first + middle + last,
    st.sampled_from(LDH),
    st.text(alphabet=LDH + "-", max_size=12),
    st.sampled_from(LDH),
) | st.sampled_from(LDH)
dns_host = (
    st.lists(dns_label, min_size=1, max_size=4)
    .map(".".join)
    .filter(lambda h: not h.split(".")[-1].isdigit() and not h.split(".")[-1].startswith("0x"))
)
odd_host = st.sampled_from(
    ["under_score.example", "a_b.c", "xn--bcher-kva.example", "bücher.example", "例え.テスト"]
)
long_host = st.integers(min_value=50, max_value=63).map(lambda n: "h" * n + ".example")
ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
ipv6 = st.integers(min_value=0, max_value=2**128 - 1).map(lambda n: f"[{ipaddress.IPv6Address(n)}]")
host = st.one_of(dns_host, dns_host.map(str.upper), odd_host, long_host, ipv4, ipv6)
port = st.one_of(st.just(""), st.integers(min_value=1, max_value=65535).map(lambda p: f":{p}"))
segment = st.text(alphabet=string.ascii_letters + string.digits + "-_~!$&'()*+,;=:@", min_size=1, max_size=8)
path = st.lists(segment, max_size=4).map(lambda parts: "/" + "/".join(parts))
query = st.one_of(
    st.just(""),
    st.text(alphabet=string.ascii_letters + string.digits + "=&-_", max_size=12).map(lambda q: "?" + q),
)
fragment = st.one_of(
    st.just(""), st.text(alphabet=string.ascii_letters + string.digits, max_size=6).map(lambda f: "#" + f)
)
scheme = st.sampled_from(["http", "https", "ws", "wss", "HTTP", "Https"])
userinfo = st.sampled_from(["", "user@", "user:pass@"])


@st.composite
def urls(draw: st.DrawFn) -> str:
    rest = draw(path) + draw(query) + draw(fragment)
    netloc = draw(userinfo) + draw(host) + draw(port)
    form = draw(st.sampled_from(["absolute", "absolute", "absolute", "protocol-relative", "relative"]))
    if form == "protocol-relative":
        return "//" + netloc + rest
    if form == "relative":
        return rest.lstrip("/") or "x"
    return draw(scheme) + "://" + netloc + rest


@settings(max_examples=12, deadline=None)
@given(batch=st.lists(urls(), min_size=30, max_size=30))
def test_generated_urls_map_identically(page: Any, fake: FakeProxy, batch: list[str]) -> None:
    compare(page, fake, batch)
