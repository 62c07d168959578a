"""CSS rewriting: url() in every quote form, @import, image-set(), strings left alone."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rewrite_helpers import BLOCKED, EVIL, make_mapper, proxy

from rewriter.css import might_hold_absolute_url, rewrite_css, rewrite_css_text
from rewriter.urls import UrlMapper

BASE = "https://shop.example/css/site.css"
CDN = proxy("s-cdn-example", "/a.png")

# (css, expected)
CASES = [
    ("a{background:url(https://cdn.example/a.png)}", f"a{{background:url({CDN})}}"),
    ("a{background:url('https://cdn.example/a.png')}", f"a{{background:url('{CDN}')}}"),
    ('a{background:url("https://cdn.example/a.png")}', f'a{{background:url("{CDN}")}}'),
    ("a{background:url(  https://cdn.example/a.png  )}", f"a{{background:url({CDN})}}"),
    ("a{background:URL(//cdn.example/a.png)}", f"a{{background:url({CDN})}}"),
    ("a{background:url( '//cdn.example/a.png' )}", f"a{{background:url( '{CDN}' )}}"),
    ("a{background:url(/a.png)}", "a{background:url(/a.png)}"),
    ("a{background:url(a.png)}", "a{background:url(a.png)}"),
    ("a{background:url(data:image/png;base64,AAAA)}", "a{background:url(data:image/png;base64,AAAA)}"),
    ('@import "https://cdn.example/a.png";', f'@import "{CDN}";'),
    ("@import 'https://cdn.example/a.png' screen;", f"@import '{CDN}' screen;"),
    ("@import url(https://cdn.example/a.png);", f"@import url({CDN});"),
    ('@IMPORT url("https://cdn.example/a.png") layer(x);', f'@IMPORT url("{CDN}") layer(x);'),
    ("@import 'local.css';", "@import 'local.css';"),
    (
        "a{background-image:image-set('https://cdn.example/a.png' 1x, url(//cdn.example/a.png) 2x)}",
        f"a{{background-image:image-set('{CDN}' 1x, url({CDN}) 2x)}}",
    ),
    ('a{b:-webkit-image-set("https://cdn.example/a.png" 1x)}', f'a{{b:-webkit-image-set("{CDN}" 1x)}}'),
    ('a{content:"https://cdn.example/a.png"}', 'a{content:"https://cdn.example/a.png"}'),
    ('a{font-family:"//cdn.example/a.png"}', 'a{font-family:"//cdn.example/a.png"}'),
    ("/* url(https://cdn.example/a.png) */ a{}", "/* url(https://cdn.example/a.png) */ a{}"),
    (
        "@font-face{src:url(https://cdn.example/a.png) format('woff2')}",
        f"@font-face{{src:url({CDN}) format('woff2')}}",
    ),
    ("a{b:url(https\\3a //cdn.example/a.png)}", f"a{{b:url({CDN})}}"),
    (  # escaped parentheses in a bare url(): the mapped URL is quoted
        "a{b:url(https://cdn.example/a\\(1\\).png)}",
        f'a{{b:url("{proxy("s-cdn-example", "/a(1).png")}")}}',
    ),
    ('a{b:url("https://cdn.example/a b.png")}', f'a{{b:url("{proxy("s-cdn-example", "/a b.png")}")}}'),
    ("a{b:url(https://cdn.example/a.png", "a{b:url(https://cdn.example/a.png"),  # unterminated: unchanged
    ('a{b:url("https://cdn.example/a.png', f'a{{b:url("{CDN}"'),  # unterminated string, closed
    (
        "@import \"https://cdn.example/a.png\"; a{c:'https://x.example/'}",
        f"@import \"{CDN}\"; a{{c:'https://x.example/'}}",
    ),
    (
        "@media (min-width: 1px) { a { b: url(//cdn.example/a.png) } }",
        f"@media (min-width: 1px) {{ a {{ b: url({CDN}) }} }}",
    ),
    (
        "a{b:url(ws://cdn.example/a.png)}",
        f"a{{b:url({proxy('h-cdn-example', '/a.png').replace('http:', 'ws:')})}}",
    ),
    ("}}}{{{((( url(https://cdn.example/a.png)", f"}}}}}}{{{{{{((( url({CDN})"),
    # forms a browser reads as another host once CSS escapes are undone
    ("a{b:url(\\2f\\2f evil.example/x)}", f"a{{b:url({EVIL})}}"),
    ('a{b:url("\\2f\\2f evil.example/x")}', f'a{{b:url("{EVIL}")}}'),
    ("a{b:url(/\\\\evil.example/x)}", f"a{{b:url({EVIL})}}"),
    ("a{b:url('\\\\/evil.example/x')}", f"a{{b:url('{EVIL}')}}"),
    ('a{b:url("/\t/evil.example/x")}', f'a{{b:url("{EVIL}")}}'),
    ("a{b:url('/\\9/evil.example/x')}", f"a{{b:url('{EVIL}')}}"),
    ("a{b:url(http:evil.example/x)}", f"a{{b:url({proxy('h-evil-example', '/x')})}}"),
    ("a{b:url(https:x.png)}", f"a{{b:url({proxy('s-shop-example', '/css/x.png')})}}"),
    ("a{b:url(HTTPS://EVIL.EXAMPLE/x)}", f"a{{b:url({EVIL})}}"),
    ('@import "https:\\\\\\\\evil.example/x";', f'@import "{EVIL}";'),
    ("a{b:url(https://evil.example:99999/x)}", f"a{{b:url({BLOCKED})}}"),
    # escapes in names: still url(), @import, image-set() to a browser
    ("a{b:\\75 rl(https://evil.example/x)}", f"a{{b:url({EVIL})}}"),
    ("a{b:\\000055\\52\\l(//evil.example/x)}", f"a{{b:url({EVIL})}}"),
    ('a{b:\\75 rl("//evil.example/x")}', f'a{{b:\\75 rl("{EVIL}")}}'),
    ('@\\69mport "//evil.example/x";', f'@\\69mport "{EVIL}";'),
    ("a{b:image-s\\65t('//evil.example/x' 1x)}", f"a{{b:image-s\\65t('{EVIL}' 1x)}}"),
    ('@import-x "//evil.example/x";', '@import-x "//evil.example/x";'),  # another at-rule
    ('a{b:myurl("//evil.example/x")}', 'a{b:myurl("//evil.example/x")}'),  # not url(): a string
    # @namespace names are not fetched: left as they are
    (
        "@namespace url(http://www.w3.org/1999/xhtml); a{b:url(//cdn.example/a.png)}",
        f"@namespace url(http://www.w3.org/1999/xhtml); a{{b:url({CDN})}}",
    ),
    ('@namespace svg "http://www.w3.org/2000/svg";', '@namespace svg "http://www.w3.org/2000/svg";'),
    (
        "@NAMESPACE svg url('http://www.w3.org/2000/svg');",
        "@NAMESPACE svg url('http://www.w3.org/2000/svg');",
    ),
]


@pytest.mark.parametrize(("css", "expected"), CASES)
def test_rewrite_css_text(css: str, expected: str, mapper: UrlMapper) -> None:
    assert rewrite_css_text(css, mapper=mapper, base=BASE) == expected


def test_protocol_relative_takes_the_scheme_of_the_base(mapper: UrlMapper) -> None:
    out = rewrite_css_text("a{b:url(//cdn.example/a.png)}", mapper=mapper, base="http://shop.example/")
    assert out == f"a{{b:url({proxy('h-cdn-example', '/a.png')})}}"


def test_files_are_decoded_and_written_in_utf8(mapper: UrlMapper) -> None:
    body = '@charset "iso-8859-1";\na::after{content:"é"; background:url(//cdn.example/a.png)}'.encode(
        "latin-1"
    )
    out = rewrite_css(body, url=BASE, mapper=mapper)
    assert out.decode("utf-8") == f'@charset "utf-8";\na::after{{content:"é"; background:url({CDN})}}'


@pytest.mark.parametrize(
    ("body", "content_type", "text"),
    [
        (b"\xef\xbb\xbfa{content:'\xc3\xa9'}", None, "a{content:'é'}"),
        ("a{content:'ж'}".encode("cp1251"), "text/css; charset=windows-1251", "a{content:'ж'}"),
        (b"a{content:'\xe9'}", "text/css; charset=nonsense", "a{content:'\ufffd'}"),
        (b"a{content:'\xe9'}", "text/css; charset=base64", "a{content:'\ufffd'}"),
    ],
)
def test_css_encodings(body: bytes, content_type: str | None, text: str, mapper: UrlMapper) -> None:
    assert rewrite_css(body, url=BASE, mapper=mapper, content_type=content_type).decode("utf-8") == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="url()'\"\\/:;{}@import-image-set htps.ex/a", max_size=120))
def test_never_raises_and_is_identity_without_absolute_urls(css: str) -> None:
    out = rewrite_css_text(css, mapper=make_mapper(), base=BASE)
    if not might_hold_absolute_url(css):
        assert out == css
    for link in re.findall(r"url\(\s*['\"]?([^'\")\s\\]*)(?=['\")\s])", out):  # escapes: the table above
        assert link.startswith("http://k3j9x2ab7q") or not re.match(r"(?i)(//|https?:|wss?:)", link)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_binary_garbage_passes(body: bytes) -> None:
    out = rewrite_css(body, url=BASE, mapper=make_mapper())
    out.decode("utf-8")  # UTF-8, as the dispatcher declares
