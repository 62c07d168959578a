"""HTML rewriting: every URL-bearing place, injection, encodings, masking, survival of odd input."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from rewrite_helpers import BLOCKED, EVIL, make_mapper, proxy
from test_fixtures import upstream_urls_left

from rewriter.exceptions import InvalidSelector, UnrewritableDocument
from rewriter.html import MAX_SRCDOC_DEPTH, rewrite_html
from rewriter.masking import MASK
from rewriter.urls import UrlMapper

URL = "https://shop.example/dir/page.html"
SHOP = proxy("s-shop-example", "/x")
CDN = proxy("s-cdn-example", "/a.png")
INJECT = '<script src="/__cobrowse/runtime.js"></script><script>__cobrowse_config={"a":"</x>"}</script>'


def rewrite(html: str | bytes, **kwargs: object) -> bytes:
    body = html.encode("utf-8") if isinstance(html, str) else html
    return rewrite_html(body, url=kwargs.pop("url", URL), mapper=make_mapper(), **kwargs)  # type: ignore[arg-type]


def parse(out: bytes) -> etree._Element:
    return etree.fromstring(out, etree.HTMLParser(encoding="utf-8", huge_tree=True))


# (fragment, XPath of the value in the output, expected value)
PLACES = [
    ('<a href="https://shop.example/x">a</a>', "//a/@href", SHOP),
    ('<a href="//shop.example/x">a</a>', "//a/@href", SHOP),
    ('<a href=" https://shop.example/x ">a</a>', "//a/@href", SHOP),
    ('<a href="HTTPS://SHOP.EXAMPLE/x">a</a>', "//a/@href", SHOP),
    ('<a href="/x">a</a>', "//a/@href", "/x"),
    ('<a href="x?y=https://shop.example/">a</a>', "//a/@href", "x?y=https://shop.example/"),
    ('<a href="#https://shop.example/">a</a>', "//a/@href", "#https://shop.example/"),
    (
        "<a href=\"javascript:go('https://shop.example/x')\">a</a>",
        "//a/@href",
        "javascript:go('https://shop.example/x')",
    ),
    ('<a href="mailto:a@shop.example">a</a>', "//a/@href", "mailto:a@shop.example"),
    ('<a href="data:text/html,https://x">a</a>', "//a/@href", "data:text/html,https://x"),
    ('<map><area href="https://shop.example/x"></map>', "//area/@href", SHOP),
    ('<link rel="stylesheet" href="https://shop.example/x">', "//link/@href", SHOP),
    ('<link rel="preload" as="image" href="https://shop.example/x">', "//link/@href", SHOP),
    ('<link rel="modulepreload" href="https://shop.example/x">', "//link/@href", SHOP),
    ('<link rel="manifest" href="https://shop.example/x">', "//link/@href", SHOP),
    ('<link rel="icon" href="https://shop.example/x">', "//link/@href", SHOP),
    ('<base href="https://shop.example/x">', "//base/@href", SHOP),
    ('<img src="https://cdn.example/a.png">', "//img/@src", CDN),
    ('<script src="https://cdn.example/a.png"></script>', "//script/@src", CDN),
    ('<iframe src="https://cdn.example/a.png"></iframe>', "//iframe/@src", CDN),
    ('<frameset><frame src="https://cdn.example/a.png"></frameset>', "//frame/@src", CDN),
    ('<embed src="https://cdn.example/a.png">', "//embed/@src", CDN),
    ('<video><source src="https://cdn.example/a.png"></video>', "//source/@src", CDN),
    ('<video><track src="https://cdn.example/a.png"></video>', "//track/@src", CDN),
    ('<audio src="https://cdn.example/a.png"></audio>', "//audio/@src", CDN),
    (
        '<video src="https://cdn.example/a.png" poster="https://cdn.example/a.png"></video>',
        "//video/@poster",
        CDN,
    ),
    ('<input type="image" src="https://cdn.example/a.png">', "//input/@src", CDN),
    ('<form action="https://shop.example/x"></form>', "//form/@action", SHOP),
    ('<form><button formaction="https://shop.example/x">b</button></form>', "//button/@formaction", SHOP),
    ('<form><input type="submit" formaction="https://shop.example/x"></form>', "//input/@formaction", SHOP),
    ('<object data="https://cdn.example/a.png"></object>', "//object/@data", CDN),
    ('<body background="https://cdn.example/a.png"></body>', "//body/@background", CDN),
    ('<table background="https://cdn.example/a.png"><tr><td>x</td></tr></table>', "//table/@background", CDN),
    ('<blockquote cite="https://shop.example/x">q</blockquote>', "//blockquote/@cite", SHOP),
    ('<a ping="https://shop.example/x /rel">a</a>', "//a/@ping", f"{SHOP} /rel"),
    ('<div data-href="https://shop.example/x"></div>', "//div/@data-href", "https://shop.example/x"),
    ('<p title="see https://shop.example/x">t</p>', "//p/@title", "see https://shop.example/x"),
    (
        '<meta property="og:url" content="https://shop.example/x">',
        "//meta/@content",
        "https://shop.example/x",
    ),
    # srcset and imagesrcset, split as the HTML standard does
    ('<img srcset="https://cdn.example/a.png 1x">', "//img/@srcset", f"{CDN} 1x"),
    ('<img srcset="https://cdn.example/a.png">', "//img/@srcset", CDN),
    (
        '<img srcset="https://cdn.example/a,b.png 1x,https://cdn.example/a.png 2x">',
        "//img/@srcset",
        f"{proxy('s-cdn-example', '/a,b.png')} 1x,{CDN} 2x",
    ),
    (
        '<img srcset="https://cdn.example/a.png,https://cdn.example/a.png 2x">',
        "//img/@srcset",
        f"{proxy('s-cdn-example', '/a.png,https://cdn.example/a.png')} 2x",  # one URL: no space
    ),
    ('<img srcset="a.png 1x, //cdn.example/a.png 2x">', "//img/@srcset", f"a.png 1x, {CDN} 2x"),
    (
        '<img srcset="https://cdn.example/a.png 1x (x), https://cdn.example/a.png 2x">',
        "//img/@srcset",
        f"{CDN} 1x (x), {CDN} 2x",  # a closed parenthesis: the next comma ends the candidate
    ),
    (
        '<img srcset="https://cdn.example, https://cdn.example/a.png 2x">',
        "//img/@srcset",
        f"{proxy('s-cdn-example')}, {CDN} 2x",  # an origin alone: its trailing comma is no part of it
    ),
    (
        '<picture><source srcset="https://cdn.example/a.png 100w (foo, bar), b.png"></picture>',
        "//source/@srcset",
        f"{CDN} 100w (foo, bar), b.png",
    ),
    (
        '<link rel="preload" as="image" imagesrcset="https://cdn.example/a.png 2x">',
        "//link/@imagesrcset",
        f"{CDN} 2x",
    ),
    # style attribute and <style>
    (
        '<div style="background:url(https://cdn.example/a.png)"></div>',
        "//div/@style",
        f"background:url({CDN})",
    ),
    (
        "<div style=\"background:image-set('//cdn.example/a.png' 1x)\"></div>",
        "//div/@style",
        f"background:image-set('{CDN}' 1x)",
    ),
    ("<style>a{b:url(https://cdn.example/a.png)}</style>", "//style/text()", f"a{{b:url({CDN})}}"),
    ('<style>@import "https://cdn.example/a.png";</style>', "//style/text()", f'@import "{CDN}";'),
    (
        '<style>a{content:"https://cdn.example/a.png"}</style>',
        "//style/text()",
        'a{content:"https://cdn.example/a.png"}',
    ),
    # meta refresh
    (
        '<meta http-equiv="refresh" content="5; url=https://shop.example/x">',
        "//meta/@content",
        f"5; url={SHOP}",
    ),
    (
        '<meta http-equiv="Refresh" content="0;URL=\'https://shop.example/x\'">',
        "//meta/@content",
        f"0;URL='{SHOP}'",
    ),
    ('<meta http-equiv="refresh" content="0; https://shop.example/x">', "//meta/@content", f"0; {SHOP}"),
    ('<meta http-equiv="refresh" content="3">', "//meta/@content", "3"),
    ('<meta http-equiv="refresh" content="1; url=next.html">', "//meta/@content", "1; url=next.html"),
    # SVG
    ('<svg><image href="https://cdn.example/a.png"/></svg>', "//image/@href", CDN),
    ('<svg><image xlink:href="https://cdn.example/a.png"/></svg>', "//image/@*[name()='xlink:href']", CDN),
    ('<svg><use href="#icon"/></svg>', "//use/@href", "#icon"),
    ('<svg><use xlink:href="#icon"/></svg>', "//use/@*[name()='xlink:href']", "#icon"),
    ('<svg><a href="https://shop.example/x"><text>t</text></a></svg>', "//svg//a/@href", SHOP),
    ("<svg><style>a{b:url(//cdn.example/a.png)}</style></svg>", "//svg/style/text()", f"a{{b:url({CDN})}}"),
    # template and noscript content
    ('<template><img src="https://cdn.example/a.png"></template>', "//template//img/@src", CDN),
    ('<noscript><img src="https://cdn.example/a.png"></noscript>', "//noscript//img/@src", CDN),
    # ws and invalid
    (
        '<a href="wss://cdn.example/s">w</a>',
        "//a/@href",
        proxy("s-cdn-example", "/s").replace("http:", "ws:"),
    ),
    # an absolute URL the codec cannot parse goes to the blocked origin, never out as it is
    ('<a href="https://shop.example:99999/x">bad</a>', "//a/@href", BLOCKED),
    ('<img src="/\\evil.example:99999/x">', "//img/@src", BLOCKED),
    ('<img src="https://\u2603.example/x">', "//img/@src", proxy("s-xn----n3h-example", "/x")),
    # forms a browser reads as another host: backslashes, scheme-relative, tabs and newlines,
    # upper case, CSS escapes (each would navigate or load off-site if left as it is)
    ('<a href="/\\evil.example/x">a</a>', "//a/@href", EVIL),
    ('<a href="\\\\evil.example/x">a</a>', "//a/@href", EVIL),
    ('<a href="\\/evil.example/x">a</a>', "//a/@href", EVIL),
    ('<a href="https:\\\\evil.example/x">a</a>', "//a/@href", EVIL),
    ('<a href="https:/\\evil.example/x">a</a>', "//a/@href", EVIL),
    ('<a href="http:evil.example/x">a</a>', "//a/@href", proxy("h-evil-example", "/x")),
    ('<a href="https:evil.example/x">a</a>', "//a/@href", proxy("s-shop-example", "/dir/evil.example/x")),
    ('<img src="/&#9;/evil.example/x">', "//img/@src", EVIL),
    ('<img src="/\n/evil.example/x">', "//img/@src", EVIL),
    ('<img src="/&#13;/evil.example/x">', "//img/@src", EVIL),
    ('<a href="ht\ntps://evil.example/x">a</a>', "//a/@href", EVIL),
    ('<a href="h&#9;ttps://evil.example/x">a</a>', "//a/@href", EVIL),
    ('<a href="HTTPS://EVIL.EXAMPLE/x">a</a>', "//a/@href", EVIL),
    ('<a href="HtTpS:EVIL.EXAMPLE/x">a</a>', "//a/@href", proxy("s-shop-example", "/dir/EVIL.EXAMPLE/x")),
    (
        '<div style="background:url(\\2f\\2f evil.example/x)"></div>',
        "//div/@style",
        f"background:url({EVIL})",
    ),
    (
        "<div style=\"background:url('\\2f/evil.example/x')\"></div>",
        "//div/@style",
        f"background:url('{EVIL}')",
    ),
    (
        '<div style="background:url(http:evil.example/x)"></div>',
        "//div/@style",
        f"background:url({proxy('h-evil-example', '/x')})",
    ),
    ('<div style="background:url(/\\\\evil.example/x)"></div>', "//div/@style", f"background:url({EVIL})"),
    (
        '<img srcset="https:\\\\evil.example/x 1x, /\\evil.example/x 2x">',
        "//img/@srcset",
        f"{EVIL} 1x, {EVIL} 2x",
    ),
    # the cases of issue #2's review, one row each
    ('<meta http-equiv="refresh" content="0;url=//evil.example/x">', "//meta/@content", f"0;url={EVIL}"),
    (
        '<meta http-equiv="refresh" content="0; URL = \'/\\evil.example/x\'">',
        "//meta/@content",
        f"0; URL = '{EVIL}'",
    ),
    (
        "<meta http-equiv=refresh content='0,url=\"https:\\\\evil.example/x\"'>",
        "//meta/@content",
        f'0,url="{EVIL}"',
    ),
    (
        '<meta http-equiv="refresh" content=".5 ; url=https://evil.example/x">',
        "//meta/@content",
        f".5 ; url={EVIL}",
    ),
    (
        '<meta http-equiv="refresh" content="0;https://evil.example:99999/">',
        "//meta/@content",
        f"0;{BLOCKED}",
    ),
    ('<a ping="https://evil.example/x //evil.example/x">a</a>', "//a/@ping", f"{EVIL} {EVIL}"),
    (
        '<link rel="preload" as="image" imagesrcset="//evil.example/x 1x, /\\evil.example/x 2x">',
        "//link/@imagesrcset",
        f"{EVIL} 1x, {EVIL} 2x",
    ),
    ('<video><source src="/\\evil.example/x"></video>', "//source/@src", EVIL),
    ('<form><input type="image" formaction="https:\\\\evil.example/x"></form>', "//input/@formaction", EVIL),
    ('<form><button formaction="//evil.example/x">b</button></form>', "//button/@formaction", EVIL),
    ('<object codebase="https://evil.example/x" data="y.swf"></object>', "//object/@codebase", EVIL),
    ('<applet codebase="//evil.example/x" code="A.class"></applet>', "//applet/@codebase", EVIL),
    ('<svg><image href="/\\evil.example/x"/></svg>', "//image/@href", EVIL),
    (
        '<svg><use xlink:href="https://evil.example/x#icon"/></svg>',
        "//use/@*[name()='xlink:href']",
        f"{EVIL}#icon",
    ),
    ('<form action=""></form>', "//form/@action", ""),
    ('<form action="?q=https://evil.example/x"></form>', "//form/@action", "?q=https://evil.example/x"),
    (
        '<a href="javascript://evil.example/%0aalert(1)">a</a>',
        "//a/@href",
        "javascript://evil.example/%0aalert(1)",
    ),
    (
        '<img src="data:text/plain,https://evil.example/x">',
        "//img/@src",
        "data:text/plain,https://evil.example/x",
    ),
    (
        '<base href="http://cdn.example/b/"><a href="http:x">a</a>',
        "//a/@href",
        proxy("h-cdn-example", "/b/x"),
    ),
    (
        '<base href="/\\cdn.example/b/"><img src="//img.example/a.png">',
        "//base/@href",
        proxy("s-cdn-example", "/b/"),
    ),
    ('<base href="../up/"><a href="https:x">a</a>', "//a/@href", proxy("s-shop-example", "/up/x")),
    (  # only the first <base href> counts, as in browsers
        '<base href="http://cdn.example/b/"><base href="http://img.example/c/"><a href="http:x">a</a>',
        "//a/@href",
        proxy("h-cdn-example", "/b/x"),
    ),
    # an unparsable <base href> is ignored, as browsers ignore it (never an exception)
    ('<base href="http://[oops/"><a href="http:x">a</a>', "//a/@href", proxy("h-x", "/")),
    ('<base href="data:text/html,x"><a href="//x/y">a</a>', "//a/@href", proxy("s-x", "/y")),
    # SVG animation of an href
    ('<svg><a><set attributeName="href" to="//evil.example/x"/></a></svg>', "//set/@to", EVIL),
    (
        '<svg><image><animate attributeName="href" from="https://evil.example/x"'
        ' values="0;/\\evil.example/x"/></image></svg>',
        "//animate/@values",
        f"0;{EVIL}",
    ),
    (
        '<svg><animate attributeName="x" from="0" to="10" values="0;5;10"/></svg>',
        "//animate/@values",
        "0;5;10",
    ),
]


@pytest.mark.parametrize(("fragment", "xpath", "expected"), PLACES)
def test_url_bearing_places(fragment: str, xpath: str, expected: str) -> None:
    values = parse(rewrite(fragment)).xpath(xpath)
    assert [str(v) for v in values] == [expected]


def test_base_href_is_mapped_and_resolves_protocol_relative_urls() -> None:
    out = parse(
        rewrite('<base href="http://cdn.example/b/"><img src="//img.example/a.png"><a href="rel">r</a>')
    )
    assert out.xpath("//base/@href") == [proxy("h-cdn-example", "/b/")]
    assert out.xpath("//img/@src") == [proxy("h-img-example", "/a.png")]
    assert out.xpath("//a/@href") == ["rel"]  # resolved by the browser against the mapped base


def test_integrity_and_csp_meta_are_removed_nonce_kept() -> None:
    out = rewrite(
        '<head><meta http-equiv="Content-Security-Policy" content="script-src \'nonce-r4nd\'">'
        '<meta http-equiv="content-security-policy-report-only" content="default-src \'none\'">'
        '<script nonce="r4nd" src="https://cdn.example/a.png" integrity="sha384-abc"></script>'
        '<link rel="stylesheet" href="/s.css" integrity="sha384-def"></head>'
    )
    root = parse(out)
    assert root.xpath("//@integrity") == []
    assert root.xpath("//meta[@http-equiv]") == []
    assert root.xpath("//script[@nonce='r4nd']/@src") == [CDN]
    assert b"nonce-r4nd" not in out


# (fragment, integrity values left in the output): a hash on <script> and <link> (any rel, any
# case) is dropped, since the proxy may rewrite those bytes; elsewhere the attribute is the page's
INTEGRITY = [
    ('<script src="/a.js" integrity="sha384-a"></script>', []),
    ('<script integrity="sha384-a">inline()</script>', []),
    ('<link rel="stylesheet" href="/s.css" integrity="sha384-b">', []),
    ('<link rel="modulepreload" href="/m.js" integrity="sha384-c">', []),
    ('<link rel="preload" as="style" href="/s.css" integrity="sha384-d">', []),
    ('<LINK REL="stylesheet" HREF="/s.css" INTEGRITY="sha384-e">', []),
    ('<script src="/a.js" integrity="">x</script>', []),
    ('<img src="/a.png" integrity="sha384-f">', ["sha384-f"]),
    ('<div integrity="sha384-g"></div>', ["sha384-g"]),
    # an SVG <script> too (one name for both; the browser checks integrity on neither there)
    ('<svg><script href="/a.js" integrity="sha384-h"></script></svg>', []),
]


@pytest.mark.parametrize(("fragment", "kept"), INTEGRITY)
def test_integrity_is_dropped_on_script_and_link_only(fragment: str, kept: list[str]) -> None:
    assert [str(v) for v in parse(rewrite(fragment)).xpath("//@integrity")] == kept


def test_iframe_srcdoc_is_rewritten_as_a_document() -> None:
    out = parse(
        rewrite(
            "<iframe srcdoc=\"<img src='https://cdn.example/a.png'><a href='/rel'>r</a>\"></iframe>",
            inject=INJECT,
        )
    )
    inner = parse(out.xpath("//iframe/@srcdoc")[0].encode("utf-8"))
    assert inner.xpath("//img/@src") == [CDN]
    assert inner.xpath("//a/@href") == ["/rel"]
    assert inner.xpath("//head/script[1]/@src") == ["/__cobrowse/runtime.js"]


ALL_BUT_POPUPS = (
    "allow-same-origin allow-scripts allow-forms allow-modals allow-downloads allow-pointer-lock"
    " allow-orientation-lock allow-presentation"
)
# a frame whose document no runtime reaches opens no pop-up (rewriter/frames.py): (markup, sandbox)
FRAMES = [
    ('<iframe src="data:text/html,<p>x"></iframe>', [ALL_BUT_POPUPS]),
    ('<iframe src=" JavaScript:\'\'"></iframe>', [ALL_BUT_POPUPS]),
    (
        '<iframe src="blob:https://shop.example/1" sandbox="allow-scripts allow-popups"></iframe>',
        ["allow-scripts"],
    ),
    ('<iframe src="data:,x" sandbox="ALLOW-POPUPS-TO-ESCAPE-SANDBOX allow-top-navigation"></iframe>', [""]),
    ('<iframe src="data:,x" sandbox=""></iframe>', [""]),
    ('<iframe src="/frame"></iframe>', []),
    ('<iframe src="https://cdn.example/f" sandbox="allow-popups"></iframe>', ["allow-popups"]),
    ('<img src="data:image/png,x">', []),
]


@pytest.mark.parametrize(("fragment", "sandbox"), FRAMES)
def test_a_frame_no_runtime_reaches_is_sandboxed_without_pop_ups(fragment: str, sandbox: list[str]) -> None:
    assert [str(v) for v in parse(rewrite(fragment)).xpath("//iframe/@sandbox")] == sandbox


def test_deeply_nested_srcdoc_stops() -> None:
    """Past MAX_SRCDOC_DEPTH nested srcdoc frames the innermost one is emptied, never left unmapped."""
    doc = '<img src="https://cdn.example/a.png">'
    for _ in range(8):
        doc = f'<iframe srcdoc="{doc.replace("&", "&amp;").replace(chr(34), "&quot;")}"></iframe>'
    out, levels = rewrite(doc), 0
    while (srcdoc := parse(out).xpath("//iframe/@srcdoc")) and srcdoc[0]:
        out, levels = srcdoc[0].encode("utf-8"), levels + 1
    assert srcdoc == [""] and levels == MAX_SRCDOC_DEPTH


# --- injection ---------------------------------------------------------------------------


def test_injection_goes_first_in_head_after_meta_charset() -> None:
    out = rewrite(
        '<!DOCTYPE html><html><head><meta charset="utf-8"><link rel="stylesheet" href="a.css">'
        "<script>var first = 1;</script></head><body></body></html>",
        inject=INJECT,
    )
    assert INJECT.encode() in out  # byte for byte
    head = parse(out).find("head")
    assert [child.tag for child in head][:4] == ["meta", "script", "script", "link"]
    assert head[0].get("charset") == "utf-8"
    assert out.index(INJECT.encode()) < out.index(b"var first")


def test_head_is_created_when_missing() -> None:
    out = rewrite("<p>hello <script>x()</script></p>", inject=INJECT)
    root = parse(out)
    assert root.xpath("/html/head/script[1]/@src") == ["/__cobrowse/runtime.js"]
    assert out.index(INJECT.encode()) < out.index(b"x()")


def test_scripts_before_head_come_after_the_injection() -> None:
    out = rewrite("<!DOCTYPE html><script>early()</script><html><head></head></html>", inject=INJECT)
    assert out.index(INJECT.encode()) < out.index(b"early()")


def test_no_injection_without_markup() -> None:
    out = rewrite("<p>x</p>")
    assert b"<script" not in out


# --- what must survive byte for byte ------------------------------------------------------


@pytest.mark.parametrize(
    "piece",
    [
        "<!DOCTYPE html>",
        "<!doctype html>",
        '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN" "http://www.w3.org/TR/html4/strict.dtd">',
        "<!-- a comment with https://shop.example/x -->",
        '<!--[if lt IE 9]><script src="https://cdn.example/html5shiv.js"></script><![endif]-->',
        "<script>if (a < b && c > d) { document.write(\"</div><a href='https://shop.example/x'>\"); }"
        "</script>",
        "<script>var s = 'https://shop.example/x'; /* </p> */ x = \"<!--\";</script>",
        '<script type="module">import x from "https://cdn.example/m.js";</script>',
        '<script type="application/ld+json">{"url": "https://shop.example/x"}</script>',
    ],
)
def test_kept_byte_for_byte(piece: str) -> None:
    out = rewrite(f"{piece}<p>x</p>" if "DOCTYPE" in piece.upper() else f"<p>x</p>{piece}")
    assert piece.encode() in out


def test_no_doctype_stays_without_one() -> None:
    out = rewrite("<html><body>quirks</body></html>")
    assert b"DOCTYPE" not in out.upper()


def test_xhtml_served_as_xml_survives() -> None:
    doc = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
        '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\n'
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:xlink="http://www.w3.org/1999/xlink"><head><title>t</title></head>'
        '<body><p><a href="https://shop.example/x">x</a><br/></p>'
        '<svg xmlns="http://www.w3.org/2000/svg"><image xlink:href="https://cdn.example/a.png"/></svg>'
        "</body></html>"
    )
    out = rewrite(
        doc, content_type="application/xhtml+xml", inject='<script src="/__cobrowse/runtime.js"></script>'
    )
    root = etree.fromstring(out)  # well-formed XML
    ns = {"h": "http://www.w3.org/1999/xhtml", "x": "http://www.w3.org/1999/xlink"}
    assert root.xpath("//h:a/@href", namespaces=ns) == [SHOP]
    assert root.xpath("//@x:href", namespaces=ns) == [CDN]
    assert root.xpath("//h:head/h:script/@src", namespaces=ns) == ["/__cobrowse/runtime.js"]
    assert b"XHTML 1.0 Strict" in out


def test_malformed_xhtml_falls_back_to_html() -> None:
    out = rewrite(
        '<html><body><a href="https://shop.example/x">x<p></body>', content_type="application/xhtml+xml"
    )
    assert parse(out).xpath("//a/@href") == [SHOP]


def test_svg_document_is_rewritten_as_xml() -> None:
    doc = (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        '"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" class="logo">'
        "<style>.a{fill:url(#g)} .b{background:url(//cdn.example/a.png)}</style>"
        '<a href="https://shop.example/x"><image xlink:href="https://cdn.example/a.png"/></a>'
        '<use href="#icon"/><text class="secret">4111</text></svg>'
    )
    out = rewrite(doc, content_type="image/svg+xml", inject=INJECT, mask_selectors=[".secret"])
    root = etree.fromstring(out)  # still XML, still SVG
    ns = {"s": "http://www.w3.org/2000/svg", "x": "http://www.w3.org/1999/xlink"}
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.xpath("//s:a/@href", namespaces=ns) == [SHOP]
    assert root.xpath("//s:image/@x:href", namespaces=ns) == [CDN]
    assert root.xpath("//s:use/@href", namespaces=ns) == ["#icon"]
    assert f".b{{background:url({CDN})}}" in root.xpath("//s:style/text()", namespaces=ns)[0]
    assert b"4111" not in out and b"<script" not in out and b"<meta" not in out and b"<html" not in out
    assert b"SVG 1.1" in out


def test_broken_svg_document_is_refused() -> None:
    with pytest.raises(UnrewritableDocument):
        rewrite(
            '<svg xmlns="http://www.w3.org/2000/svg"><a href="https://shop.example/x">',
            content_type="image/svg+xml",
        )


def test_svg_and_mathml_survive() -> None:
    out = parse(rewrite('<svg viewBox="0 0 1 1"><circle r="1"/></svg><math><mi>x</mi><mo>=</mo></math>'))
    assert out.xpath("//svg/circle/@r") == ["1"]
    assert out.xpath("//math/mi/text()") == ["x"]


# --- encodings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<p>é€</p>".encode(), None),  # sniffed UTF-8
        ("\ufeff<p>é€</p>".encode("utf-8"), "text/html; charset=windows-1252"),  # BOM wins
        ("\ufeff<p>é€</p>".encode("utf-16-le"), None),
        ("\ufeff<p>é€</p>".encode("utf-16-be"), None),
        ("<p>é€</p>".encode("cp1252"), "text/html; charset=windows-1252"),
        ("<p>é€</p>".encode("cp1252"), 'text/html; charset="ISO-8859-1"'),  # latin1 means windows-1252
        ('<meta charset="windows-1252"><p>é€</p>'.encode("cp1252"), None),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252"><p>é€</p>'.encode(
                "cp1252"
            ),
            None,
        ),
        ('<meta charset="utf-8"><p>é€</p>'.encode("cp1252"), "text/html; charset=cp1252"),  # header wins
        ("<p>é€</p>".encode("cp1252"), None),  # not UTF-8: windows-1252
        ("<p>é€</p>".encode("cp1252"), "text/html; charset=x-unknown-thing"),
        ("<p>é€</p>".encode(), "text/html; charset=rot13"),  # not a web encoding: ignored
    ],
)
def test_encodings(body: bytes, content_type: str | None) -> None:
    out = rewrite(body, content_type=content_type)
    root = parse(out)
    assert root.xpath("//p/text()") == ["é€"]
    assert root.xpath("//meta/@charset") == ["utf-8"]
    assert root.xpath("//meta[@http-equiv]") == []


def test_shift_jis_document() -> None:
    body = '<meta charset="shift_jis"><p>日本語</p>'.encode("cp932")
    assert parse(rewrite(body)).xpath("//p/text()") == ["日本語"]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    out = rewrite(b"<p>ok \xff\xfe bad</p>", content_type="text/html; charset=utf-8")
    assert parse(out).xpath("//p/text()") == ["ok \ufffd\ufffd bad"]


# --- masking -----------------------------------------------------------------------------


def test_password_inputs_are_always_masked() -> None:
    out = rewrite('<form><input type="PASSWORD" name="pw" value="hunter2" placeholder="s3cr3t-hint"></form>')
    assert b"hunter2" not in out and b"s3cr3t-hint" not in out
    inp = parse(out).xpath("//input")[0]
    assert inp.get("value") == MASK and inp.get("data-cobrowse-masked") == "" and inp.get("name") == "pw"


def test_a_masked_input_without_a_value_shows_the_mask() -> None:
    out = rewrite('<input type="password" name="pw"><input class="card" name="cc">', mask_selectors=[".card"])
    assert parse(out).xpath("//input/@value") == [MASK, MASK]


def test_masked_selectors_hide_text_values_and_urls() -> None:
    secret = "4111-1111-1111-1111"
    doc = (
        f'<div class="card"><span>{secret}</span> tail-{secret}<img src="https://cdn.example/{secret}.png"'
        f' alt="{secret}"><a href="https://shop.example/{secret}" data-x="{secret}">l</a></div>'
        f'<p id="ssn" style="background:url(https://cdn.example/{secret})">{secret}</p>'
        f'<textarea class="notes">{secret}</textarea><input id="cc" value="{secret}">'
        f'<select class="card"><option>{secret}</option></select><p>public</p>'
    )
    out = rewrite(doc, mask_selectors=[".card", "#ssn", "textarea", "input#cc"])
    assert secret.encode() not in out
    root = parse(out)
    assert len(root.xpath("//*[@data-cobrowse-masked]")) == 5
    assert root.xpath("//div[@class='card']/text()") == [MASK]
    assert root.xpath("//input[@id='cc']/@value") == [MASK]
    assert root.xpath("//p[not(@id)]/text()") == ["public"]


def test_masking_applies_inside_srcdoc() -> None:
    out = rewrite('<iframe srcdoc="<input type=password value=topsecret>"></iframe>')
    assert b"topsecret" not in out


# markup a script reads (fetch, XHR: htmx swaps, Turbo frames, templates) is inserted by the script
# into its page as it came: nothing added, and a fragment stays a fragment
FETCHED = [
    (
        '<p id="frag">x <a href="https://shop.example/x">a</a></p>',
        f'<p id="frag">x <a href="{SHOP}">a</a></p>',
    ),
    ("hello <b>x</b> tail &amp; more", "hello <b>x</b> tail &amp; more"),
    (
        '<!-- c --><link rel="stylesheet" href="https://shop.example/x"><div>x</div>\n',
        f'<!-- c --><link rel="stylesheet" href="{SHOP}"><div>x</div>\n',
    ),
    ("<tr><td>1</td></tr>", "<tr><td>1</td></tr>"),
    ("<title>t</title><p>x</p>", "<title>t</title><p>x</p>"),
    ("", ""),
    ("\n  <li>a</li>", "\n  <li>a</li>"),
    # markup that only mentions a document is still a fragment
    ("<p>a</p><script>var s = '<html>';</script>", "<p>a</p><script>var s = '<html>';</script>"),
]


@pytest.mark.parametrize(("markup", "expected"), FETCHED)
def test_markup_a_script_reads_stays_as_it_came_with_urls_mapped(markup: str, expected: str) -> None:
    assert rewrite(markup, inject=INJECT, document=False).decode() == expected


def test_a_whole_document_a_script_reads_gets_nothing_added() -> None:
    out = rewrite(
        "<!doctype html><html><head><title>t</title></head><body><img src='https://cdn.example/a.png'></body></html>",
        inject=INJECT,
        document=False,
    )
    assert out.decode() == (
        f'<!doctype html>\n<html><head><title>t</title></head><body><img src="{CDN}"></body></html>'
    )


def test_markup_with_body_attributes_a_script_reads_keeps_them() -> None:
    out = rewrite("<title>t</title><body class=dark><p>x</p>", inject=INJECT, document=False).decode()
    assert '<body class="dark">' in out and "/__cobrowse/runtime.js" not in out


def test_markup_a_script_reads_is_masked_and_its_frames_get_the_runtime() -> None:
    out = rewrite(
        '<p class="card">4111 1111</p><input type=password value=topsecret>'
        '<iframe srcdoc="<img src=https://cdn.example/a.png>"></iframe>',
        inject=INJECT,
        mask_selectors=[".card"],
        document=False,
    )
    assert b"4111" not in out and b"topsecret" not in out
    assert out.startswith(b'<p class="card" data-cobrowse-masked="">')
    srcdoc = parse(out).xpath("//iframe/@srcdoc")[0]
    assert "/__cobrowse/runtime.js" in srcdoc and CDN in srcdoc  # a frame is a page: it runs the runtime


def test_markup_too_deep_for_a_tree_that_a_script_reads_gets_nothing_added() -> None:
    markup = "<div>" * 2100 + '<img src="https://cdn.example/a.png">' + "</div>" * 2100
    out = rewrite(markup, inject=INJECT, document=False).decode()
    assert out == "<div>" * 2100 + f'<img src="{CDN}">' + "</div>" * 2100


@pytest.mark.parametrize("selector", ["div[", "::nope(", "a >> b", ""])
def test_invalid_selector_is_a_typed_error(selector: str) -> None:
    with pytest.raises(InvalidSelector):
        rewrite("<p>x</p>", mask_selectors=[selector])


def test_each_session_gets_its_own_hosts(mapper: UrlMapper) -> None:
    other = UrlMapper("zz00000000", mapper.proxy)
    ours = rewrite_html(b'<a href="https://shop.example/x">x</a>', url=URL, mapper=mapper)
    theirs = rewrite_html(b'<a href="https://shop.example/x">x</a>', url=URL, mapper=other)
    assert parse(ours).xpath("//a/@href") == [SHOP]
    assert parse(theirs).xpath("//a/@href") == [SHOP.replace("k3j9x2ab7q", "zz00000000")]


# --- bad input: never a crash, never a hang ----------------------------------------------

FRAGMENTS = [
    "<a href='https://shop.example/x'>", "<img srcset='https://cdn.example/a.png 1x, b 2x'>", "</a>", "<div>",
    "</div>", "<p>", "<script>", "</script>", "<style>", "</style>", "url(//cdn.example/a)", "<!--", "-->",
    "<!DOCTYPE html>", "<![CDATA[", "]]>", "<svg>", "<math>", "<template>", "<iframe srcdoc='<p>x'>",
    "<base href='//cdn.example/'>", "<meta http-equiv=refresh content='0;url=https://x.example'>",
    "<meta charset=shift_jis>", "<input type=password value=pw>", "&amp;", "&#0;", "&#x110000;", "\x00",
    "\ufffd", "é", "<", ">", "'", '"', "=", " ", "\n", "<table><tr><td>", "<select><option>",
    "<form action=//x>",
    "<?xml version='1.0'?>", "<html>", "<head>", "<body>", "</html>", "<noscript>", "<frameset>",
]  # fmt: skip


def _check_output(out: bytes) -> None:
    assert isinstance(out, bytes)
    out.decode("utf-8")  # valid UTF-8, as declared
    root = parse(out)
    assert root is not None
    assert root.xpath("//meta/@charset") in (["utf-8"], [])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join))
def test_fuzz_html_fragments(doc: str) -> None:
    out = rewrite(doc, inject=INJECT)
    _check_output(out)
    root = parse(out)
    assert {str(v) for v in root.xpath("//input[@type='password']/@value")} <= {MASK}
    assert upstream_urls_left(out, css=False) == []  # CSS is fuzzed in test_css.py
    assert len(root.xpath("//meta[@charset]")) <= 1


@settings(max_examples=200, deadline=None)
@given(
    st.binary(max_size=2000),
    st.sampled_from([None, "text/html", "text/html; charset=utf-16", "text/html; charset=bogus"]),
)
def test_fuzz_binary_garbage(body: bytes, content_type: str | None) -> None:
    _check_output(rewrite(body, content_type=content_type))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=300), st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)))
def test_fuzz_as_xhtml(doc: str) -> None:
    """Served as XHTML: well-formed input stays XML, anything else falls back to the HTML parser."""
    out = rewrite(doc, content_type="application/xhtml+xml", inject=INJECT)
    out.decode("utf-8")
    if out.startswith(b"<?xml"):
        etree.fromstring(out)  # well-formed
    else:
        _check_output(out)
    assert upstream_urls_left(out, css=False) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\x00" * 100,
        b"<html",
        b"<a href='https://shop.example/x",
        b"<!--",
        b"<script>never closed https://shop.example/",
        b"<style>a{b:url(https://cdn.example/a.png)",
        b"\xff\xfe\x00\x00garbage",
        b"<div>" * 3000 + b"<a href='https://shop.example/x'>deep</a>",
        b"</p>" * 10000,
        b"<table>" * 5000,
        bytes(range(256)) * 50,
    ],
)
def test_bad_input_survives(body: bytes) -> None:
    _check_output(rewrite(body))


def test_100k_nested_tags_keep_everything() -> None:
    depth = 100_000
    body = (
        b"<!DOCTYPE html><title>t</title>"
        + b"<div>" * depth
        + b"<a href='https://shop.example/x'>deep</a><input type=password value=topsecret>"
        + b"</div>" * depth
        + b"<p>after <img srcset='https://cdn.example/a.png 2x'></p>"
    )
    out = rewrite(body, inject=INJECT)
    assert out.count(b"<div>") == depth  # nothing lost past libxml2's 2048 levels
    assert f'href="{SHOP}"'.encode() in out
    assert f'srcset="{CDN} 2x"'.encode() in out
    assert b"topsecret" not in out
    assert out.index(INJECT.encode()) < out.index(b"<div>")
    assert out.startswith(b"<!DOCTYPE html>")


def test_deep_document_with_masked_selectors_is_refused() -> None:
    with pytest.raises(UnrewritableDocument):
        rewrite(b"<div>" * 5000 + b"<p class=secret>x</p>", mask_selectors=[".secret"])


def test_50_mb_document() -> None:
    row = b'<li><a href="/p/1">item</a> <img src="/rel.png" alt="r"> text text text text text</li>\n' * 4
    row += b'<li><a href="https://shop.example/x">item</a> <img src="/rel.png" alt="r"> text</li>\n'
    body = b"<!DOCTYPE html><ul>" + row * (50 * 2**20 // len(row)) + b"</ul>"
    assert len(body) > 49 * 2**20
    out = rewrite(body)
    assert out.count(f'href="{SHOP}"'.encode()) == body.count(b'href="https://shop.example/x"')
    assert b"https://shop.example" not in out


def test_speculation_rules_list_urls_are_mapped() -> None:
    rules = {
        "prefetch": [{"source": "list", "urls": ["https://evil.example/x", "/rel"]}],
        "prerender": [{"source": "document", "where": {"href_matches": "/*"}}],
    }
    root = parse(rewrite(f'<script type="speculationrules">{json.dumps(rules)}</script>'))
    data = json.loads(root.xpath("//script/text()")[0])
    assert data["prefetch"] == [{"source": "list", "urls": [EVIL, "/rel"]}]
    assert data["prerender"] == rules["prerender"]


def test_import_map_addresses_are_mapped_specifiers_kept() -> None:
    doc = (
        '<script type="importmap">{"imports": {"vue": "https://cdn.example/a.png", '
        '"https://cdn.example/x.js": "/x.js"}, '
        '"scopes": {"https://cdn.example/": {"b": "//cdn.example/a.png"}}}'
        "</script>"
    )
    root = parse(rewrite(doc))
    data = json.loads(root.xpath("//script/text()")[0])
    assert data["imports"] == {"vue": CDN, "https://cdn.example/x.js": "/x.js"}
    assert data["scopes"] == {proxy("s-cdn-example", "/"): {"b": CDN}}


@pytest.mark.parametrize(
    "text", ["not json", '["https://cdn.example/a.png"]', '{"imports": {"a": "rel.js"}}']
)
def test_import_maps_left_alone(text: str) -> None:
    out = rewrite(f'<script type="importmap">{text}</script>')
    assert f">{text}</script>".encode() in out


def _rewrite_with_origins(doc: str, inject: str = INJECT, content_type: str | None = None) -> bytes:
    from rewrite_helpers import SID

    from rewriter.urls import ProxyConfig

    origins = ["https://shop.example", "https://cdn.example"]
    mapper = UrlMapper(SID, ProxyConfig("cobrowse.localhost", 8001, "http"), origins)
    return rewrite_html(doc.encode(), url=URL, mapper=mapper, inject=inject, content_type=content_type)


WithOrigins = Callable[..., etree._Element]
# past libxml2's 2048 levels the token-stream fallback rewrites the document: both must route
DEEP = "<div>" * 2100 + "</div>" * 2100


@pytest.fixture(params=["tree", "token stream"])
def with_origins(request: pytest.FixtureRequest) -> WithOrigins:
    tail = DEEP if request.param == "token stream" else ""

    def run(doc: str, inject: str = INJECT) -> etree._Element:
        out = _rewrite_with_origins(doc + tail, inject)
        assert (out.count(b"<div>") == 2100) == bool(tail)  # the tree path keeps 2048 levels at most
        return parse(out)

    return run


ROUTES = {
    "https://shop.example/": proxy("s-shop-example", "/"),
    "http://shop.example/": proxy("s-shop-example", "/"),  # "//shop.example/x.js" on an http proxy
    "https://cdn.example/": proxy("s-cdn-example", "/"),
    "http://cdn.example/": proxy("s-cdn-example", "/"),
}


def test_module_specifiers_of_the_session_origins_are_routed_by_an_import_map(
    with_origins: WithOrigins,
) -> None:
    root = with_origins('<script type="module">import "https://cdn.example/m.js";</script>')
    maps = root.xpath("//script[@type='importmap']")
    assert len(maps) == 1 and json.loads(maps[0].text) == {"imports": ROUTES}
    scripts = root.xpath("//script")
    assert scripts.index(maps[0]) == 2  # after the runtime's two, before every page script
    assert not with_origins("<p>x</p>", inject="").xpath("//script[@type='importmap']")  # not for the agent


def test_a_pages_own_import_map_takes_the_routes_and_keeps_its_entries(with_origins: WithOrigins) -> None:
    doc = ('<script type="importmap">{"imports": {"vue": "https://cdn.example/vue.js", '
           '"https://cdn.example/": "/local/"}}</script><script type="module">import "vue";</script>')
    maps = with_origins(doc).xpath("//script[@type='importmap']")
    assert len(maps) == 1
    assert json.loads(maps[0].text)["imports"] == {
        **ROUTES,
        "https://cdn.example/": "/local/",  # the page's own entry wins
        "vue": proxy("s-cdn-example", "/vue.js"),
    }
    broken = with_origins('<script type="importmap">{"imports": [1]}</script>')
    # a map browsers ignore takes nothing: ours goes in with the runtime
    assert [json.loads(m.text) for m in broken.xpath("//script[@type='importmap']")] == [
        {"imports": ROUTES}, {"imports": [1]}]


def test_with_a_module_before_the_pages_import_map_the_routes_come_first_without_its_keys(
    with_origins: WithOrigins,
) -> None:
    """Chromium drops a later map's rule whose key a module already used: merged into a page map
    that comes after a module, the routes would be lost."""
    doc = ('<script type="module">import "https://cdn.example/a.js";</script>'
           '<script type="importmap">{"imports": {"https://cdn.example/": "/local/"}}</script>')
    maps = with_origins(doc).xpath("//script[@type='importmap']")
    ours = {k: v for k, v in ROUTES.items() if k != "https://cdn.example/"}
    page_map = {"imports": {"https://cdn.example/": "/local/"}}
    assert [json.loads(m.text) for m in maps] == [{"imports": ours}, page_map]
    preload = with_origins('<link rel="modulepreload" href="/m.js"><script type="importmap">{}</script>')
    got = [json.loads(m.text) for m in preload.xpath("//script[@type='importmap']")]
    assert got == [{"imports": ROUTES}, {}]


@pytest.mark.parametrize(
    "page_map",
    ['{"imports": null}', '{"scopes": []}', '{"integrity": "x"}', "[]", "nope"],
)
def test_an_import_map_browsers_reject_takes_no_routes(page_map: str, with_origins: WithOrigins) -> None:
    maps = with_origins(f'<script type="importmap">{page_map}</script>').xpath("//script[@type='importmap']")
    assert json.loads(maps[0].text) == {"imports": ROUTES}
    assert maps[1].text == page_map


def test_xhtml_gets_the_routes_too_and_svg_none() -> None:
    xhtml = '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body/></html>'
    runtime = '<script src="/__cobrowse/runtime.js"></script>'
    root = etree.fromstring(_rewrite_with_origins(xhtml, runtime, content_type="application/xhtml+xml"))
    (found,) = root.xpath("//x:script[@type='importmap']", namespaces={"x": "http://www.w3.org/1999/xhtml"})
    assert json.loads(found.text) == {"imports": ROUTES}
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/></svg>'
    assert b"importmap" not in _rewrite_with_origins(svg, content_type="image/svg+xml")


def test_an_import_map_in_a_template_or_noscript_takes_no_routes(with_origins: WithOrigins) -> None:
    for holder in ("template", "noscript"):
        doc = f'<{holder}><script type="importmap">{{"imports": {{}}}}</script></{holder}>'
        maps = with_origins(doc).xpath("//script[@type='importmap']")
        assert json.loads(maps[0].text) == {"imports": ROUTES}, holder


def test_json_written_back_into_a_script_cannot_escape_it() -> None:
    rules = (
        '{"prefetch": [{"source": "list", "urls": ["https://evil.example/x"],'
        ' "x": "\\u003c!--\\u003cscript>"}]}'
    )
    out = rewrite(f'<script type="speculationrules">{rules}</script><p id="after">after</p>')
    assert b"<!--" not in out and parse(out).xpath("//p[@id='after']")  # the rest is still a document
    assert json.loads(parse(out).xpath("//script/text()")[0])["prefetch"][0]["x"] == "<!--<script>"


def test_srcdoc_resolves_against_the_parents_base() -> None:
    out = parse(
        rewrite(
            "<base href='http://cdn.example/'><iframe srcdoc=\"<img src='//img.example/a.png'>\"></iframe>"
        )
    )
    inner = parse(out.xpath("//iframe/@srcdoc")[0].encode("utf-8"))
    assert inner.xpath("//img/@src") == [proxy("h-img-example", "/a.png")]


def test_xhtml_with_masked_selectors_is_masked() -> None:
    doc = '<html xmlns="http://www.w3.org/1999/xhtml"><body><p class="secret">4111</p></body></html>'
    out = rewrite(doc, content_type="application/xhtml+xml", mask_selectors=[".secret"])
    assert b"4111" not in out


def test_the_visitor_banner_is_left_out_of_the_agents_copy() -> None:
    out = rewrite(
        '<head><script src="https://api.example/banner.js?v=2" data-site-key="sk_1"></script>'
        '<script src="https://shop.example/banner.js"></script><script src="/x/banner.js" data-site-key>'
        '</script></head>'
        '<body><p>before<script src="/banner.js" data-site-key="sk_1" async></script>after</p>'
        '<script src="https://shop.example/app.js" data-site-key="not-ours"></script></body>'
    )
    doc = parse(out)
    assert sorted(doc.xpath("//script/@src")) == [
        proxy("s-shop-example", "/app.js"),  # a site key, but not our banner
        proxy("s-shop-example", "/banner.js"),  # no site key: the site's own script
    ]
    assert doc.xpath("string(//p)") == "beforeafter"
