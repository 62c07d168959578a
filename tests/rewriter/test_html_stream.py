"""The token-stream fallback applies the same policy as the tree rewriter (same conformance table)."""

from __future__ import annotations

import json

import pytest
from lxml import etree
from rewrite_helpers import EVIL, SID, make_mapper, proxy
from test_html import FRAMES, INJECT, INTEGRITY, PLACES, URL

from rewriter.html_stream import rewrite_html_stream
from rewriter.masking import MASK
from rewriter.urls import ProxyConfig, UrlMapper


def stream(doc: str, inject: str = "") -> bytes:
    return rewrite_html_stream(doc, url=URL, mapper=make_mapper(), inject=inject, srcdoc=lambda v: f"[{v}]")


def parse(out: bytes) -> etree._Element:
    return etree.fromstring(out, etree.HTMLParser(encoding="utf-8"))


@pytest.mark.parametrize(("fragment", "xpath", "expected"), PLACES)
def test_same_places_as_the_tree_rewriter(fragment: str, xpath: str, expected: str) -> None:
    assert [str(v) for v in parse(stream(fragment)).xpath(xpath)] == [expected]


@pytest.mark.parametrize(("fragment", "sandbox"), FRAMES)
def test_same_frames_sandboxed_as_the_tree_rewriter(fragment: str, sandbox: list[str]) -> None:
    assert [str(v) for v in parse(stream(fragment)).xpath("//iframe/@sandbox")] == sandbox


@pytest.mark.parametrize(("fragment", "kept"), INTEGRITY)
def test_integrity_as_the_tree_rewriter(fragment: str, kept: list[str]) -> None:
    assert [str(v) for v in parse(stream(fragment)).xpath("//@integrity")] == kept


def test_injection_meta_csp_integrity_password() -> None:
    out = stream(
        '<!DOCTYPE html><html><head><meta charset="latin1"><meta http-equiv="content-security-policy" '
        'content="x"><script src="/a.js" integrity="sha384-x"></script></head>'
        '<body><input type="password" name="p" value="hunter2"><iframe srcdoc="<p>"></iframe></body></html>',
        inject=INJECT,
    )
    assert out.startswith(b'<!DOCTYPE html><html><head><meta charset="utf-8">' + INJECT.encode())
    assert b"latin1" not in out and b"content-security-policy" not in out and b"integrity" not in out
    assert b"hunter2" not in out and MASK.encode() in out
    assert b'srcdoc="[&lt;p&gt;]"' in out  # handed to the srcdoc rewriter


def test_an_input_whose_autocomplete_names_a_secret_is_masked_as_by_the_tree_rewriter() -> None:
    out = stream(
        '<body><input autocomplete="CC-NUMBER" name="card" value="4111111111111111">'
        '<input autocomplete="one-time-code" value="839201"><input autocomplete="cc-name" value="Ana"></body>'
    )
    assert b"4111111111111111" not in out and b"839201" not in out and MASK.encode() in out
    assert b'value="Ana"' in out
    # a textarea's or a select's content is the secret: left out, up to its own end tag
    out = stream(
        '<body><textarea autocomplete="one-time-code">839&#50;01 <b>x</b></textarea>'
        '<select autocomplete="cc-csc"><option selected>737</option><option>&amp;12</option></select>'
        '<p>after</p><textarea name="note">kept</textarea></body>'
    ).decode()
    assert "839" not in out and "737" not in out and "12" not in out and "<b>" not in out
    assert f'<textarea autocomplete="one-time-code" data-cobrowse-masked="">{MASK}</textarea>' in out
    assert f'<select autocomplete="cc-csc" data-cobrowse-masked="">{MASK}</select><p>after</p>' in out
    assert '<textarea name="note">kept</textarea>' in out


def test_the_visitor_banner_is_left_out_as_by_the_tree_rewriter() -> None:
    out = stream(
        '<head><script src="https://api.example/banner.js?v=2" data-site-key="sk_1"></script>'
        '<script src="https://shop.example/banner.js"></script><script src="/x/banner.js" data-site-key>'
        '</script></head>'
        '<body><p>before<script src="/banner.js" data-site-key="sk_1" async>ignored()</script>after</p>'
        '<script src="/app.js" data-site-key="not-ours">app()</script></body>'
    ).decode()
    assert "api.example" not in out and "ignored()" not in out and 'src="/banner.js"' not in out
    assert "/x/banner.js" not in out  # a valueless site key is one too, as lxml reads it
    assert "<p>beforeafter</p>" in out
    assert "/banner.js" in out  # the site's own script of that name (no site key) stays
    assert '<script src="/app.js" data-site-key="not-ours">app()</script>' in out


def test_injection_without_head_goes_before_the_first_content() -> None:
    out = stream("<p>text</p><script>x()</script>", inject=INJECT)
    assert out.index(INJECT.encode()) < out.index(b"<p>")


def test_untouched_tokens_are_copied() -> None:
    doc = "<!-- c --><p class=a data-x='1'>t &amp; u &#169;</p><script>if (a<b) {}</script><![CDATA[x]]>"
    out = stream(doc).decode()
    assert "<!-- c -->" in out
    assert "<p class=a data-x='1'>t &amp; u &#169;</p>" in out
    assert "<script>if (a<b) {}</script>" in out


@pytest.mark.parametrize(
    ("script_type", "text", "expected"),
    [
        ("importmap", '{"imports": {"a": "https://evil.example/x"}}', {"imports": {"a": EVIL}}),
        (
            "speculationrules",
            '{"prefetch": [{"source": "list", "urls": ["//evil.example/x"]}]}',
            {"prefetch": [{"source": "list", "urls": [EVIL]}]},
        ),
        (
            "module",
            '{"imports": {"a": "https://evil.example/x"}}',
            {"imports": {"a": "https://evil.example/x"}},
        ),
    ],
)
def test_json_scripts_like_the_tree_rewriter(script_type: str, text: str, expected: object) -> None:
    out = parse(stream(f'<script type="{script_type}">{text}</script>'))
    assert json.loads(out.xpath("//script/text()")[0]) == expected


def test_an_element_left_open_at_the_end_keeps_its_text() -> None:
    """A browser never reads an import map (nor runs a script) left open at the end of the
    document, but applies such a style: the text is copied on, mapped, and takes no routes."""
    mapper = UrlMapper(SID, ProxyConfig("cobrowse.localhost", 8001, "http"), ["https://cdn.example"])
    routes = {
        "https://cdn.example/": proxy("s-cdn-example", "/"),
        "http://cdn.example/": proxy("s-cdn-example", "/"),
    }

    def run(doc: str) -> str:
        return rewrite_html_stream(doc, url=URL, mapper=mapper, inject=INJECT, srcdoc=lambda v: v).decode()

    out = run('<script type="importmap">{"imports": {"a": "https://cdn.example/a.js"}}')
    ours, page = out.split('<script type="importmap">')[1:]
    assert json.loads(ours.removesuffix("</script>")) == {"imports": routes}
    assert json.loads(page) == {"imports": {"a": proxy("s-cdn-example", "/a.js")}}
    assert run("<p><style>p { background: url(https://cdn.example/a.png) }").endswith(
        f"<style>p {{ background: url({proxy('s-cdn-example', '/a.png')}) }}"
    )
    assert run("<p><script>var a = 1").endswith("<script>var a = 1")
