"""Sockets that drop and tokens that go stale: every side comes back by itself and goes on."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.harness import Stack, wait_until
from tests.e2e.pages import TIMEOUT_MS, open_console, open_visitor, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.long]


class Sockets:
    """The agent WebSockets of a context, passed through to the server and kept, to be cut."""

    def __init__(self, context: Any) -> None:
        self.routes: list[Any] = []
        context.route_web_socket(re.compile(r"/api/v1/agent/ws$"), self._route)

    def _route(self, ws: Any) -> None:
        ws.connect_to_server()
        self.routes.append(ws)


# Records in window.__conn each text the console's connection state takes from now on.
_RECORD_CONN = """() => {
  const conn = document.getElementById('conn'), texts = window.__conn = [];
  new MutationObserver(() => {
    if (texts[texts.length - 1] !== conn.textContent) texts.push(conn.textContent);
  }).observe(conn, {childList: true, characterData: true, subtree: true});
}"""


def test_the_console_reconnects_after_its_socket_drops_and_goes_on(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack()
    visitor = open_visitor(browser, stack)
    context = browser.new_context()
    sockets = Sockets(context)
    try:
        agent = sign_in(context, stack)
        page = agent.page
        expect(page.locator("#conn")).to_have_text("Live", timeout=TIMEOUT_MS)
        expect(agent.row().locator(".url")).to_have_text(stack.shop.origin + "/", timeout=TIMEOUT_MS)
        # "Reconnecting..." shows for as long as the reconnect takes (under a second): recorded in
        # the page, since on a loaded machine it can be "Live" again before the test looks
        page.evaluate(_RECORD_CONN)
        sockets.routes[-1].close(code=1011, reason="server restart")
        page.wait_for_function("() => window.__conn.includes('Reconnecting...')", timeout=TIMEOUT_MS)
        expect(page.locator("#conn")).to_have_text("Live", timeout=TIMEOUT_MS)
        assert page.evaluate("window.__conn")[-2:] == ["Reconnecting...", "Live"]
        visitor.page.click("header >> text=Search")
        expect(agent.row().locator(".url")).to_have_text(stack.shop.origin + "/search", timeout=TIMEOUT_MS)
    finally:
        context.close()
        visitor.context.close()


def test_the_view_reconnects_after_its_socket_drops_and_follows_again(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        view = vb.frame_locator("#view")
        expect(view.locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        # Routed from now on: the console's socket is open already, so the routed ones are the
        # view's, which is loaded again for it. (Routed before the view opened, its socket went
        # unrouted in one run: Playwright's stand-in reached the new window too late.)
        sockets = Sockets(agent.context)
        vb.reload()
        expect(view.locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        wait_until(lambda: len(sockets.routes) == 1, "the view's socket", 15, page=vb)
        sockets.routes[0].close(code=1011, reason="server restart")
        wait_until(lambda: len(sockets.routes) == 2, "the view's new socket", 15, page=vb)
        visitor.page.click("header >> text=Help")
        expect(view.locator("h1")).to_have_text("Help", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_visitor_whose_stored_token_is_stale_registers_again_and_is_measured_at_once(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """A token kept in the page's session storage from before (a visitor deleted, a token
    rotated): the socket refuses it, the banner registers again, and measures the bandwidth again
    at once, since its first measurement ran with the stale token (else the console showed the
    visitor as "too low" for the 30 s until the next one)."""
    stack = make_stack()
    key = "__cobrowse:" + stack.account["site_key"]
    stale = json.dumps({"visitor_id": "vis_gone", "token": "not-a-valid-token"})
    context = browser.new_context()
    context.add_init_script(  # once, in the top page (the banner's own frame runs scripts too)
        f"if (window.top === window && !sessionStorage.getItem('seeded')) {{"
        f" sessionStorage.setItem('seeded', '1');"
        f" sessionStorage.setItem({json.dumps(key)}, {json.dumps(stale)}); }}"
    )
    page = context.new_page()
    agent = open_console(browser, stack)
    try:
        page.goto(stack.shop.origin + "/")
        expect(agent.row().locator(".url")).to_have_text(stack.shop.origin + "/", timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        assert "vis_gone" not in page.evaluate(f"sessionStorage.getItem({json.dumps(key)})")
    finally:
        agent.context.close()
        context.close()


def test_the_visitors_bar_says_while_the_connection_is_lost(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """Offline, the agent sees nothing of the page: the bar said "Co-browsing with Alex" all the
    same. It says the connection is lost (after 2 s: a quick reconnect does not show) until it is
    back."""
    stack = make_stack(policy={"consent": "none"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        agent.request()
        bar = visitor.page.get_by_text(f"Co-browsing with {stack.agent_name}")
        expect(bar).to_have_text(f"Co-browsing with {stack.agent_name}", timeout=TIMEOUT_MS)
        visitor.context.set_offline(True)
        lost = f"Co-browsing with {stack.agent_name} (connection lost, reconnecting\u2026)"
        expect(bar).to_have_text(lost, timeout=TIMEOUT_MS)
        visitor.context.set_offline(False)
        expect(bar).to_have_text(f"Co-browsing with {stack.agent_name}", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()
