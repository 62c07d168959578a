"""rewriter/html_parity.py: tokens libxml2 reads unlike a browser, rewritten before lxml parses them.

What Chromium makes of the results is checked in ``test_parse_parity_in_chromium.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree
from rewrite_helpers import make_mapper

from rewriter.html import rewrite_html
from rewriter.html_parity import browser_parse_fixups

UPSTREAM = "https://shop.example/"


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        # the "/" of a non-void HTML element goes (the browser ignores it)
        ("<p><span/>x</p>", "<p><span>x</p>"),
        ('<div class="clear" />', '<div class="clear" >'),
        ('<DIV ID="y"/>z', '<DIV ID="y">z'),
        ("<span\n/>x", "<span\n>x"),
        ("<custom-el a='1'/>", "<custom-el a='1'>"),
        ('<script src="x.js" /><title>t</title>', '<script src="x.js" ><title>t</title>'),
        ("<form/><input>", "<form><input>"),
        # kept: void elements, values, comments, raw text, svg and math
        ("<br/><img src=a.png /><input/><meta charset=utf-8/>", None),
        ("<div class=secret/>text<a href=/a/b/>x</a>", None),  # the "/" is the value's
        ("<p title=\"a/>b\" data-x='/>'>x</p>", None),
        ("<!-- <b><span/> --><!--><span/>", "<!-- <b><span/> --><!--><span>"),
        ("<script>var s = '<span/>';</script><style>a[x='<b/>']{}</style>", None),
        ("<textarea><b/></textarea><title><i/></title><xmp><u/></xmp>", None),
        ("<plaintext><span/>", None),
        ("<svg><circle r=1/><g/><title/><style/></svg><math><mi/></math>", None),
        (
            "<svg><foreignObject><div/>z</foreignObject><g/></svg><b/>",
            "<svg><foreignObject><div>z</foreignObject><g/></svg><b>",
        ),
        # </br> is a <br>
        ("<p>a</br>b</BR >c", "<p>a<br>b<br>c"),
        # a <form> while a form is open is dropped, not in a template
        ("<form id=a><form id=b><input></form></form>", "<form id=a><input></form></form>"),
        ("<div><form id=a></div><form id=b>", "<div><form id=a></div>"),
        ("<form id=a></form><form id=b>", None),
        ("<form id=a><template><form id=b></form></template>", None),
        # content after </body> or </html> belongs in the body
        ("<p>x</p></body></html><p>after</p>", "<p>x</p><p>after</p>"),
        ("<p>x</p></body>\n<div>late</div></html>", "<p>x</p>\n<div>late</div></html>"),
        ("<p>x</p></body>\n<!-- c --></html>\n", None),
        ("<p>x</p></body><!-- a --> x <!-- b -->", "<p>x</p><!-- a --> x <!-- b -->"),
        # nothing to do: unscanned
        ("<p>x</p>", None),
    ],
)
def test_browser_parse_fixups(markup: str, expected: str | None) -> None:
    assert browser_parse_fixups(markup.encode()) == (expected or markup).encode()


def test_unterminated_markup_is_left_as_it_is() -> None:
    for markup in ('<div title="a/>', "<span/", "<!-- <b/>", "<script/>x", "<textarea/>"):
        fixed = browser_parse_fixups(markup.encode())
        assert fixed in (markup.encode(), markup.replace("/>", ">").encode())


@pytest.mark.parametrize(
    ("markup", "selectors"),
    [
        ('<!DOCTYPE html><script src="x.js"/><div class="secret">4111 1111</div></script>', (".secret",)),
        ('<!DOCTYPE html><textarea/><div class="secret">4111 1111</div></textarea>', (".secret",)),
        ('<!DOCTYPE html><script src="x.js"/><input type=password value="4111 1111"></script>', ()),
        ('<!DOCTYPE html><title/><textarea autocomplete=cc-number>4111 1111</textarea></title>', ()),
    ],
)
def test_what_a_self_closed_raw_text_element_swallows_stays_masked(
    markup: str, selectors: tuple[str, ...]
) -> None:
    """A browser reads what follows ``<script src=x/>`` as the script's text, which no mask
    reaches: with masks about, libxml2's reading (closed) is kept, and the element masked."""
    out = rewrite_html(
        markup.encode(), url=UPSTREAM, mapper=make_mapper(), inject="", mask_selectors=selectors
    )
    assert b"4111" not in out


