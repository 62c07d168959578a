"""One agent, two visitors of one account: each virtual browser shows and follows its own visitor
only. Every visitor update of the account, and every session event of the agent, reaches every
socket of the agent; a view must act on its own session's only."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import Stack
from tests.e2e.pages import TIMEOUT_MS, Agent, Visitor, open_console, open_visitor

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.long]

VISITOR_ID = (  # the banner's visitor id, from the page's session storage
    "() => { for (let i = 0; i < sessionStorage.length; i++) { const k = sessionStorage.key(i);"
    " if (k.startsWith('__cobrowse:')) return JSON.parse(sessionStorage.getItem(k)).visitor_id; } }"
)


def _row(agent: Agent, visitor: Visitor) -> Any:
    return agent.page.locator(f'li.visitor[data-visitor-id="{visitor.page.evaluate(VISITOR_ID)}"]')


def _cobrowse(agent: Agent, visitor: Visitor, heading: str) -> Page:
    button = _row(agent, visitor).locator(".cobrowse-btn")
    expect(button).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
    with agent.page.expect_popup() as popup:
        button.click()
    vb = popup.value
    expect(vb.frame_locator("#view").locator("h1")).to_have_text(heading, timeout=TIMEOUT_MS)
    return vb


def _view_paths(vb: Page) -> list[str]:
    """The paths the view's frame goes to, from now on."""
    paths: list[str] = []
    vb.on("framenavigated", lambda f: paths.append(f.url.split("/", 3)[-1]) if f != vb.main_frame else None)
    return paths


@contextmanager
def _ana_and_bob(
    browser: Any, make_stack: Callable[..., Stack]
) -> Iterator[tuple[Stack, Visitor, Visitor, Agent]]:
    """Ana on the products, Bob on the tour, an agent's console; no consent asked, views in tabs."""
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    ana = open_visitor(browser, stack)
    bob = open_visitor(browser, stack, "/tour")
    agent = open_console(browser, stack)
    try:
        yield stack, ana, bob, agent
    finally:
        agent.context.close()
        ana.context.close()
        bob.context.close()


def test_a_view_follows_its_own_visitor_and_not_another_of_the_account(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    with _ana_and_bob(browser, make_stack) as (stack, ana, bob, agent):
        vb = _cobrowse(agent, ana, "Products")
        went = _view_paths(vb)
        bob.page.click("header >> text=Help")
        # the console has Bob's move: it went to every socket of the agent, the view's too
        expect(_row(agent, bob).locator(".url")).to_have_text(stack.shop.origin + "/help", timeout=TIMEOUT_MS)
        ana.page.click("header >> text=Search")  # after Bob's, on the same socket: in that order
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Search", timeout=TIMEOUT_MS)
        expect(vb.locator("#vb-url")).to_have_text(stack.shop.origin + "/search")
        assert not any(p.startswith("help") for p in went), went


def test_one_session_ending_leaves_the_agents_other_session_alone(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    with _ana_and_bob(browser, make_stack) as (_, ana, bob, agent):
        vb_ana = _cobrowse(agent, ana, "Products")
        vb_bob = _cobrowse(agent, bob, "Tour")
        went = _view_paths(vb_ana)
        bob.page.click("header >> text=Help")
        expect(vb_bob.frame_locator("#view").locator("h1")).to_have_text("Help", timeout=TIMEOUT_MS)
        bob.end_button().click()
        expect(vb_bob.locator("#ended-reason")).to_have_text("The visitor ended the session.",
                                                             timeout=TIMEOUT_MS)
        # the console says whose session it was (it stood over another visitor's row, unnamed)
        flash = agent.page.locator("#flash")
        expect(flash).to_have_text(re.compile(r"^Visitor \w{6}: The visitor ended"), timeout=TIMEOUT_MS)
        whose = (flash.text_content() or "").split(":")[0]
        bobs_row = agent.page.locator("li.visitor", has=agent.page.locator(".url", has_text="/help"))
        expect(bobs_row.locator(".vid")).to_have_text(whose)
        ana.page.click("header >> text=Search")  # after Bob's end, on the same socket
        expect(vb_ana.frame_locator("#view").locator("h1")).to_have_text("Search", timeout=TIMEOUT_MS)
        expect(vb_ana.locator("#ended")).to_be_hidden()
        assert not any(p.startswith("help") for p in went), went
