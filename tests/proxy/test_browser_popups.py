"""Pop-ups a page opens on no URL and navigates later (payment and sign-in windows): they load
through the proxy, never from the upstream directly, in the agent's browser."""

from __future__ import annotations

from typing import Any

import pytest

from tests.proxy.browser_util import escaped
from tests.proxy.conftest import DOMAIN, Harness, Sites

pytestmark = pytest.mark.browser

# each opens a window on no URL in one task and sends it to the upstream URL `u` in a later one
LATER = {
    "location": "const w = window.open('', '_blank'); await fetch('/about'); w.location = u;",
    "href": "const w = window.open('', '_blank'); await fetch('/about'); w.location.href = u;",
    "assign": "const w = window.open('about:blank', 'pay'); await fetch('/about'); w.location.assign(u);",
    "replace": "const w = document.open('', '_blank', ''); await fetch('/about'); w.location.replace(u);",
    # in the task its new document arrives in: the runtime is there before (from its opener)
    "at once": (
        "const w = window.open('', '_blank'); const d = w.document; await new Promise((ok) => {"
        " const t = setInterval(() => { if (w.document !== d) { clearInterval(t); ok(); } }, 0); });"
        " w.location = u;"
    ),
    "written later": (
        "const w = window.open('', '_blank'); await fetch('/about');"
        " w.document.write('<p>Redirecting</p>'); w.document.close(); w.location = u;"
    ),
}


def _run(page: Any, script: str, arg: Any) -> None:
    page.evaluate("async (u) => { " + script + " }", arg)


def _opened(browser: Any, harness: Harness, sites: Sites) -> tuple[Any, Any, Any, list[str]]:
    s = harness.open_session((sites.shop.origin,))
    context = browser.new_context()
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    page.goto(harness.enter_url(s, sites.shop.origin + "/about"))
    page.wait_for_url(harness.url(s, sites.shop.origin + "/about"))
    return s, context, page, seen


@pytest.mark.parametrize("script", LATER.values(), ids=LATER.keys())
def test_a_blank_pop_up_sent_upstream_later_loads_through_the_proxy(
    browser: Any, harness: Harness, sites: Sites, script: str
) -> None:
    s, context, page, seen = _opened(browser, harness, sites)
    try:
        target = sites.shop.origin + "/echo-headers?pay=1"
        with context.expect_page(timeout=15000) as popup_info:
            _run(page, script, target)
        popup = popup_info.value
        popup.wait_for_url(harness.url(s, target), timeout=15000)
        assert '"host"' in popup.inner_text("body")  # the page itself, as the proxy served it
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


# a window the page fills at once keeps what it put there
FILLED = {
    "write": (
        "const w = window.open('', '_blank'); w.document.write('<p id=x>written</p>');"
        " w.document.close();"
    ),
    "dom": (
        "const w = window.open('', '_blank'); const p = w.document.createElement('p'); p.id = 'x';"
        " p.textContent = 'written'; w.document.body.append(p);"
    ),
}


@pytest.mark.parametrize("script", FILLED.values(), ids=FILLED.keys())
def test_a_pop_up_the_page_fills_at_once_keeps_its_content(
    browser: Any, harness: Harness, sites: Sites, script: str
) -> None:
    _s, context, page, _seen = _opened(browser, harness, sites)
    try:
        with context.expect_page(timeout=15000) as popup_info:
            _run(page, script + " window.__w = w;", None)
        popup = popup_info.value
        # a later task: the move to an empty document would have happened by then
        page.evaluate("new Promise((ok) => setTimeout(ok, 0))")
        page.evaluate("fetch('/about').then((r) => r.text())")
        assert page.evaluate("window.__w.document.getElementById('x').textContent") == "written"
        assert popup.evaluate("document.getElementById('x').textContent") == "written"
    finally:
        context.close()


def test_an_adopted_pop_up_keeps_no_runtime_tag(browser: Any, harness: Harness, sites: Sites) -> None:
    """The empty document's own copy of the runtime (its fallback) arrives after the opener's
    runtime adopted it: its tag, which carries the config and the cookies, leaves the DOM."""
    _s, context, page, _seen = _opened(browser, harness, sites)
    try:
        with context.expect_page(timeout=15000) as popup_info:
            page.evaluate("() => { window.__w = window.open('', '_blank'); }")
        popup = popup_info.value
        page.wait_for_function("window.__w.document.scripts.length === 0", timeout=15000)
        assert page.evaluate("window.__w.__cobrowse !== undefined")
        assert popup.evaluate("document.querySelector('[data-cobrowse-config]')") is None
    finally:
        context.close()


