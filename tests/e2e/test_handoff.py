"""A visitor stays the same visitor on the site's other allowed origins (a shop whose checkout is on
another host) and in a tab the page opens before the banner's first registration is through.

The site has two origins, both allowed: ``www`` (``http://127.0.0.1:P1``) and ``checkout``
(``http://localhost:P2``: another host, so another sessionStorage, and one the proxy resolves).
``http://localhost:P1`` is a third origin, not allowed (a page the test serves itself)."""

from __future__ import annotations

import contextlib
import html
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from cobrowse.demo_shop import ShopConfig
from tests.e2e.harness import (
    ShopServer,
    Stack,
    bound_socket,
    create_account,
    create_agent,
    serve_process,
    wait_until,
)
from tests.e2e.pages import TIMEOUT_MS, Agent, Frames, Visitor, open_console, view_frame

pytestmark = [pytest.mark.browser, pytest.mark.redis]

HANDOFF = "__cobrowse_handoff="
VISITOR_ID = (
    "() => { for (let i = 0; i < sessionStorage.length; i++) { const k = sessionStorage.key(i);"
    " if (k.startsWith('__cobrowse:')) return JSON.parse(sessionStorage.getItem(k)).visitor_id; } }"
)


def _site(banner: str, site_key: str, www: str, checkout: str, elsewhere: str) -> Starlette:
    tag = f'<script src="{html.escape(banner)}" data-site-key="{html.escape(site_key)}" async></script>'

    def page(title: str, body: str, head: str = "") -> HTMLResponse:
        return HTMLResponse(
            f"<!doctype html><html><head><title>{title}</title>{head}</head>"
            f"<body><h1>{title}</h1>{body}{tag}</body></html>"
        )

    async def home(request: Request) -> HTMLResponse:
        return page("Shop", f"""
<p><a id="to-checkout" href="{checkout}/checkout#summary">Checkout</a>
<a id="to-elsewhere" href="{elsewhere}/away#top">Elsewhere</a>
<a id="to-www" href="{www}/">Home</a></p>
<form id="pay-get" method="get" action="{checkout}/pay#receipt"><input name="card" value="4242">
<button id="pay-get-button">Pay by GET</button></form>
<form id="pay-post" method="post" action="{checkout}/pay#receipt"><input name="card" value="4242">
<button id="pay-post-button">Pay by POST</button></form>""")

    async def checkout_page(request: Request) -> HTMLResponse:
        # the page's own history state, set before the banner runs: it stays
        return page("Checkout", '<div style="height: 3000px"></div><p id="summary">Summary</p>'
                    '<div style="height: 3000px"></div>',
                    head="<script>history.replaceState({mine: 1}, '')</script>")

    async def pay(request: Request) -> HTMLResponse:
        return page("Paid", '<p id="receipt">Thank you</p>')

    return Starlette(routes=[
        Route("/", home),
        Route("/checkout", checkout_page),
        Route("/pay", pay, methods=["GET", "POST"]),
    ])


