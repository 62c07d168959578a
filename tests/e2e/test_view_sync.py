"""What the agent's view shows when it opens or reopens in the middle of things: the visitor's
scroll position and field values from before, and the visitor's page after a detour."""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.harness import Stack, wait_until
from tests.e2e.pages import TIMEOUT_MS, Visitor, open_console, open_visitor, sign_in, view_frame

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.long]

# records in window.__texts each text the element of the selector (the argument) shows from now on
WATCH_TEXT = """(selector) => {
  window.__texts = [];
  new MutationObserver(() => {
    const element = document.querySelector(selector);
    window.__texts.push(element ? element.textContent : null);
  }).observe(document.body, {childList: true, characterData: true, subtree: true});
}"""
# the help page's panel scrolled to y (give y as the argument)
PANEL_AT = "(y) => Math.abs(document.getElementById('answers').scrollTop - y) <= 1"


@contextmanager
def _following(
    browser: Any, make_stack: Callable[..., Stack], path: str, heading: str
) -> Iterator[tuple[Stack, Visitor, Page]]:
    """A visitor on ``path`` and an agent whose view (a tab, no consent asked) shows it already."""
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    visitor = open_visitor(browser, stack, path)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text(heading, timeout=TIMEOUT_MS)
        yield stack, visitor, vb
    finally:
        agent.context.close()
        visitor.context.close()


SAME_PLACE = "top => Math.abs(document.getElementById('more').getBoundingClientRect().top - top) <= 2"


