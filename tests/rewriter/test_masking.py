"""Masking on the masked element itself: its own attributes (data-*, event handlers, URLs) go, the
structural ones stay, the shown ones carry the mask."""

from __future__ import annotations

import pytest
from lxml import etree
from rewrite_helpers import make_mapper

from rewriter.html import rewrite_html
from rewriter.masking import MASK, MASKED_ATTRIBUTE, mask_element

SECRET = "4111-1111-1111-1111"


def _element(markup: str) -> etree._Element:
    element = etree.fromstring(markup, etree.HTMLParser()).find(".//body/*")
    assert element is not None
    return element


@pytest.mark.parametrize(
    "attribute",
    ["data-secret", "data-x", "DATA-CARD", "onclick", "style", "href", "src", "srcset", "aria-describedby",
     "content", "itemprop", "x-anything"],
)
def test_a_masked_elements_own_revealing_attributes_are_removed(attribute: str) -> None:
    element = _element(f'<div id="card" class="c" {attribute}="{SECRET}">{SECRET}</div>')
    mask_element(element)
    assert dict(element.attrib) == {"id": "card", "class": "c", MASKED_ATTRIBUTE: ""}
    assert element.text == MASK


@pytest.mark.parametrize("attribute", ["value", "placeholder", "title", "alt", "aria-label", "label"])
def test_a_masked_elements_shown_attributes_carry_the_mask(attribute: str) -> None:
    element = _element(f'<span {attribute}="{SECRET}">x</span>')
    mask_element(element)
    assert element.get(attribute) == MASK


def test_a_masked_element_with_data_attributes_never_reaches_the_output() -> None:
    doc = (
        f'<div class="card" data-secret="{SECRET}" data-pan="{SECRET}"><span>x</span></div>'
        f'<input type="password" data-value="{SECRET}" name="pw"><p data-public="kept">public</p>'
    )
    out = rewrite_html(
        doc.encode(), url="https://shop.example/", mapper=make_mapper(), mask_selectors=[".card"]
    )
    assert SECRET.encode() not in out
    assert b'data-public="kept"' in out  # only masked elements lose theirs


@pytest.mark.parametrize(
    "field",
    [
        '<input autocomplete="cc-number" name="card" value="{secret}">',
        '<input autocomplete="billing CC-CSC" value="{secret}">',
        '<input type="text" autocomplete="one-time-code" value="{secret}">',
        '<input autocomplete="username current-password" value="{secret}">',
        '<input autocomplete="new-password" value="{secret}">',
        '<textarea autocomplete="cc-number">{secret}</textarea>',
        '<select autocomplete="cc-csc"><option selected>{secret}</option></select>',
    ],
)
def test_a_field_whose_autocomplete_names_a_secret_is_masked_without_a_selector(field: str) -> None:
    """A page that renders a saved card's number or a code into a field: the agent's view gets the
    mask (the visitor's banner never sends such a field either)."""
    out = rewrite_html(
        f"<form>{field.format(secret=SECRET)}<input name='q' value='kept'></form>".encode(),
        url="https://shop.example/",
        mapper=make_mapper(),
    )
    assert SECRET.encode() not in out
    assert MASK.encode() in out and MASKED_ATTRIBUTE.encode() in out
    assert b'value="kept"' in out  # other fields stay


def test_an_ordinary_autocomplete_is_not_masked() -> None:
    out = rewrite_html(
        b'<input autocomplete="cc-name" value="Ana Lopez"><input autocomplete="email" value="a@b.example">',
        url="https://shop.example/",
        mapper=make_mapper(),
    )
    assert b"Ana Lopez" in out and b"a@b.example" in out and MASKED_ATTRIBUTE.encode() not in out


XHTML_PAGE = (
    '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>{}</body></html>'
)


@pytest.mark.parametrize(
    ("selector", "body"),
    [
        # names a browser matches in XHTML, where the tree keeps their case (the HTML parser, which
        # read such pages before, made them lower case as the ``html`` translator's selectors are)
        ("foreignObject", '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject>'
                          '<p xmlns="http://www.w3.org/1999/xhtml">{secret}</p></foreignObject></svg>'),
        ("svg textPath", '<svg xmlns="http://www.w3.org/2000/svg"><text><textPath>{secret}</textPath></text></svg>'),
        ("[data-Pin]", '<p data-Pin="1">{secret}</p>'),
        ("SecretBox", "<SecretBox>{secret}</SecretBox>"),
        ("p[data-pin]", '<p xmlns="" data-PIN="1">{secret}</p>'),
        (".card", '<p class="card">{secret}<!-- c --><?pi x?></p>'),
    ],
)
def test_an_xhtml_page_keeps_no_masked_content_whatever_the_case_of_names(selector: str, body: str) -> None:
    out = rewrite_html(
        XHTML_PAGE.format(body.format(secret=SECRET)).encode(), url="https://shop.example/a.xhtml",
        mapper=make_mapper(), content_type="application/xhtml+xml", mask_selectors=[selector],
    )
    assert out.startswith(b"<?xml")  # (read and written as XML)
    assert SECRET.encode() not in out
    assert MASKED_ATTRIBUTE.encode() in out


ENTITY_PAGE = (
    '<?xml version="1.0"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" '
    '"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd" [\n'
    '<!ENTITY card "4111 1111"><!ENTITY pin "9876"><!ENTITY year "2026">'
    '<!ENTITY shop "Demo &amp; Co, &year;"><!ENTITY help "Call us">]>\n'
    '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>'
    '<p class="card">Card &card;</p><p title="&help;">&shop;</p>'
    '<input type="password" value="&pin;"/></body></html>'
)


@pytest.mark.parametrize("selectors", [[".card"], []])
def test_an_xhtml_pages_entities_used_only_by_masked_content_leave_its_doctype(selectors: list[str]) -> None:
    """An entity of the internal subset that only masked content used kept its declaration, so
    its text was in the agent's page source; entities still used (in text, in an attribute value,
    in another entity's value) stay declared, and the output is well-formed."""
    out = rewrite_html(
        ENTITY_PAGE.encode(), url="https://shop.example/a.xhtml", mapper=make_mapper(),
        content_type="application/xhtml+xml", mask_selectors=selectors,
    )
    assert b"9876" not in out  # (the password input's, masked whatever the selectors)
    assert (b"4111" not in out) == bool(selectors)
    root = etree.fromstring(out)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    assert root.xpath("string(//h:p[2])", namespaces=ns) == "Demo & Co, 2026"
    assert root.xpath("string(//h:p[2]/@title)", namespaces=ns) == "Call us"
    assert b'PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN"' in out


def test_an_xhtml_page_without_masks_keeps_its_doctype_as_it_came() -> None:
    page = ENTITY_PAGE.replace('<input type="password" value="&pin;"/>', "")
    out = rewrite_html(
        page.encode(), url="https://shop.example/a.xhtml", mapper=make_mapper(),
        content_type="application/xhtml+xml",
    )
    assert b'<!ENTITY card "4111 1111">' in out and b'<!ENTITY pin "9876">' in out
