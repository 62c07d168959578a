"""The agent console in Chromium against the real control API (in a thread, real Redis)."""

from __future__ import annotations

import contextlib
import http.server
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright._impl._errors import TargetClosedError  # not re-exported by sync_api
from playwright.sync_api import Page, Route, expect

from tests.e2e.harness import Stack, wait_until
from tests.e2e.pages import TIMEOUT_MS, Agent, Frames, contrast, open_console, open_visitor

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


# Records in window.__rows each state the first visitor row takes from now on: [the button's
# data-state, whether it is aria-disabled, the reason shown], or null once there is no row.
_RECORD_ROWS = """() => {
  const rows = window.__rows = [], list = document.getElementById('visitors');
  const note = () => {
    const li = list.querySelector('li.visitor'), button = li && li.querySelector('.cobrowse-btn');
    const now = li ? [button.dataset.state, button.getAttribute('aria-disabled') === 'true',
                      li.querySelector('.reason').textContent] : null;
    if (JSON.stringify(now) !== JSON.stringify(rows[rows.length - 1])) rows.push(now);
  };
  note();
  new MutationObserver(note).observe(list, {subtree: true, childList: true, characterData: true,
                                            attributes: true});
}"""


def test_visitors_appear_move_go_offline_and_leave(browser: Any, make_stack: Callable[..., Stack]) -> None:
    # a grace period longer than a page change (3 s): the row shows offline before it goes
    stack = make_stack(role="api-thread", api_settings={"grace_s": 8.0})
    agent = open_console(browser, stack)
    visitor = open_visitor(browser, stack)
    try:
        row = agent.row()
        expect(row.locator(".title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        expect(row.locator(".bw")).to_contain_text("bit/s")
        # named by its id, without the prefix every id has ("Visitor vis_wbmk" told four letters)
        with stack.agent() as c:
            vid = c.get("/visitors").json()["visitors"][0]["id"]
        expect(row.locator(".vid")).to_have_text("Visitor " + vid.removeprefix("vis_")[:6])
        visitor.page.click("header >> text=Search")
        expect(row.locator(".url")).to_have_text(stack.shop.origin + "/search", timeout=TIMEOUT_MS)
        expect(agent.page.locator("#visitor-count")).to_have_text("1 visitor")

        # offline once longer away than a page change takes (3 s), then, after the grace period,
        # gone from the list: recorded in the page, since on a loaded machine the row can be gone
        # before the test has looked at it offline
        agent.page.evaluate(_RECORD_ROWS)
        visitor.page.close()
        expect(agent.page.locator("li.visitor")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(agent.page.locator("#empty")).to_be_visible()
        rows = agent.page.evaluate("window.__rows")
        offline = ["unavailable", True, "Visitor is offline"]
        assert offline in rows and rows[-1] is None, rows  # the button disabled, the reason said
        assert rows.index(offline) < rows.index(None), rows
    finally:
        agent.context.close()
        visitor.context.close()


def _between_pages(agent: Agent, visitor: Any, held: list[Route]) -> re.Pattern[str]:
    """The visitor goes to Search; that page's banner is held: the old page's socket has closed,
    the next one is not open, and the console has heard the visitor is offline."""
    expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
    banner = re.compile(r"/banner\.js(\?|$)")
    visitor.context.route(banner, lambda route: held.append(route))
    visitor.page.click("header >> text=Search")
    expect(agent.row()).to_have_attribute("data-online", "false", timeout=TIMEOUT_MS)
    wait_until(lambda: held, "the next page asking for the banner", 15, page=visitor.page)
    return banner


def test_a_press_while_the_visitor_changes_pages_is_sent_when_the_next_page_connects(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """Between two of the visitor's pages the API says "offline" for a moment: the button greyed
    under the agent's pointer and the press was lost. Now the row stays as it was, and the
    request goes once the next page connects."""
    stack = make_stack(role="api-thread", api_settings={"grace_s": 8.0})
    agent = open_console(browser, stack)
    visitor = open_visitor(browser, stack)
    held: list[Route] = []
    try:
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        agent.page.evaluate(_RECORD_ROWS)
        banner = _between_pages(agent, visitor, held)
        with agent.page.expect_popup() as popup:
            agent.button().click()  # (an aria-disabled button would fail here: it is not clickable)
        held[0].continue_()  # the next page connects (within the 3 s a page change may take)
        visitor.context.unroute(banner)
        vb = popup.value
        visitor.accept()  # the request reached the visitor's next page
        expect(vb).to_have_url(re.compile(r"#session=\w+$"), timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)
        rows = agent.page.evaluate("window.__rows")
        assert not [r for r in rows if r and r[0] == "unavailable"], rows  # it never greyed
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_press_while_the_visitors_page_is_away_too_long_is_not_sent_and_says_why(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """Pressed in such a gap, but the next page does not connect within the 3 s a page change
    takes: the window closes, the row says the visitor is offline, and no request was made."""
    stack = make_stack(role="api-thread", api_settings={"grace_s": 8.0})
    agent = open_console(browser, stack)
    visitor = open_visitor(browser, stack)
    held: list[Route] = []
    try:
        _between_pages(agent, visitor, held)
        with agent.page.expect_popup() as popup:
            agent.button().click()
        popup.value.wait_for_event("close", timeout=TIMEOUT_MS)
        expect(agent.page.locator("#flash")).to_have_text("Could not start co-browsing: Visitor is offline")
        expect(agent.row().locator(".reason")).to_have_text("Visitor is offline")
        expect(agent.button()).to_be_disabled()
        assert pending_sessions(stack) == []
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
        # ... and looks it (disabled tools looked like the others)
        assert float(win.locator("#tool-pointer").evaluate("e => getComputedStyle(e).opacity")) < 0.6
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


def test_closing_the_waiting_window_withdraws_the_request(browser: Any, stack: Stack) -> None:
    """The agent closes the window that waits for the visitor's answer: the request is withdrawn
    (the visitor is no longer asked, and cannot accept a session nobody watches), and the console
    says so and turns the button green again."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        win.close()
        expect(visitor.dialog()).to_be_hidden(timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        text = "You closed the waiting window: the co-browsing request was withdrawn."
        expect(agent.row().locator(".reason")).to_have_text(text)
        expect(agent.page.locator("#flash")).to_have_text(text)
    finally:
        agent.context.close()
        visitor.context.close()


def test_signing_out_stops_withdrawing_the_closed_windows_requests(browser: Any, stack: Stack) -> None:
    """The agent signs out, then closes the waiting window: the console, with no token left, sent
    POST /end (401) every 500 ms for as long as its page stayed open."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)  # the console knows the session
        ends: list[str] = []
        agent.page.on("request", lambda r: ends.append(r.url) if r.url.endswith("/end") else None)
        agent.page.click("#signout")
        expect(agent.page.locator("#signin")).to_be_visible()
        win.close()
        # the page's own clock: three ticks of 500 ms, as long as the watcher's period, started after
        agent.page.evaluate("window.__ticks = 0; setInterval(function () { window.__ticks++; }, 500)")
        wait_until(
            lambda: agent.page.evaluate("window.__ticks") >= 3, "three 500 ms ticks", 10, page=agent.page
        )
        assert ends == []
    finally:
        agent.context.close()
        visitor.context.close()


def _session(stack: Stack, sid: str) -> dict[str, Any]:
    with stack.agent() as c:
        return dict(c.get(f"/sessions/{sid}").json())


def _asked(agent: Agent, visitor: Any) -> tuple[Page, str]:
    """Press co-browse and wait until the visitor is asked and the window has its session:
    (the window, the session id)."""
    win = agent.request()
    expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
    expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
    return win, win.url.split("#session=", 1)[1]


@pytest.mark.parametrize("console", ["signed out", "closed"])
def test_a_waiting_window_no_console_watches_withdraws_its_request_as_it_closes(
    browser: Any, stack: Stack, console: str
) -> None:
    """The console withdraws the request of a waiting window it sees closed; one closed or signed
    out meanwhile will not, so the window withdraws it itself as it goes: the visitor was still
    asked and, on accepting, shared their page with nobody watching."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, sid = _asked(agent, visitor)
        # the window withdraws a request only once the API has told it that it waits
        expect(win.locator("body")).to_have_class(re.compile(r"\bwaiting\b"), timeout=TIMEOUT_MS)
        if console == "closed":
            agent.page.close()
            # Playwright's close returns before the window (same renderer) sees its opener closed;
            # a person closes the window later than that (this once failed in CI without the wait)
            wait_until(lambda: win.evaluate("!window.opener || window.opener.closed"),
                       "the window sees the console closed", 15)
        else:
            agent.page.click("#signout")
            expect(agent.page.locator("#signin")).to_be_visible()
        assert _session(stack, sid)["state"] == "pending"
        win.close(run_before_unload=True)  # as a person closes it: the page's pagehide runs
        expect(visitor.dialog()).to_be_hidden(timeout=TIMEOUT_MS)
        ended = _session(stack, sid)
        assert (ended["state"], ended.get("end_reason") or ended.get("reason")) == ("expired", "agent_ended")
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_window_reopened_on_a_live_session_does_not_end_it_as_it_closes(
    browser: Any, stack: Stack
) -> None:
    """A window opened on an accepted session (the console's live button, a reload), closed
    while it still asks the API how the session stands: it never said it waited for an answer,
    so it withdraws nothing (``POST /end`` would end the live session)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, sid = _asked(agent, visitor)
        visitor.accept()
        wait_until(lambda: _session(stack, sid)["state"] == "active", "the session is active", 15)
        url = win.url
        win.close()
        agent.page.close()  # no console watches
        asked: list[Route] = []
        agent.context.route(re.compile(rf"/api/v1/sessions/{sid}$"), lambda route: asked.append(route))
        again = agent.context.new_page()
        # the token the console's window.open would have copied into the window's session storage
        token = json.dumps(stack.agent_token)
        again.add_init_script(f"sessionStorage.setItem('cobrowse.agentToken', {token})")
        again.goto(url)
        wait_until(lambda: asked, "the window's GET /sessions/SID", 15, page=again)
        again.close(run_before_unload=True)
        again.wait_for_event("close", timeout=TIMEOUT_MS)
        for route in asked:
            route.abort()
        assert _session(stack, sid)["state"] == "active"
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_waiting_window_reloaded_keeps_its_request(browser: Any, stack: Stack) -> None:
    """While the console watches, the window leaves the request alone as it goes (a reload looks
    the same as a close to the page): the reloaded window waits on, and the visitor is still asked."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, sid = _asked(agent, visitor)
        ends: list[str] = []
        win.on("request", lambda r: ends.append(r.url) if r.url.endswith("/end") else None)
        win.reload()
        expect(win.locator("#end")).to_have_text("Withdraw request", timeout=TIMEOUT_MS)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        assert ends == [] and _session(stack, sid)["state"] == "pending"
        expect(visitor.dialog()).to_be_visible()
    finally:
        agent.context.close()
        visitor.context.close()


ASK_CONSOLE = """rid => new Promise(function (done) {
  addEventListener("message", function heard(ev) {
    if (!ev.data || ev.data.cobrowseConsole !== "request" || ev.data.request !== rid) return;
    removeEventListener("message", heard);
    done(ev.data);
  });
  postMessage({ cobrowseConsole: "request?", request: rid }, location.origin);
})"""


def test_a_settled_request_is_forgotten(browser: Any, stack: Stack) -> None:
    """The console kept every request it had sent (request id -> state) for as long as its page
    was open; once the session is over, it answers for it as for a request it never knew."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        sent: list[str] = []
        agent.page.on(
            "request",
            lambda r: (
                sent.append(r.post_data_json["request_id"])
                if r.method == "POST" and r.url.endswith("/api/v1/sessions")
                else None
            ),
        )
        win = agent.request()
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        sid = win.url.rsplit("=", 1)[1]
        assert agent.page.evaluate(ASK_CONSOLE, sent[0]) == {
            "cobrowseConsole": "request",
            "request": sent[0],
            "state": "sent",
            "session": sid,
        }
        visitor.dialog().get_by_role("button", name="Refuse").click()
        expect(agent.page.locator("#flash")).to_have_text("The visitor refused the co-browsing request.")
        assert agent.page.evaluate(ASK_CONSOLE, sent[0]) == {
            "cobrowseConsole": "request",
            "request": sent[0],
            "state": "unknown",
            "session": None,
        }
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_blocked_pop_up_is_said_and_the_visitor_is_not_asked(browser: Any, stack: Stack) -> None:
    """A pop-up blocker stops the virtual browser's window: the console says so and sends no
    request (the visitor would be asked to share their page with no view open)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    sent: list[str] = []
    try:
        agent.page.evaluate("window.open = () => null")

        def record(route: Route) -> None:
            sent.append(route.request.method)
            route.continue_()

        agent.page.route("**/api/v1/sessions", record)
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        agent.button().click()
        expect(agent.page.locator("#flash")).to_have_text(
            "The browser blocked the virtual browser's window: allow pop-ups for this page, then press"
            " Co-browse again."
        )
        expect(agent.button()).to_have_attribute("data-state", "available")
        expect(visitor.dialog()).to_be_hidden()
        assert sent == []
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_blocked_window_for_a_live_session_is_said_and_the_session_goes_on(
    browser: Any, stack: Stack
) -> None:
    """The agent closed the view of a live session and presses the live button to open it again,
    but a pop-up blocker stops the window: the console says so, opens nothing, and the session
    (and its button) stays live."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, sid = _asked(agent, visitor)
        visitor.accept()
        expect(agent.button()).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)
        # closed once it has started the session (its tools on): a window closed while it still
        # waits for the answer withdraws the request as it goes, which ends a session accepted
        # that instant (this test once closed it then)
        expect(win.locator("#tool-pointer")).to_be_enabled(timeout=TIMEOUT_MS)
        win.close()
        agent.page.evaluate("window.open = () => null")
        opened: list[Page] = []
        agent.context.on("page", lambda page: opened.append(page))
        agent.button().click()
        expect(agent.page.locator("#flash")).to_have_text(
            "The browser blocked the virtual browser's window: allow pop-ups for this page."
        )
        expect(agent.page.locator("#flash")).to_have_class(re.compile(r"\bbad\b"))
        expect(agent.button()).to_have_attribute("data-state", "live")
        expect(agent.button()).to_be_enabled()
        expect(agent.row().locator(".live-mark")).to_be_visible()
        assert _session(stack, sid)["state"] == "active"
        expect(visitor.page.get_by_text(f"Co-browsing with {stack.agent_name}")).to_be_visible()
        assert opened == [] and agent.context.pages == [agent.page]
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_visitor_who_leaves_before_answering_ends_the_request_not_a_session(
    browser: Any, stack: Stack
) -> None:
    """The visitor closes the tab while asked: when the grace period is over the console says the
    request ended, not "the co-browsing session ended" (there never was one)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        visitor.context.close()
        text = "The visitor left the site before answering: the request ended."
        expect(agent.page.locator("#flash")).to_have_text(text, timeout=TIMEOUT_MS)
    finally:
        agent.context.close()


def test_withdrawing_from_the_waiting_window_is_told_as_a_withdrawal(browser: Any, stack: Stack) -> None:
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        win.locator("#end").click()
        flash = agent.page.locator("#flash")
        expect(flash).to_have_text("You withdrew the co-browsing request.", timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "available")
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_request_an_administrator_ends_is_told_as_withdrawn(browser: Any, stack: Stack) -> None:
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        sid = win.url.rsplit("=", 1)[1]
        with stack.serve.admin() as c:
            assert c.post(f"/sessions/{sid}/end", json={}).status_code == 200
        flash = agent.page.locator("#flash")
        expect(flash).to_have_text("An administrator withdrew the co-browsing request.", timeout=TIMEOUT_MS)
        expect(visitor.dialog()).to_be_hidden(timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_waiting_window_tells_a_visitor_who_left_before_answering(browser: Any, stack: Stack) -> None:
    """The console is gone; the visitor closes their tab while asked: the waiting window says the
    request ended, not that a session ended."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        agent.page.close()
        visitor.context.close()
        expect(win.locator("#ended-title")).to_have_text("Request ended", timeout=TIMEOUT_MS)
        expect(win.locator("#ended-reason")).to_have_text("The visitor left the site before answering.")
    finally:
        agent.context.close()

SESSION_URL = re.compile(r"/vb#session=[a-z][a-z0-9]{9}$")


def hold_requests(agent: Agent) -> list[Route]:
    """The console's ``POST /sessions`` requests, held (never answered unless a test says so)."""
    held: list[Route] = []
    agent.page.route("**/api/v1/sessions", lambda route: held.append(route))
    return held


def request_held(agent: Agent) -> tuple[Page, Route]:
    """Press co-browse with the console's request held: (the window opened in the click, the request)."""
    held = hold_requests(agent)
    win = agent.request()
    wait_until(lambda: held, "the console's POST /sessions", TIMEOUT_MS / 1000, page=agent.page)
    return win, held[0]


def pending_sessions(stack: Stack) -> list[str]:
    with stack.serve.admin() as c:
        entries = c.get(f"/accounts/{stack.account['id']}/audit").json()["entries"]
    return [e["session_id"] for e in entries if e["to"] == "pending"]


def test_a_slow_answer_leaves_the_window_waiting_and_it_takes_the_session_in_place(
    browser: Any, stack: Stack
) -> None:
    """The window opens on the virtual browser at once and waits while the API is slow to answer
    (the console is there: the window sends nothing itself); the answer gives it the session
    without a reload (same document, no flash of another page)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, held = request_held(agent)
        posts: list[str] = []
        win.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        expect(win).to_have_title("cobrowse - waiting for the visitor")
        expect(win.locator("#tool-pointer")).to_be_disabled()
        win.evaluate("window.__loadedOnce = true")
        agent.page.wait_for_timeout(1500)  # longer than the window waits for a console that is gone
        assert posts == [] and win.url.split("#")[1].startswith("request=")
        held.continue_()
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        expect(win.locator("#end")).to_have_text("Withdraw request")
        expect(win.locator("#end")).to_be_enabled()
        assert win.evaluate("window.__loadedOnce") is True
        assert posts == []
        visitor.accept()
        expect(win.locator("#vb-title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(win.locator("#tool-pointer")).to_be_enabled()
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_console_reloaded_before_the_answer_leaves_the_window_on_the_session_it_made(
    browser: Any, stack: Stack
) -> None:
    """The request reached the API, but the console was reloaded before its answer came: the
    window asks the API for its request and finds that session (no second request)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, held = request_held(agent)
        with stack.agent() as c:  # the request, as the API received it
            made = c.post("/sessions", json=held.request.post_data_json)
        assert made.status_code == 201, made.text
        sid = made.json()["id"]
        agent.page.reload()
        expect(win).to_have_url(re.compile(rf"/vb#session={sid}$"), timeout=TIMEOUT_MS)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        expect(agent.button()).to_have_attribute("data-state", "busy", timeout=TIMEOUT_MS)
        visitor.accept()
        expect(win.locator("#vb-title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(win.locator("#tool-pointer")).to_be_enabled()
        assert pending_sessions(stack) == [sid]
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_request_lost_with_the_reloaded_console_is_sent_by_its_window(browser: Any, stack: Stack) -> None:
    """The console was reloaded before its request left: the window sends it (once) and waits."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, _ = request_held(agent)
        agent.page.reload()
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        expect(agent.button()).to_have_attribute("data-state", "busy", timeout=TIMEOUT_MS)
        visitor.accept()
        expect(win.locator("#vb-title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(win.locator("#tool-pointer")).to_be_enabled()
        assert pending_sessions(stack) == [win.url.rsplit("=", 1)[1]]
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_request_that_cannot_be_made_says_so_in_its_window(browser: Any, stack: Stack) -> None:
    """The console was closed before its request left, and the visitor has gone offline
    meanwhile: the window says that the request was not sent, and why, with a way to close it."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, _ = request_held(agent)
        visitor.page.close()
        with stack.agent() as c:
            wait_until(
                lambda: [v["cobrowse"]["reason"] for v in c.get("/visitors").json()["visitors"]]
                == ["visitor_offline"],
                "the visitor offline",
                TIMEOUT_MS / 1000,
            )
        agent.page.close()
        expect(win.locator("#ended-title")).to_have_text("Request not sent", timeout=TIMEOUT_MS)
        expect(win.locator("#ended-reason")).to_have_text(
            "The co-browsing request was not sent: The visitor is offline."
        )
        expect(win.locator("#close-window")).to_be_focused()
        assert pending_sessions(stack) == []
        with win.expect_event("close"), contextlib.suppress(TargetClosedError):
            # the click closes the page it is made in: Playwright may find it gone as the click ends
            win.locator("#close-window").click()
    finally:
        agent.context.close()
        visitor.context.close()


def fail_request(route: Route, how: str) -> None:
    if how == "network":
        route.abort("connectionreset")
    else:
        route.fulfill(status=503, json={"error": "store_unavailable", "detail": "the store is unavailable"})


@pytest.mark.parametrize("how", ["network", "503"])
def test_a_request_without_an_answer_is_sent_again_by_its_window(
    browser: Any, stack: Stack, how: str
) -> None:
    """The console's request failed on the network or with a server error (it may or may not
    have been made): instead of closing the window, the console leaves it to the window, which
    sends it again and waits for the visitor."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        agent.page.route("**/api/v1/sessions", lambda route: fail_request(route, how))
        win = agent.request()
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        expect(agent.button()).to_have_attribute("data-state", "busy", timeout=TIMEOUT_MS)
        visitor.accept()
        expect(win.locator("#vb-title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(win.locator("#tool-pointer")).to_be_enabled()
        expect(agent.button()).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def fail_the_windows_requests(win: Page, failures: list[str]) -> list[str]:
    """The window's own ``POST /sessions``: the first ones fail as ``failures`` says ("network" or
    "503"), in turn; the next ones go to the API. Returns the POSTs as they are sent."""
    posts: list[str] = []

    def route(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        posts.append(route.request.post_data_json["request_id"])
        if len(posts) <= len(failures):
            fail_request(route, failures[len(posts) - 1])
        else:
            route.continue_()

    win.route("**/api/v1/sessions", route)
    return posts


# Records in window.__status each text the window's status line takes from now on.
_RECORD_STATUS = """() => {
  const status = document.getElementById('vb-status'), texts = window.__status = [];
  new MutationObserver(() => {
    if (texts[texts.length - 1] !== status.textContent) texts.push(status.textContent);
  }).observe(status, {childList: true, characterData: true, subtree: true});
}"""


def test_a_window_whose_own_request_fails_tries_again_and_reaches_the_visitor(
    browser: Any, stack: Stack
) -> None:
    """The console was closed before its request left; the window's own request then fails on the
    network, then with a server error: the window says it is trying again, and its third try
    makes the session, which the visitor is asked for and accepts (one request id throughout)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win, held = request_held(agent)
        posts = fail_the_windows_requests(win, ["network", "503"])
        # the status says so for the 1 + 2 s between the tries only: recorded in the page, since a
        # loaded machine could look after the third try (once the window has its status line: under
        # load it was still loading, with nothing to watch yet)
        win.wait_for_selector("#vb-status", state="attached", timeout=TIMEOUT_MS)
        win.evaluate(_RECORD_STATUS)
        held.abort()  # left held, it reached the API as the console closed, in some runs
        agent.page.close()
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        expect(win.locator("#vb-status")).to_have_text("Waiting for the visitor to accept...")
        told = win.evaluate("window.__status")
        assert "Could not reach the server: trying again..." in told, told
        assert told[-1] == "Waiting for the visitor to accept...", told
        assert posts == [held.request.post_data_json["request_id"]] * 3
        visitor.accept()
        expect(win.locator("#vb-title")).to_have_text("Products - Demo Shop", timeout=TIMEOUT_MS)
        expect(win.locator("#tool-pointer")).to_be_enabled()
        sid = win.url.rsplit("=", 1)[1]
        assert pending_sessions(stack) == [sid]
        assert _session(stack, sid)["state"] == "active"
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_window_whose_own_request_always_fails_gives_up_after_five_tries(
    browser: Any, stack: Stack
) -> None:
    """The console was closed before its request left, and the server fails every time the window
    sends it: after five tries (1 + 2 + 3 + 4 s apart) the window says the request was not sent
    and why; the visitor was never asked."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        # the pages' timers, faked (time still flows): the waits between tries are skipped, half a
        # second at a time, instead of waited out. Installed before the window opens: a timer
        # made before cannot be cleared once the clock is faked (the window's polling of its
        # console would go on, and send the request at its own pace)
        agent.context.clock.install()
        win, held = request_held(agent)
        posts = fail_the_windows_requests(win, ["503"] * 6)
        held.abort()  # left held, it reached the API as the console closed, in some runs
        agent.page.close()
        expect(win.locator("#vb-status")).to_have_text(
            "Could not reach the server: trying again...", timeout=TIMEOUT_MS
        )

        def given_up() -> bool:
            win.clock.run_for(500)
            return win.locator("#ended").is_visible()

        wait_until(given_up, "the window giving up", TIMEOUT_MS / 1000, page=win)
        expect(win.locator("#ended-title")).to_have_text("Request not sent")
        expect(win.locator("#ended-reason")).to_have_text(
            "The co-browsing request was not sent: the server could not be reached."
        )
        expect(win.locator("#close-window")).to_be_focused()
        assert len(posts) == 5
        with stack.serve.admin() as c:
            entries = c.get(f"/accounts/{stack.account['id']}/audit").json()["entries"]
        assert [e for e in entries if e["to"] == "pending"] == [], entries  # (and who made one)
        expect(visitor.dialog()).to_be_hidden()
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


def test_a_visitor_on_a_site_taken_out_of_the_policy_is_greyed_with_the_reason(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(role="api-thread")
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        stack.set_policy(allowed_origins=["https://elsewhere.example"])
        expect(agent.button()).to_have_attribute("data-state", "unavailable", timeout=TIMEOUT_MS)
        reason = "The visitor's site is no longer allowed for co-browsing"
        expect(agent.row().locator(".reason")).to_have_text(reason)
        stack.set_policy(allowed_origins=[stack.shop.origin])
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def test_an_open_console_opens_the_window_the_policy_says_now(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """An administrator switches the account from pop-ins to tabs while the console is open: the
    next press opens a tab (the console had read the policy once, at sign-in)."""
    stack = make_stack(role="api-thread", policy={"agent_interface": "popin"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        # the policy message comes before the views of the visitors the change publishes: the
        # button greyed by the minimum says the console has it
        stack.set_policy(agent_interface="tab", min_bandwidth_kbps=10**6)
        expect(agent.button()).to_have_attribute("data-state", "unavailable", timeout=TIMEOUT_MS)
        stack.set_policy(min_bandwidth_kbps=1)
        window = agent.request()
        assert window.evaluate("window.toolbar.visible") is True
    finally:
        agent.context.close()
        visitor.context.close()


def test_another_agents_request_is_told_apart_from_a_session(browser: Any, stack: Stack) -> None:
    """While one agent's request waits for the visitor's answer, another agent's console says so;
    it said "Already in a co-browsing session" before the visitor had even been asked."""
    with stack.serve.admin() as c:
        made = c.post(f"/accounts/{stack.account['id']}/agents", json={"display_name": "Bob"})
        made.raise_for_status()
    visitor = open_visitor(browser, stack)
    alice = open_console(browser, stack)
    bob = open_console(browser, stack, made.json()["token"])
    try:
        expect(bob.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        alice.request()
        reason = bob.row().locator(".reason")
        expect(reason).to_have_text("Another co-browsing request is waiting for the visitor's answer",
                                    timeout=TIMEOUT_MS)
        expect(bob.button()).to_be_disabled()
        visitor.accept()
        expect(reason).to_have_text("Already in a co-browsing session", timeout=TIMEOUT_MS)
    finally:
        bob.context.close()
        alice.context.close()
        visitor.context.close()


def test_a_closed_window_whose_request_was_answered_unheard_is_not_withdrawn_for_ever(
    browser: Any, stack: Stack
) -> None:
    """The visitor refused while the console's socket missed it (a reconnect's hello lists live
    sessions only), then the agent closed the waiting window: withdrawing it was refused (409)
    and tried again every 500 ms for as long as the console stayed open. It now reads the
    request's state and is told the refusal."""
    visitor = open_visitor(browser, stack)
    context = browser.new_context()
    deaf: list[bool] = []  # set: the console's socket hears no session event

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        ws.on_message(server.send)
        server.on_message(lambda m: None if deaf and '"type": "session"' in str(m) else ws.send(m))

    context.route_web_socket(re.compile(r"/api/v1/agent/ws$"), route)
    page = context.new_page()
    ends: list[str] = []
    page.on("request", lambda r: ends.append(r.url) if r.method == "POST" and r.url.endswith("/end")
            else None)
    try:
        page.goto(stack.console_url)
        page.fill("#token", stack.agent_token)
        page.click("#signin-form button[type=submit]")
        agent = Agent(context, page, Frames())
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        deaf.append(True)
        visitor.dialog().get_by_role("button", name="Refuse").click()
        expect(visitor.dialog()).to_be_hidden(timeout=TIMEOUT_MS)
        win.close()
        expect(page.locator("#flash")).to_have_text("The visitor refused the co-browsing request.",
                                                    timeout=TIMEOUT_MS)
        tried = len(ends)
        page.wait_for_timeout(1500)  # three of the watcher's ticks
        assert len(ends) == tried <= 1, ends
    finally:
        context.close()
        visitor.context.close()


def test_a_view_reopened_for_an_accept_after_its_window_closed_is_a_pop_in(
    browser: Any, stack: Stack
) -> None:
    """The waiting window was closed and its withdrawal did not get through before the visitor
    accepted: the console opens the view again, as the policy says (it opened a tab)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        agent.context.route(re.compile(r"/sessions/[a-z0-9]+/end$"), lambda route: route.abort())
        win = agent.request()
        expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
        expect(win).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        win.close()
        with agent.page.expect_popup(timeout=TIMEOUT_MS) as popup:
            visitor.accept()
        view = popup.value
        expect(view).to_have_url(SESSION_URL, timeout=TIMEOUT_MS)
        assert view.evaluate("window.toolbar.visible") is False
    finally:
        agent.context.close()
        visitor.context.close()


@pytest.mark.parametrize("width", [1000, 700, 480])
def test_every_tool_of_the_view_stays_in_a_narrow_window(browser: Any, stack: Stack, width: int) -> None:
    """The toolbar did not wrap: below about 1075 px "Go" and "End session" were off the window
    (an agent in a narrow pop-in could not end the session from the view)."""
    context = browser.new_context(viewport={"width": width, "height": 600})
    try:
        page = context.new_page()
        page.goto(stack.console_url.replace("/console", "/vb") + "#session=s0")
        page.evaluate("document.getElementById('navigate-form').hidden = false")  # (when allowed)
        for control in ("#follow", "#reload", "#tool-pointer", "#tool-highlight", "#tool-draw", "#clear",
                        "#navigate-url", "#navigate-form button", "#end"):
            box = page.locator(control).bounding_box()
            assert box is not None, control
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (control, box)
        stage = page.locator("#stage").bounding_box()
        assert stage is not None and stage["height"] > 300  # the page still has the room left
    finally:
        context.close()


def test_a_view_opened_without_a_session_says_so_with_its_tools_off(browser: Any, stack: Stack) -> None:
    """/vb opened by hand (a bookmark, a pasted link without its fragment) said "Connecting..."
    with every tool enabled and doing nothing."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(stack.console_url.replace("/console", "/vb"))
        expect(page.locator("#ended-title")).to_have_text("No session")
        expect(page.locator("#ended-reason")).to_contain_text("open it from the console")
        expect(page).to_have_title("No session - cobrowse virtual browser")
        for tool in ("#tool-pointer", "#tool-draw", "#clear", "#end"):
            expect(page.locator(tool)).to_be_disabled()
    finally:
        context.close()


def test_nothing_of_the_console_is_cut_off_at_320_px(browser: Any, stack: Stack) -> None:
    """A phone, or 400 % zoom (WCAG 1.4.10): the page was 412 px wide at 320, the Co-browse button
    cut off and "Sign out" off the window (a row of two columns, a header that did not wrap)."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        agent.page.set_viewport_size({"width": 320, "height": 640})
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        assert agent.page.evaluate("document.documentElement.scrollWidth") <= 320
        for control in (agent.button(), agent.page.locator("#signout"), agent.row().locator(".reason")):
            box = control.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320, box
    finally:
        agent.context.close()
        visitor.context.close()


# Counts in window.__opened the windows the console opens from now on (a press that does anything
# opens one first, synchronously, inside the click).
_COUNT_WINDOWS = """() => {
  window.__opened = 0;
  const open = window.open;
  window.open = (...args) => { window.__opened += 1; return open.apply(window, args); };
}"""


def _is_focused(locator: Any) -> bool:
    return bool(locator.evaluate("e => e === document.activeElement"))


def test_an_unavailable_button_takes_the_focus_says_why_and_a_press_does_nothing(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """A disabled button was skipped by Tab and its reason was not tied to it: now it is
    aria-disabled, so it keeps the focus and is described by its row's reason, and a press on it,
    by keyboard or mouse, opens no window and asks nothing."""
    stack = make_stack(role="api-thread", cobrowse_enabled=False)
    visitors = [open_visitor(browser, stack), open_visitor(browser, stack)]
    agent = open_console(browser, stack)
    try:
        buttons = agent.page.locator(".cobrowse-btn")
        expect(buttons).to_have_count(2, timeout=TIMEOUT_MS)
        for button in (buttons.nth(0), buttons.nth(1)):
            expect(button).to_have_attribute("data-state", "unavailable", timeout=TIMEOUT_MS)
            expect(button).to_have_attribute("aria-disabled", "true")
            assert button.evaluate("b => b.disabled") is False
            expect(button).to_have_accessible_description("Co-browsing is off for this account")
        described = [b.get_attribute("aria-describedby") for b in (buttons.nth(0), buttons.nth(1))]
        assert len(set(described)) == 2, described  # an id of each row's own
        for row, name in zip(agent.page.locator("li.visitor").all(), described, strict=True):
            assert row.locator(".reason").get_attribute("id") == name

        agent.page.evaluate(_COUNT_WINDOWS)
        agent.page.locator("#visitors-title").focus()
        agent.page.keyboard.press("Tab")
        assert _is_focused(buttons.nth(0))  # Tab reaches it
        agent.page.keyboard.press("Enter")
        agent.page.keyboard.press(" ")
        buttons.nth(0).click(force=True)  # (a plain click waits for it to be enabled)
        assert agent.page.evaluate("window.__opened") == 0
        assert _is_focused(buttons.nth(0))
        assert pending_sessions(stack) == []
    finally:
        agent.context.close()
        for visitor in visitors:
            visitor.context.close()


def test_co_browse_pressed_with_enter_keeps_the_focus_while_pending_and_after(
    browser: Any, stack: Stack
) -> None:
    """Pressed with Enter, the button went disabled while the request waited: the focus dropped to
    the page and stayed there after the refusal. Now it stays on the button, and a second press
    while pending asks nothing."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        button = agent.button()
        expect(button).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        button.focus()
        with agent.page.expect_popup() as popup:
            agent.page.keyboard.press("Enter")
        win = popup.value
        expect(button).to_have_attribute("data-state", "busy")
        expect(button).to_have_attribute("aria-disabled", "true")
        expect(button).to_have_accessible_description("Waiting for the visitor to accept")
        assert _is_focused(button)
        agent.page.evaluate(_COUNT_WINDOWS)
        agent.page.keyboard.press("Enter")
        assert agent.page.evaluate("window.__opened") == 0  # no second request while one waits
        visitor.dialog().get_by_role("button", name="Refuse").click()
        expect(button).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        expect(button).not_to_have_attribute("aria-disabled", "true")
        assert _is_focused(button)
        if not win.is_closed():
            win.wait_for_event("close", timeout=TIMEOUT_MS)
        assert len(pending_sessions(stack)) == 1
    finally:
        agent.context.close()
        visitor.context.close()


def test_signing_in_and_out_with_the_keyboard_leaves_the_focus_on_what_comes_next(
    browser: Any, stack: Stack
) -> None:
    """The form that had the focus was hidden on signing in, and Sign out on signing out: the
    focus fell to the page. It goes to the visitors' heading, and back to the token field."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(stack.console_url)
        page.locator("#token").fill(stack.agent_token)
        page.locator("#token").press("Enter")
        expect(page.locator("#visitors-panel")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_role("heading", name="Visitors on the site")).to_be_focused()
        page.locator("#signout").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#token")).to_be_focused()
    finally:
        context.close()


def test_the_text_of_the_co_browse_button_and_the_agents_pointer_label_is_readable(
    browser: Any, stack: Stack
) -> None:
    """WCAG AA (4.5:1 for text): white on the button's green was 3.49, on the label's red 4.17."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        assert contrast(agent.button()) >= 4.5
        agent.button().hover()
        assert contrast(agent.button()) >= 4.5
        view = agent.context.new_page()
        view.goto(stack.console_url.replace("/console", "/vb"))
        assert contrast(view.locator("#pointer-echo span")) >= 4.5  # "Your pointer", in the view
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_ended_card_is_an_alert_dialog_over_an_inert_view(browser: Any, stack: Stack) -> None:
    """The card that says the session is over took the focus on its Close button but was no
    dialog: a screen reader read "Close", not that the session had ended, nor why."""
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        win = agent.request()
        expect(win.locator("#end")).to_have_text("Withdraw request", timeout=TIMEOUT_MS)
        expect(win.get_by_role("alertdialog")).to_have_count(0)
        agent.page.close()  # (an open console closes the window of a request that is over)
        win.locator("#end").click()
        card = win.get_by_role("alertdialog", name="Request withdrawn")
        expect(card).to_be_visible(timeout=TIMEOUT_MS)
        expect(card).to_have_accessible_description("You withdrew the co-browsing request.")
        expect(card.get_by_role("button", name="Close")).to_be_focused()
        for behind in ("#viewport", "header.toolbar"):
            assert win.locator(behind).evaluate("e => e.inert") is True, behind
    finally:
        agent.context.close()
        visitor.context.close()


@contextlib.contextmanager
def page_server(markup: str) -> Iterator[int]:
    """One page on a loopback port (a page of the public internet may not frame a loopback one)."""
    body = markup.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the base class's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("allowed", [False, True], ids=["any page", "the helpdesk the settings name"])
def test_only_a_page_the_settings_name_can_show_the_console_in_a_frame(
    browser: Any, make_stack: Callable[..., Stack], allowed: bool
) -> None:
    """Another site's page framing the console could have the agent click its buttons through a
    decoy (click-jacking); a helpdesk that embeds it on purpose is named in the settings."""
    framer = "<!doctype html><title>helpdesk</title><iframe></iframe>"
    with page_server(framer) as port:
        helpdesk = f"http://helpdesk.localhost:{port}"
        ancestors = (helpdesk,) if allowed else ()
        stack = make_stack(role="api-thread", api_settings={"console_frame_ancestors": ancestors})
        context = browser.new_context()
        try:
            page = context.new_page()
            refusals: list[str] = []
            page.on("console", lambda m: refusals.append(m.text) if "frame-ancestors" in m.text else None)
            page.goto(helpdesk + "/")
            token = page.frame_locator("iframe").locator("#token")
            if allowed:
                page.locator("iframe").evaluate("(f, url) => { f.src = url; }", stack.console_url)
                expect(token).to_be_visible(timeout=TIMEOUT_MS)
                assert refusals == []
            else:
                refused = page.expect_console_message(
                    lambda m: "frame-ancestors" in m.text, timeout=TIMEOUT_MS
                )
                with refused as said:
                    page.locator("iframe").evaluate("(f, url) => { f.src = url; }", stack.console_url)
                assert "frame-ancestors 'none'" in said.value.text
                expect(token).to_have_count(0)
        finally:
            context.close()


@pytest.mark.parametrize("answer", ["Refuse", "End"])
def test_a_session_settled_while_the_consoles_socket_was_away_is_not_shown_live_after_it_reconnects(
    browser: Any, stack: Stack, answer: str
) -> None:
    """The visitor refused (or ended the session) while the console's socket missed it; then the
    socket reconnected. Its hello lists live sessions only, so the row stayed "Waiting for the
    visitor..." (a busy button no press clears) or "Open virtual browser" for good. The console now
    asks how each session it shows stands when a hello does not list it."""
    visitor = open_visitor(browser, stack)
    context = browser.new_context()
    deaf: list[bool] = []  # set: the console's socket hears no session event
    unheard: list[str] = []
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        sockets.append(ws)
        server = ws.connect_to_server()
        ws.on_message(server.send)

        def to_console(m: Any) -> None:
            if deaf and '"type": "session"' in str(m):
                unheard.append(str(m))
            else:
                ws.send(m)

        server.on_message(to_console)

    page = context.new_page()
    page.route_web_socket(re.compile(r"/api/v1/agent/ws$"), route)  # the console's, not its window's
    try:
        page.goto(stack.console_url)
        page.fill("#token", stack.agent_token)
        page.click("#signin-form button[type=submit]")
        agent = Agent(context, page, Frames())
        win = agent.request()
        if answer == "End":
            visitor.accept()
            expect(agent.button()).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)
        else:
            expect(visitor.dialog()).to_be_visible(timeout=TIMEOUT_MS)
            expect(agent.button()).to_have_attribute("data-state", "busy")
        deaf.append(True)
        if answer == "End":
            visitor.end_button().click()
        else:
            visitor.dialog().get_by_role("button", name="Refuse").click()
        expect(visitor.dialog()).to_be_hidden(timeout=TIMEOUT_MS)
        expect(visitor.end_button()).to_be_hidden(timeout=TIMEOUT_MS)
        settled = '"state": "ended"' if answer == "End" else '"state": "refused"'
        wait_until(lambda: any(settled in m for m in unheard), "the event the console missed", page=page)
        before = len(sockets)
        sockets[-1].close(code=1001, reason="gone")  # the console's socket drops; it connects again
        wait_until(lambda: len(sockets) > before, "the console's new socket", page=page)
        expect(page.locator("#conn")).to_have_text("Live", timeout=TIMEOUT_MS)
        expect(agent.button()).to_have_attribute("data-state", "available", timeout=TIMEOUT_MS)
        expect(agent.row().locator(".live-mark")).to_be_hidden()
        told = ("The visitor refused the co-browsing request." if answer == "Refuse"
                else "The visitor ended the co-browsing session.")
        expect(agent.row().locator(".reason")).to_have_text(told)
        if not win.is_closed():
            win.close()
    finally:
        context.close()
        visitor.context.close()