def test_the_view_opens_and_reopens_where_the_visitor_is(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The visitor scrolled before accepting: the view that opens after the consent (and again after
    the agent reloads it) shows the same place without waiting for the visitor to scroll again, even
    when the page's style sheet comes after its DOMContentLoaded (the scroll is anchored to an
    element, so it must be applied once the layout has settled)."""
    stack = make_stack(policy={"agent_interface": "tab"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)

    def slow_style_sheet(route: Any) -> None:
        time.sleep(0.5)
        route.continue_()

    try:
        agent.context.route(re.compile(r"\.cobrowse\.localhost:\d+/static/shop\.css$"), slow_style_sheet)
        visitor.page.evaluate("document.getElementById('more').scrollIntoView(); scrollBy(0, 120)")
        top = visitor.page.locator("#more").evaluate("e => Math.round(e.getBoundingClientRect().top)")
        vb = agent.request()
        visitor.accept()
        expect(vb).to_have_url(re.compile(r"/vb#session="), timeout=TIMEOUT_MS)
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        view_frame(vb).wait_for_function(SAME_PLACE, arg=top, timeout=TIMEOUT_MS)

        vb.reload()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        view_frame(vb).wait_for_function(SAME_PLACE, arg=top, timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


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


def test_the_view_comes_back_with_the_visitor_from_outside_the_scope(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The visitor follows a link to an origin outside allowed_origins, then comes back: the agent
    sees the proxy's "outside the scope" page meanwhile, then the visitor's page again (a page
    without the runtime says nothing to the view, which must not think it still shows the old one)."""
    stack = make_stack(policy={"consent": "none"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    outside = stack.shop.origin.replace("127.0.0.1", "localhost") + "/cart"
    try:
        vb = agent.request()
        frame = vb.frame_locator("#view")
        expect(frame.locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        visitor.page.evaluate(
            "url => { const a = document.createElement('a'); a.href = url; a.id = 'away';"
            " a.textContent = 'elsewhere'; document.body.prepend(a); }",
            outside,
        )
        visitor.page.click("#away")
        visitor.page.wait_for_url(outside)
        expect(vb.locator("#vb-url")).to_have_text(outside, timeout=TIMEOUT_MS)
        expect(frame.locator("body")).to_contain_text("outside the co-browse scope", timeout=TIMEOUT_MS)

        visitor.page.go_back()
        bar = visitor.page.get_by_text(f"Co-browsing with {stack.agent_name}")
        expect(bar).to_be_visible(timeout=TIMEOUT_MS)
        expect(vb.locator("#vb-url")).to_have_text(stack.shop.origin + "/", timeout=TIMEOUT_MS)
        expect(frame.locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_view_follows_a_panel_that_scrolls_on_its_own(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """Help centres and dashboards scroll a panel of their own, not the window: the view scrolls
    the same panel, and a view opened (or reloaded) later finds it where the visitor left it."""
    with _following(browser, make_stack, "/help", "Help") as (stack, visitor, vb):
        visitor.page.locator("#answers").evaluate("e => e.scrollTo(0, 400)")
        view_frame(vb).wait_for_function(PANEL_AT, arg=400, timeout=TIMEOUT_MS)
        visitor.page.locator("#answers").evaluate("e => e.scrollTo(0, 650)")
        view_frame(vb).wait_for_function(PANEL_AT, arg=650, timeout=TIMEOUT_MS)
        assert view_frame(vb).evaluate("scrollY") == 0  # the window stays where it was

        vb.reload()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Help", timeout=TIMEOUT_MS)
        view_frame(vb).wait_for_function(PANEL_AT, arg=650, timeout=TIMEOUT_MS)


def test_the_view_follows_routes_of_the_navigation_api_and_the_tab_the_visitor_is_on(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """An app that routes with the Navigation API changes its URL without pushState; a tab the page
    opens itself shares the visitor's identity: the view follows the route, then the second tab,
    then the first tab again once the visitor is back on it."""
    with _following(browser, make_stack, "/", "Products") as (stack, visitor, vb):
        url = lambda path: re.compile(re.escape(stack.shop.origin + path) + "$")  # noqa: E731
        visitor.page.evaluate(
            "navigation.addEventListener('navigate', (e) => { if (e.canIntercept) e.intercept("
            "{handler: async () => { document.querySelector('h1').textContent = 'Routed'; }}); });"
            "navigation.navigate('/search')"
        )
        expect(vb.locator("#vb-url")).to_have_text(url("/search"), timeout=TIMEOUT_MS)

        with visitor.context.expect_page() as opened:
            visitor.page.evaluate("window.open('/tour')")
        second = opened.value
        expect(vb.locator("#vb-url")).to_have_text(url("/tour"), timeout=TIMEOUT_MS)
        second.close()
        visitor.page.bring_to_front()
        visitor.page.evaluate("dispatchEvent(new FocusEvent('focus'))")  # as when the visitor clicks it
        expect(vb.locator("#vb-url")).to_have_text(url("/search"), timeout=TIMEOUT_MS)


def test_scrolling_panes_stay_under_the_apis_rate_and_fields_never_tell_their_width(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """Grids keep several panes in step as they scroll: all elements share one budget, so the
    visitor's socket is never closed for its rate (4429). A field scrolls with its text: its
    scroll would tell the width of a password, so form controls are never reported."""
    with _following(browser, make_stack, "/help", "Help") as (stack, visitor, vb):
        visitor.page.evaluate(
            "() => { const panel = document.getElementById('answers');"
            " for (const id of ['left', 'right']) { const c = panel.cloneNode(true); c.id = id;"
            " document.querySelector('main').appendChild(c); } }"
        )
        visitor.page.evaluate(
            "() => new Promise(done => { const t0 = performance.now();"
            " const panes = ['answers', 'left', 'right'].map(id => document.getElementById(id));"
            " (function step() { for (const p of panes) p.scrollBy(0, 3); scrollBy(0, 2);"
            " if (performance.now() - t0 < 2000) requestAnimationFrame(step); else done(); })(); })"
        )
        y = visitor.page.evaluate("Math.round(document.getElementById('answers').scrollTop)")
        view_frame(vb).wait_for_function(PANEL_AT, arg=y, timeout=TIMEOUT_MS)  # the view has the one panel
        sent = [m for m in visitor.frames.messages() if m.get("type") == "scroll"]
        # the page's 25 a second and the elements' 12.5 together, plus the last positions: under 50
        assert len(sent) <= 2 * (25 + 13) + 14, f"{len(sent)} scroll reports in 2 s"
        assert len([m for m in visitor.frames.messages() if m.get("type") == "hello"]) == 1  # never closed

        visitor.page.goto(stack.shop.origin + "/login")
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Sign in", timeout=TIMEOUT_MS)
        visitor.page.type("#password", "a-rather-long-secret-" * 4)
        visitor.page.type("#email", "ana@example.com")
        email = vb.frame_locator("#view").locator("#email")
        expect(email).to_have_value("ana@example.com", timeout=TIMEOUT_MS)
        scrolls = [m for m in visitor.frames.messages() if m.get("type") == "scroll"]
        assert not [m for m in scrolls if "password" in str(m.get("target"))]


def test_the_view_gets_in_when_the_visitor_moves_on_during_its_first_entry(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The visitor goes to another page while the view's first entry (the ticket that sets the
    proxy's credential cookie) is still on its way: the view follows through a new entry, never
    straight to the new page without the cookie (which showed "Not signed in to this session")."""
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    held: list[Any] = []
    entries = re.compile(r"/__cobrowse/enter\?")
    agent.context.route(entries, lambda route: held.append(route))  # held until the visitor moved on
    navigations: list[str] = []
    try:
        vb = agent.request()
        vb.on("request", lambda r: navigations.append(r.url) if r.is_navigation_request() else None)
        wait_until(lambda: len(held) == 1, "the view's first entry", 15, page=vb)
        visitor.page.click("header >> text=Search")
        wait_until(lambda: sum("/__cobrowse/enter" in u or u.endswith("/search") for u in navigations) >= 2,
                   lambda: f"the view following the visitor (navigations: {navigations})", 15, page=vb)
        agent.context.unroute(entries)
        for route in held:
            with contextlib.suppress(Exception):  # the first entry was given up by the frame
                route.continue_()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Search", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_ticket_made_before_the_api_stored_the_visitors_new_page_still_ends_on_that_page(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """A ticket targets the visitor's page as the API has stored it, which may still be the page
    before (the visitor moved on meanwhile; an API that relayed before storing). The view that
    lands there (while the visitor is on the new one) must go on to the visitor's page, not take it
    for a redirect of the agent's and stay (seen under load: the view kept "Products" while the
    visitor was on "Search")."""
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    visitor = open_visitor(browser, stack)
    first_page = visitor.page.url
    agent = open_console(browser, stack)
    held: list[Any] = []
    entries = re.compile(r"/__cobrowse/enter\?")
    agent.context.route(entries, lambda route: held.append(route))  # the first entry waits
    tickets: list[str] = []

    def stale_ticket(route: Any) -> None:
        tickets.append(route.request.url)
        if len(tickets) != 2:
            route.continue_()
            return
        with stack.agent() as client:  # the real ticket (Playwright's fetch resolves no *.localhost)
            answer = client.post(urlsplit(route.request.url).path.removeprefix("/api/v1"))
        data = answer.json()
        # what the API answers when it has not stored the visitor's move yet: the page before
        data["enter_url"] = re.sub(r"([?&]url=)[^&]*", lambda m: m.group(1) + quote(first_page, safe=""),
                                   data["enter_url"])
        route.fulfill(status=answer.status_code, json=data)

    agent.context.route(re.compile(r"/proxy-ticket$"), stale_ticket)
    try:
        vb = agent.request()
        # what the view did, for the failure message (a run under load once asked 6 tickets)
        seen: list[str] = []
        vb.on("framenavigated", lambda f: seen.append(f"nav {f.url[-60:]}") if f != vb.main_frame else None)
        vb.on("console", lambda m: seen.append(f"console {m.text[:120]}"))
        api = "/api/v1/"
        agent.context.on("request", lambda r: seen.append(f"req {r.url[-70:]}") if api in r.url else None)
        wait_until(lambda: len(held) == 1, "the view's first entry", 15, page=vb)
        visitor.page.click("header >> text=Search")
        wait_until(lambda: len(held) == 2, "the view's second entry (its ticket made stale)", 15, page=vb)
        agent.context.unroute(entries)
        for route in held:
            with contextlib.suppress(Exception):  # the first entry was given up by the frame
                route.continue_()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Search", timeout=TIMEOUT_MS)
        assert len(tickets) == 2, seen  # the view went on with the proxy URL it had learnt by then
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_page_that_sends_the_agent_elsewhere_is_loaded_once_and_the_view_says_so(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The shop's account page needs its HttpOnly session cookie, which the agent never gets, so
    the agent's view of it is redirected to the sign-in page. The view says where it is and stays:
    it must not load the visitor's page again and again (each load lands on the sign-in page
    again), only when the visitor moves on."""
    with _following(browser, make_stack, "/login", "Sign in") as (stack, visitor, vb):
        loads: list[str] = []
        vb.context.on("request", lambda r: loads.append(r.url) if (
            r.resource_type == "document" and urlsplit(r.url).path == "/account") else None)
        view = vb.frame_locator("#view")
        visitor.page.fill("#email", "ana@example.com")
        visitor.page.fill("#password", "secret")
        visitor.page.click("#login-form button[type=submit]")
        expect(view.locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        visitor.page.click("#account-link")
        expect(visitor.page.locator("h1")).to_have_text("Your account")
        expect(view.locator("h1")).to_have_text("Sign in", timeout=TIMEOUT_MS)
        note = (f"Your view shows {stack.shop.origin}/login?next=/account "
                f"(the visitor is on {stack.shop.origin}/account).")
        expect(vb.locator("#vb-status")).to_have_text(note, timeout=TIMEOUT_MS)
        visitor.page.click("header >> text=Help")
        expect(view.locator("h1")).to_have_text("Help", timeout=TIMEOUT_MS)
        expect(vb.locator("#vb-status")).to_be_hidden()
        assert len(loads) == 1, loads


def test_the_view_follows_checkboxes_and_radio_buttons_and_keeps_them_on_reload(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """A radio button the visitor picks unticks the others of its group in the agent's copy too,
    and a view reloaded afterwards shows the one picked last (not the last of the group picked a
    first time)."""
    with _following(browser, make_stack, "/checkout", "Checkout") as (_, visitor, vb):
        view = vb.frame_locator("#view")
        visitor.page.check("#gift")
        expect(view.locator("#gift")).to_be_checked(timeout=TIMEOUT_MS)
        for picked in ("#standard", "#express", "#standard"):
            visitor.page.check(picked)
            other = "#express" if picked == "#standard" else "#standard"
            expect(view.locator(picked)).to_be_checked(timeout=TIMEOUT_MS)
            expect(view.locator(other)).not_to_be_checked()
        visitor.page.uncheck("#gift")
        expect(view.locator("#gift")).not_to_be_checked(timeout=TIMEOUT_MS)
        visitor.page.check("#gift")
        expect(view.locator("#gift")).to_be_checked(timeout=TIMEOUT_MS)
        vb.click("#reload")
        expect(view.locator("h1")).to_have_text("Checkout", timeout=TIMEOUT_MS)
        expect(view.locator("#standard")).to_be_checked(timeout=TIMEOUT_MS)
        expect(view.locator("#express")).not_to_be_checked()
        expect(view.locator("#gift")).to_be_checked()


def test_a_view_of_the_visitor_read_before_its_new_page_never_takes_the_agent_back(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """Views of the visitor are published by whichever socket changed something: the old page's
    socket, closing as the visitor moves on, can publish the page before after the new page was
    relayed (under load a view went back to "Products" and asked 4 tickets instead of 2). Such a
    view has a lower revision: neither the virtual browser nor the console goes back."""
    stack = make_stack(policy={"consent": "none", "agent_interface": "tab"})
    visitor = open_visitor(browser, stack)
    first_page = visitor.page.url
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    routes: list[Any] = []  # the agent's sockets (console, view), passed through, to inject into
    views: list[dict[str, Any]] = []  # the views of the visitor the server sent them

    def pass_through(ws: Any) -> None:
        server = ws.connect_to_server()

        def down(message: str | bytes) -> None:
            event = json.loads(message)
            if event.get("type") == "visitor":
                views.append(event["visitor"])
            ws.send(message)

        server.on_message(down)
        routes.append(ws)

    context.route_web_socket(re.compile(r"/api/v1/agent/ws$"), pass_through)
    tickets: list[str] = []
    context.on("request", lambda r: tickets.append(r.url) if r.url.endswith("/proxy-ticket") else None)
    try:
        agent = sign_in(context, stack)
        page = agent.page
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        visitor.page.click("header >> text=Search")
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Search", timeout=TIMEOUT_MS)
        expect(agent.row().locator(".url")).to_have_text(stack.shop.origin + "/search", timeout=TIMEOUT_MS)
        stale = [v for v in views if v["url"] == first_page][-1]
        assert stale["rev"] < max(v["rev"] for v in views if v["url"] == stack.shop.origin + "/search")
        before = len(tickets)
        # every text the visitor's URL takes from now on, in the view's bar and the console's row:
        # a page shown for a moment and then replaced (by a fresh view arriving) is caught too
        row = f"li.visitor[data-visitor-id='{stale['id']}'] .url"
        for where, selector in ((vb, "#vb-url"), (page, row)):
            where.evaluate(WATCH_TEXT, selector)
        for ws in routes:
            ws.send(json.dumps({"type": "visitor", "visitor": stale, "ts": time.time()}))
        # what comes after it on the same socket marks it handled, with something the server never
        # sends (nothing real overwrites it): an error for the view, a visitor of no one's for the
        # console
        mark = {"type": "error", "error": "marker", "detail": "injected after the stale view"}
        other = {**stale, "id": "vis_someoneelse", "url": stack.shop.origin + "/other", "rev": 0}
        for ws in routes:
            ws.send(json.dumps(mark))
            ws.send(json.dumps({"type": "visitor", "visitor": other, "ts": time.time()}))
        expect(vb.locator("#vb-status")).to_have_text("injected after the stale view", timeout=TIMEOUT_MS)
        expect(page.locator("li.visitor")).to_have_count(2, timeout=TIMEOUT_MS)
        for where in (vb, page):
            assert first_page not in where.evaluate("window.__texts"), where.url
        assert vb.locator("#vb-url").text_content() == stack.shop.origin + "/search"
        assert page.locator(row).text_content() == stack.shop.origin + "/search"
        assert len(tickets) == before, tickets[before:]
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Search")
    finally:
        context.close()
        visitor.context.close()


def test_a_page_of_another_origin_in_the_views_frame_gets_nothing_of_the_visitor(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The view talks only to pages of its session's proxy origins: a page of another origin that
    the frame comes to show and that says it is ready on the visitor's page gets no message (the
    visitor's field values, scroll, or the view's settings), and its own messages are ignored."""
    with _following(browser, make_stack, "/checkout", "Checkout") as (_stack, visitor, vb):
        visitor.page.fill("#name", "Ana Private")
        expect(vb.frame_locator("#view").locator("#name")).to_have_value("Ana Private", timeout=TIMEOUT_MS)
        # the view answers a probe after whatever it did for the messages before it (postMessage
        # keeps the order between two windows), so the frame has everything by the answer
        vb.evaluate(
            """() => window.addEventListener("message", (ev) => {
                 if (ev.data && ev.data.probe) ev.source.postMessage({answer: 1}, "*");
               })"""
        )
        vb.evaluate("""() => { const f = document.getElementById("view");
                               f.removeAttribute("src"); f.srcdoc = "<p id=elsewhere>elsewhere</p>"; }""")
        foreign = vb.frame_locator("#view").locator("#elsewhere")
        expect(foreign).to_have_text("elsewhere", timeout=TIMEOUT_MS)
        inner = view_frame(vb)
        inner.evaluate(
            """(url) => {
                 window.__got = [];
                 window.addEventListener("message", (ev) => window.__got.push(ev.data));
                 parent.postMessage({cobrowse: 1, type: "ready", url: url}, "*");
                 parent.postMessage({cobrowse: 1, type: "agent-click-highlight", selector: "h1"}, "*");
                 parent.postMessage({probe: 1}, "*");
               }""",
            visitor.page.url,
        )
        inner.wait_for_function("window.__got.some((m) => m && m.answer)", timeout=TIMEOUT_MS)
        assert inner.evaluate("window.__got") == [{"answer": 1}]


def test_the_agent_typing_into_a_followed_page_changes_nothing_and_is_told_why(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The view's fields show the visitor's typing: the agent's keystrokes there would reach nobody.
    While following they change nothing and the status line says why; unticking Follow clears the
    line and the page is the agent's own."""
    with _following(browser, make_stack, "/checkout", "Checkout") as (_stack, visitor, vb):
        name = vb.frame_locator("#view").locator("#name")
        name.type("agent words")
        expect(vb.locator("#vb-status")).to_contain_text("Untick Follow", timeout=TIMEOUT_MS)
        expect(name).to_have_value("")
        visitor.page.fill("#name", "Visitor words")
        expect(name).to_have_value("Visitor words", timeout=TIMEOUT_MS)
        vb.uncheck("#follow")
        expect(vb.locator("#vb-status")).to_be_hidden()
        name.fill("")
        name.type("mine")
        expect(name).to_have_value("mine")


def test_a_frame_busting_page_cannot_take_the_virtual_browser_away(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """``if (top !== self) top.location = self.location``, common against clickjacking, replaced the
    agent's whole virtual browser with the proxied page (console and tools gone). The view's
    frame is sandboxed without top navigation: the browser refuses it and the view stays."""
    with _following(browser, make_stack, "/", "Products") as (_stack, _visitor, vb):
        refused: list[str] = []
        vb.on("console", lambda m: refused.append(m.text) if "allow-top-navigation" in m.text else None)
        # (after a click: without one the browser refuses a frame's top navigation anyway)
        view_frame(vb).evaluate(
            """() => { const b = document.createElement('button'); b.id = 'bust';
                       b.onclick = () => { top.location.href = location.href; };
                       b.textContent = 'bust'; document.body.prepend(b); }"""
        )
        vb.frame_locator("#view").locator("#bust").click()
        wait_until(lambda: refused or "/vb" not in vb.url, "the frame's top navigation refused or done")
        assert refused and "/vb" in vb.url
        expect(vb.locator("#follow")).to_be_visible()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products")
