"""The demo shop in Chromium: fetch search, pushState tour, images, cookie cart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from cobrowse.demo_shop import ShopConfig
from tests.e2e.harness import ShopServer, shop_server

pytestmark = pytest.mark.browser


@pytest.fixture
def shop() -> Iterator[ShopServer]:
    with shop_server(ShopConfig()) as server:
        yield server


def test_search_uses_fetch_and_tour_uses_push_state(browser: Any, shop: ShopServer) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(shop.origin + "/search")
        expect(page.locator("#count")).to_have_text("6 result(s)")
        with page.expect_request(lambda r: "/api/search?q=lamp" in r.url):
            page.fill("#q", "lamp")
        expect(page.locator("#results li")).to_have_text(["Yellow lamp - $42.00"])

        page.goto(shop.origin + "/tour")
        expect(page.locator("#step-title")).to_have_text("Step 1: pick a product")
        page.click("text=Step 3")
        expect(page).to_have_url(shop.origin + "/tour/3")
        expect(page.locator("#step-title")).to_have_text("Step 3: check out")
        page.go_back()
        expect(page.locator("#step-title")).to_have_text("Step 1: pick a product")
    finally:
        context.close()


def test_images_render_and_the_cart_keeps_a_cookie(browser: Any, shop: ShopServer) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(shop.origin + "/")
        widths = page.eval_on_selector_all("ul.products img", "imgs => imgs.map(i => i.naturalWidth)")
        assert widths and all(w == 200 for w in widths)
        page.click("#p-red-mug button")
        expect(page).to_have_url(shop.origin + "/cart")
        expect(page.locator("#total")).to_have_text("$12.00")
        assert any(c["name"] == "cart" and not c["httpOnly"] for c in context.cookies())
    finally:
        context.close()
