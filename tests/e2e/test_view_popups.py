"""A pop-up opened from the agent's view (the sandboxed frame of the virtual browser, whose
pop-ups escape its sandbox): a window opened on no URL and sent to the shop later loads through
the proxy, and nothing in the agent's browser reaches the shop directly."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.harness import PROXY_DOMAIN, Stack
from tests.e2e.pages import TIMEOUT_MS, open_console, open_visitor, view_frame

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_a_blank_pop_up_from_the_view_sent_to_the_shop_later_stays_in_the_proxy(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    seen: list[str] = []
    agent.context.on("request", lambda request: seen.append(request.url))
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        frame = view_frame(vb)
        with agent.context.expect_page(timeout=TIMEOUT_MS) as popup_info:
            frame.evaluate(
                "async (u) => { const w = window.open('', '_blank'); await fetch('/help');"
                " w.location = u; }",
                stack.shop.origin + "/help",
            )
        popup = popup_info.value
        popup.wait_for_url("**/help", timeout=TIMEOUT_MS)
        host = urllib.parse.urlsplit(popup.url).hostname or ""
        assert host.endswith("." + PROXY_DOMAIN)
        assert host.split(".", 1)[0].startswith(urllib.parse.urlsplit(frame.url).hostname[:10])
        expect(popup.locator("h1")).to_have_text("Help", timeout=TIMEOUT_MS)
        assert [u for u in seen if u.startswith(stack.shop.origin)] == []
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_data_frame_in_the_view_opens_no_pop_up(browser: Any, make_stack: Callable[..., Stack]) -> None:
    """A frame no runtime reaches, inside the view's frame (whose sandbox allows pop-ups)."""
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    seen: list[str] = []
    agent.context.on("request", lambda request: seen.append(request.url))
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        frame = view_frame(vb)
        frame.evaluate(
            "(u) => { window.__said = []; addEventListener('message', (e) => __said.push(e.data));"
            " const child = '<script>parent.postMessage(String(window.open(' + JSON.stringify(u) +"
            " ')), \"*\")<\\/script>'; const f = document.createElement('iframe');"
            " f.src = 'data:text/html,' + encodeURIComponent(child); document.body.append(f); }",
            stack.shop.origin + "/help",
        )
        frame.wait_for_function("window.__said.length > 0", timeout=TIMEOUT_MS)
        assert frame.evaluate("window.__said") == ["null"]
        assert len(agent.context.pages) == 2  # the console and the virtual browser
        assert [u for u in seen if u.startswith(stack.shop.origin)] == []
    finally:
        agent.context.close()
        visitor.context.close()
