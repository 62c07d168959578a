"""What the agent's view shows when it opens or reopens in the middle of things: the visitor's
scroll position and field values from before, and the visitor's page after a detour."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.harness import Stack
from tests.e2e.pages import TIMEOUT_MS, open_console, open_visitor

pytestmark = [pytest.mark.browser, pytest.mark.redis]


def test_the_view_shows_fields_typed_before_the_consent(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The banner reports the changed fields when the session starts, before the agent's view has
    connected: the view asks again (resync) and shows them, masked ones masked."""
    stack = make_stack(policy={"masked_selectors": [".card-number"]})
    visitor = open_visitor(browser, stack, "/checkout")
    agent = open_console(browser, stack)
    secret = "4111222233334444"
    try:
        visitor.page.fill("#name", "Ana Early")
        visitor.page.fill("#card", secret)
        vb = agent.request()
        visitor.accept()
        frame = vb.frame_locator("#view")
        expect(frame.locator("h1")).to_have_text("Checkout", timeout=TIMEOUT_MS)
        expect(frame.locator("#name")).to_have_value("Ana Early", timeout=TIMEOUT_MS)
        expect(frame.locator("#card")).to_have_value("\u2022" * 6)
        for text in visitor.frames.texts + agent.frames.texts:
            assert secret not in text
    finally:
        agent.context.close()
        visitor.context.close()
