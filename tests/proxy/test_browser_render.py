"""Pages render through the proxy in Chromium as they do directly, and no request escapes it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.proxy.browser_util import escaped, screenshot_difference
from tests.proxy.conftest import DOMAIN, Harness, Sites

pytestmark = pytest.mark.browser

# Share of pixels allowed to differ between the direct and the proxied screenshot (anti-aliasing).
SCREENSHOT_TOLERANCE = 0.01


def _settled(page: Any) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function("document.body && document.body.dataset.items === 'mug,tee'")


def test_home_page_renders_like_direct_and_nothing_escapes(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    context = browser.new_context(viewport={"width": 800, "height": 600})
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    page.goto(harness.enter_url(s, sites.shop.origin + "/"))
    _settled(page)
    assert page.title() == "Fixture shop"
    assert page.url == harness.url(s, sites.shop.origin + "/")
    # images (absolute CDN URL and srcset), the style sheet, its @import and the iframe all loaded
    assert page.evaluate("document.getElementById('logo').naturalWidth") == 4
    assert page.evaluate("document.getElementById('srcset').naturalWidth") == 4
    assert page.evaluate("getComputedStyle(document.getElementById('title')).color") == "rgb(200, 0, 0)"
    assert page.evaluate("getComputedStyle(document.getElementById('styled')).color") == "rgb(0, 0, 128)"
    frame = page.frame_locator("#frame")
    assert frame.locator("#in-frame").inner_text() == "inside the frame"
    assert page.evaluate("window.__fixtureScriptRan") is True
    assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    assert sites.cdn.hits["/static/extra.css"] >= 1 and sites.cdn.hits["/frame"] >= 1
    proxied = page.screenshot()

    direct_context = browser.new_context(viewport={"width": 800, "height": 600})
    direct = direct_context.new_page()
    direct.goto(sites.shop.origin + "/")
    _settled(direct)
    reference = direct.screenshot()
    direct_context.close()
    context.close()
    assert screenshot_difference(browser, proxied, reference) <= SCREENSHOT_TOLERANCE


@pytest.mark.parametrize("path", ["/about", "/login", "/search?q=mug"])
def test_other_pages_render_like_direct(browser: Any, harness: Harness, sites: Sites, path: str) -> None:
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    shots = []
    for url in (harness.enter_url(s, sites.shop.origin + path), sites.shop.origin + path):
        context = browser.new_context(viewport={"width": 800, "height": 600})
        page = context.new_page()
        page.goto(url)
        page.wait_for_load_state("networkidle")
        shots.append(page.screenshot())
        context.close()
    assert screenshot_difference(browser, shots[0], shots[1]) <= SCREENSHOT_TOLERANCE


@pytest.mark.parametrize("link", ["abs", "rel", "root", "proto"])
def test_every_link_kind_navigates_inside_the_proxy(
    browser: Any, harness: Harness, sites: Sites, link: str
) -> None:
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    context = browser.new_context()
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    page.goto(harness.enter_url(s, sites.shop.origin + "/"))
    page.click(f"#{link}")
    page.wait_for_url(harness.url(s, sites.shop.origin + "/about"))
    assert page.locator("#title").inner_text() == "About"
    assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    context.close()
