"""The rewritten HTML in Chromium: what the browser itself resolves and fetches stays in the proxy.

No client runtime is injected: this checks the server-side rewriter alone. Every request the page
makes is intercepted (nothing reaches a network) and recorded; URL-bearing properties are read
back through the DOM, i.e. resolved by Chromium's own URL parser, backslashes, tabs and all.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from rewrite_helpers import make_mapper, proxy

from rewriter.exceptions import RewriteError
from rewriter.html import rewrite_html
from rewriter.urls import Origin, join_url, parse_url

pytestmark = pytest.mark.browser

UPSTREAM = "https://shop.example/dir/page.html"
PAGE = proxy("s-shop-example", "/dir/page.html")
PROXY_HOST_SUFFIX = ".cobrowse.localhost"

# every place and every spelling a browser reads as another host
TRICKY = [
    "https://evil.example/1",
    "//evil.example/2",
    "/\\evil.example/3",
    "\\\\evil.example/4",
    "\\/evil.example/5",
    "https:\\\\evil.example/6",
    "https:/\\evil.example/7",
    "http:evil.example/8",
    "/&#9;/evil.example/9",
    "/&#10;/evil.example/10",
    "ht&#10;tps://evil.example/11",
    "HTTPS://EVIL.EXAMPLE/12",
    " \t//evil.example/13 ",
    "https://\u2603.example/14",
    "https://evil.example:99999/15",
]

STYLE_FORMS = [
    "url(https://evil.example/s1)",
    "url(\\2f\\2f evil.example/s2)",
    "url('/\\\\evil.example/s3')",
    'url("/\t/evil.example/s4")',
    "url(http:evil.example/s5)",
    "image-set('//evil.example/s6' 1x)",
    "\\75 rl(//evil.example/s7)",
    "image-s\\65t('https:evil.example/s8' 1x)",
]


def _document() -> str:
    parts = ["<!DOCTYPE html><html><head>"]
    for i, url in enumerate(TRICKY):
        parts.append(f'<link rel="stylesheet" href="{url}"><link rel="preload" as="image" href="{url}?p{i}">')
    parts.append("<style>@import '/\\\\evil.example/imp.css';")
    parts.extend(f".s{i}{{background:{form}}}" for i, form in enumerate(STYLE_FORMS))
    parts.append("</style></head><body>")
    for i, url in enumerate(TRICKY):
        parts.append(
            f'<a id="a{i}" href="{url}" ping="{url}">a</a><img src="{url}" srcset="{url} 2x">'
            f'<iframe src="{url}"></iframe><script src="{url}"></script>'
            f'<form action="{url}"><button formaction="{url}">b</button><input type="image" src="{url}"'
            f' formaction="{url}"></form><video poster="{url}"><source src="{url}"></video>'
            f'<object data="{url}"></object><embed src="{url}">'
            f'<svg><image href="{url}" width="1" height="1"/><a href="{url}"><text>t</text></a></svg>'
        )
    parts.extend(f'<div class="s{i}" style="width:5px;height:5px"></div>' for i in range(len(STYLE_FORMS)))
    parts.extend(
        f'<div style="width:5px;height:5px;background:{form.replace(chr(34), chr(39))}"></div>'
        for form in STYLE_FORMS
    )
    parts.append("</body></html>")
    return "".join(parts)


# every URL-bearing property, as Chromium resolves it
READ_BACK = """() => {
  const out = [];
  const abs = (v) => { try { return new URL(v, document.baseURI).href; } catch (e) { return null; } };
  const props = {a: ['href'], link: ['href'], img: ['src', 'currentSrc'], iframe: ['src'],
                 script: ['src'], form: ['action'], button: ['formAction'], input: ['src', 'formAction'],
                 video: ['poster'], source: ['src'], object: ['data'], embed: ['src']};
  for (const [tag, names] of Object.entries(props)) {
    for (const el of document.querySelectorAll(tag)) {
      if (el instanceof SVGElement) continue;
      for (const name of names) out.push(el[name]);
    }
  }
  for (const el of document.querySelectorAll('a[ping]')) {
    for (const part of el.getAttribute('ping').split(/\\s+/)) out.push(abs(part));
  }
  for (const el of document.querySelectorAll('svg image, svg a')) out.push(abs(el.getAttribute('href')));
  return out.filter((u) => u);
}"""


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or ""


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()


def _serve(page: Any, document: bytes) -> list[str]:
    requested: list[str] = []

    def handle(route: Any) -> None:
        url = route.request.url
        requested.append(url)
        if url == PAGE:
            route.fulfill(status=200, body=document, headers={"content-type": "text/html; charset=utf-8"})
        elif _host(url).endswith(PROXY_HOST_SUFFIX):
            route.fulfill(status=404, body=b"", headers={"content-type": "text/plain"})
        else:
            route.abort()  # escaped: recorded, never fetched

    page.context.route("**/*", handle)
    return requested


def test_nothing_chromium_resolves_or_fetches_leaves_the_proxy(page: Any) -> None:
    source = _document()
    out = rewrite_html(source.encode("utf-8"), url=UPSTREAM, mapper=make_mapper())
    requested = _serve(page, out)
    page.goto(PAGE, wait_until="load")
    page.wait_for_function("document.readyState === 'complete'")
    resolved = page.evaluate(READ_BACK)
    assert len(resolved) >= 14 * len(TRICKY)  # the read-back saw the elements
    escaped = [
        u
        for u in resolved + requested
        if u.startswith(("http", "ws")) and not _host(u).endswith(PROXY_HOST_SUFFIX)
    ]
    assert escaped == []
    fetched_hosts = {_host(u) for u in requested}
    assert "k3j9x2ab7qs-evil-example.cobrowse.localhost" in fetched_hosts  # the page did load things


def test_the_same_page_unrewritten_would_escape(page: Any) -> None:
    """The check above can fail: Chromium, given the original bytes, goes to evil.example."""
    requested = _serve(page, _document().encode("utf-8"))
    page.goto(PAGE, wait_until="load")
    resolved = page.evaluate(READ_BACK)
    escaped_hosts = {_host(u) for u in resolved + requested} - {_host(PAGE)}
    assert {"evil.example", "xn--n3h.example"} <= escaped_hosts


@pytest.mark.parametrize(
    ("content", "label"),
    [
        ("0;url=/\\evil.example/r", "s-evil-example"),
        ("0; URL='https:\\\\evil.example/r'", "s-evil-example"),
        ("0,url=//evil.example/r", "s-evil-example"),
        ("0;http:evil.example/r", "h-evil-example"),
    ],
)
def test_meta_refresh_navigates_inside_the_proxy(page: Any, content: str, label: str) -> None:
    doc = f'<!DOCTYPE html><meta http-equiv="refresh" content="{content}"><p>wait</p>'
    _serve(page, rewrite_html(doc.encode("utf-8"), url=UPSTREAM, mapper=make_mapper()))
    with page.expect_request(lambda request: request.url != PAGE) as refresh:
        page.goto(PAGE, wait_until="commit")
    assert refresh.value.url == proxy(label, "/r")


# references whose host a browser and the codec must read alike (the base is the upstream page)
REFERENCES = [
    *(url.replace("&#9;", "\t").replace("&#10;", "\n") for url in TRICKY),
    "x", "/x", "\\x", "./\\x", "?q", "#f", "", " ", "https:", "http:", "https:x", "https:/x", "https:\\x",
    "https:?q", "HTTP://A.EXAMPLE:80/x", "https://a.example:443/", "https://a.example:8443/",
    "https://user:pw@a.example/", "https://@a.example/", "https://a.example./", "https://A.ExAmPlE/",
    "https://0x7f.1/", "https://2130706433/", "https://[::1]/", "https://[0:0::1]:8080/",
    "https://b\u00fccher.example/", "https://\uff21.example/", "https://a%2Eexample/", "//a.example\\x",
    "\\\\a.example", "/\\/a.example", "\t/\n/a.example/", "ws://a.example/", "wss:a.example/",
    "https:///a.example/", "https:////a.example/", "https:\\\\\\a.example/",
]  # fmt: skip
BASES = ["https://shop.example/dir/page.html", "http://shop.example:8080/dir/"]


def test_the_codec_resolves_hosts_as_chromium_does(page: Any) -> None:
    """join_url + parse_url against Chromium's URL parser: the same origin, or both refuse."""
    cases = [(base, ref) for base in BASES for ref in REFERENCES]
    chromium = page.evaluate(
        """(cases) => cases.map(([b, r]) => {
             try { const u = new URL(r, b); return [u.protocol, u.hostname, u.port]; }
             catch (e) { return null; }
           })""",
        cases,
    )
    disagree = []
    for (base, ref), theirs in zip(cases, chromium, strict=True):
        try:
            ours: Origin | None = parse_url(join_url(base, ref)).origin
        except RewriteError:
            ours = None
        if theirs is None or theirs[0] not in ("http:", "https:", "ws:", "wss:"):
            continue  # Chromium refuses it or it is another scheme: nothing is fetched from a host
        expected = Origin.parse(f"{theirs[0]}//{theirs[1]}{':' + theirs[2] if theirs[2] else ''}")
        if ours != expected:
            disagree.append((base, ref, ours, expected))
    assert disagree == []
