"""rewriter/html_parity.py: tokens libxml2 reads unlike a browser, rewritten before lxml parses them.

What Chromium makes of the results is checked in ``test_parse_parity_in_chromium.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from lxml import etree
from rewrite_helpers import make_mapper

from rewriter.html import rewrite_html
from rewriter.html_parity import ParityMarks, browser_parse_fixups

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
        # (the page ends with </body></html> again: the content between was dropped)
        ("<p>x</p></body></html><p>y</p></body></html>", "<p>x</p><p>y</p></body></html>"),
        ("<p>x</p></HTML>\n<script>1</script></body></html>", "<p>x</p>\n<script>1</script></body></html>"),
        ("<p>x</p></body>\n<!--a--></body></html>", None),
        # a NUL in text goes; kept in values, comments, raw text, <noscript>, svg and math
        ("<p>a\0b</p>\0", "<p>ab</p>"),
        (
            "<p title='a\0b' \0>c</p><!--\0--><script>\0</script><noscript>\0</noscript><svg>\0</svg>",
            None,
        ),
        ("<svg><foreignObject>a\0b</foreignObject></svg><math>\0</math>c\0", "<svg><foreignObject>ab"
         "</foreignObject></svg><math>\0</math>c"),
        # a <template> or <noscript> before the body, no <head> before it: a <head> goes before it
        ("<!DOCTYPE html><template><li>x</template>", "<!DOCTYPE html><head><template><li>x</template>"),
        (
            "<!-- c --><html lang=en>\n<META charset=utf-8><script>'<p>'</script><title>a<b></title>"
            "<NOSCRIPT>",
            "<!-- c --><html lang=en>\n<META charset=utf-8><script>'<p>'</script><title>a<b></title>"
            "<head><NOSCRIPT>",
        ),
        ("<!DOCTYPE html></p><template>", "<!DOCTYPE html></p><head><template>"),
        ("<!DOCTYPE html><head><template>", None),
        ("<!DOCTYPE html><body><template>", None),
        ("<!DOCTYPE html>x<template>", None),
        ("<!DOCTYPE html><p><template>", None),
        ("<!DOCTYPE html></head><template>", None),
        ("<!DOCTYPE html><script>", None),
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


def test_a_malformed_xhtml_page_read_with_the_html_parser_keeps_its_self_closed_elements() -> None:
    """XHTML that is not well-formed is read with the HTML parser, which must not be told that
    ``<span/>`` is open (nor when libxml2 finds a stray </p> there and the page is read again)."""
    out = rewrite_html(
        b'<html xmlns="http://www.w3.org/1999/xhtml"><body><span/>x<p class="m">y</p><div></p></div>'
        b"</body></html>",
        url=UPSTREAM, mapper=make_mapper(), content_type="application/xhtml+xml", mask_selectors=(".m",),
    )
    assert b"<span></span>x" in out


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

    reads = _count_tag_reads(monkeypatch)
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


def test_marks_the_comments_a_browser_puts_after_the_body_and_each_end_p() -> None:
    marks = ParityMarks(marker="M", end_p=True)
    out = browser_parse_fixups(
        b"<p>x</p><!--</p>--><p title='</p>'>y</p></body>\n<!--a--><!--></html><!--b--><p>z</p>"
        b"<svg></p></svg><!--c--></body><!--d-->",
        marks=marks,
    )
    assert out == (
        b"<p>x<!--Mp--></p><!--</p>--><p title='</p>'>y<!--Mp--></p>\n<!--Mha--><!--Mh--><!--Mdb-->"
        b"<p>z<!--Mp--></p><svg></p></svg><!--c--></body><!--d-->"
    )
    assert marks.moved_comments


def test_without_marks_nothing_is_marked() -> None:
    assert browser_parse_fixups(b"<p>x</p></body><!--a--><p>y</p>") == b"<p>x</p><!--a--><p>y</p>"


def _parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    from rewriter import html as html_module

    parsed: list[bytes] = []
    real = html_module._html_parse

    def counting(data: bytes) -> Any:
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(html_module, "_html_parse", counting)
    return parsed


def test_a_page_without_a_stray_end_p_is_parsed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed = _parses(monkeypatch)
    rewrite_html(b"<!DOCTYPE html><p>a</p><div><p>b</div><p>c", url=UPSTREAM, mapper=make_mapper())
    assert len(parsed) == 1


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (b"<!DOCTYPE html><p><div>x</div></p>", b"<body><p></p><div>x</div><p></p></body>"),
        (b"<!DOCTYPE html><div><p>a</div></p>b<p>c</p>", b"<body><div><p>a</p></div><p></p>b<p>c</p></body>"),
        (b"<!DOCTYPE html><head></p></head><body>x</p>", b"<head></head><body>x<p></p></body>"),
        (b"<!DOCTYPE html><template>a</p><b></p></b></template>", b"<template>a<b><p></p></b></template>"),
        (
            b"<!DOCTYPE html></p><!--a--><html></p><p>x</p></p>",
            b"<!--a--><html><head></head><body><p>x</p><p></p>",
        ),
    ],
)
def test_a_stray_end_p_becomes_an_empty_p(
    monkeypatch: pytest.MonkeyPatch, markup: bytes, expected: bytes
) -> None:
    parsed = _parses(monkeypatch)
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), inject="")
    assert expected in out.replace(b'<meta charset="utf-8">', b""), out
    assert len(parsed) == 2
    assert b"cobrowse-parity" not in out


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (b"<body class=a><p>x</p><body class=b id=z>", b'<body class="a" id="z">'),
        (b"<p>x</p><BODY Data-X='&amp;1' id=a>", b'<body data-x="&amp;1" id="a">'),
        (b'<body><template><body class=t></template><!--<body class=c>--><p title="<body class=v>">x',
         b"<body>"),
        (b'<body class=a><body "x"=1 data-y=2>', b'<body class="a" data-y="2">'),  # no valid name: left out
        (b'<body class=a><body data-x="a\x01b" id=z>', b'<body class="a" id="z">'),  # lxml refuses \x01
    ],
)
def test_a_second_body_tag_gives_the_body_its_missing_attributes(markup: bytes, expected: bytes) -> None:
    out = rewrite_html(b"<!DOCTYPE html>" + markup, url=UPSTREAM, mapper=make_mapper(), inject="")
    assert expected in out, out


@pytest.mark.parametrize("stray", [b"<div>x</p></div>", b""])
def test_a_body_tag_in_an_attribute_value_lends_the_body_nothing(stray: bytes) -> None:
    """An attribute value with markup before the tag ('<b>x</b>' put a ">" after its last "<"):
    the pre-pass's look-back took the <body> in it for a tag, and the body of the agent's view got
    its onload (text in a value, user content on many sites, made a script there)."""
    value = b'<b>x</b> <body onload=alert(document.cookie) class=evil>'
    markup = b"<!DOCTYPE html><body><p>a</p><body id=z>" + stray + b'<div title="' + value + b'">y</div>'
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), inject="")
    assert b'<body id="z">' in out, out
    assert b'title="&lt;b&gt;x&lt;/b&gt; &lt;body onload=alert(document.cookie) class=evil&gt;"' in out, out
    assert b"cobrowse-parity" not in out


def test_an_end_p_in_an_attribute_value_is_left_as_it_is() -> None:
    """The marker put before each </p> of a page with a stray one stayed in a value whose markup
    hid it from the pre-pass's look-back (a tooltip's HTML, a component's props)."""
    markup = (
        b"<!DOCTYPE html><div>x</p></div><div data-content=\"<b>hi</b></p>\" "
        b"data-props='{\"html\": \"<i>a</i></p><!-- c -->\"}'>y</div></body><!--z-->"
    )
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), inject="")
    unmarked = rewrite_html(markup.replace(b"x</p>", b"x"), url=UPSTREAM, mapper=make_mapper(), inject="")
    assert out == unmarked.replace(b"<div>x</div>", b"<div>x<p></p></div>"), out
    assert b'data-content="&lt;b&gt;hi&lt;/b&gt;&lt;/p&gt;"' in out, out


