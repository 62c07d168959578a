"""The virtual browser's tools, end to end: highlight, draw, clear, navigate the visitor, follow
off/on, the visitor's viewport, and an administrator ending the session."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.harness import Stack, wait_until, ws_closes
from tests.e2e.pages import TIMEOUT_MS, open_console, open_visitor, view_frame

pytestmark = [pytest.mark.browser, pytest.mark.redis, pytest.mark.long]


def stroke(vb: Any, layer: dict[str, float]) -> None:
    """The agent draws one short stroke on the virtual browser's ink layer (draw mode on)."""
    vb.mouse.move(layer["x"] + 100, layer["y"] + 100)
    vb.mouse.down()
    vb.mouse.move(layer["x"] + 160, layer["y"] + 130)
    vb.mouse.up()


def test_tools_navigation_follow_and_admin_end(browser: Any, make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(policy={"consent": "none", "agent_can_navigate": True})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        frame = vb.frame_locator("#view")
        expect(frame.locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        # the proxied page is laid out at the visitor's viewport size
        expect(vb.locator("#vb-size")).to_contain_text("1100\u00d7700")
        assert view_frame(vb).evaluate("[innerWidth, innerHeight]") == [1100, 700]

        # highlight: the agent clicks an element; the visitor sees it outlined, nothing navigates
        # (follow off meanwhile, so that no scroll from the visitor moves the page under the click)
        vb.uncheck("#follow")
        vb.click("#tool-highlight")
        expect(vb.locator("#tool-highlight")).to_have_attribute("aria-pressed", "true")
        frame.locator("#p-green-plant .price").click()
        expected = view_frame(vb).evaluate(
            "window.__cobrowse.cssPath(document.querySelector('#p-green-plant .price'))"
        )
        box = visitor.page.locator("[data-cobrowse-highlight]")
        expect(box).to_have_attribute("data-cobrowse-highlight", expected, timeout=TIMEOUT_MS)
        price = visitor.page.locator("#p-green-plant .price")
        assert price.evaluate("(e, sel) => document.querySelector(sel) === e", expected)
        expect(frame.locator("h1")).to_have_text("Products")
        vb.check("#follow")

        # draw: a stroke over the page appears on the visitor's overlay
        vb.click("#tool-draw")
        layer = vb.locator("#draw-layer").bounding_box()
        assert layer is not None
        vb.mouse.move(layer["x"] + 100, layer["y"] + 100)
        vb.mouse.down()
        for step in range(1, 8):
            vb.mouse.move(layer["x"] + 100 + 20 * step, layer["y"] + 100 + 10 * step)
        vb.mouse.up()
        expect(visitor.page.locator("[data-cobrowse-overlay] polyline")).to_have_count(1, timeout=TIMEOUT_MS)

        # clear removes both
        vb.click("#clear")
        expect(visitor.page.locator("[data-cobrowse-overlay] polyline")).to_have_count(0, timeout=TIMEOUT_MS)
        expect(box).to_have_count(0)

        # navigate the visitor (the policy allows it); the view follows, and the agent's stroke
        # over the page before goes with it (it pointed at whatever the next page has there)
        stroke(vb, layer)
        expect(vb.locator("#draw-layer polyline")).to_have_count(1)
        def send_visitor(typed: str, path: str) -> None:
            """Navigate the visitor; return once the page there has connected (a navigate sent
            between two pages reaches neither: noted on the issue)."""
            def hellos() -> int:
                return len([m for m in visitor.frames.messages() if m.get("type") == "hello"])

            before = hellos()
            vb.fill("#navigate-url", typed)
            vb.click("#navigate-form button[type=submit]")
            expect(visitor.page).to_have_url(stack.shop.origin + path, timeout=TIMEOUT_MS)
            wait_until(lambda: hellos() > before, "the visitor's page there connected", 15, page=visitor.page)

        send_visitor(stack.shop.origin + "/cart", "/cart")
        expect(frame.locator("h1")).to_have_text("Cart", timeout=TIMEOUT_MS)
        expect(vb.locator("#draw-layer polyline")).to_have_count(0)
        # a path is taken on the visitor's page (the field took only a whole URL: "Please enter a URL")
        send_visitor("/search", "/search")
        # an address typed without its scheme is one (it was taken for a path: /127.0.0.1:PORT/cart)
        vb.evaluate(  # the pages the view says are ready (its own listener hears each first)
            "() => { window.__ready = []; addEventListener('message', e => { if (e.data"
            " && e.data.type === 'ready') window.__ready.push(e.data.url); }); }"
        )
        send_visitor(stack.shop.origin.removeprefix("http://") + "/help", "/help")
        # (the view there and its page ready, which clears the status line: under load that came
        # after the words below)
        vb.wait_for_function("() => window.__ready.some((u) => u.endsWith('/help'))", timeout=TIMEOUT_MS)
        # what cannot be sent says so, in words (a script URL was dropped without a word)
        vb.fill("#navigate-url", "javascript:alert(1)")
        vb.click("#navigate-form button[type=submit]")
        expect(vb.locator("#vb-status")).to_have_text(
            "Not sent: only web addresses (http or https) can be sent to the visitor."
        )
        vb.fill("#navigate-url", "https://elsewhere.example/")
        vb.click("#navigate-form button[type=submit]")
        expect(vb.locator("#vb-status")).to_have_text(
            "Not sent: that address is outside the sites this account co-browses.", timeout=TIMEOUT_MS
        )
        expect(visitor.page).to_have_url(stack.shop.origin + "/help")
        send_visitor(stack.shop.origin + "/cart", "/cart")
        expect(frame.locator("h1")).to_have_text("Cart", timeout=TIMEOUT_MS)

        # follow off: the agent's view stays while the visitor moves on; on again: it catches up
        vb.uncheck("#follow")
        visitor.page.click("header >> text=Search")
        expect(vb.locator("#vb-url")).to_have_text(stack.shop.origin + "/search", timeout=TIMEOUT_MS)
        expect(frame.locator("h1")).to_have_text("Cart")
        # a stroke over the cart would land on the search page: it stays in the view, and says why
        drawn = len([m for m in visitor.frames.messages() if m.get("type") == "draw"])
        stroke(vb, layer)
        expect(vb.locator("#vb-status")).to_contain_text("Your view shows another page than the visitor's")
        expect(vb.locator("#draw-layer polyline")).to_have_count(1)
        vb.click("#clear")  # relayed after the stroke would have been: when it is there, all is
        visitor.frames.wait_for(visitor.page, '"clear"')
        assert len([m for m in visitor.frames.messages() if m.get("type") == "draw"]) == drawn
        # on again, the view catches up. A page shows before it is ready (its deferred script is
        # held here): a stroke drawn over it then stays when it is ready (it went at "ready"; CI
        # saw it vanish), and a stroke over the page before goes when that page goes.
        stroke(vb, layer)
        expect(vb.locator("#draw-layer polyline")).to_have_count(1)
        held: list[Any] = []
        script = re.compile(r"\.cobrowse\.localhost:\d+/static/search\.js$")
        agent.context.route(script, lambda route: held.append(route))
        vb.check("#follow")
        expect(frame.locator("h1")).to_have_text("Search", timeout=TIMEOUT_MS)
        wait_until(lambda: len(held) == 1, "the page's deferred script requested", 15, page=vb)
        expect(vb.locator("#draw-layer polyline")).to_have_count(0)
        stroke(vb, layer)  # a stroke still on the agent's ink layer when the session ends (below)
        expect(vb.locator("#draw-layer polyline")).to_have_count(1)
        # a refusal said while the page loads is still said when it is ready (its "ready" cleared
        # the status line: CI saw the refusal vanish)
        vb.fill("#navigate-url", "javascript:alert(1)")
        vb.click("#navigate-form button[type=submit]")
        not_sent = "Not sent: only web addresses (http or https) can be sent to the visitor."
        expect(vb.locator("#vb-status")).to_have_text(not_sent)
        # the view's own listener was added first: it has handled "ready" when this one sees it
        vb.evaluate("window.__ready = false; addEventListener('message', e => {"
                    " if (e.data && e.data.type === 'ready') window.__ready = true; })")
        held[0].continue_()
        agent.context.unroute(script)
        vb.wait_for_function("() => window.__ready", timeout=TIMEOUT_MS)  # a function: the view has no eval
        expect(vb.locator("#draw-layer polyline")).to_have_count(1)
        expect(vb.locator("#vb-status")).to_have_text(not_sent)

        # an administrator ends the session: both sides are told
        sid = vb.url.rsplit("=", 1)[1]
        with stack.serve.admin() as c:
            c.post(f"/sessions/{sid}/end").raise_for_status()
        expect(vb.locator("#ended-reason")).to_have_text(
            "An administrator ended the session.", timeout=TIMEOUT_MS
        )
        expect(vb.locator("#end")).to_be_disabled()
        expect(vb).to_have_title("Session ended - cobrowse virtual browser")  # not the page's any more
        # nothing of the agent's tools stays over the card
        expect(vb.locator("#draw-layer")).to_be_hidden()
        expect(vb.locator("#draw-layer polyline")).to_have_count(0)
        expect(vb.locator("#pointer-echo")).to_be_hidden()
        expect(visitor.page.get_by_text(f"Co-browsing with {stack.agent_name}")).to_be_hidden()
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_agents_ink_stays_on_the_page_as_it_scrolls(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """The agent circles something and the visitor scrolls: in the agent's view the stroke moves
    with the page, as it does on the visitor's (it stayed where it was drawn, over whatever
    scrolled under it)."""
    stack = make_stack(policy={"consent": "none"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        expect(vb.locator("#vb-size")).to_contain_text("1100\u00d7700")
        vb.click("#tool-draw")
        layer = vb.locator("#draw-layer").bounding_box()
        assert layer is not None
        scale = layer["width"] / 1100  # the view is scaled to fit the window
        stroke(vb, layer)
        theirs = visitor.page.locator("[data-cobrowse-overlay] polyline")
        expect(theirs).to_have_count(1, timeout=TIMEOUT_MS)
        mine = vb.locator("#draw-layer polyline")
        # another tool: the stroke stays on both sides (it vanished from the agent's view only)
        vb.click("#tool-pointer")
        expect(mine).to_be_visible()
        expect(theirs).to_have_count(1)

        def top(locator: Any) -> float:
            box = locator.bounding_box()
            assert box is not None
            return float(box["y"])

        view = view_frame(vb)
        mine_before, theirs_before, at_before = top(mine), top(theirs), view.evaluate("scrollY")
        visitor.page.evaluate("scrollBy(0, 300)")
        view.wait_for_function("scrollY > 200", timeout=TIMEOUT_MS)  # the view follows
        moved = lambda: view.evaluate("scrollY") - at_before  # noqa: E731
        wait_until(lambda: abs(top(mine) - (mine_before - moved() * scale)) < 2,
                   lambda: f"the agent's stroke at {top(mine)} (drawn at {mine_before}; moved {moved()})",
                   TIMEOUT_MS / 1000, page=vb)
        assert abs(top(theirs) - (theirs_before - 300)) < 2

        # follow off, the agent draws again: the visitor's stroke is where the agent's is, over
        # the same part of the page (it went 300 px too high: the scroll added was stale)
        vb.uncheck("#follow")
        vb.click("#tool-draw")
        stroke(vb, layer)
        expect(theirs).to_have_count(2, timeout=TIMEOUT_MS)
        expect(mine).to_have_count(2)
        in_view = (top(mine.nth(1)) - layer["y"]) / scale
        assert abs(top(theirs.nth(1)) - in_view) < 3, (top(theirs.nth(1)), in_view)
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_agents_strokes_and_highlight_go_on_both_sides_when_the_app_routes_elsewhere(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """An app routes with pushState (the tour's steps): the agent's view dropped the strokes, the
    visitor kept them over the next step's content (and a highlight too)."""
    stack = make_stack(policy={"consent": "none"})
    visitor = open_visitor(browser, stack, "/tour")
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        frame = vb.frame_locator("#view")
        expect(frame.locator("#step-title")).to_have_text("Step 1: pick a product", timeout=TIMEOUT_MS)
        vb.uncheck("#follow")  # (no scroll of the visitor's moves the page under the click)
        vb.click("#tool-highlight")
        frame.locator("#step-title").click()
        theirs_box = visitor.page.locator("[data-cobrowse-highlight]")
        expect(theirs_box).to_have_count(1, timeout=TIMEOUT_MS)
        vb.check("#follow")
        vb.click("#tool-draw")
        layer = vb.locator("#draw-layer").bounding_box()
        assert layer is not None
        stroke(vb, layer)
        theirs = visitor.page.locator("[data-cobrowse-overlay] polyline")
        mine = vb.locator("#draw-layer polyline")
        expect(theirs).to_have_count(1, timeout=TIMEOUT_MS)
        expect(mine).to_have_count(1)

        visitor.page.click("#steps >> text=Step 2")
        expect(frame.locator("#step-title")).to_have_text("Step 2: fill the cart", timeout=TIMEOUT_MS)
        expect(mine).to_have_count(0)
        expect(theirs).to_have_count(0)
        expect(theirs_box).to_have_count(0)
        # on the new route, the agent marks it again: one stroke on each side
        stroke(vb, layer)
        expect(theirs).to_have_count(1, timeout=TIMEOUT_MS)
        expect(mine).to_have_count(1)
        visitor.page.evaluate("location.hash = 'more'")  # a #fragment is the same route: kept
        expect(vb.locator("#vb-url")).to_have_text(stack.shop.origin + "/tour/2#more", timeout=TIMEOUT_MS)
        expect(theirs).to_have_count(1)
        expect(mine).to_have_count(1)
    finally:
        agent.context.close()
        visitor.context.close()


def test_an_address_sent_while_the_visitor_changes_pages_goes_to_the_next_page(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """Between two of the visitor's pages no page of theirs listens: a navigate sent then reached
    none (the agent pressed Go and nothing happened). It waits for the next page now."""
    stack = make_stack(policy={"consent": "none", "agent_can_navigate": True})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    held: list[Any] = []
    banner = re.compile(r"/banner\.js(\?|$)")
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        visitor.context.route(banner, lambda route: held.append(route))  # the next page waits
        visitor.page.click("header >> text=Search")
        expect(vb.locator("body")).to_have_attribute("data-visitor-online", "false", timeout=TIMEOUT_MS)
        vb.fill("#navigate-url", "/help")
        vb.click("#navigate-form button[type=submit]")
        expect(vb.locator("#vb-status")).to_have_text(
            "The visitor's page is changing: the address goes to the next one as it connects."
        )
        wait_until(lambda: held, "the next page asking for the banner", 15, page=visitor.page)
        held[0].continue_()
        visitor.context.unroute(banner)
        expect(visitor.page).to_have_url(stack.shop.origin + "/help", timeout=TIMEOUT_MS)
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Help", timeout=TIMEOUT_MS)
    finally:
        agent.context.close()
        visitor.context.close()


def test_at_an_operators_lower_rate_the_agents_pointer_keeps_under_it(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """An operator runs the API with ws_rate_per_s 10: the agent's hello says so, and the virtual
    browser sends the pointer at most 8 times a second (the runtime posts it up to 30 times: the
    agent's socket was closed, 4429, as the agent pointed for a few seconds). The newest position
    is the one that arrives."""
    stack = make_stack(policy={"consent": "none"}, extra=("--ws-rate-per-s", "10"))
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        vb.click("#tool-pointer")
        vb.evaluate(  # what the runtime posts to the view
            "() => { window.__posts = []; addEventListener('message', e => { if (e.data"
            " && e.data.type === 'agent-pointer') window.__posts.push([e.data.x, e.data.y]); }); }"
        )
        sockets: list[Any] = []
        vb.on("websocket", lambda ws: sockets.append(ws) if "/agent/ws" in ws.url else None)
        box = vb.locator("#view").bounding_box()
        assert box is not None
        start, t0, i = len(agent.frames.texts), time.monotonic(), 0
        while time.monotonic() < t0 + 3:
            i += 1
            vb.mouse.move(box["x"] + 100 + i % 400, box["y"] + 100 + i % 300)
        vb.evaluate("0")  # lets Playwright deliver the page's frames
        pointers = [t for t in agent.frames.texts[start:] if '"type":"pointer"' in t]
        seconds = time.monotonic() - t0
        wait_until(lambda: vb.evaluate("window.__posts.length") > 0, "the runtime's pointer posts", page=vb)
        x, y = vb.evaluate("window.__posts[window.__posts.length - 1]")

        def sent_last() -> bool:
            sent = [json.loads(t) for t in agent.frames.texts if '"type":"pointer"' in t]
            return bool(sent) and (sent[-1]["x"], sent[-1]["y"]) == (x, y)

        wait_until(sent_last, "the newest position sent", page=vb)
        wait_until(  # ... and reaches the visitor
            lambda: any(m.get("type") == "pointer" and (m.get("x"), m.get("y")) == (x, y)
                        for m in visitor.frames.messages()),
            "the newest position at the visitor's page", page=visitor.page,
        )
        vb.evaluate("0")
        closes = ws_closes(stack.serve, "agent")
        assert sockets == [] and "4429" not in closes, f"an agent's socket was closed: {closes}"
        # 8 a second, after a full budget of 8 at the start (without the budget: about 30 a second)
        assert 8 <= len(pointers) <= 8 + 8 * seconds + 2, (len(pointers), seconds)
    finally:
        agent.context.close()
        visitor.context.close()


def test_navigate_is_hidden_and_refused_without_the_policy(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(policy={"consent": "none"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        expect(vb.locator("#navigate-form")).to_be_hidden()
        # even a hand-made message is refused by the API and never reaches the visitor
        sid = vb.url.rsplit("=", 1)[1]
        error = vb.evaluate(
            """([sid, url]) => new Promise((resolve) => {
                const ws = new WebSocket(location.origin.replace('http', 'ws') + '/api/v1/agent/ws');
                const token = sessionStorage.getItem('cobrowse.agentToken');
                ws.onopen = () => ws.send(JSON.stringify({type: 'auth', token}));
                ws.onmessage = (e) => {
                    const m = JSON.parse(e.data);
                    if (m.type === 'hello') ws.send(JSON.stringify({type: 'navigate', session_id: sid, url}));
                    if (m.type === 'error') { resolve(m.error); ws.close(); }
                };
            })""",
            [sid, stack.shop.origin + "/cart"],
        )
        assert error == "navigate_forbidden"
        expect(visitor.page).to_have_url(stack.shop.origin + "/")
        assert not [t for t in visitor.frames.texts if '"navigate"' in t]
    finally:
        agent.context.close()
        visitor.context.close()


@pytest.mark.parametrize("seed", [True, False])
def test_seed_cookies_hand_the_visitors_cart_to_the_session(
    browser: Any, make_stack: Callable[..., Stack], seed: bool
) -> None:
    stack = make_stack(policy={"seed_cookies": seed})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        visitor.page.click("#p-red-mug button")
        expect(visitor.page.locator("#total")).to_have_text("$12.00")
        # the cart is a new page: its banner connects anew, and a request made before that finds
        # the visitor offline (409); the console's button may not have caught up yet
        def on_the_cart() -> bool:
            with stack.agent() as c:
                listed = c.get("/visitors").json()["visitors"]
            return any(v["online"] and (v["url"] or "").endswith("/cart") for v in listed)

        wait_until(on_the_cart, "the visitor online on the cart page")
        vb = agent.request()
        visitor.accept()
        frame = vb.frame_locator("#view")
        expect(frame.locator("h1")).to_have_text("Cart", timeout=TIMEOUT_MS)
        # the cart cookie (not HttpOnly) reached the session's jar only when the policy says so
        expect(frame.locator("#total")).to_have_text("$12.00" if seed else "$0.00")
    finally:
        agent.context.close()
        visitor.context.close()


def test_banner_and_runtime_compute_the_same_css_paths(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """docs/PROTOCOL.md "cssPath": the visitor's banner and the agent's runtime must agree, or scroll
    anchors, highlights and field values land on the wrong element."""
    stack = make_stack(policy={"consent": "none"})
    visitor = open_visitor(browser, stack, "/checkout")
    agent = open_console(browser, stack)
    collect = """(fn) => Array.from(document.querySelectorAll('body *'))
        .filter((e) => !e.closest('[data-cobrowse], [data-cobrowse-ui]'))
        .map((e) => window[fn].cssPath(e))"""
    try:
        vb = agent.request()
        for path, heading in (("/checkout", "Checkout"), ("/", "Products"), ("/tour", "Tour")):
            if path != "/checkout":
                visitor.page.goto(stack.shop.origin + path)
            expect(vb.frame_locator("#view").locator("h1")).to_have_text(heading, timeout=TIMEOUT_MS)
            visitor_paths = visitor.page.evaluate(collect, "__cobrowseBanner")
            agent_paths = view_frame(vb).evaluate(collect, "__cobrowse")
            assert len(visitor_paths) > 10
            assert visitor_paths == agent_paths
    finally:
        agent.context.close()
        visitor.context.close()


def test_the_agent_using_the_view_with_follow_off_is_session_activity(
    browser: Any, make_stack: Callable[..., Stack]
) -> None:
    """With Follow off the agent may use the site while the visitor reads, and no relayed
    message counted that: the session ended idle under an agent at work. A click in the page
    reaches the view as the runtime's `agent-input`, and the view tells the API (`active`),
    which reaches nobody."""
    stack = make_stack(policy={"consent": "none"})
    visitor = open_visitor(browser, stack)
    agent = open_console(browser, stack)
    try:
        vb = agent.request()
        frame = vb.frame_locator("#view")
        expect(frame.locator("h1")).to_have_text("Products", timeout=TIMEOUT_MS)
        vb.evaluate("() => document.getElementById('follow').click()")  # off (no input of the agent's)
        expect(vb.locator("#follow")).not_to_be_checked()
        vb.evaluate(  # what the runtime posts to the view
            "() => { window.__inputs = 0; addEventListener('message', e => { if (e.data"
            " && e.data.type === 'agent-input') window.__inputs++; }); }"
        )
        frame.locator("h1").click()  # text, not a link: the page stays
        vb.wait_for_function("() => window.__inputs > 0", timeout=TIMEOUT_MS)
        agent.frames.wait_for(vb, '"type":"active"')
        # a relayed message after it arrives first at the visitor: `active` went to no one
        def cleared() -> list[dict[str, Any]]:
            return [m for m in visitor.frames.messages() if m.get("type") == "clear"]

        before = len(cleared())
        vb.click("#clear")
        wait_until(lambda: len(cleared()) > before, "the agent's clear at the visitor", page=visitor.page)
        assert not [m for m in visitor.frames.messages() if m.get("type") == "active"]
        sent = [m for m in agent.frames.messages() if m.get("type") == "active"]
        assert {m.get("session_id") for m in sent} == {cleared()[-1]["session_id"]}, sent
        expect(vb.locator("#ended")).to_be_hidden()
    finally:
        agent.context.close()
        visitor.context.close()