def test_a_pop_up_whose_opener_is_cut_loads_its_own_runtime(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """``w.opener = null`` (so the new page cannot reach back): the empty document cannot ask
    its opener for the runtime and loads its own copy from the proxy."""
    s, context, page, seen = _opened(browser, harness, sites)
    try:
        with context.expect_page(timeout=15000) as popup_info:
            page.evaluate("() => { const w = window.open('', '_blank'); w.opener = null; window.__w = w; }")
        popup = popup_info.value
        page.wait_for_function("window.__w.__cobrowse !== undefined", timeout=15000)
        target = sites.shop.origin + "/echo-headers?pay=2"
        page.evaluate("(u) => { window.__w.location = u; }", target)
        popup.wait_for_url(harness.url(s, target), timeout=15000)
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


# a frame no runtime reaches (its document comes from a data:, blob: or javascript: URL), made by
# a script, opens a pop-up to the upstream URL `u` and tells its parent what it got
_CHILD = "'<script>parent.postMessage(String(window.open(' + JSON.stringify(u) + ')), \"*\")<\\/script>'"
UNREACHED = {
    "data src": f"f.src = 'data:text/html,' + encodeURIComponent({_CHILD}); document.body.append(f);",
    "blob src": (
        f"f.src = URL.createObjectURL(new Blob([{_CHILD}], {{type: 'text/html'}}));"
        " document.body.append(f);"
    ),
    "javascript src": f"f.src = 'javascript:' + JSON.stringify({_CHILD}); document.body.append(f);",
    "src set once in": (
        "document.body.append(f);"
        f" f.setAttribute('src', 'data:text/html,' + encodeURIComponent({_CHILD}));"
    ),
    "own sandbox": (
        f"f.sandbox = 'allow-scripts allow-popups'; f.src = 'data:text/html,' + encodeURIComponent({_CHILD});"
        " document.body.append(f);"
    ),
    "markup": (
        "document.body.insertAdjacentHTML('beforeend', '<iframe src=\"data:text/html,' +"
        f" encodeURIComponent({_CHILD}) + '\"></iframe>');"
    ),
}


@pytest.mark.parametrize("script", UNREACHED.values(), ids=UNREACHED.keys())
def test_a_frame_no_runtime_reaches_opens_no_pop_up(
    browser: Any, harness: Harness, sites: Sites, script: str
) -> None:
    s, context, page, seen = _opened(browser, harness, sites)
    try:
        page.evaluate(
            "(u) => { window.__said = []; addEventListener('message', (e) => __said.push(e.data));"
            " const f = document.createElement('iframe'); " + script + " }",
            sites.shop.origin + "/echo-headers?from=frame",
        )
        page.wait_for_function("window.__said.length > 0", timeout=15000)
        assert page.evaluate("window.__said") == ["null"]  # window.open refused in the frame
        assert len(context.pages) == 1
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_a_data_frame_in_the_page_opens_no_pop_up(browser: Any, harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    context = browser.new_context()
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    try:
        page = context.new_page()
        page.goto(harness.enter_url(s, sites.shop.origin + "/data-frame-popup"))
        page.wait_for_function("window.__said && window.__said.length > 0", timeout=15000)
        assert page.evaluate("window.__said") == ["null"]
        assert len(context.pages) == 1
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_adopt_does_nothing_for_a_window_the_runtime_did_not_move(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """``__cobrowse.adopt`` is on every page: called on anything else than the empty document of a
    pop-up the runtime moved, it does nothing and throws nothing."""
    _s, context, page, _seen = _opened(browser, harness, sites)
    try:
        got = page.evaluate(
            "() => { const f = document.createElement('iframe'); document.body.append(f);"
            " const w = window.open('/about', '_blank');"
            " return [window, f.contentWindow, w, {}, null, 'x', new Proxy({}, {})]"
            ".map((x) => window.__cobrowse.adopt(x)); }"
        )
        assert got == [False] * 7
    finally:
        context.close()


def test_a_pop_up_the_page_fills_and_sends_on_at_once_goes_where_the_page_sent_it(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A change to the new window's DOM stops the runtime's move, never the page's own
    navigation started in the same task."""
    s, context, page, seen = _opened(browser, harness, sites)
    try:
        with context.expect_page(timeout=15000) as popup_info:
            page.evaluate("() => { const w = window.open('', '_blank'); w.document.title = 'Report';"
                          " w.location = '/echo-headers?report=1'; }")
        popup = popup_info.value
        popup.wait_for_url(harness.url(s, sites.shop.origin + "/echo-headers?report=1"), timeout=15000)
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_a_pop_up_written_through_its_first_document_after_a_wait_shows_what_was_written(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A print or report window that loads its data first keeps ``w.document`` and writes into it
    later: by then the runtime had moved the pop-up to a document of its own, the writes went
    into the replaced one, and the agent's pop-up stayed empty. They reach the pop-up's document."""
    _s, context, page, _seen = _opened(browser, harness, sites)
    try:
        with context.expect_page(timeout=15000) as popup_info:
            _run(page, "const w = window.open('', '_blank'); window.__w = w; window.__d = w.document;", None)
        popup = popup_info.value
        moved = "() => new Promise((ok) => { const t = () => window.__w.document !== window.__d ? ok(true)"
        moved += " : setTimeout(t, 10); t(); })"
        assert page.evaluate(moved)  # (the move is done: the kept document is not the pop-up's)
        page.evaluate(
            "() => { const d = window.__d; d.open(); d.write('<p id=x>written ');"
            " d.writeln('later</p>'); d.close(); }"
        )
        assert popup.evaluate("document.getElementById('x').textContent") == "written later"
        assert page.evaluate("window.__w.document.getElementById('x').textContent") == "written later"
    finally:
        context.close()
