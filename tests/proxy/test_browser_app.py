"""A small app through the proxy in Chromium: fetch/XHR/WebSocket to absolute URLs, document.cookie,
localStorage, pushState, a login with a CSRF token; two sessions keep cookies and storage apart."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from proxy.foreign_cookies import FLOOD_BYTES
from tests.proxy.browser_util import escaped
from tests.proxy.conftest import DOMAIN, Harness, OpenSession, Sites

pytestmark = pytest.mark.browser


def _open(
    browser: Any, harness: Harness, s: OpenSession, url: str, context: Any = None
) -> tuple[Any, Any, list[str]]:
    context = context or browser.new_context()
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    page.goto(harness.enter_url(s, url))
    return context, page, seen


def _text(page: Any, item: str) -> str:
    """The text of ``#item`` once it has some: right after a click that navigates, the element can
    be found while the new page's text is still being parsed (CI read an empty title once)."""
    locator = page.locator(f"#{item}")
    expect(locator).to_have_text(re.compile(r"\S"), timeout=15000)
    return str(locator.inner_text(timeout=15000))


def test_dynamic_app_stays_inside_the_proxy(browser: Any, harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/app")
    try:
        assert _text(page, "done") == "yes"
        assert _text(page, "fetch") == "mug,tee"
        assert _text(page, "xhr") == "jar"  # the script's cookie reached upstream through the jar
        assert _text(page, "ws") == "ping"
        assert "js_c=1" in _text(page, "cookies")
        page.click("#step")
        assert _text(page, "route") == "/app/step2"
        assert page.url == harness.url(s, sites.shop.origin + "/app/step2")
        page.reload()
        assert _text(page, "done") == "yes"
        assert "js_c=2" in _text(page, "cookies")  # cookie written by script, kept by the jar
        assert _text(page, "storage") == "2"
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
        assert sites.shop.hits["/ws"] >= 1
    finally:
        context.close()


def test_what_the_rewriting_misses_fails_in_the_browser_instead_of_leaving(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """``import()`` in a module worker: no runtime can map it and workers have no import maps, so
    it would go to the upstream directly, with the agent's address. The confinement policy makes
    it fail."""
    s = harness.open_session((sites.shop.origin,))
    context, page, _ = _open(browser, harness, s, sites.shop.origin + "/module-worker")
    try:
        page.wait_for_function("document.getElementById('result').textContent !== ''", timeout=15000)
        assert _text(page, "result") == "blocked"
        assert sites.shop.hits["/static/import-leak.js"] == 1  # the worker ran, through the proxy
        assert sites.shop.hits["/static/leaked-module.js"] == 0
    finally:
        context.close()


def test_a_shared_worker_runs_the_runtime(browser: Any, harness: Harness, sites: Sites) -> None:
    """The proxy puts the runtime in front of worker scripts: a shared worker's absolute fetch
    goes through the proxy (it could not go anywhere else: the policy above)."""
    s = harness.open_session((sites.shop.origin,))
    context, page, _ = _open(browser, harness, s, sites.shop.origin + "/shared-worker")
    try:
        page.wait_for_function("document.getElementById('result').textContent !== ''", timeout=15000)
        assert _text(page, "result") == "relative 200, absolute fetched 200"
        assert sites.shop.hits["/leak"] == 1
    finally:
        context.close()


def test_a_worker_made_from_a_blob_runs_the_runtime(browser: Any, harness: Harness, sites: Sites) -> None:
    """A worker started from a ``blob:`` URL never passes the proxy; the runtime starts it behind
    itself, so its absolute fetch goes through the proxy instead of being refused by the policy."""
    s = harness.open_session((sites.shop.origin,))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/blob-worker")
    try:
        page.wait_for_function("document.getElementById('result').textContent !== ''", timeout=15000)
        assert _text(page, "result") == "fetched 200"
        assert sites.shop.hits["/leak"] == 1
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_a_sandboxed_frames_pop_up_stays_inside_the_proxy(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A frame sandboxed without ``allow-same-origin`` loads its runtime without the credential
    (its requests carry none), so its ``window.open`` of an absolute upstream URL opens the proxy
    URL: a pop-up is a top-level navigation, which the confinement policy does not cover, and
    without the runtime it loaded the upstream page directly."""
    s = harness.open_session((sites.shop.origin,))
    context = browser.new_context()
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    try:
        page = context.new_page()
        with context.expect_page(timeout=15000) as popup_info:
            page.goto(harness.enter_url(s, sites.shop.origin + "/sandboxed-popup"))
        popup = popup_info.value
        popup.wait_for_load_state("domcontentloaded", timeout=15000)
        assert popup.url == harness.url(s, sites.shop.origin + "/about")
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_markup_a_script_fetches_comes_as_it_was_with_its_urls_mapped(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """htmx, Turbo frames and template loaders insert fetched markup into their page: a fragment
    stays a fragment (no ``<html>``, no ``<meta charset>``, no second runtime), its links mapped.
    The same URL opened as a page is a page, with the runtime."""
    s = harness.open_session((sites.shop.origin,))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/fetch-frag")
    try:
        page.wait_for_function("document.getElementById('result').textContent !== ''", timeout=15000)
        assert _text(page, "result") == "1,frag,true"
        assert page.get_attribute("#frag a", "href") == harness.url(s, sites.shop.origin + "/about")
        page.goto(harness.url(s, sites.shop.origin + "/fragment"))
        assert page.evaluate("typeof window.__cobrowse") == "object"
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_a_copy_made_for_a_script_never_answers_a_page_nor_the_reverse(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A page fetched by a script gets nothing added, the same page opened gets the runtime. With a
    validator the browser revalidates a copy made for one with the other: the upstream's 304 must
    not hand the page the script's copy (no runtime, the masked field in clear), nor the script
    the page's. A copy is still revalidated by its own kind of request."""
    s = harness.open_session((sites.shop.origin,), masked=("#secret",))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/about")
    revalidated = harness.url(s, sites.shop.origin + "/revalidated")
    try:
        fetched = page.evaluate("fetch('/revalidated').then((r) => r.text())")
        assert "__cobrowse" not in fetched
        page.goto(revalidated)
        assert page.evaluate("typeof window.__cobrowse") == "object"
        assert page.inner_text("#secret") == "\u2022" * 6
        page.reload()  # the page's own copy: revalidated, 304
        assert page.evaluate("typeof window.__cobrowse") == "object"
        assert page.inner_text("#secret") == "\u2022" * 6
        assert sites.shop.hits['/revalidated if-none-match "r1"'] == 1
        fetched = page.evaluate("fetch('/revalidated').then((r) => r.text())")
        assert "__cobrowse" not in fetched and "<meta charset" not in fetched
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


@pytest.mark.parametrize("query", ["", "?own-map=1"])
def test_modules_named_by_absolute_upstream_urls_load_through_the_proxy(
    browser: Any, harness: Harness, sites: Sites, query: str
) -> None:
    """``import "https://..."`` and ``import(...)`` are JavaScript, which the proxy leaves alone: the
    import map injected (or merged into the page's own) routes each session origin to its proxy.
    The cross-origin import and fetch are CORS requests, which the browser sends without cookies."""
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/modules" + query)
    try:
        page.wait_for_function("document.getElementById('out').textContent !== ''", timeout=15000)
        assert _text(page, "out") == "alpha,beta,200"  # the fetch: CORS, no credentials, like import()
        assert page.evaluate("document.querySelectorAll('script[type=importmap]').length") == 1
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
        assert sites.cdn.hits["/static/mod-b.js"] >= 1
    finally:
        context.close()


def test_stylesheets_a_script_adds_with_integrity_apply(browser: Any, harness: Harness, sites: Sites) -> None:
    """The proxy rewrites a stylesheet's bytes, so the hash of the upstream's fails: the runtime
    drops the integrity a script gives (property, attribute, markup), as the server drops it."""
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/integrity")
    try:
        page.wait_for_function("document.getElementById('out').textContent !== ''", timeout=15000)
        assert _text(page, "out") == "applied,applied,applied"
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_messages_naming_the_upstream_origin_arrive_and_omitted_credentials_pass(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A page posts to itself, and a same-origin frame to its parent, naming the upstream origin
    (the page is on its proxy origin: unmapped, the browser drops them); a message for another
    origin is still not delivered. ``fetch(own, {credentials: "omit"})`` carries no credential
    and passes, as ``Sec-Fetch-Site: same-origin`` from the agent's address."""
    s = harness.open_session((sites.shop.origin,))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/messages")
    try:
        page.wait_for_function("document.getElementById('out').textContent !== ''", timeout=15000)
        assert _text(page, "out") == "200;child@own,options@own,self@own"  # as location.origin
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_a_cookie_a_fetch_sets_shows_in_document_cookie_at_once(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """The page's runtime got the jar's cookies with the page; a cookie the answer to a later
    fetch sets (an API's CSRF token) shows without a reload, and an HttpOnly one does not."""
    s = harness.open_session((sites.shop.origin,))
    context, page, _ = _open(browser, harness, s, sites.shop.origin + "/fetched-cookie")
    try:
        assert _text(page, "before") == "(none)"
        page.wait_for_function("document.getElementById('after').textContent !== ''", timeout=15000)
        assert _text(page, "after") == "visible_c=v1"
    finally:
        context.close()


def test_server_cookies_show_in_document_cookie_unless_httponly(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    s = harness.open_session((sites.shop.origin,))
    context, page, _ = _open(browser, harness, s, sites.shop.origin + "/set-cookie")
    try:
        page.goto(harness.url(s, sites.shop.origin + "/app"))
        cookies = _text(page, "cookies")
        assert "visible_c=v1" in cookies and "server_c" not in cookies
        assert "__cb" not in cookies
        names = {c["name"] for c in context.cookies()}  # the proxy's own only
        assert f"__cb_{s.sid}" in names
        assert names <= {f"__cb_{s.sid}", f"__Host-cbjv_{s.sid}", f"__Host-cbjs_{s.sid}"}
    finally:
        context.close()


def test_login_with_csrf_token_works(browser: Any, harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/login")
    try:
        page.fill("#user", "agent")
        page.fill("#password", "secret")
        page.click("#go")
        assert _text(page, "title") == "Hello agent"
        assert page.url == harness.url(s, sites.shop.origin + "/account")
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_two_sessions_on_one_site_keep_cookies_and_storage_apart(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    context, page_a, _ = _open(browser, harness, a, sites.shop.origin + "/login")
    try:
        page_a.fill("#user", "alice")
        page_a.fill("#password", "secret")
        page_a.click("#go")
        assert _text(page_a, "title") == "Hello alice"
        page_a.goto(harness.url(a, sites.shop.origin + "/app"))
        assert _text(page_a, "storage") == "1"
        _, page_b, _ = _open(browser, harness, b, sites.shop.origin + "/account", context)
        assert page_b.url == harness.url(b, sites.shop.origin + "/login")  # b is not logged in
        page_b.goto(harness.url(b, sites.shop.origin + "/app"))
        assert _text(page_b, "storage") == "1"
        assert "js_c=1" in _text(page_b, "cookies")
    finally:
        context.close()


def test_a_cookie_one_session_plants_for_the_whole_proxy_domain_reaches_no_other_jar(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A page can get round the runtime (the Document cookie setter of a blob: frame) and write
    a cookie for the whole proxy domain, which the browser sends to every session's origins:
    under the one name all sessions shared, the proxy merged it into another session's jar."""
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    # on the path of the request below only: the proxy expires cookies it did not set from the
    # browser (proxy.foreign_cookies), which would otherwise go with the page's next request
    plant = f"/plant-cookie?domain={DOMAIN}&path=/echo-headers"
    context, page_a, _ = _open(browser, harness, a, sites.shop.origin + plant)
    try:
        assert _text(page_a, "out") == "planted"
        assert "__cbjs" in [c["name"] for c in context.cookies() if c["domain"] == "." + DOMAIN]
        _, page_b, _ = _open(browser, harness, b, sites.shop.origin + "/echo-headers", context)
        assert "planted" not in page_b.locator("body").inner_text(timeout=15000)
    finally:
        context.close()


def test_a_page_cannot_plant_script_writes_for_the_sessions_other_origins(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A page knows its own session id, so it could plant the session's script-write cookie for
    the whole proxy domain (from a blob: frame) and so write cookies of the session's other
    upstream origins: the names are ``__Host-`` ones, which a browser keeps on one origin."""
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    plant = sites.shop.origin + f"/plant-cookie?domain={DOMAIN}&name="
    context, page, _ = _open(browser, harness, s, plant + "__Host-cbjs_{sid}")
    try:
        assert _text(page, "out") == "planted"
        page.goto(harness.url(s, plant + "__cbjs_{sid}"))  # the session's name without __Host-
        assert _text(page, "out") == "planted"
        domain_wide = {c["name"] for c in context.cookies() if c["domain"] == "." + DOMAIN}
        assert domain_wide == {f"__cb_{s.sid}", f"__cbjs_{s.sid}"}  # the credential; no __Host- one
        page.goto(harness.url(s, sites.cdn.origin + "/echo-headers"))
        assert "planted" not in page.locator("body").inner_text(timeout=15000)
    finally:
        context.close()


def _load_past_a_flood(page: Any, selector: str) -> str:
    """The page's text once it loads: a head a flood of cookies made too large gets the 431 page,
    which expires most of them and says to reload."""
    text = str(page.locator("body").inner_text(timeout=15000))
    if selector not in text:
        assert "Request too large" in text
        page.reload()
        text = str(page.locator("body").inner_text(timeout=15000))
    return text


def _junk_weight(context: Any, path: str) -> int:
    """What the planted cookies of ``path`` weigh (each request carries those of its path)."""
    junk = [c for c in context.cookies() if c["name"].startswith("junk") and c["path"] == path]
    return sum(len(c["name"]) + len(c["value"]) for c in junk)


def test_a_cookie_flood_one_session_plants_breaks_no_other_session(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A page that got round the runtime plants 20 cookies of 3.9 KB for the whole proxy domain:
    the browser sends them with every request to every session (78 KB heads, over the 64 KiB
    limit: the 431 page). Its answer expires them, so a reload shows another session's page,
    and what is left is too little to matter (proxy.foreign_cookies.FLOOD_BYTES)."""
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    # on the path of the request below only, or the page's next request has them expired first
    flood = f"/plant-cookie?domain={DOMAIN}&name=junk&count=20&size=3900&path=/echo-headers"
    context, page_a, _ = _open(browser, harness, a, sites.shop.origin + flood)
    try:
        assert _text(page_a, "out") == "planted"
        assert _junk_weight(context, "/echo-headers") > 64 * 1024
        _, page_b, _ = _open(browser, harness, b, sites.shop.origin + "/echo-headers", context)
        echoed = _load_past_a_flood(page_b, '"host"')
        assert "junk" not in echoed  # none reach the upstream
        assert _junk_weight(context, "/echo-headers") < FLOOD_BYTES
        # planted for every path: the planting page's own next requests take them away
        page_a.goto(harness.url(a, sites.shop.origin + flood.replace("/echo-headers", "/")))
        assert _text(page_a, "out") == "planted"
        page_a.goto(harness.url(a, sites.shop.origin + "/about"))
        assert "About" in _load_past_a_flood(page_a, "About")
        assert _junk_weight(context, "/") < FLOOD_BYTES
    finally:
        context.close()


def test_many_small_cookies_one_session_plants_evict_no_credential(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """A page that got round the runtime plants 400 one-byte cookies for the whole proxy domain:
    past its limit per domain (about 180) the browser evicts cookies of the domain, and had evicted
    every session's credential (each then a 403 page). The credential is the one the browser keeps
    (``Secure``, ``Priority=High``). The junk left (some 150 one-byte cookies) harms nothing: the
    proxy sends none upstream. (Junk planted with ``Priority=High`` too still evicts it: see
    docs/ARCHITECTURE.md, "Credential cookie".)"""
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    context, page_a, _ = _open(browser, harness, a, sites.shop.origin + "/about")
    try:
        assert "About" in page_a.locator("body").inner_text()
        flood = f"/plant-cookie?domain={DOMAIN}&name=junk&count=400&size=1"
        _, page_b, _ = _open(browser, harness, b, sites.shop.origin + flood, context)
        assert _text(page_b, "out") == "planted"
        names = {c["name"] for c in context.cookies()}
        assert {f"__cb_{a.sid}", f"__cb_{b.sid}"} <= names
        for page, s in ((page_a, a), (page_b, b)):
            answer = page.goto(harness.url(s, sites.shop.origin + "/echo-headers"))
            assert answer is not None and answer.status == 200
            assert "junk" not in page.locator("body").inner_text()  # none reach the upstream
    finally:
        context.close()


def test_a_form_of_a_shift_jis_page_reaches_the_site_in_shift_jis(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    """The proxy sent every page in UTF-8: the browser then encoded a legacy page's form (and
    links' queries) in UTF-8, where the site reads its own encoding; and it sent the page's style
    sheet in UTF-8 as read from Shift_JIS bytes."""
    s = harness.open_session((sites.shop.origin,))
    context, page, seen = _open(browser, harness, s, sites.shop.origin + "/shift-jis")
    try:
        assert _text(page, "t") == "日本語"
        assert page.evaluate("document.characterSet") == "Shift_JIS"
        # its style sheet, which says nothing of its encoding, read in the page's, as on the site
        after = "getComputedStyle(document.getElementById('t'), '::after').content"
        expect(page.locator("#t")).to_have_css("background-image", re.compile(r"nothing\.png"))
        assert page.evaluate(after) == '"表示"'
        page.click("#go")
        expect(page.locator("body")).to_have_text("q=%93%FA%96%7B")
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_pages_reach_the_browser_compressed(browser: Any, harness: Harness, sites: Sites) -> None:
    """A rewritten page goes to the agent's browser in a coding it accepts (Chromium offers zstd
    and br on localhost names), and the runtime in it runs."""
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    context, page, _ = _open(browser, harness, s, sites.shop.origin + "/app")
    try:
        assert _text(page, "done") == "yes"
        response = page.reload()
        assert response is not None and response.status == 200
        offered = response.request.all_headers()["accept-encoding"]
        assert response.all_headers().get("content-encoding") == ("zstd" if "zstd" in offered else "br")
        assert _text(page, "done") == "yes"
    finally:
        context.close()


def test_video_range_and_download_go_through_the_proxy(
    browser: Any, harness: Harness, sites: Sites
) -> None:
    s = harness.open_session((sites.shop.origin,))
    context = browser.new_context(accept_downloads=True)
    seen: list[str] = []
    context.on("request", lambda request: seen.append(request.url))
    page = context.new_page()
    try:
        with page.expect_response(lambda r: "/video.mp4" in r.url) as first:
            page.goto(harness.enter_url(s, sites.shop.origin + "/media"))
        video = first.value
        assert video.url == harness.url(s, sites.shop.origin + "/video.mp4")
        assert video.status in (200, 206)
        if video.status == 206:
            assert video.request.headers.get("range", "").startswith("bytes=")
        with page.expect_download() as download_info:
            page.click("#dl")
        download = download_info.value
        assert download.suggested_filename == "report.csv"
        assert Path(download.path()).read_bytes() == b"report,1\n" * 1000
        assert escaped(seen, s.sid, DOMAIN, harness.port) == []
    finally:
        context.close()


def test_websockets_the_server_closes_end_cleanly(browser: Any, harness: Harness, sites: Sites) -> None:
    """``wasClean`` as on the real site when the upstream ends a WebSocket (closed at once after
    relaying the close frame, most such closes read as unclean in Chromium)."""
    s = harness.open_session((sites.shop.origin,))
    context, page, _ = _open(browser, harness, s, sites.shop.origin + "/about")
    try:
        ends = page.evaluate("""async () => { const out = [];
          for (let i = 0; i < 8; i++) {
            out.push(await new Promise((ok) => {
              const ws = new WebSocket(location.origin.replace('http', 'ws') + '/ws');
              ws.onopen = () => ws.send('close, please');
              ws.onclose = (e) => ok(e.code + ' ' + e.wasClean + ' ' + e.reason); }));
          }
          return out; }""")
        assert ends == ["4001 true server bye"] * 8
    finally:
        context.close()