def test_a_selector_that_needs_a_second_body_tags_class_masks() -> None:
    """A page's header include opened the body; its template's <body class=account> came after.
    The visitor's browser gives the body that class, and ``.account .balance`` is masked there;
    libxml2 dropped the tag, the selector matched nothing and the balance reached the agent."""
    markup = b"<!DOCTYPE html><body><p class=balance>4111 1111</p><body class=account>"
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), mask_selectors=[".account .balance"])
    assert b"4111" not in out, out


def test_comments_after_the_body_go_where_a_browser_puts_them() -> None:
    out = rewrite_html(
        b"<!DOCTYPE html><p>x</p></body>\n<!--a--><!--></html><!--b-->\n<p>y</p><!--c-->",
        url=UPSTREAM, mapper=make_mapper(), inject="",
    )
    assert out.endswith(b"<body><p>x</p>\n\n<p>y</p><!--c--></body><!--a--><!----></html><!--b-->"), out


def test_the_head_scan_and_the_marks_read_each_tag_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: a long head before a <template>, and a page of stray </p>."""

    reads = _count_tag_reads(monkeypatch)
    data = b"<!DOCTYPE html>" + b"<meta name=a content=b></p>" * 4096 + b"<template>x</template>"
    data += b"<p><div>x</div></p>" * 4096 + b"<p>x<table></table>" * 4096
    out = browser_parse_fixups(data, marks=ParityMarks(end_p=True, quirks_tables=True))
    assert b"<head><template>" in out
    assert len(reads) <= 2 * data.count(b"<"), len(reads)


def test_past_libxml2s_hundred_errors_a_stray_end_p_and_a_second_body_are_still_mended() -> None:
    """libxml2 reports at most 100 errors: a page with more hid its stray </p> from the gate."""
    markup = b"<!DOCTYPE html>" + b"<div></span></div>" * 150 + b"<p><div>x</div></p><body class=b>"
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), inject="")
    assert b'<body class="b">' in out
    assert out.endswith(b"<p></p><div>x</div><p></p></body></html>"), out[-80:]


@pytest.mark.parametrize(
    ("markup", "expected"),
    [
        (
            b"<p>x<table><tr><td>a</table>y<b>z</b></p>w",
            b"<body><p>x<table><tr><td>a</td></tr></table>y<b>z</b></p>w",
        ),
        (b"<p>x<table></table>y<div>d</div>", b"<body><p>x<table></table>y</p><div>d</div>"),
        (b"<p>x</p><table></table>", b"<body><p>x</p><table></table>"),
        (b"<table><tr><td><p>x<table></table>y</td></tr></table>", b"<td><p>x<table></table>y</p></td>"),
        # a doctype: standards mode, where a <table> closes the <p>
        (b"<!DOCTYPE html><p>x<table></table>y</p>", b"<body><p>x</p><table></table>y<p></p>"),
    ],
)
def test_in_quirks_mode_a_p_holds_a_table(markup: bytes, expected: bytes) -> None:
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), inject="")
    assert expected in out, out
    assert b"cobrowse-parity" not in out


def test_a_masked_p_masks_the_table_it_holds_in_quirks_mode() -> None:
    """libxml2 closed the <p> at the <table>: the card number in the table, inside the masked p
    in the visitor's browser, reached the agent."""
    markup = b'<p class="secret">card<table><tr><td>4111 1111</table>exp 12/30</p>'
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), mask_selectors=[".secret"])
    assert b"4111" not in out and b"12/30" not in out, out


