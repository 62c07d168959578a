"""The dispatcher: Content-Type (sniffed when missing or vague) -> rewriter."""

from __future__ import annotations

import pytest

from rewriter import charset
from rewriter.dispatch import MIME_KINDS, SNIFF_BYTES, kind_of, rewrite_body, sniffs_as_text
from rewriter.urls import UrlMapper

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"

# (Content-Type, body prefix, kind)
CASES = [
    ("text/html", b"<p>x", "html"),
    ("text/html; charset=utf-8", b"", "html"),
    ("TEXT/HTML ; charset=utf-8", b"<p>", "html"),
    ("application/xhtml+xml", b"<?xml version='1.0'?><html/>", "html"),
    ("text/css", b"a{}", "css"),
    ("text/css;charset=iso-8859-1", b"a{}", "css"),
    ("text/javascript", b"<html>", "passthrough"),
    ("application/javascript", b"var a", "passthrough"),
    ("application/json", b'{"a": "<html>"}', "passthrough"),
    ("image/png", PNG, "passthrough"),
    ("image/svg+xml", b"<svg/>", "svg"),
    ("image/svg+xml; charset=utf-8", b"<?xml version='1.0'?><svg/>", "svg"),
    ("image/svg+xml", b"\x1f\x8b\x08\x00", "passthrough"),  # svgz
    ("font/woff2", b"wOF2", "passthrough"),
    ("text/plain", b"<html>", "passthrough"),
    ("application/octet-stream", b"<html>", "passthrough"),
    (None, b"<!DOCTYPE html><html>", "html"),
    (None, b"  \n<HTML>", "html"),
    (None, b"\xef\xbb\xbf<html>", "html"),
    ("", b"<p>hello", "html"),
    ("unknown/unknown", b"<!-- c --><div>", "html"),
    ("*/*", b"<body>", "html"),
    (None, b"<a href=x>", "html"),
    (None, b" " * 600 + b"<html>", "html"),  # leading whitespace past 512 bytes: still HTML to a browser
    (None, b"<abbr>", "passthrough"),
    (None, b"a{color:red}", "passthrough"),
    (None, PNG, "passthrough"),
    (None, b"", "passthrough"),
    ("text/html", PNG, "passthrough"),  # mislabelled image: rewriting would corrupt it
    ("text/html", b"GIF89a\x01\x00", "passthrough"),
    ("text/css", b"\x1f\x8b\x08\x00", "passthrough"),  # gzip labelled CSS
]


@pytest.mark.parametrize(("content_type", "prefix", "kind"), CASES)
def test_kind_of(content_type: str | None, prefix: bytes, kind: str) -> None:
    assert kind_of(content_type, prefix) == kind


def test_table_is_only_html_svg_and_css() -> None:
    assert set(MIME_KINDS.values()) == {"html", "svg", "css"}


def test_rewrite_body(mapper: UrlMapper) -> None:
    html = rewrite_body(
        b'<a href="https://a.example/">a</a>', url="https://a.example/", mapper=mapper, content_type=None
    )
    assert html.kind == "html" and html.content_type == "text/html; charset=utf-8"
    assert b"https://a.example" not in html.body
    css = rewrite_body(
        b"a{b:url(//a.example/x)}",
        url="https://a.example/",
        mapper=mapper,
        content_type="text/css; charset=latin1",
    )
    assert css.kind == "css" and css.content_type == "text/css; charset=utf-8"
    assert b"//a.example" not in css.body
    svg = rewrite_body(
        b'<svg xmlns="http://www.w3.org/2000/svg"><a href="https://a.example/">a</a></svg>',
        url="https://a.example/i.svg",
        mapper=mapper,
        content_type="image/svg+xml",
        inject="<script>never in SVG</script>",
    )
    assert svg.kind == "svg" and svg.content_type == "image/svg+xml; charset=utf-8"
    assert b"https://a.example" not in svg.body and b"never in SVG" not in svg.body
    js = b"location.href = 'https://a.example/'"
    same = rewrite_body(js, url="https://a.example/", mapper=mapper, content_type="text/javascript")
    assert same.body is js and same.content_type == "text/javascript"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["text/html"], "text/html"),
        (["text/html; charset=utf-8"], "text/html; charset=utf-8"),
        (["TEXT/HTML ; charset=UTF-8"], "text/html; charset=UTF-8"),
        (["html"], None),  # no slash: not a MIME type, the body is sniffed
        (["text/html charset=utf-8"], "text/html"),  # invalid; Chromium reads the type up to the space
        (["text/html (x)"], "text/html"),
        (["*/*"], None),
        ([], None),
        (["text/plain", "text/html"], "text/html"),  # of several, the last valid one
        (["text/html, */*"], "text/html"),
        (["text/css, nonsense"], "text/css"),
        (['image/png; a="\\"", text/html'], "text/html"),  # an escaped quote does not end the string
        (['application/xml; charset="x, text/html"'], "application/xml"),  # never forwarded raw
        (["text/html; charset=Shift_JIS", "text/html"], "text/html; charset=Shift_JIS"),  # kept
        (["text/html; charset=bogus"], "text/html"),  # an unknown encoding is ignored
        (['multipart/mixed; boundary="--frame=1"'], 'multipart/mixed; boundary="--frame=1"'),
    ],
)
def test_extract_content_type_as_fetch_does(values: list[str], expected: str | None) -> None:
    from rewriter.charset import extract_content_type

    assert extract_content_type(values) == expected


