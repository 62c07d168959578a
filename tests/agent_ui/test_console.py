"""The agent console in Chromium against the real control API (in a thread, real Redis)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.harness import Stack
from tests.e2e.pages import TIMEOUT_MS, open_console, open_visitor

pytestmark = [pytest.mark.browser, pytest.mark.redis]


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(role="api-thread")


def test_sign_in_keeps_the_token_in_session_storage_only(browser: Any, stack: Stack) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        requests: list[str] = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(stack.console_url)
        page.fill("#token", "not-a-token")
        page.click("#signin-form button[type=submit]")
        expect(page.locator("#signin-error")).to_have_text("That token was not accepted.")
        expect(page.locator("#visitors-panel")).to_be_hidden()

        page.fill("#token", stack.agent_token)
        page.click("#signin-form button[type=submit]")
        expect(page.locator("#visitors-panel")).to_be_visible()
        expect(page.locator("#me")).to_have_text(f"{stack.agent_name} - E2E shop")
        assert page.evaluate("sessionStorage.getItem('cobrowse.agentToken')") == stack.agent_token
        assert page.evaluate("localStorage.length") == 0
        assert not [u for u in requests if stack.agent_token in u]
        assert stack.agent_token not in page.url

        page.reload()  # same tab: still signed in
        expect(page.locator("#visitors-panel")).to_be_visible()
        page.click("#signout")
        expect(page.locator("#signin")).to_be_visible()
        assert page.evaluate("sessionStorage.getItem('cobrowse.agentToken')") is None
    finally:
        context.close()


def test_visitors_appear_move_go_offline_and_leave(browser: Any, stack: Stack) -> None:
    agent = open_console(browser, stack)
    visitor = open_visitor(browser, stack)
    try:
        row = agent.row()
        expect(row.locator(".title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        expect(row.locator(".bw")).to_contain_text("bit/s")
        visitor.page.click("header >> text=Search")
        expect(row.locator(".url")).to_have_text(stack.shop.origin + "/search", timeout=TIMEOUT_MS)
        expect(agent.page.locator("#visitor-count")).to_have_text("1 visitor")

        visitor.page.close()
        expect(agent.button()).to_have_attribute("data-state", "unavailable", timeout=TIMEOUT_MS)
        expect(agent.button()).to_be_disabled()
        expect(row.locator(".reason")).to_have_text("Visitor is offline")
        # after the grace period the visitor is gone from the list
        expect(agent.page.locator("li.visitor")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(agent.page.locator("#empty")).to_be_visible()
    finally:
        agent.context.close()
        visitor.context.close()


def test_pending_refused_then_accepted_opens_the_virtual_browser(browser: Any, stack: Stack) -> None:
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        # opened inside the click, before the visitor answered; made the virtual browser once the
        # API has answered, which waits for the visitor itself and shows nothing of the site yet
        expect(win.locator("body")).to_contain_text("Waiting for the visitor")
        expect(win).to_have_url(re.compile(r"/vb#session=[a-z][a-z0-9]{9}$"), timeout=TIMEOUT_MS)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        expect(win).to_have_title("cobrowse - waiting for the visitor")
        assert win.locator("#view").get_attribute("src") is None
        expect(agent.button()).to_have_attribute("data-state", "busy")
        expect(agent.button()).to_have_attribute("aria-busy", "true")
        expect(agent.button()).to_be_disabled()  # no second request while one waits
        expect(agent.row().locator(".reason")).to_have_text("Waiting for the visitor to accept")
        visitor.dialog().get_by_role("button", name="Refuse").click()
        expect(agent.page.locator("#flash")).to_have_text("The visitor refused the co-browsing request.")
        expect(agent.button()).to_have_attribute("data-state", "available")
        if not win.is_closed():
            win.wait_for_event("close", timeout=TIMEOUT_MS)

        win2 = agent.request()
        visitor.accept()
        expect(win2).to_have_url(re.compile(r"/vb#session=[a-z][a-z0-9]{9}$"), timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "live")
        expect(agent.row().locator(".live-mark")).to_be_visible()
        # the virtual browser found the agent's token (sessionStorage copied into the opened window)
        expect(win2.locator("#vb-title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(win2.locator("#tool-pointer")).to_be_enabled()
        expect(win2.locator("#end")).to_have_text("End session")
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_waiting_window_tells_a_refusal_when_the_console_is_gone(browser: Any, stack: Stack) -> None:
    """The agent closes the console while the visitor has not answered: the waiting window follows
    the request itself and says that the visitor refused (no console is left to say it)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(win).to_have_url(re.compile(r"/vb#session=[a-z][a-z0-9]{9}$"), timeout=TIMEOUT_MS)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        expect(win.locator("#tool-pointer")).to_be_disabled()  # nothing to point at yet
        expect(win.locator("#end")).to_have_text("Withdraw request")
        agent.page.close()
        visitor.dialog().get_by_role("button", name="Refuse").click()
        expect(win.locator("#ended-title")).to_have_text("Request refused", timeout=TIMEOUT_MS)
        expect(win.locator("#ended-reason")).to_have_text("The visitor refused the co-browsing request.")
        assert win.locator("#view").get_attribute("src") in (None, "about:blank")
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_waiting_window_withdraws_the_request(browser: Any, stack: Stack) -> None:
    """The agent changes their mind while the visitor has not answered (the console closed): the
    waiting window's button withdraws the request, says so, and the visitor's prompt goes away."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        expect(win.locator("#end")).to_have_text("Withdraw request", timeout=TIMEOUT_MS)
        agent.page.close()
        win.locator("#end").click()
        expect(win.locator("#ended-title")).to_have_text("Request withdrawn", timeout=TIMEOUT_MS)
        expect(win.locator("#ended-reason")).to_have_text("You withdrew the co-browsing request.")
        expect(visitor.dialog()).to_be_hidden(timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def test_feature_off_shows_the_reason(browser: Any, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(role="api-thread", cobrowse_enabled=False)
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        expect(agent.button()).to_have_attribute("data-state", "unavailable", timeout=TIMEOUT_MS)
        expect(agent.row().locator(".reason")).to_have_text("Co-browsing is off for this account")
        # switching the feature on turns the button green without a reload
        with stack.serve.admin() as c:
            c.patch(f"/accounts/{stack.account['id']}", json={"cobrowse_enabled": True}).raise_for_status()
        visitor.page.click("header >> text=Search")  # any visitor update refreshes the view
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()