def test_a_page_with_a_doctype_pays_no_quirks_table_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The search for a <table> after a <p> read the whole page before the doctype was looked at."""
    from rewriter import html as html_module

    calls: list[bytes] = []
    monkeypatch.setattr(html_module, "quirks_tables_possible", lambda data: calls.append(data) or True)
    rewrite_html(b"<!DOCTYPE html><p>x<table></table>", url=UPSTREAM, mapper=make_mapper())
    assert calls == []
    rewrite_html(b"<p>x<table></table>", url=UPSTREAM, mapper=make_mapper())
    assert len(calls) == 1


def test_a_body_takes_at_most_a_thousand_attributes_from_its_other_body_tags() -> None:
    """libxml2 looks an attribute up in a list: each merged attribute cost more than the last."""
    from rewriter import html_parity

    markup = b"<!DOCTYPE html><body id=a>" + b"".join(b"<body data-a%d=1>" % i for i in range(1500))
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), inject="")
    root = etree.fromstring(out, etree.HTMLParser())
    assert len(root.find("body").attrib) == html_parity._BODY_ATTRIBUTES
    assert root.find("body").get("id") == "a" and root.find("body").get("data-a0") == "1"


@pytest.mark.parametrize(
    "value",
    [b"<b>x</b><form>", b"<b>x</b></form><form>", b"<i>a</i></br>"],
)
def test_a_token_in_an_attribute_value_after_markup_is_left_alone(value: bytes) -> None:
    """A value with markup before the token ("<b>x</b>" puts a ">" after its last "<") was read
    as text: the real <form class=pay> after it was taken out as a second form, and the selector
    ``form.pay input`` matched nothing in the agent's view (the card number reached the agent)."""
    markup = (
        b'<!DOCTYPE html><body><div title="' + value + b'">t</div>'
        b"<form class=pay><input name=card value=4111-1111></form><p>y</p></body>"
    )
    masks = ["form.pay input"]
    out = rewrite_html(markup, url=UPSTREAM, mapper=make_mapper(), inject="", mask_selectors=masks)
    assert b"4111" not in out, out
    assert b'<form class="pay">' in out and b"<p>y</p></body>" in out, out
    assert etree.fromstring(out, etree.HTMLParser()).find(".//div").get("title") == value.decode()


def _count_tag_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The positions the pre-pass reads a start tag at, as it reads them."""
    from rewriter import html_parity

    reads: list[int] = []
    pattern = html_parity._START_TAG_RE

    class Counting:
        def match(self, data: bytes, pos: int = 0) -> Any:
            reads.append(pos)
            return pattern.match(data, pos)

    monkeypatch.setattr(html_parity, "_START_TAG_RE", Counting())
    return reads
