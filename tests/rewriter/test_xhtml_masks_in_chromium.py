"""An XHTML page (``application/xhtml+xml``) with masked selectors reaches the agent as XML.

A browser parses such a page with its XML parser. The rewriter read it with the HTML parser when
the account had masked selectors (CSS selectors matched only un-namespaced elements) and wrote
HTML out under the XML type: the agent's Chromium showed an XML error page instead of the page.
Here Chromium loads the visitor's page (masked by script, as the rewriter should mask it) and the
rewriter's output, both as XHTML, and their bodies must serialise alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rewrite_helpers import make_mapper

from rewriter.html import rewrite_html
from rewriter.masking import MASK

pytestmark = pytest.mark.browser

UPSTREAM = "https://shop.example/account.xhtml"
PAGE = "http://xhtml.localhost/account.xhtml"
XHTML = "application/xhtml+xml"

BODY = """(maskSelector) => {
  if (document.getElementsByTagNameNS('*', 'parsererror').length) return 'XML parse error';
  if (document.documentElement.namespaceURI !== 'http://www.w3.org/1999/xhtml') return 'not XHTML';
  if (maskSelector) {  // the visitor's page as masking should leave it (rewriter/masking.py)
    for (const el of document.querySelectorAll(maskSelector)) {
      el.replaceChildren(document.createTextNode(%r));
      for (const a of [...el.attributes]) if (!['id', 'class'].includes(a.name)) el.removeAttribute(a.name);
      el.setAttribute('data-cobrowse-masked', '');
    }
  }
  return new XMLSerializer().serializeToString(document.body);
}""" % MASK  # noqa: UP031 (the JavaScript's braces)

PAGES = {
    "a masked paragraph": (
        '<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE html>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>Account</title></head>'
        '<body><h1>Account</h1><p class="card">Card 4111 1111 1111 1111<br/>exp 12/29</p>'
        '<span/>after the span<p>Thanks</p></body></html>',
        ".card",
        "4111",
    ),
    "svg inside, a masked svg text": (
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>'
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text class="pin">1234</text></svg>'
        '<p id="iban">DE89 3704</p></body></html>',
        ".pin, #iban",
        "1234",
    ),
    "entities of the internal subset": (
        '<?xml version="1.0"?>\n<!DOCTYPE html [<!ENTITY card "4111 1111"><!ENTITY year "2026">'
        '<!ENTITY shop "Demo &amp; Co, &year;">]>\n'
        '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>'
        '<p class="card">Card &card;</p><p title="&shop;">&shop;</p>'
        '</body></html>',
        ".card",
        "4111",
    ),
}


@pytest.fixture(scope="module")
def body_of(browser: Any) -> Iterator[Any]:
    """``body_of(bytes, mask_selector)``: the serialised body of ``bytes`` served as XHTML."""
    context = browser.new_context()
    served = {"body": b""}

    def handle(route: Any) -> None:
        if route.request.url == PAGE:
            route.fulfill(status=200, body=served["body"], headers={"content-type": XHTML})
        else:
            route.fulfill(status=404, body=b"", headers={"content-type": "text/plain"})

    context.route("**/*", handle)
    page = context.new_page()

    def body(data: bytes, mask_selector: str = "") -> str:
        served["body"] = data
        page.goto(PAGE, wait_until="load")
        return str(page.evaluate(BODY, mask_selector))

    try:
        yield body
    finally:
        context.close()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_an_xhtml_page_with_masks_renders_masked_for_the_agent(body_of: Any, name: str) -> None:
    markup, selector, secret = PAGES[name]
    out = rewrite_html(
        markup.encode("utf-8"), url=UPSTREAM, mapper=make_mapper(), content_type=XHTML,
        inject="", mask_selectors=(selector,),
    )
    assert secret.encode() not in out
    visitor = body_of(markup.encode("utf-8"), selector)
    assert "parse error" not in visitor and secret not in visitor  # (the test's own masking)
    assert body_of(out) == visitor