def test_a_self_closed_raw_text_element_opens_when_nothing_is_masked() -> None:
    out = rewrite_html(
        b'<!DOCTYPE html><script src="x.js"/><div class="plain">x</div></script>',
        url=UPSTREAM, mapper=make_mapper(), inject="",
    )
    assert b'<script src="x.js"><div class="plain">x</div></script>' in out


def test_an_xhtml_page_with_masks_keeps_its_self_closed_elements() -> None:
    """A browser parses application/xhtml+xml as XML, where ``<span/>`` is empty: the page with
    masks is read (and written) as XML too, and the HTML fix-ups never run on it."""
    out = rewrite_html(
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><span/>x<p class="m">y</p></body></html>',
        url=UPSTREAM, mapper=make_mapper(), content_type="application/xhtml+xml", mask_selectors=(".m",),
    )
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    (span,) = etree.fromstring(out).xpath("//h:span", namespaces=ns)
    assert (span.text, span.tail) == (None, "x")


@pytest.mark.parametrize("tag", ["xmp", "iframe", "noembed", "noframes"])
def test_raw_text_in_svg_or_math_stays_escaped(tag: str) -> None:
    """In <svg> or <math> a browser reads an <xmp>'s text as markup (a <div> leaves the <svg>):
    what libxml2 read as its text, and so never masked, must not go out as markup."""
    for outer in ("svg", "math"):
        markup = f'<body><{outer}><{tag}><div class="secret">PIN 1234</div></{tag}></{outer}></body>'
        out = rewrite_html(markup.encode(), url=UPSTREAM, mapper=make_mapper(), mask_selectors=[".secret"])
        assert b'<div class="secret">PIN' not in out, out
    # in a <foreignObject>, HTML again: raw, as the browser reads it
    markup = f"<body><svg><foreignObject><{tag}><b>x</b></{tag}></foreignObject></svg></body>"
    out = rewrite_html(markup.encode(), url=UPSTREAM, mapper=make_mapper())
    assert f"<{tag}><b>x</b></{tag}>".encode() in out, out


def test_a_long_attribute_value_full_of_slashes_is_read_in_linear_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every "/>" of a quoted value went back to the tag's "<" and read the tag again: 64 KiB of
    them took 7 s, 256 KiB about two minutes (the square of the size). Each tag is read once now
    (counted, not timed: the machine is shared)."""
    from rewriter import html_parity

    reads: list[int] = []
    pattern = html_parity._START_TAG_RE

    class Counting:
        def match(self, data: bytes, pos: int = 0) -> Any:
            reads.append(pos)
            return pattern.match(data, pos)

    monkeypatch.setattr(html_parity, "_START_TAG_RE", Counting())
    data = b'<html><body><div title="' + b"/>" * (16 * 1024) + b'">x</div><span/>y</body></html>'
    out = browser_parse_fixups(data)
    assert out.endswith(b'">x</div><span>y</body></html>')
    assert len(reads) <= 2 * data.count(b"<"), len(reads)


@pytest.mark.parametrize(
    "markup",
    [
        b'<body><p data-t="</body>x">a</p><span/>b</body>',
        b'<body><form><input value="<form x>"><span/>b</form></body>',
        b'<body><p title="</br>">a</p><span/>b</body>',
        b'<body><a title="</html> more">a</a><span/>b</body>',
    ],
)
def test_tokens_inside_an_attribute_value_are_left_as_they_are(markup: bytes) -> None:
    """The pre-pass rewrote </body>, </html>, </br> and a second <form ...> wherever they stood,
    attribute values too (data-t="</body>x" became "x")."""
    out = browser_parse_fixups(markup)
    assert out == markup.replace(b"<span/>", b"<span>"), out


@pytest.mark.parametrize("context", [b'title="<svg>"', b'title="<textarea>"', b'title="<!--"'])
def test_a_context_tag_inside_an_attribute_value_does_not_stop_the_fixups(context: bytes) -> None:
    """"<svg>", "<textarea>" or "<!--" in an attribute value earlier in the page turned the
    fix-ups off for the rest of it: a masked <div class="secret"/>'s text went to the agent."""
    markup = b'<body><p ' + context + b'>a</p><div class="secret"/>PIN 1234</body>'
    assert b'<div class="secret">PIN 1234' in browser_parse_fixups(markup)
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), mask_selectors=[".secret"])
    assert b"1234" not in out, out
