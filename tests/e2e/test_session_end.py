"""Sessions that end without anyone pressing End: the visitor leaves, nobody acts for too long."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.harness import Stack
from tests.e2e.pages import TIMEOUT_MS, open_console, open_visitor

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_the_visitor_leaves(browser: Any, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(policy={"consent": "none"}, extra=("--visitor-grace-s", "2"))
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        visitor.context.close()
        expect(vb.locator("#ended-reason")).to_have_text("The visitor left the site.", timeout=TIMEOUT_MS)
        expect(vb.locator("#view")).to_have_attribute("src", "about:blank")
        expect(agent.page.locator("li.visitor")).to_have_count(0, timeout=TIMEOUT_MS)
    finally:
        agent.context.close()


def test_an_idle_session_times_out(browser: Any, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(policy={"consent": "none", "idle_timeout_s": 30})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        bar = visitor.page.get_by_text(f"Co-browsing with {stack.agent_name}")
        expect(bar).to_be_visible()
        expect(vb.locator("#ended-reason")).to_have_text(
            "The session timed out (no activity).", timeout=45000
        )
        expect(bar).to_be_hidden()
        expect(agent.button()).to_have_attribute("data-state", "available")
    finally:
        agent.context.close()
        visitor.context.close()
