"""Realistic pages: no absolute upstream URL survives in any URL-bearing place of the output.

The check is independent of the rewriter's own table: lxml.html's ``iterlinks`` (href, src,
action, background, cite, data, codebase, longdesc, lowsrc, style url() and @import, ...) plus
the places it does not know (srcset, imagesrcset, formaction, poster, ping, xlink:href, meta
refresh, iframe srcdoc, <style> in SVG).
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import lxml.html
import pytest
from lxml import etree
from rewrite_helpers import make_mapper

from rewriter.css import rewrite_css
from rewriter.html import rewrite_html

FIXTURES = Path(__file__).parent / "fixtures"
PROXY_SUFFIX = ".cobrowse.localhost"
EXTRA_ATTRIBUTES = (
    "formaction",
    "poster",
    "ping",
    "{http://www.w3.org/1999/xlink}href",
    "xlink:href",
    "href",
)
# Where a browser reads a srcset (elsewhere, e.g. on an element lxml made of "<url(", it is text).
SRCSET_ATTRIBUTES = {"img": ("srcset",), "source": ("srcset",), "link": ("imagesrcset",)}
PAGES = {
    "shop.html": "https://www.shop.example/c/running",
    "news.html": "https://news.example/front",
    "legacy-latin1.html": "http://legacy.example/index.html",
}


def is_upstream(url: str) -> bool:
    """An absolute (or protocol-relative) http(s)/ws(s) URL whose host is not a proxy host, read as
    a browser reads it: C0 and spaces trimmed, tabs and newlines removed, backslashes are slashes."""
    text = url.strip("".join(map(chr, range(33)))).translate({9: None, 10: None, 13: None})
    text = text.replace("\\", "/")
    lower = text.lower()
    if not lower.startswith(("http:", "https:", "ws:", "wss:", "//")):
        return False
    rest = text.split(":", 1)[1] if not lower.startswith("//") else text
    try:
        host = urllib.parse.urlsplit("http://" + rest.lstrip("/")).hostname or ""
    except ValueError:
        return True  # not even parsable here: count it, the rewriter should have blocked it
    return not host.endswith(PROXY_SUFFIX)


def upstream_urls_left(out: bytes, *, css: bool = True) -> list[str]:
    """Upstream URLs left in URL-bearing places; ``css=False`` skips style texts and attributes,
    whose pattern-based check here cannot tell a URL from a string that merely contains one."""
    root = lxml.html.document_fromstring(out, parser=lxml.html.HTMLParser(encoding="utf-8", huge_tree=True))
    left = [
        link
        for el, attr, link, _pos in root.iterlinks()
        if is_upstream(link)
        and (css or not (attr == "style" or (attr is None and el.tag == "style")))
        # lxml lists ``action`` on any element; browsers submit only a <form>'s (what a fuzzed
        # "<url(//x)<form action=//y>" parses into is an <url(> element, as in browsers)
        and not (attr == "action" and el.tag != "form")
    ]
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name in EXTRA_ATTRIBUTES:
            for part in (element.get(name) or "").split():
                if is_upstream(part):
                    left.append(part)
        for name in SRCSET_ATTRIBUTES.get(element.tag.lower(), ()):
            left.extend(
                token for token in (element.get(name) or "").split() if is_upstream(token.rstrip(","))
            )
        if element.tag == "meta" and (element.get("http-equiv") or "").lower() == "refresh":
            content = element.get("content") or ""
            url = content.split("=", 1)[-1].strip("'\" ") if "=" in content else content.split(";")[-1]
            if is_upstream(url):
                left.append(url)
        if element.get("srcdoc"):
            left.extend(upstream_urls_left(element.get("srcdoc").encode("utf-8"), css=css))
        if css and element.tag == "style" and element.text:
            left.extend(f"style:{u}" for u in _css_urls(element.text) if is_upstream(u))
    return left


_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)


def _css_urls(css: str) -> list[str]:
    """Every url(...) and @import string of a style text, comments removed (a test-side finder)."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    return [m.group(1) or m.group(2) for m in _CSS_URL.finditer(css)]


@pytest.mark.parametrize("name", sorted(PAGES))
def test_fixture_page_keeps_no_upstream_url(name: str) -> None:
    body = (FIXTURES / name).read_bytes()
    assert upstream_urls_left(rewrite_html(body, url=PAGES[name], mapper=make_mapper())) == []
    original = upstream_urls_left(_as_utf8(body))
    assert len(original) >= 8, "the fixture should be full of absolute URLs, or this test proves nothing"


def _as_utf8(body: bytes) -> bytes:
    return lxml.html.tostring(lxml.html.document_fromstring(body), encoding="utf-8")


def test_shop_page_details() -> None:
    out = rewrite_html(
        (FIXTURES / "shop.html").read_bytes(),
        url=PAGES["shop.html"],
        mapper=make_mapper(),
        inject='<script src="/__cobrowse/runtime.js"></script>',
        mask_selectors=[".price"],
    )
    assert b"hunter2" not in out and b"\xe2\x82\xac89" not in out  # password and masked price
    assert b"integrity=" not in out and b"Content-Security-Policy" not in out
    assert b'<script nonce="Zm9v">window.dataLayer' in out
    assert b'content: "https://not-a-url.example/"' in out  # a CSS string, not a URL
    assert b"<!--[if lt IE 9]>" in out
    assert out.index(b"/__cobrowse/runtime.js") < out.index(b"<link")


def test_legacy_page_is_decoded_from_windows_1252() -> None:
    out = rewrite_html(
        (FIXTURES / "legacy-latin1.html").read_bytes(), url=PAGES["legacy-latin1.html"], mapper=make_mapper()
    )
    text = out.decode("utf-8")
    assert "Café crème € 2,50" in text
    assert '<meta charset="utf-8">' in text and "windows-1252" not in text


def test_news_page_base_and_srcdoc() -> None:
    out = rewrite_html((FIXTURES / "news.html").read_bytes(), url=PAGES["news.html"], mapper=make_mapper())
    root = etree.fromstring(out, etree.HTMLParser(encoding="utf-8"))
    assert root.xpath("//base/@href") == [
        "http://k3j9x2ab7qs-static-news-example.cobrowse.localhost:8001/assets/"
    ]
    assert root.xpath("//link[@rel='stylesheet']/@href")[0] == "main.css"


def test_fixture_style_sheet() -> None:
    out = rewrite_css(
        (FIXTURES / "site.css").read_bytes(),
        url="https://cdn.shop.example/css/site.css",
        mapper=make_mapper(),
    )
    text = out.decode("utf-8")
    links = _css_urls(text)
    assert len(links) >= 8
    assert [link for link in links if is_upstream(link)] == []
    assert '"https://example.com/ is a string"' in text
    assert "url(/icons/mask.svg)" in text