@contextlib.contextmanager
def _two_origin_stack(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    """serve + the site on two allowed origins + an agent: (stack, the checkout origin)."""
    www_sock, checkout_sock = bound_socket(), bound_socket()
    www = f"http://127.0.0.1:{www_sock.getsockname()[1]}"
    checkout = f"http://localhost:{checkout_sock.getsockname()[1]}"
    elsewhere = f"http://localhost:{www_sock.getsockname()[1]}"
    try:
        with contextlib.ExitStack() as exits:
            serve = exits.enter_context(serve_process(
                redis_url, tmp_path, (www, checkout), secrets.token_urlsafe(16), namespace
            ))
            account = create_account(serve, www, {"allowed_origins": [www, checkout]}, True)
            token = create_agent(serve, account["id"], "Alex")
            app = _site(serve.public_api_url + "/banner.js", account["site_key"], www, checkout, elsewhere)
            servers = [ShopServer(www_sock, ShopConfig(), app), ShopServer(checkout_sock, ShopConfig(), app)]
            for server in servers:
                server.start()
                exits.callback(server.stop)
            yield Stack(serve, servers[0], account, token, "Alex"), checkout
    finally:
        www_sock.close()
        checkout_sock.close()


@pytest.fixture
def two_origins(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    with _two_origin_stack(redis_url, namespace, tmp_path) as made:
        yield made


# A browser without the Navigation API (Firefox before 147, Safari before 26): links and forms are
# handed over by the banner's own click and submit listeners, not by the navigate event.
NO_NAVIGATION_API = "Object.defineProperty(window, 'navigation', {value: undefined, configurable: true})"


def _visitor(browser: Any, stack: Stack, navigation_api: bool = True) -> Visitor:
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    if not navigation_api:
        context.add_init_script(NO_NAVIGATION_API)
    page = context.new_page()
    frames = Frames()
    frames.attach(page)
    page.goto(stack.shop.origin + "/")
    expect(page.locator("[data-cobrowse=banner]")).to_be_attached(timeout=TIMEOUT_MS)
    return Visitor(context, page, frames)


def _in_session(browser: Any, stack: Stack, navigation_api: bool = True) -> tuple[Visitor, Agent, Page, str]:
    """The visitor on www has accepted the agent's request; the banner holds a handoff code."""
    visitor = _visitor(browser, stack, navigation_api)
    agent = open_console(browser, stack)
    vb = agent.request()
    with visitor.page.expect_response(
        lambda r: r.url.endswith("/api/v1/visitor/handoff") and r.request.method == "POST"
    ) as code:
        visitor.accept()
    assert code.value.status == 201
    expect(view_frame(vb).locator("h1")).to_have_text("Shop", timeout=TIMEOUT_MS)
    sid = vb.url.split("#session=")[1]
    return visitor, agent, vb, sid


def _moves_to_checkout(page: Page, go: Callable[[], None]) -> dict[str, Any]:
    """Do ``go``; the body of the banner's registration on the page it led to."""
    with page.expect_request(
        lambda r: r.url.endswith("/api/v1/visitors") and r.method == "POST", timeout=TIMEOUT_MS
    ) as registration:
        go()
    return dict(registration.value.post_data_json)


def _still_one_visitor_in_one_session(
    stack: Stack, visitor: Visitor, agent: Agent, vb: Page, sid: str, vid: str, url: str, heading: str
) -> None:
    expect(view_frame(vb).locator("h1")).to_have_text(heading, timeout=TIMEOUT_MS)
    expect(vb.locator("#vb-url")).to_have_text(url, timeout=TIMEOUT_MS)
    expect(visitor.page.get_by_text("Co-browsing with")).to_be_visible(timeout=TIMEOUT_MS)
    assert visitor.page.evaluate(VISITOR_ID) == vid
    expect(agent.page.locator("li.visitor")).to_have_count(1)
    expect(agent.page.locator(f'li.visitor[data-visitor-id="{vid}"]')).to_have_count(1)
    assert vb.url.endswith("#session=" + sid)
    expect(vb.locator("#ended")).to_be_hidden()
    with stack.agent() as c:
        session = c.get(f"/sessions/{sid}").json()
    assert (session["state"], session["visitor_id"]) == ("active", vid)


@pytest.mark.parametrize("how", ["link", "link-no-navigation-api", "script"])
def test_the_visitor_follows_a_link_to_the_checkout_origin_and_stays_the_same_visitor(
    browser: Any, two_origins: tuple[Stack, str], how: str
) -> None:
    stack, checkout = two_origins
    visitor, agent, vb, sid = _in_session(browser, stack, navigation_api=how != "link-no-navigation-api")
    page = visitor.page
    try:
        vid = page.evaluate(VISITOR_ID)
        if how.startswith("link"):
            page.hover("#to-checkout")
            go = lambda: page.click("#to-checkout")  # noqa: E731
        else:  # a script's navigation: the Navigation API's navigate event
            go = lambda: page.evaluate(  # noqa: E731
                "url => setTimeout(() => { location.href = url; }, 0)", checkout + "/checkout#summary"
            )
        sent = _moves_to_checkout(page, go)
        assert sent.get("handoff")
        expect(page.locator("h1")).to_have_text("Checkout", timeout=TIMEOUT_MS)
        # the code is gone from the address bar at once; the page's fragment and state are kept
        expect(page).to_have_url(checkout + "/checkout#summary", timeout=TIMEOUT_MS)
        assert page.evaluate("() => history.state") == {"mine": 1}
        page.wait_for_function("() => window.scrollY > 1000", timeout=TIMEOUT_MS)  # at #summary
        _still_one_visitor_in_one_session(
            stack, visitor, agent, vb, sid, vid, checkout + "/checkout#summary", "Checkout"
        )
    finally:
        agent.context.close()
        visitor.context.close()


@pytest.mark.parametrize("method", ["get", "post"])
def test_the_visitor_submits_a_form_to_the_checkout_origin_and_stays_the_same_visitor(
    browser: Any, two_origins: tuple[Stack, str], method: str
) -> None:
    stack, checkout = two_origins
    visitor, agent, vb, sid = _in_session(browser, stack, navigation_api=False)
    page = visitor.page
    try:
        vid = page.evaluate(VISITOR_ID)
        sent = _moves_to_checkout(page, lambda: page.click(f"#pay-{method}-button"))
        assert sent.get("handoff")
        expect(page.locator("h1")).to_have_text("Paid", timeout=TIMEOUT_MS)
        url = checkout + ("/pay?card=4242#receipt" if method == "get" else "/pay#receipt")
        expect(page).to_have_url(url, timeout=TIMEOUT_MS)
        _still_one_visitor_in_one_session(stack, visitor, agent, vb, sid, vid, url, "Paid")
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_navigation_to_an_origin_the_account_does_not_allow_carries_no_code(
    browser: Any, two_origins: tuple[Stack, str]
) -> None:
    stack, _ = two_origins
    visitor, agent, _vb, _sid = _in_session(browser, stack)  # a code is ready
    page = visitor.page
    elsewhere = "http://localhost:" + stack.shop.origin.rsplit(":", 1)[1]
    try:
        # a page without the banner: nothing would take a code out of its address bar
        page.route(elsewhere + "/**", lambda route: route.fulfill(
            body="<!doctype html><title>Away</title><h1>Away</h1>", content_type="text/html"))
        page.hover("#to-elsewhere")
        page.click("#to-elsewhere")
        expect(page.locator("h1")).to_have_text("Away", timeout=TIMEOUT_MS)
        assert page.url == elsewhere + "/away#top"
        assert HANDOFF not in page.url
    finally:
        agent.context.close()
        visitor.context.close()


def test_a_tab_the_page_opens_before_the_first_registration_is_through_is_the_same_visitor(
    browser: Any, two_origins: tuple[Stack, str]
) -> None:
    stack, _ = two_origins
    context = browser.new_context(viewport={"width": 1100, "height": 700})
    held: list[Any] = []

    def hold(route: Any) -> None:  # the registrations wait until the test lets them go
        if route.request.method == "POST":
            held.append(route)
        else:
            route.continue_()

    context.route("**/api/v1/visitors", hold)
    agent = open_console(browser, stack)
    try:
        page = context.new_page()
        page.goto(stack.shop.origin + "/")
        wait_until(lambda: len(held) == 1, "the first registration", page=page)
        with page.expect_popup() as popup:
            page.evaluate("() => { window.open(location.href, 'second'); }")
        second = popup.value
        wait_until(lambda: len(held) == 2, "the second tab's registration", page=second)
        for route in held:
            route.continue_()
        for tab in (page, second):
            tab.wait_for_function(VISITOR_ID, timeout=TIMEOUT_MS)
        assert page.evaluate(VISITOR_ID) == second.evaluate(VISITOR_ID)
        expect(agent.page.locator(f'li.visitor[data-visitor-id="{page.evaluate(VISITOR_ID)}"]')).to_be_visible(
            timeout=TIMEOUT_MS)
        expect(agent.page.locator("li.visitor")).to_have_count(1)
    finally:
        agent.context.close()
        context.close()