@pytest.mark.parametrize(
    ("prefix", "text"),
    [
        (b"plain words\r\n\tand a tab, a form feed \x0c and ESC \x1b", True),
        ("caf\u00e9 \u2603".encode(), True),
        (b"\xff\xfeh\x00i\x00", True),  # UTF-16 with its BOM
        (b"", True),
        (PNG, False),
        (b"text, then a NUL\x00", False),
        (b"a vertical tab \x0b", False),
        (b"x" * SNIFF_BYTES + b"\x00", True),  # past the resource header: not looked at
        (b"%PDF-1.7\n%text only in its first bytes\n", False),  # a PDF: the browser's viewer
        (b"%!PS-Adobe-3.0\n", False),
    ],
)
def test_an_untyped_body_sniffs_as_text_without_binary_data_bytes(prefix: bytes, text: bool) -> None:
    assert sniffs_as_text(prefix) is text


@pytest.mark.parametrize(
    ("body", "content_type", "codec", "label"),
    [
        ('<p title="日本">日本語 <a href="https://a.example/x?q=日本">x</a></p>'.encode("cp932"),
         "text/html; charset=Shift_JIS", "cp932", "shift_jis"),
        ('<meta charset="windows-1252"><p>café <a href="https://a.example/é">x</a></p>'.encode("cp1252"),
         "text/html", "cp1252", "windows-1252"),
        ('<p>Привет <a href="https://a.example/">x</a></p>'.encode("koi8_r"),
         "text/html; charset=koi8-r", "koi8_r", "koi8-r"),
        # not UTF-8 and nothing says: read as windows-1252, as browsers do
        ("<p>café é <a href='https://a.example/'>x</a></p>".encode("cp1252"), "text/html", "cp1252",
         "windows-1252"),
    ],
)
def test_a_page_goes_out_in_the_legacy_encoding_it_came_in(
    mapper: UrlMapper, body: bytes, content_type: str | None, codec: str, label: str
) -> None:
    """In UTF-8, a Shift_JIS page's form sent 日本 as %E6%97%A5%E6%9C%AC where the site reads
    %93%FA%96%7B, and its scripts and style sheets without a charset were read as UTF-8."""
    out = rewrite_body(body, url="https://a.example/", mapper=mapper, content_type=content_type,
                       inject='<script src="/__cobrowse/runtime.js" data-c="☃"></script>')
    assert out.content_type == f"text/html; charset={label}"
    text = out.body.decode(codec)  # strict: every byte is the page's encoding
    assert body.decode(codec).split("<a")[0].split(">")[-1] in text  # the text as it was
    assert f'<meta charset="{label}">' in text and "utf-8" not in text
    assert "https://a.example" not in text
    assert "&#9731;" in text  # what the encoding cannot hold: a character reference


def test_the_queries_of_a_legacy_pages_links_are_in_its_encoding(mapper: UrlMapper) -> None:
    """As a browser sends them from such a page: libxml2's serialiser escaped them in UTF-8, and a
    Shift_JIS page's ``?q=日本`` reached the site as ``%E6%97%A5%E6%9C%AC``. Paths and fragments
    stay UTF-8, as in a browser; one character the encoding cannot hold goes as ``&#N;``."""
    page = (
        '<p><a href="/y?q=日本">x</a><a href="https://a.example/z/日?q=本#日">y</a>'
        '<form action="/f?k=本"></form><img src="/i?n=&#9731;"></p>'
    )
    out = rewrite_body(page.encode("cp932"), url="https://a.example/", mapper=mapper,
                       content_type="text/html; charset=shift_jis").body.decode("cp932")
    assert 'href="/y?q=%93%FA%96%7B"' in out
    assert "/z/%E6%97%A5?q=%96%7B#%E6%97%A5" in out
    assert 'action="/f?k=%96%7B"' in out and 'src="/i?n=%26%239731%3B"' in out
    # a UTF-8 page's are as before
    utf8 = rewrite_body(page.encode(), url="https://a.example/", mapper=mapper, content_type="text/html")
    assert 'href="/y?q=%E6%97%A5%E6%9C%AC"' in utf8.body.decode()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<p>日本語</p>".encode("utf-16"), "text/html"),  # BOM: UTF-16 pages go out in UTF-8
        ("<p>日本語</p>".encode(), "text/html; charset=utf-8"),
        ("<p>日本語</p>".encode(), None),  # sniffed
        ('<?xml version="1.0" encoding="Shift_JIS"?><html xmlns="http://www.w3.org/1999/xhtml"><body>'
         "<p>日本語</p></body></html>".encode("cp932"), "application/xhtml+xml; charset=Shift_JIS"),
    ],
)
def test_utf_and_xml_pages_go_out_in_utf_8(mapper: UrlMapper, body: bytes, content_type: str | None) -> None:
    out = rewrite_body(body, url="https://a.example/", mapper=mapper, content_type=content_type)
    assert out.content_type is not None and out.content_type.endswith("; charset=utf-8")
    assert "日本語" in out.body.decode("utf-8")


def test_an_undeclared_page_is_read_for_its_encoding_once(
    mapper: UrlMapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing names its encoding, so picking one is a UTF-8 check over the whole body: done once,
    not again to send the page out in it."""
    checked: list[int] = []
    real = charset._valid_utf8

    def counting(body: bytes) -> bool:
        checked.append(len(body))
        return real(body)

    monkeypatch.setattr(charset, "_valid_utf8", counting)
    body = ("<p>café " + "x" * 5000 + "</p>").encode()
    out = rewrite_body(body, url="https://a.example/", mapper=mapper, content_type="text/html")
    assert out.content_type == "text/html; charset=utf-8" and "café" in out.body.decode()
    assert checked == [len(body)]


def test_a_style_sheet_that_says_no_encoding_and_is_not_utf_8_keeps_its_bytes(mapper: UrlMapper) -> None:
    """The browser reads it in its page's encoding, which the proxy does not know: the bytes go as
    they came (表's second byte is a backslash), but for the URLs mapped, and with no charset."""
    sheet = 'a::after { content: "表示" } a { background: url(https://a.example/x.png) }'.encode("cp932")
    out = rewrite_body(sheet, url="https://a.example/s.css", mapper=mapper, content_type="text/css")
    assert out.content_type == "text/css"
    assert out.body.startswith('a::after { content: "表示" }'.encode("cp932"))
    assert b"https://a.example" not in out.body and b".png)" in out.body
    # said, or UTF-8: read so, and sent in UTF-8
    said = ((sheet, "text/css; charset=shift_jis"), ("a{content:'表'}".encode(), "text/css"))
    for body, content_type in said:
        out = rewrite_body(body, url="https://a.example/s.css", mapper=mapper, content_type=content_type)
        assert out.content_type == "text/css; charset=utf-8" and "表" in out.body.decode("utf-8")


def test_markup_a_script_reads_keeps_its_text_when_it_goes_out_in_its_encoding(mapper: UrlMapper) -> None:
    """No ``<meta charset>`` is added to markup a script reads: a text that looks like ours (in a
    script) is not relabelled."""
    markup = "<p>日本</p><script>var s = '<meta charset=\"utf-8\">';</script>".encode("cp932")
    out = rewrite_body(markup, url="https://a.example/", mapper=mapper,
                       content_type="text/html; charset=shift_jis", document=False)
    assert out.content_type == "text/html; charset=shift_jis"
    assert '<meta charset="utf-8">' in out.body.decode("cp932") and "日本" in out.body.decode("cp932")
