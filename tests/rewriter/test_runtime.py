"""The client runtime in headless Chromium: every dynamic URL stays on proxy hosts.

Pages are served by a fake proxy (runtime_fixtures/fake_proxy.py) with the runtime injected first
in ``<head>``. Each test asserts that the right proxy host got the request and that nothing left
the proxy: zero requests (Playwright request and WebSocket events) to upstream hosts, and zero
requests reaching the server under its bare ``127.0.0.1`` address.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from runtime_fixtures.fake_proxy import (
    CDN,
    SID,
    UPSTREAM,
    BrowserSession,
    FakeProxy,
    browser_session,
    json_body,
    serve_fake_proxy,
)
from runtime_fixtures.tiny_font import tiny_ttf

pytestmark = pytest.mark.browser

MASK = "\u2022" * 6


@pytest.fixture
def fake() -> Iterator[FakeProxy]:
    with serve_fake_proxy() as server:
        yield server


@pytest.fixture
def session(browser: Any, fake: FakeProxy) -> Iterator[BrowserSession]:
    with browser_session(browser, fake) as s:
        yield s


def page_with(script: str, head: str = "", body: str = "", finish: bool = True) -> str:
    end = "window.done = true;" if finish else ""
    return (
        f"<!doctype html><html><head><title>test page</title>{head}</head><body>{body}"
        f"<script>window.done = false;\n{script}\n{end}</script></body></html>"
    )


def load(session: BrowserSession, fake: FakeProxy, html: str, path: str = "/t.html") -> Any:
    fake.add(UPSTREAM, path, html)
    session.page.goto(fake.proxy_url(UPSTREAM + path))
    session.page.wait_for_function("window.done === true")
    return session.page


def assert_contained(session: BrowserSession, fake: FakeProxy) -> None:
    assert session.escapes() == []
    assert fake.escaped() == []
    assert session.errors == []


# --------------------------------------------------------------------------------------------
# network APIs

NETWORK_CASES = {
    "fetch string": ("fetch('http://upstream.example/n/fetch')", UPSTREAM, "/n/fetch"),
    "fetch URL object": (
        "fetch(new URL('http://upstream.example/n/fetch-url?q=1'))",
        UPSTREAM,
        "/n/fetch-url?q=1",
    ),
    "fetch Request": (
        "fetch(new Request('https://cdn.example/n/request', {method: 'POST', body: 'x'})).catch(Boolean)",
        CDN,
        "/n/request",
    ),
    "fetch protocol-relative": ("fetch('//upstream.example/n/pr')", UPSTREAM, "/n/pr"),
    "fetch other origin": ("fetch('https://cdn.example/n/cdn-fetch').catch(Boolean)", CDN, "/n/cdn-fetch"),
    "fetchLater": ("fetchLater('https://cdn.example/n/later', {activateAfter: 0})", CDN, "/n/later"),
    "xhr": (
        "var x = new XMLHttpRequest(); x.open('GET', 'http://upstream.example/n/xhr'); x.send()",
        UPSTREAM,
        "/n/xhr",
    ),
    "event source": ("new EventSource('https://cdn.example/n/events')", CDN, "/n/events"),
    "font face": (
        "new FontFace('F', \"url('https://cdn.example/n/font.woff2') format('woff2')\")"
        ".load().catch(Boolean)",
        CDN,
        "/n/font.woff2",
    ),
    "audio constructor": ("window.sound = new Audio('https://cdn.example/n/sound.mp3')", CDN, "/n/sound.mp3"),
    "send beacon": (
        "navigator.sendBeacon('http://upstream.example/n/beacon', 'data')",
        UPSTREAM,
        "/n/beacon",
    ),
    "websocket": ("window.sock = new WebSocket('wss://cdn.example/n/socket')", CDN, "/n/socket"),
    "websocket subclass": (
        "class S extends WebSocket {}; window.sock = new S('ws://upstream.example/n/sub')",
        UPSTREAM,
        "/n/sub",
    ),
    "cache add": (
        "caches.open('c').then(function (c) { return c.add('http://upstream.example/n/cache'); })",
        UPSTREAM,
        "/n/cache",
    ),
    "cache addAll": (
        "caches.open('c').then(function (c) { return c.addAll(['http://upstream.example/n/cache-all']); })",
        UPSTREAM,
        "/n/cache-all",
    ),
    "worklet module": (
        "CSS.paintWorklet.addModule('https://cdn.example/n/worklet.js').catch(Boolean)",
        CDN,
        "/n/worklet.js",
    ),
}


@pytest.mark.parametrize("case", list(NETWORK_CASES))
def test_network_api_is_mapped_to_the_proxy(session: BrowserSession, fake: FakeProxy, case: str) -> None:
    script, origin, path = NETWORK_CASES[case]
    load(session, fake, page_with(script))
    fake.wait_for_path(path, host=fake.proxy_host(origin))
    assert_contained(session, fake)


def test_the_audio_constructor_stays_what_it_was(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(session, fake, page_with("window.sound = new Audio(); window.named = new Audio('/n/a.mp3');"))
    assert page.evaluate(
        "[sound instanceof HTMLAudioElement, sound.constructor === HTMLAudioElement,"
        " document.createElement('audio').constructor === HTMLAudioElement, named.src,"
        " Audio.name, Audio.length]"
    ) == [True, True, True, fake.proxy_url(UPSTREAM + "/n/a.mp3"), "Audio", 0]


def test_direct_loopback_url_goes_through_the_proxy(session: BrowserSession, fake: FakeProxy) -> None:
    direct = f"http://127.0.0.1:{fake.port}"
    fake.known_origins.append(direct)
    load(
        session,
        fake,
        page_with(f"fetch('{direct}/n/direct').catch(Boolean); new Image().src = '{direct}/n/direct.png';"),
    )
    fake.wait_for_path("/n/direct", host=fake.proxy_host(direct))
    fake.wait_for_path("/n/direct.png", host=fake.proxy_host(direct))
    assert_contained(session, fake)


def test_websocket_url_reads_back_as_the_proxy_url(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(session, fake, page_with("window.sock = new WebSocket('ws://upstream.example/n/ws?x=1');"))
    expected = "ws://" + fake.proxy_host() + "/n/ws?x=1"
    assert page.evaluate("window.sock.url") == expected
    hit = fake.wait_for_path("/n/ws?x=1")
    assert hit.headers.get("upgrade", "").lower() == "websocket"
    assert page.evaluate("window.sock instanceof WebSocket && WebSocket.OPEN === 1")
    assert_contained(session, fake)


def test_one_global_only(session: BrowserSession, fake: FakeProxy) -> None:
    plain = page_with("")
    fake.add("cobrowse.localhost", "/plain.html", plain)
    page = session.page
    page.goto(f"http://cobrowse.localhost:{fake.port}/plain.html")
    without = set(page.evaluate("Object.getOwnPropertyNames(window)"))
    load(session, fake, plain)
    with_runtime = set(page.evaluate("Object.getOwnPropertyNames(window)"))
    assert with_runtime - without == {"__cobrowse"}
    assert page.evaluate("Object.isFrozen(window.__cobrowse)") is True
    assert page.evaluate("document.querySelector('script[src*=__cobrowse]')") is None  # removed once read


def test_unmappable_absolute_url_goes_to_the_blocked_origin(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(session, fake, page_with("window.mapped = window.__cobrowse.toProxy('http://[bad/');"))
    mapped = page.evaluate("window.mapped")
    assert urllib.parse.urlsplit(mapped).netloc == fake.proxy_host("http://cobrowse-blocked.invalid")


def test_relative_and_non_http_urls_are_left_alone(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(session, fake, page_with(""))
    values = [
        "/root",
        "rel/x?y",
        "#frag",
        "data:text/plain,hi",
        "blob:x",
        "mailto:a@b.example",
        "javascript:void 0",
    ]
    absolute = "http://upstream.example/abs"
    mapped = page.evaluate("(v) => v.map((u) => window.__cobrowse.toProxy(u))", [*values, absolute])
    assert mapped == [*values, fake.proxy_url(absolute)]


# --------------------------------------------------------------------------------------------
# history, location, window.open


def test_push_state_with_an_absolute_upstream_url(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "history.pushState({a: 1}, '', 'http://upstream.example/spa/route?x=1#h');"
            "history.replaceState(null, '', 'http://upstream.example/spa/replaced');"
        ),
    )
    assert page.evaluate("location.href") == fake.proxy_url(UPSTREAM + "/spa/replaced")
    assert page.evaluate("history.state") is None
    assert_contained(session, fake)


@pytest.mark.parametrize(
    "how",
    [
        "location.href = U",
        "location.assign(U)",
        "location.replace(U)",
        "location = U",
        "window.location.href = U",
        "navigation.navigate(U)",  # its promises must not reject (an error in the page)
        "var m = document.createElement('meta'); m.httpEquiv = 'refresh'; m.content = '0;url=' + U;"
        "document.head.appendChild(m)",
    ],
)
def test_location_assignment_stays_in_the_proxy(session: BrowserSession, fake: FakeProxy, how: str) -> None:
    fake.add(UPSTREAM, "/landing.html", page_with("", body="<p>landed</p>"))
    page = load(
        session,
        fake,
        page_with(
            "setTimeout(function () { var U = 'http://upstream.example/landing.html?via=1'; "
            + how
            + "; }, 0);"
        ),
    )
    page.wait_for_url(fake.proxy_url(UPSTREAM + "/landing.html?via=1"))
    assert page.locator("p").inner_text() == "landed"
    assert_contained(session, fake)


def test_location_replace_stays_a_replace(session: BrowserSession, fake: FakeProxy) -> None:
    """The navigation the runtime cancels and re-issues mapped keeps its kind: a replace adds no
    history entry (Back must not return to the page that replaced itself)."""
    fake.add(UPSTREAM, "/replaced.html", page_with("", body="<p>replaced</p>"))
    page = load(session, fake, page_with(""))
    before = page.evaluate("history.length")
    page.evaluate("location.replace('http://upstream.example/replaced.html')")
    page.wait_for_url(fake.proxy_url(UPSTREAM + "/replaced.html"))
    assert page.locator("p").inner_text() == "replaced"
    assert page.evaluate("history.length") == before
    assert_contained(session, fake)


def test_a_download_link_the_setters_miss_downloads_through_the_proxy(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """A download link whose upstream URL got past the setters (an attribute made apart and put
    in with ``setNamedItem``, clicked before the MutationObserver runs) is cancelled and made
    again to the proxy URL as a download: its file name kept, the page not navigated away."""
    fake.add(UPSTREAM, "/files/report.txt", "report", "text/plain")
    page = load(session, fake, page_with(""))
    with page.expect_download(timeout=10_000) as info:
        page.evaluate(
            "var a = document.createElement('a'); var h = document.createAttribute('href');"
            "h.value = 'http://upstream.example/files/report.txt'; a.attributes.setNamedItem(h);"
            "a.download = 'saved.txt'; window.unmapped = a.getAttribute('href'); a.click()"
        )
    download = info.value
    assert page.evaluate("window.unmapped") == "http://upstream.example/files/report.txt"  # not vacuous
    assert download.url == fake.proxy_url(UPSTREAM + "/files/report.txt")
    assert download.suggested_filename == "saved.txt"
    fake.wait_for_path("/files/report.txt")
    assert page.url == fake.proxy_url(UPSTREAM + "/t.html")
    assert page.evaluate("window.done") is True  # the same document
    assert_contained(session, fake)


def test_a_download_link_to_another_origin_navigates_as_it_would_upstream(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """The browser ignores ``download`` on a link to another origin: upstream as through the
    proxy, such a link navigates (to the proxy URL)."""
    fake.add(CDN, "/files/other.txt", "other", "text/plain")
    page = load(session, fake, page_with(""))
    page.evaluate(
        "var a = document.createElement('a'); var h = document.createAttribute('href');"
        "h.value = 'https://cdn.example/files/other.txt'; a.attributes.setNamedItem(h);"
        "a.download = 'saved.txt'; a.click()"
    )
    page.wait_for_url(fake.proxy_url(CDN + "/files/other.txt"))
    assert page.locator("body").inner_text() == "other"
    assert_contained(session, fake)


def test_link_to_upstream_made_by_script_stays_in_the_proxy(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/clicked.html", page_with("", body="<p>clicked</p>"))
    page = load(
        session,
        fake,
        page_with(
            "var a = document.createElement('a'); a.id = 'go'; a.textContent = 'go';"
            "a.href = 'http://upstream.example/clicked.html'; document.body.appendChild(a);"
        ),
    )
    assert page.get_attribute("#go", "href") == fake.proxy_url(UPSTREAM + "/clicked.html")
    page.click("#go")
    page.wait_for_url(fake.proxy_url(UPSTREAM + "/clicked.html"))
    assert_contained(session, fake)


@pytest.mark.parametrize(
    "opener",
    [
        "window.open('http://upstream.example/popup.html', '_blank')",
        # document.open(url, name, features) is window.open by another name
        "document.open('http://upstream.example/popup.html', '_blank', '')",
    ],
)
def test_window_open_maps_the_url(session: BrowserSession, fake: FakeProxy, opener: str) -> None:
    fake.add(UPSTREAM, "/popup.html", page_with("", body="<p>popup</p>"))
    page = load(session, fake, page_with("", body=f'<button id=b onclick="{opener}">open</button>'))
    with session.context.expect_page() as popup_info:
        page.click("#b")
    popup = popup_info.value
    popup.wait_for_load_state()
    assert popup.url == fake.proxy_url(UPSTREAM + "/popup.html")
    assert_contained(session, fake)


@pytest.mark.parametrize("opener", ["window.open('', '_blank')", "document.open('', '_blank', '')"])
def test_a_blank_popup_gets_the_runtime(session: BrowserSession, fake: FakeProxy, opener: str) -> None:
    script = f"var w = {opener}; w.fetch('http://upstream.example/n/from-popup');"
    page = load(session, fake, page_with("", body=f'<button id=b onclick="{script}">open</button>'))
    with session.context.expect_page():
        page.click("#b")
    fake.wait_for_path("/n/from-popup")
    assert_contained(session, fake)


def test_about_blank_iframe_gets_the_runtime(session: BrowserSession, fake: FakeProxy) -> None:
    load(
        session,
        fake,
        page_with(
            "var f = document.createElement('iframe'); document.body.appendChild(f);"
            "f.contentWindow.fetch('http://upstream.example/n/from-blank-frame');"
        ),
    )
    fake.wait_for_path("/n/from-blank-frame")
    assert_contained(session, fake)


@pytest.mark.parametrize(
    "how",
    [
        "document.body.appendChild(f); var w = window[window.length - 1];",
        "document.body.append(document.createElement('p'), f); var w = frames[frames.length - 1];",
        "document.body.insertAdjacentElement('beforeend', f); var w = window[0];",
    ],
)
def test_a_blank_frame_reached_through_window_index_gets_the_runtime(
    session: BrowserSession, fake: FakeProxy, how: str
) -> None:
    """``window[i]`` and ``frames[i]`` give the frame's window without the element's getters: the
    runtime is in it as soon as the frame is in the document."""
    load(
        session,
        fake,
        page_with(
            f"var f = document.createElement('iframe'); {how}"
            "w.fetch('http://upstream.example/n/indexed-frame');"
            "var i = w.document.createElement('img'); i.src = 'https://cdn.example/n/indexed-frame.png';"
            "w.document.body.appendChild(i);"
        ),
    )
    fake.wait_for_path("/n/indexed-frame")
    fake.wait_for_path("/n/indexed-frame.png", host=fake.proxy_host(CDN))
    assert_contained(session, fake)


@pytest.mark.parametrize(
    "make",
    [
        "document.body.insertAdjacentHTML('beforeend', '<iframe></iframe>')",
        "var d = document.createElement('div'); document.body.appendChild(d);"
        "d.innerHTML = '<p><iframe></iframe></p>'",
        "document.write('<iframe></iframe>')",
    ],
)
def test_a_blank_frame_made_from_markup_gets_the_runtime(
    session: BrowserSession, fake: FakeProxy, make: str
) -> None:
    """Markup makes its frames inside the browser, past the insertion wrappers: they get the
    runtime before the script's next statement reaches them through window[i]."""
    load(
        session,
        fake,
        page_with(f"{make}; window[window.length - 1].fetch('http://upstream.example/n/markup-frame');"),
    )
    fake.wait_for_path("/n/markup-frame")
    assert_contained(session, fake)


def test_import_maps_and_srcdoc_documents_made_by_scripts_route_modules(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """An import map a script inserts is read as it goes in: its addresses are mapped first. A
    srcdoc document a script writes gets the module routes the server gives every document."""
    fake.add(UPSTREAM, "/n/dyn-module.js", "export const word = 'dyn';", content_type="text/javascript")
    module = "parent.postMessage('srcdoc module', '*');"
    fake.add(UPSTREAM, "/n/srcdoc-module.js", module, content_type="text/javascript")  # same origin: no CORS
    page = load(
        session,
        fake,
        page_with(
            "var s = document.createElement('script'); s.type = 'importmap';"
            "s.textContent = JSON.stringify({imports: {dynlib: 'http://upstream.example/n/dyn-module.js'},"
            " scopes: {'https://cdn.example/': {x: 'https://cdn.example/x.js'}}});"
            "document.head.appendChild(s); window.mapText = s.textContent;"
            "window.got = [];"
            "addEventListener('message', function (e) { got.push(e.data); });"
            "import('dynlib').then(function (m) { got.push(m.word); },"
            " function (e) { got.push('failed ' + e); });"
            "var f = document.createElement('iframe');"
            "f.srcdoc = '<script type=module>import \"http://upstream.example/n/srcdoc-module.js\";<\\/script>';"
            "document.body.appendChild(f);",
        ),
    )
    page.wait_for_function("window.got.length === 2")
    assert sorted(page.evaluate("window.got")) == ["dyn", "srcdoc module"]
    mapped = json.loads(page.evaluate("window.mapText"))
    assert mapped == {
        "imports": {"dynlib": fake.proxy_url(UPSTREAM + "/n/dyn-module.js")},
        "scopes": {fake.proxy_url(CDN + "/"): {"x": fake.proxy_url(CDN + "/x.js")}},
    }
    assert_contained(session, fake)


def test_shadow_roots_are_mapped_and_watched(session: BrowserSession, fake: FakeProxy) -> None:
    """Markup set on a shadow root (declarative shadow roots included) is mapped, and what scripts
    change inside a shadow root later is caught as in the document."""
    load(
        session,
        fake,
        page_with(
            "var host = document.createElement('div'); document.body.appendChild(host);"
            "var root = host.attachShadow({mode: 'open'});"
            "root.setHTMLUnsafe('<img src=\"http://upstream.example/n/shadow-markup.png\">');"
            "var p = document.createElement('p'); p.textContent = 'x'; root.appendChild(p);"
            "p.style.backgroundImage = 'url(http://upstream.example/n/shadow-style.png)';"
            "var st = document.createElement('style');"
            "st.textContent = 'p { border-image-source: url(http://upstream.example/n/shadow-sheet.png) }';"
            "root.appendChild(st);"
            "var outer = document.createElement('div'); document.body.appendChild(outer);"
            "outer.setHTMLUnsafe('<div><template shadowrootmode=open>"
            "<img src=\"https://cdn.example/n/declarative.png\"></template></div>');"
        ),
    )
    for path in ("/n/shadow-markup.png", "/n/shadow-style.png", "/n/shadow-sheet.png"):
        fake.wait_for_path(path)
    fake.wait_for_path("/n/declarative.png", host=fake.proxy_host(CDN))
    assert_contained(session, fake)


def test_css_rules_added_inside_rules_are_mapped(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "var st = document.createElement('style');"
            "st.textContent = '@media all {} @keyframes k {} .n { color: red }';"
            "document.head.appendChild(st);"
            "var sheet = st.sheet;"
            "sheet.cssRules[0].insertRule('.m { background: url(http://upstream.example/n/media.png) }');"
            "sheet.cssRules[1].appendRule("
            "'to { background-image: url(http://upstream.example/n/frame.png) }');"
            "if (sheet.cssRules[2].insertRule)"
            " sheet.cssRules[2].insertRule('& .x { background: url(http://upstream.example/n/nested.png) }');"
            "sheet.addRule('.a', 'background: url(http://upstream.example/n/legacy.png)');"
            "window.css = Array.prototype.map.call(sheet.cssRules,"
            " function (r) { return r.cssText; }).join(' ');",
            body="<p class=m>m</p><p class=a>a</p>",
        ),
    )
    css = page.evaluate("window.css")
    assert "upstream.example" not in css
    for path in ("/n/media.png", "/n/frame.png", "/n/nested.png", "/n/legacy.png"):
        assert fake.proxy_url(UPSTREAM + path) in css
    fake.wait_for_path("/n/media.png")
    fake.wait_for_path("/n/legacy.png")
    assert_contained(session, fake)


FONT_FACE_CASES = {
    "style.src": "r.style.src = 'url(' + U + ') format(\"truetype\")'",
    "style['src']": "r.style['src'] = 'url(\"' + U + '\")'",
    "style.setProperty": "r.style.setProperty('src', 'url(' + U + ')')",
    "style.cssText": "r.style.cssText = 'font-family: F; src: url(' + U + ')'",
}


@pytest.mark.parametrize("case", list(FONT_FACE_CASES))
def test_a_font_face_rules_src_is_mapped(session: BrowserSession, fake: FakeProxy, case: str) -> None:
    """A script points an ``@font-face`` rule elsewhere: the font loads through the proxy, nothing
    goes to the upstream host (the rule's ``style``, a plain ``CSSStyleDeclaration`` in Chromium
    156, changes no attribute: the MutationObserver never sees it)."""
    path = "/f/" + "".join(ch for ch in case if ch.isalnum()) + ".ttf"
    fake.add(UPSTREAM, path, tiny_ttf(), "font/ttf")
    page = load(
        session,
        fake,
        page_with(
            f"var U = 'http://upstream.example{path}';"
            "var st = document.createElement('style');"
            "st.textContent = '@font-face { font-family: F; src: url(/f/first.ttf) }';"
            "document.head.appendChild(st); var r = st.sheet.cssRules[0];"
            f"{FONT_FACE_CASES[case]};"
            "window.src = r.style.getPropertyValue('src');"
            "document.fonts.load('16px F').then("
            " function (faces) { window.font = faces.map(function (f) { return f.status; }).join(); },"
            " function (e) { window.font = String(e); });",
            body="<p style='font-family: F'>text</p>",
        ),
    )
    page.wait_for_function("window.font !== undefined")
    assert page.evaluate("window.font") == "loaded"
    assert page.evaluate("window.src") == f'url("{fake.proxy_url(UPSTREAM + path)}")' + (
        ' format("truetype")' if case == "style.src" else ""
    )
    assert fake.paths_on(fake.proxy_host()).count(path) == 1
    assert "/f/first.ttf" not in fake.paths_on(fake.proxy_host())
    assert_contained(session, fake)


# --------------------------------------------------------------------------------------------
# elements

SETTER_CASES = {
    "img.src": ("var e = new Image(); e.src = U; document.body.appendChild(e)", "/e/img.src"),
    "script.src": (
        "var e = document.createElement('script'); e.src = U; document.head.appendChild(e)",
        "/e/script.src",
    ),
    "iframe.src": (
        "var e = document.createElement('iframe'); e.src = U; document.body.appendChild(e)",
        "/e/iframe.src",
    ),
    "link.href": (
        "var e = document.createElement('link'); e.rel = 'stylesheet'; e.href = U;"
        "document.head.appendChild(e)",
        "/e/link.href",
    ),
    "video.poster": (
        "var e = document.createElement('video'); e.poster = U; document.body.appendChild(e)",
        "/e/video.poster",
    ),
    "audio.src": (
        "var e = document.createElement('audio'); e.preload = 'auto'; e.src = U;document.body.appendChild(e)",
        "/e/audio.src",
    ),
    "embed.src": (
        "var e = document.createElement('embed'); e.type = 'text/plain'; e.src = U;"
        "document.body.appendChild(e)",
        "/e/embed.src",
    ),
    "object.data": (
        "var e = document.createElement('object'); e.type = 'text/plain'; e.data = U;"
        "document.body.appendChild(e)",
        "/e/object.data",
    ),
    "input image src": (
        "var e = document.createElement('input'); e.type = 'image'; e.src = U;document.body.appendChild(e)",
        "/e/input.src",
    ),
    "setAttribute src": (
        "var e = document.createElement('img'); e.setAttribute('SRC', U);document.body.appendChild(e)",
        "/e/setattr",
    ),
    "setAttributeNS xlink:href": (
        "var s = document.createElementNS('http://www.w3.org/2000/svg', 'svg');"
        "var i = document.createElementNS('http://www.w3.org/2000/svg', 'image');"
        "i.setAttributeNS('http://www.w3.org/1999/xlink', 'xlink:href', U); s.appendChild(i);"
        "document.body.appendChild(s)",
        "/e/xlink",
    ),
    "SVG href.baseVal": (
        "var s = document.createElementNS('http://www.w3.org/2000/svg', 'svg');"
        "var i = document.createElementNS('http://www.w3.org/2000/svg', 'image');"
        "i.href.baseVal = U; s.appendChild(i); document.body.appendChild(s)",
        "/e/baseval",
    ),
    "Attr.value": (
        "var e = document.createElement('img'); e.setAttribute('src', '/x.png');"
        "e.attributes.getNamedItem('src').value = U; document.body.appendChild(e)",
        "/e/attr",
    ),
    "Attr.nodeValue": (
        "var e = document.createElement('img'); e.setAttribute('src', '/x.png');"
        "e.getAttributeNode('src').nodeValue = U; document.body.appendChild(e)",
        "/e/attr-node-value",
    ),
    "Attr.textContent": (
        "var e = document.createElement('img'); e.setAttribute('src', '/x.png');"
        "e.getAttributeNode('src').textContent = U; document.body.appendChild(e)",
        "/e/attr-text",
    ),
    "setAttributeNode of a made attribute": (
        "var a = document.createAttribute('src'); a.value = U;"
        "var e = document.createElement('img'); e.setAttributeNode(a); document.body.appendChild(e)",
        "/e/attr-node",
    ),
    "animate keyframes": (
        "var e = document.createElement('div'); e.textContent = 'x'; document.body.appendChild(e);"
        "e.animate([{backgroundImage: 'url(' + U + ')'}, {backgroundImage: 'url(' + U + ')'}], 60000)",
        "/e/animate",
    ),
    "KeyframeEffect, property-indexed": (
        "var e = document.createElement('div'); e.textContent = 'x'; document.body.appendChild(e);"
        "new Animation(new KeyframeEffect(e, {backgroundImage: ['url(' + U + ')', 'url(' + U + ')']},"
        " 60000)).play()",
        "/e/keyframe-effect",
    ),
    "KeyframeEffect given its target later": (
        "var e = document.createElement('div'); e.textContent = 'x'; document.body.appendChild(e);"
        "var k = new KeyframeEffect(null, [{backgroundImage: 'url(' + U + ')'},"
        " {backgroundImage: 'url(' + U + ')'}], 60000); k.target = e; new Animation(k).play()",
        "/e/keyframe-later",
    ),
    "animate with an iterable of keyframes": (
        "var e = document.createElement('div'); e.textContent = 'x'; document.body.appendChild(e);"
        "e.animate(new Set([{backgroundImage: 'url(' + U + ')'},"
        " {backgroundImage: 'url(' + U + ')'}]), 60000)",
        "/e/animate-set",
    ),
    "style property": (
        "var e = document.createElement('div'); e.textContent = 'x';"
        "e.style.backgroundImage = 'url(' + U + ')'; document.body.appendChild(e)",
        "/e/style",
    ),
    # the value read back at once: the browser fetches before the MutationObserver fallback runs
    "style cursor, read back": (
        "var e = document.createElement('div'); e.textContent = 'x'; document.body.appendChild(e);"
        "e.style.cursor = 'url(' + U + '), auto'; window.cursor = getComputedStyle(e).cursor",
        "/e/cursor",
    ),
    # a rule's style changes no attribute: no MutationObserver record at all
    "style rule property": (
        "var s = document.createElement('style'); s.textContent = '.r { color: red }';"
        "document.head.appendChild(s); s.sheet.cssRules[0].style.backgroundImage = 'url(' + U + ')';"
        "var e = document.createElement('p'); e.className = 'r'; e.textContent = 'x';"
        "document.body.appendChild(e)",
        "/e/rule-style",
    ),
    "style element text": (
        "var e = document.createElement('style'); document.head.appendChild(e);"
        "e.textContent = 'body { background: url(\"' + U + '\") }';",
        "/e/style-text",
    ),
    # image-set() takes its URLs as plain strings too
    "image-set string in a style attribute": (
        "var e = document.createElement('div'); e.textContent = 'x';"
        "e.setAttribute('style', 'background-image: image-set(\"' + U + '\" 1x)');"
        "document.body.appendChild(e)",
        "/e/image-set-attr",
    ),
    "-webkit-image-set string in a constructed sheet": (
        "var sheet = new CSSStyleSheet();"
        "sheet.replaceSync('.i { background-image: -webkit-image-set(\\'' + U + '\\' 1x, url(/x.png) 2x) }');"
        "document.adoptedStyleSheets = [sheet];"
        "var e = document.createElement('p'); e.className = 'i'; e.textContent = 'x';"
        "document.body.appendChild(e)",
        "/e/image-set-sheet",
    ),
}


# ways a script gives a <link> or <script> an integrity (a hash of the upstream's bytes, which the
# proxy may rewrite): the runtime empties it as the server drops it (rewriter/attributes.py)
INTEGRITY_CASES = {
    "link property": "e = link(); e.integrity = H; e.href = U + '.css'; document.head.appendChild(e)",
    "script property": "e = script(); e.integrity = H; e.src = U + '.js'; document.head.appendChild(e)",
    "link setAttribute": (
        "e = link(); e.setAttribute('INTEGRITY', H); e.href = U + '.css'; document.head.appendChild(e)"
    ),
    "script setAttributeNS": (
        "e = script(); e.setAttributeNS(null, 'integrity', H); e.src = U + '.js';"
        "document.head.appendChild(e)"
    ),
    "script setAttributeNode": (
        "e = script(); var a = document.createAttribute('integrity'); a.value = H; e.setAttributeNode(a);"
        "e.src = U + '.js'; document.head.appendChild(e)"
    ),
    "link Attr.value": (
        "e = link(); e.setAttribute('integrity', ''); e.getAttributeNode('integrity').value = H;"
        "e.href = U + '.css'; document.head.appendChild(e)"
    ),
    "link innerHTML": (
        "var box = document.createElement('div');"
        "box.innerHTML = '<link rel=stylesheet integrity=\"' + H + '\" href=\"' + U + '.css\">';"
        "e = track(box.firstChild); document.head.appendChild(e)"
    ),
    "link insertAdjacentHTML": (
        "document.head.insertAdjacentHTML('beforeend',"
        " '<link rel=stylesheet integrity=\"' + H + '\" href=\"' + U + '.css\">');"
        "e = track(document.head.lastElementChild)"
    ),
    "script document.write": (
        "document.write('<script integrity=\"' + H + '\" src=\"' + U + '.js\"><\\/script>');"
        "e = track(document.scripts[document.scripts.length - 1])"
    ),
}


@pytest.mark.parametrize("case", list(INTEGRITY_CASES))
def test_integrity_a_script_gives_is_dropped(session: BrowserSession, fake: FakeProxy, case: str) -> None:
    """A stylesheet or script loads although its integrity names a hash its bytes do not have:
    the attribute is gone (the proxy rewrites stylesheets, so the upstream's hash would fail)."""
    fake.add(UPSTREAM, "/i/r.css", "p { color: rgb(0, 128, 0) }", "text/css")
    fake.add(UPSTREAM, "/i/r.js", "window.ran = true;", "application/javascript")
    page = load(
        session,
        fake,
        page_with(
            "var H = 'sha384-' + 'A'.repeat(64); var U = 'http://upstream.example/i/r'; var e;"
            "window.outcome = 'pending';"
            "function track(el) { el.addEventListener('load', function () { window.outcome = 'loaded'; });"
            " el.addEventListener('error', function () { window.outcome = 'blocked'; }); return el; }"
            "function link() { var l = document.createElement('link'); l.rel = 'stylesheet';"
            " return track(l); }"
            "function script() { return track(document.createElement('script')); }"
            f"{INTEGRITY_CASES[case]};"
            "window.integrity = e.getAttribute('integrity');",
        ),
    )
    page.wait_for_function("window.outcome !== 'pending'")
    assert page.evaluate("window.outcome") == "loaded"
    assert page.evaluate("window.integrity") in (None, "")
    assert_contained(session, fake)


@pytest.mark.parametrize("case", list(SETTER_CASES))
def test_element_url_setters_are_mapped(session: BrowserSession, fake: FakeProxy, case: str) -> None:
    script, path = SETTER_CASES[case]
    load(session, fake, page_with(f"var U = 'http://upstream.example{path}'; {script};"))
    fake.wait_for_path(path)
    assert_contained(session, fake)


def test_an_attribute_set_to_null_through_node_is_emptied(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "var e = document.createElement('img'); e.setAttribute('src', '/x.png');"
            "e.getAttributeNode('src').textContent = null;"
            "var f = document.createElement('img'); f.setAttribute('src', '/y.png');"
            "f.getAttributeNode('src').nodeValue = null;"
            "window.srcs = [e.getAttribute('src'), f.getAttribute('src')];"
        ),
    )
    assert page.evaluate("window.srcs") == ["", ""]  # as the browser does: never the URL "null"


def test_url_attributes_read_back_as_proxy_urls(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "var a = document.createElement('a'); a.href = 'https://cdn.example/doc?x=1#y';"
            "var f = document.createElement('form'); f.action = 'http://upstream.example/post';"
            "var b = document.createElement('button'); b.formAction = 'http://upstream.example/other';"
            "a.ping = 'http://upstream.example/p1 https://cdn.example/p2';"
            "window.values = [a.href, a.getAttribute('href'), f.action, b.formAction, a.ping];"
        ),
    )
    cdn, up = fake.proxy_url(CDN + "/"), fake.proxy_url(UPSTREAM + "/")
    assert page.evaluate("window.values") == [
        cdn + "doc?x=1#y",
        cdn + "doc?x=1#y",
        up + "post",
        up + "other",
        f"{up}p1 {cdn}p2",
    ]


def test_attributes_that_hold_urls_only_on_some_elements_are_left_alone_on_others(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """``data`` is a URL only on ``<object>``, ``integrity`` a hash only on ``<link>`` and
    ``<script>`` (as the server's tables say): elsewhere they are the page's own values."""
    page = load(
        session,
        fake,
        page_with(
            "var U = 'http://upstream.example/d';"
            "var d = document.createElement('div'); d.setAttribute('data', U);"
            "var i = document.createElement('img'); i.setAttribute('integrity', 'sha384-abc');"
            "var o = document.createElement('object'); o.setAttribute('data', U);"
            "window.values = [d.getAttribute('data'), i.getAttribute('integrity'), o.getAttribute('data')];"
        ),
    )
    assert page.evaluate("window.values") == [
        "http://upstream.example/d",
        "sha384-abc",
        fake.proxy_url(UPSTREAM + "/d"),
    ]


def test_srcset_with_commas_in_urls(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "var i = new Image();"
            "i.srcset = 'http://upstream.example/s/a,1.png 1x, https://cdn.example/s/b.png 2x';"
            "document.body.appendChild(i); window.value = i.getAttribute('srcset');"
        ),
    )
    fake.wait_for_path("/s/a,1.png")
    assert page.evaluate("window.value") == (
        fake.proxy_url(UPSTREAM + "/s/a,1.png") + " 1x, " + fake.proxy_url(CDN + "/s/b.png") + " 2x"
    )
    assert_contained(session, fake)


MARKUP_CASES = {
    "innerHTML": "document.body.innerHTML += '<img src=\"http://upstream.example/m/inner.png\">'",
    "outerHTML": "var d = document.createElement('div'); document.body.appendChild(d);"
    "d.outerHTML = '<p><img src=\"http://upstream.example/m/outer.png\"></p>'",
    "insertAdjacentHTML": "document.body.insertAdjacentHTML('beforeend',"
    '\'<picture><source srcset="http://upstream.example/m/adjacent.png">'
    '<img src="/fallback.png"></picture>\')',
    "createContextualFragment": "document.body.appendChild(document.createRange()"
    ".createContextualFragment('<img src=\"//upstream.example/m/fragment.png\">'))",
    "DOMParser": "var d = new DOMParser().parseFromString('<img src=\"http://upstream.example/m/parsed.png\">',"
    "'text/html'); document.body.appendChild(document.adoptNode(d.body.firstChild))",
    "document.write": "document.write('<img src=\"http://upstream.example/m/written.png\" alt=x>')",
    "document.write, unquoted": "document.write('<img src=http://upstream.example/m/bare.png alt=x>')",
    "Document.parseHTMLUnsafe": "var d = Document.parseHTMLUnsafe('<img src=\"http://upstream.example/m/unsafe.png\">');"
    "document.body.appendChild(document.importNode(d.body.firstChild, true))",
}
MARKUP_PATHS = {
    "innerHTML": "/m/inner.png",
    "outerHTML": "/m/outer.png",
    "insertAdjacentHTML": "/m/adjacent.png",
    "createContextualFragment": "/m/fragment.png",
    "DOMParser": "/m/parsed.png",
    "document.write": "/m/written.png",
    "document.write, unquoted": "/m/bare.png",
    "Document.parseHTMLUnsafe": "/m/unsafe.png",
}


@pytest.mark.parametrize("case", list(MARKUP_CASES))
def test_markup_with_urls_is_rewritten(session: BrowserSession, fake: FakeProxy, case: str) -> None:
    load(session, fake, page_with(MARKUP_CASES[case]))
    fake.wait_for_path(MARKUP_PATHS[case])
    assert_contained(session, fake)


@pytest.mark.parametrize(
    "how",
    [
        "f.srcdoc = S",
        "f.setAttribute('srcdoc', S)",
        # past the setters: the MutationObserver fallback watches srcdoc too
        "f.setAttributeNS(null, 'srcdoc', S)",
        "f.setAttribute('srcdoc', ''); f.getAttributeNode('srcdoc').value = S",
    ],
)
def test_iframe_srcdoc_gets_the_runtime(session: BrowserSession, fake: FakeProxy, how: str) -> None:
    load(
        session,
        fake,
        page_with(
            "var f = document.createElement('iframe');"
            "var S = '<script>fetch(\"http://upstream.example/n/srcdoc\")<\\/script>';"
            f"document.body.appendChild(f); setTimeout(function () {{ {how}; }}, 0);"  # f is in already
        ),
    )
    fake.wait_for_path("/n/srcdoc")
    assert_contained(session, fake)


# --------------------------------------------------------------------------------------------
# forms


def test_form_submit_posts_to_the_proxy(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/f/done", page_with("", body="<p>posted</p>"))
    page = load(
        session,
        fake,
        page_with(
            "var f = document.createElement('form'); f.method = 'post'; f.action = 'http://upstream.example/f/done';"
            "var i = document.createElement('input'); i.name = 'q'; i.value = 'hello'; f.appendChild(i);"
            "document.body.appendChild(f); setTimeout(function () { f.submit(); }, 0);"
        ),
    )
    page.wait_for_url(fake.proxy_url(UPSTREAM + "/f/done"))
    hit = fake.wait_for_path("/f/done")
    assert hit.method == "POST" and hit.body == b"q=hello"
    assert_contained(session, fake)


def test_submitter_formaction_is_mapped(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/f/button", page_with("", body="<p>button</p>"))
    page = load(
        session,
        fake,
        page_with(
            "var f = document.querySelector('form');"
            "var b = document.createElement('button'); b.id = 'b'; b.textContent = 'go';"
            "b.setAttribute('formaction', 'http://upstream.example/f/button'); f.appendChild(b);",
            body="<form method=get action=/f/default><input name=a value=1></form>",
        ),
    )
    page.click("#b")
    page.wait_for_url(fake.proxy_url(UPSTREAM + "/f/button?a=1"))
    assert_contained(session, fake)


# --------------------------------------------------------------------------------------------
# workers

WORKER_JS = (
    "self.whereAmI = self.location.href;"
    "importScripts('https://cdn.example/w/imported.js');"
    "fetch('http://upstream.example/w/absolute').catch(Boolean);"
    "fetch('relative-from-worker');"
    "var x = new XMLHttpRequest(); x.open('GET', 'https://cdn.example/w/xhr'); x.send();"
    "new FontFace('F', \"url('https://cdn.example/w/font.woff2')\").load().catch(Boolean);"
    "postMessage(self.whereAmI);"
)
MODULE_WORKER_JS = (
    "import { tag } from '/w/lib/dep.js';"  # another folder: relative URLs stay the worker's
    "await fetch('https://cdn.example/w/module-' + tag).catch(Boolean);"
    "await fetch('module-relative');"
    "postMessage('started');"
)


def test_worker_urls_and_requests_inside_workers_are_mapped(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/w/worker.js", WORKER_JS, "application/javascript")
    fake.add(CDN, "/w/imported.js", "self.imported = true;", "application/javascript")
    page = load(
        session,
        fake,
        page_with(
            "window.started = null; var w = new Worker('http://upstream.example/w/worker.js');"
            "w.onmessage = function (e) { window.started = e.data; };"
        ),
    )
    page.wait_for_function("window.started !== null")
    # the worker runs at its own (proxy) URL, not at a bootstrap's blob: URL
    assert page.evaluate("window.started") == fake.proxy_url(UPSTREAM + "/w/worker.js")
    fake.wait_for_path("/w/worker.js")
    fake.wait_for_path("/w/imported.js", host=fake.proxy_host(CDN))
    fake.wait_for_path("/w/absolute")
    fake.wait_for_path("/w/relative-from-worker")
    fake.wait_for_path("/w/xhr", host=fake.proxy_host(CDN))
    fake.wait_for_path("/w/font.woff2", host=fake.proxy_host(CDN))
    assert_contained(session, fake)


def test_module_worker(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/w/module.js", MODULE_WORKER_JS, "application/javascript")
    fake.add(UPSTREAM, "/w/lib/dep.js", "export const tag = 'dep';", "application/javascript")
    page = load(
        session,
        fake,
        page_with(
            "window.started = null; var w = new Worker('/w/module.js', {type: 'module'});"
            "w.onmessage = function (e) { window.started = e.data; };"
        ),
    )
    page.wait_for_function("window.started === 'started'")
    fake.wait_for_path("/w/module-dep", host=fake.proxy_host(CDN))
    fake.wait_for_path("/w/module-relative")
    assert_contained(session, fake)


def test_a_worker_keeps_its_hashbang_and_strict_mode(session: BrowserSession, fake: FakeProxy) -> None:
    script = (
        "#!/usr/bin/env node\n'use strict'\n"
        "postMessage([(function () { return this === undefined; })(), typeof self.__cobrowse]);"
    )
    fake.add(UPSTREAM, "/w/strict.js", script, "application/javascript")
    page = load(
        session,
        fake,
        page_with(
            "window.started = null; var w = new Worker('/w/strict.js');"
            "w.onmessage = function (e) { window.started = e.data; };"
        ),
    )
    page.wait_for_function("window.started !== null")
    assert page.evaluate("window.started") == [True, "object"]  # still strict, with the runtime


def test_shared_worker_url_is_mapped_and_it_runs_the_runtime(
    session: BrowserSession, fake: FakeProxy
) -> None:
    fake.add(
        UPSTREAM,
        "/w/shared.js",
        "onconnect = function (e) { fetch('https://cdn.example/w/shared-fetch').catch(Boolean);"
        " e.ports[0].postMessage(self.location.href); };",
        "application/javascript",
    )
    page = load(
        session,
        fake,
        page_with(
            "window.got = null; var s = new SharedWorker('http://upstream.example/w/shared.js');"
            "s.port.onmessage = function (e) { window.got = e.data; };"
        ),
    )
    page.wait_for_function("window.got !== null")
    assert page.evaluate("window.got") == fake.proxy_url(UPSTREAM + "/w/shared.js")  # its own URL
    fake.wait_for_path("/w/shared.js")
    fake.wait_for_path("/w/shared-fetch", host=fake.proxy_host(CDN))  # it has the runtime too
    assert_contained(session, fake)


BLOB_WORKER_JS = (
    "'use strict';\n"
    "fetch('http://upstream.example/w/from-blob').catch(Boolean);"
    "fetch('https://cdn.example/w/from-blob-cdn').catch(Boolean);"
    "postMessage([(function () { return this === undefined; })(), typeof self.__cobrowse]);"
)


@pytest.mark.parametrize("kind", ["classic", "module"])
def test_a_worker_made_from_a_blob_runs_the_runtime(
    session: BrowserSession, fake: FakeProxy, kind: str
) -> None:
    """Bundlers start workers from ``blob:`` URLs (``URL.createObjectURL(new Blob([code]))``). The
    proxy never sees their script, so the runtime puts itself in front of it; the page may revoke
    its URL as soon as the worker is made, and the script keeps its own directive prologue."""
    options = ", {type: 'module'}" if kind == "module" else ""
    page = load(
        session,
        fake,
        page_with(
            f"window.started = null; var code = {json.dumps(BLOB_WORKER_JS)};"
            "var url = URL.createObjectURL(new Blob([code], {type: 'text/javascript'}));"
            f"var w = new Worker(url{options}); URL.revokeObjectURL(url);"
            "w.onmessage = function (e) { window.started = e.data; };"
        ),
    )
    page.wait_for_function("window.started !== null")
    assert page.evaluate("window.started") == [True, "object"]  # strict as written, with the runtime
    fake.wait_for_path("/w/from-blob")
    fake.wait_for_path("/w/from-blob-cdn", host=fake.proxy_host(CDN))
    assert_contained(session, fake)


def test_a_worker_from_a_revoked_blob_url_fails_as_without_the_runtime(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """The runtime keeps its own copy of each blob a worker may start from, but only while the
    page's URL for it lives: once revoked, the URL starts nothing, as in a browser without us."""
    page = load(
        session,
        fake,
        page_with(
            "window.outcome = null;"
            "var url = URL.createObjectURL(new Blob(['postMessage(1)'], {type: 'text/javascript'}));"
            "URL.revokeObjectURL(url); var w = new Worker(url);"
            "w.onmessage = function () { window.outcome = 'ran'; };"
            "w.onerror = function () { window.outcome = 'error'; };"
        ),
    )
    page.wait_for_function("window.outcome !== null")
    assert page.evaluate("window.outcome") == "error"


def test_a_shared_worker_made_from_a_blob_runs_the_runtime_and_stays_one(
    session: BrowserSession, fake: FakeProxy
) -> None:
    script = (
        "var n = 0; onconnect = function (e) { n += 1;"
        " fetch('https://cdn.example/w/shared-blob-' + n).catch(Boolean);"
        " e.ports[0].postMessage([n, typeof self.__cobrowse]); };"
    )
    page = load(
        session,
        fake,
        page_with(
            f"window.got = []; var url = URL.createObjectURL(new Blob([{json.dumps(script)}]));"
            "for (var i = 0; i < 2; i++) {"
            "  new SharedWorker(url).port.onmessage = function (e) { window.got.push(e.data); };"
            "}"
        ),
    )
    page.wait_for_function("window.got.length === 2")
    assert sorted(page.evaluate("window.got")) == [[1, "object"], [2, "object"]]  # one worker, two ports
    fake.wait_for_path("/w/shared-blob-2", host=fake.proxy_host(CDN))
    assert_contained(session, fake)


def test_service_worker_registration_is_rejected(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/sw.js", "self.addEventListener('fetch', function () {});", "application/javascript")
    page = load(
        session,
        fake,
        page_with(
            "window.result = null; navigator.serviceWorker.register('/sw.js').then("
            "function () { window.result = 'registered'; },"
            "function (e) { window.result = e.name + ': ' + e.message; });"
        ),
    )
    page.wait_for_function("window.result !== null")
    result = page.evaluate("window.result")
    assert result.startswith("SecurityError: cobrowse:")
    assert "/sw.js" not in fake.paths_on(fake.proxy_host())


def test_peer_connections_gather_from_no_server(session: BrowserSession, fake: FakeProxy) -> None:
    """WebRTC gathers candidates from the STUN and TURN servers a page names, over UDP straight from
    the agent's browser (no CSP directive covers it): the server, and through a server-reflexive
    candidate the page, would learn the agent's own address. The runtime gives every peer
    connection no servers and relay candidates only, so nothing is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stun:
        stun.bind(("127.0.0.1", 0))
        stun.settimeout(0.2)
        server = f"{{urls: 'stun:127.0.0.1:{stun.getsockname()[1]}'}}"
        page = load(
            session,
            fake,
            page_with(
                f"var pc = new RTCPeerConnection({{iceServers: [{server}]}});"
                "window.kinds = [];"
                "pc.onicecandidate = function (e) { if (e.candidate) kinds.push(e.candidate.type); };"
                "pc.createDataChannel('x');"
                "pc.createOffer().then(function (o) { return pc.setLocalDescription(o); });"
                f"pc.setConfiguration({{iceServers: [{server}]}});"
                "var old = new webkitRTCPeerConnection({iceServers: [" + server + "]});"
                "old.createDataChannel('y');"
                "old.createOffer().then(function (o) { return old.setLocalDescription(o); });"
                # no configuration at all is the browser's default (every candidate): confined too
                "var bare = new RTCPeerConnection();"
                "var reset = new RTCPeerConnection({iceServers: []}); reset.setConfiguration();"
            ),
        )
        page.wait_for_function("pc.iceGatheringState === 'complete' && old.iceGatheringState === 'complete'")
        assert page.evaluate(
            "[pc instanceof RTCPeerConnection, pc.constructor === RTCPeerConnection,"
            " webkitRTCPeerConnection === RTCPeerConnection, pc.getConfiguration().iceServers.length,"
            " pc.getConfiguration().iceTransportPolicy, kinds.length]"
        ) == [True, True, True, 0, "relay", 0]
        policies = page.evaluate("[bare, reset].map((c) => c.getConfiguration().iceTransportPolicy)")
        assert policies == ["relay", "relay"]
        received = []
        for _ in range(5):
            try:
                received.append(stun.recvfrom(2048))
            except TimeoutError:
                pass
        assert received == []
    assert_contained(session, fake)


# --------------------------------------------------------------------------------------------
# document.cookie


def test_document_cookie_shows_the_jar_and_writes_back(session: BrowserSession, fake: FakeProxy) -> None:
    fake.cookies = [{"name": "sess", "value": "abc"}, {"name": "pref", "value": "dark"}]
    fake.add(UPSTREAM, "/next.html", page_with("", body="<p>next</p>"))
    page = load(
        session,
        fake,
        page_with(
            "window.before = document.cookie;"
            "document.cookie = 'added=1; Path=/; Max-Age=3600';"
            "document.cookie = 'pref=; expires=Thu, 01 Jan 1970 00:00:00 GMT';"
            "document.cookie = 'other=2; path=/elsewhere';"
            "document.cookie = 'evil=1; domain=attacker.example';"
            "window.after = document.cookie;"
        ),
    )
    assert page.evaluate("window.before") == "sess=abc; pref=dark"
    assert page.evaluate("window.after") == "sess=abc; added=1"
    fake.wait_for(lambda: fake.paths_on(fake.proxy_host()).count("/__cobrowse/cookies") >= 3)
    posts = [h for h in fake.hits if h.path == "/__cobrowse/cookies"]
    assert {h.method for h in posts} == {"POST"}
    assert {json_body(h)["url"] for h in posts} == {UPSTREAM + "/t.html"}
    assert sorted(json_body(h)["cookies"][0] for h in posts) == [  # one write each, in any order
        "added=1; Path=/; Max-Age=3600",
        "other=2; path=/elsewhere",
        "pref=; expires=Thu, 01 Jan 1970 00:00:00 GMT",
    ]
    jar = {c["name"]: c for c in session.context.cookies()}
    # the session's own name (a page elsewhere cannot guess it), __Host-: no page can plant it for
    # the session's other origins (the fake proxy is on a localhost name, a secure context)
    script = f"__Host-cbjs_{SID}"
    assert set(jar) == {script}
    written = json.loads(urllib.parse.unquote(jar[script]["value"]))
    assert written == [
        "added=1; Path=/; Max-Age=3600",
        "pref=; expires=Thu, 01 Jan 1970 00:00:00 GMT",
        "other=2; path=/elsewhere",
    ]
    assert jar[script]["domain"] == fake.proxy_host().split(":")[0]  # host-only
    assert jar[script]["secure"]
    page.goto(fake.proxy_url(UPSTREAM + "/next.html"))
    assert script + "=" in fake.wait_for_path("/next.html").headers.get("cookie", "")


# what a script writes on http://upstream.example/t.html -> whether document.cookie shows it
COOKIE_WRITES = {
    "h=1; HttpOnly": False,  # a script cannot set an HttpOnly cookie
    "s=1; Secure": False,  # not on an http page
    "d=1; Domain=other.example": False,
    "x=1; Domain=example": False,  # a public suffix: the jar refuses it (the site's other hosts')
    "__cbjs=page": False,  # the proxy's own names are not the page's
    "__cbjv=page": False,
    f"__cbjs_{SID}=page": False,
    f"__cbjv_{SID}=page": False,
    f"__Host-cbjs_{SID}=page": False,
    f"__Host-cbjv_{SID}=page": False,
    "m=1; Max-Age=3600; Expires=Thu, 01 Jan 1970 00:00:00 GMT": True,  # Max-Age wins, in any order
    "e=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=3600": True,
    "u=1; Domain=.upstream.example": True,
    "p=1; Path=/": True,
}


def test_document_cookie_refuses_what_the_browser_would(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            f"{json.dumps(list(COOKIE_WRITES))}.forEach(function (c) {{ document.cookie = c; }});"
            "window.after = document.cookie;"
        ),
    )
    shown = [pair.split("=")[0] for pair in page.evaluate("window.after").split("; ")]
    assert shown == [write.split("=")[0] for write, visible in COOKIE_WRITES.items() if visible]


def test_a_cookie_is_gone_from_document_cookie_when_it_expires(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """As in a browser: one the page wrote with Max-Age, and one the jar's view says expires, no
    longer show once their time has passed (they showed until the proxy's next answer); the
    jar's times are on the proxy's clock, which need not be the agent's."""
    fake.clock_offset_s = -3600  # the proxy's clock an hour behind the agent's: its expiry is on it
    fake.cookies = [{"name": "jar", "value": "1", "path": "/", "expires": int(time.time()) - 3600 + 6}]
    page = load(
        session,
        fake,
        page_with(
            "document.cookie = 'brief=1; Max-Age=1; Path=/';"
            "document.cookie = 'lasting=1; Max-Age=3600; Path=/';"
            "window.first = document.cookie;"
            "cookieStore.get('lasting').then(c => { window.stored = c.expires; });"
        ),
    )
    assert page.evaluate("window.first") == "jar=1; brief=1; lasting=1"
    page.wait_for_function("document.cookie === 'lasting=1'", timeout=30_000)
    stored = page.evaluate("window.stored")
    assert isinstance(stored, (int, float)) and stored > time.time() * 1000 + 3_000_000


def test_document_cookie_keeps_the_browsers_order(session: BrowserSession, fake: FakeProxy) -> None:
    """Longest path first, then oldest; a cookie is its name and path (Chromium's order, RFC 6265
    5.4), for the proxy's cookies and for what scripts write alike."""
    fake.cookies = [
        {"name": "deep", "value": "1", "path": "/dir/sub"},
        {"name": "root", "value": "1", "path": "/"},
    ]
    page = load(
        session,
        fake,
        page_with(
            "var seen = [document.cookie];"
            "document.cookie = 'a=1; path=/';"
            "document.cookie = 'b=2';"  # the default path: /dir/sub
            "document.cookie = 'a=3; path=/dir';"  # another cookie: same name, another path
            "seen.push(document.cookie);"
            "document.cookie = 'root=2; path=/';"  # the same cookie: it keeps its place
            "document.cookie = 'a=; path=/; max-age=0';"
            "seen.push(document.cookie); window.seen = seen;"
        ),
        path="/dir/sub/t.html",
    )
    assert page.evaluate("window.seen") == [
        "deep=1; root=1",
        "deep=1; b=2; a=3; root=1; a=1",
        "deep=1; b=2; a=3; root=2",
    ]  # what Chromium shows for the same writes on its own (checked 2026-11-30, Chromium 156)


def test_document_cookie_follows_the_jar_the_proxy_sends_along(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """The proxy keeps the jar's script view in the browser cookie ``__cbjv_{sid}`` (a cookie a
    fetch's answer set, a page shown from the cache): the runtime shows it, for its own path, with
    the page's writes not yet in the jar (``__cbjs_{sid}``) on top; a view under another name (a
    page of another session can set one for the whole proxy domain) is not the session's."""
    fake.cookies = [{"name": "old", "value": "1", "path": "/"}]
    page = load(session, fake, page_with("window.before = document.cookie;"), path="/dir/t.html")
    assert page.evaluate("window.before") == "old=1"

    host = fake.proxy_host().split(":")[0]

    def send_view(view: list[list[str]], name: str = f"__Host-cbjv_{SID}", domain: str = host) -> None:
        value = urllib.parse.quote(json.dumps(view), safe="")
        # a domain without its leading dot: host-only (the way the proxy's Set-Cookie sets it)
        cookie = {"name": name, "value": value, "domain": domain, "path": "/", "secure": True}
        session.context.add_cookies([cookie])

    # views a page can plant for the whole proxy domain: the bare name, and the session's own
    # name without __Host- (a page knows its session id, and so could reach its other origins)
    send_view([["planted", "1", "/"]], name="__cbjv", domain="." + host.split(".", 1)[1])
    send_view([["planted", "2", "/"]], name=f"__cbjv_{SID}", domain="." + host.split(".", 1)[1])
    assert page.evaluate("document.cookie") == "old=1"
    send_view([["deep", "3", "/dir"], ["new", "2", "/"], ["other", "4", "/elsewhere"]])
    assert page.evaluate("document.cookie") == "deep=3; new=2"
    page.evaluate("document.cookie = 'mine=5'")  # on its way to the jar, in __cbjs
    send_view([["new", "6", "/"]])  # an answer to a request that left before the write
    assert page.evaluate("document.cookie") == "mine=5; new=6"
    assert page.evaluate("document.cookie.indexOf('__cb')") == -1


# --------------------------------------------------------------------------------------------
# a page that breaks things


def test_hostile_page_does_not_make_the_runtime_throw(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "var r = window.results = [];"
            "Array.prototype.map = function () { throw new Error('map broken'); };"
            "Array.prototype.forEach = function () { throw new Error('forEach broken'); };"
            "Array.prototype.push = function () { throw new Error('push broken'); };"
            "Array.prototype.join = function () { throw new Error('join broken'); };"
            "String.prototype.indexOf = function () { throw new Error('indexOf broken'); };"
            "String.prototype.slice = function () { throw new Error('slice broken'); };"
            "String.prototype.toLowerCase = function () { throw new Error('lower broken'); };"
            "JSON.stringify = function () { throw new Error('stringify broken'); };"
            "Function.prototype.call = function () { throw new Error('call broken'); };"
            "Function.prototype.apply = function () { throw new Error('apply broken'); };"
            "Object.freeze(Object.prototype); Object.freeze(Element.prototype); Object.freeze(document);"
            "Object.freeze(window.fetch); Object.freeze(HTMLImageElement.prototype);"
            "fetch('http://upstream.example/h/fetch');"
            "var i = new Image(); i.src = 'http://upstream.example/h/img.png'; document.body.appendChild(i);"
            "document.body.insertAdjacentHTML('beforeend',"
            "'<img srcset=\"http://upstream.example/h/a,b.png 1x\">');"
            "document.cookie = 'k=v';"
            "r[0] = document.cookie;"
            "r[1] = window.__cobrowse.cssPath(document.body);"
            # give Playwright its own helpers back once the runtime has run under the broken ones
            "setTimeout(function () { var s = window.saved;"
            "  Array.prototype.map = s[0]; Array.prototype.forEach = s[1]; Array.prototype.push = s[2];"
            "  Array.prototype.join = s[3]; String.prototype.indexOf = s[4]; String.prototype.slice = s[5];"
            "  String.prototype.toLowerCase = s[6]; JSON.stringify = s[7]; Function.prototype.call = s[8];"
            "  Function.prototype.apply = s[9]; window.done = true; }, 0);",
            finish=False,
            head="<script>window.saved = [Array.prototype.map, Array.prototype.forEach, Array.prototype.push,"
            "Array.prototype.join, String.prototype.indexOf, String.prototype.slice,"
            "String.prototype.toLowerCase,"
            "JSON.stringify, Function.prototype.call, Function.prototype.apply];</script>",
        ),
    )
    fake.wait_for_path("/h/fetch")
    fake.wait_for_path("/h/img.png")
    fake.wait_for_path("/h/a,b.png")
    fake.wait_for_path("/__cobrowse/cookies")
    assert page.evaluate("window.results[0]") == "k=v"
    assert page.evaluate("window.results[1]") == "html > body:nth-of-type(1)"
    assert_contained(session, fake)


def test_native_errors_stay_native(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "window.errs = [];"
            "try { new WebSocket('ftp://upstream.example/'); } catch (e) { errs.push(e.name); }"
            "try { history.pushState(null, '', 'http://[bad'); } catch (e) { errs.push(e.name); }"
            "fetch().catch(function (e) { errs.push('async ' + e.name); });"
            "window.sockURL = new WebSocket('ws://upstream.example/n/native').url;"
        ),
    )
    assert page.evaluate("window.sockURL") == "ws://" + fake.proxy_host() + "/n/native"
    page.wait_for_function("window.errs.length === 3")
    assert page.evaluate("window.errs") == ["SyntaxError", "SecurityError", "async TypeError"]
    assert page.evaluate("fetch.toString()") == "function fetch() { [native code] }"
    # wrapped twice (its markup mapped, then its frames given the runtime): still the browser's
    assert page.evaluate("Element.prototype.insertAdjacentHTML.toString()") == (
        "function insertAdjacentHTML() { [native code] }"
    )


def test_post_message_to_this_window_names_the_upstream_origin(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """The page is on its proxy origin: a message naming the upstream origin is delivered, one
    naming another origin is not, and the keywords and errors are the browser's own. Its
    ``event.origin`` is the page's own (``location.origin``), which sites compare it with. The options
    form keeps what else it carries (transfer lists, however defined) and its getters run once."""
    page = load(
        session,
        fake,
        page_with(
            "window.got = []; window.errs = [];"
            "addEventListener('message', function (e) {"
            " var d = typeof e.data === 'string' ? e.data : e.data.name + (e.ports.length ? '+port' : '');"
            " if (d === 'end') window.done = true;"
            " else got.push(d + ' ' + (e.origin === location.origin && e.origin === window.origin)); });"
            f"postMessage('upstream', '{UPSTREAM}');"
            f"postMessage('options', {{targetOrigin: '{UPSTREAM}/some/page?q'}});"
            f"postMessage('other', '{CDN}');"
            "postMessage('star', '*'); postMessage('slash', '/');"
            "try { postMessage('relative', 'shop'); } catch (e) { errs.push(e.name); }"
            "try { postMessage('invalid', 'https://'); } catch (e) { errs.push(e.name); }"
            # transfer: hidden from for-in, or a getter of a class; targetOrigin a URL object
            "var channel = new MessageChannel(), hidden = {};"
            f"hidden.targetOrigin = '{UPSTREAM}';"
            "Object.defineProperty(hidden, 'transfer', { value: [channel.port1], enumerable: false });"
            "postMessage({ name: 'hidden' }, hidden);"
            "window.reads = 0; window.buffer = new ArrayBuffer(8);"
            "class Options { get transfer() { return [buffer]; }"
            f" get targetOrigin() {{ reads++; return new URL('{UPSTREAM}/x'); }} }}"
            "postMessage({ name: 'getters', buffer: buffer }, new Options());"
            "postMessage('end', '*');",  # messages arrive in order: 'other' would be in by then
            finish=False,
        ),
    )
    # a message from this window's own origin says so, as location.origin does
    assert page.evaluate("window.got") == [
        "upstream true", "options true", "star true", "slash true", "hidden+port true", "getters true",
    ]
    assert page.evaluate("window.errs") == ["SyntaxError", "SyntaxError"]
    assert page.evaluate("[window.reads, window.buffer.byteLength]") == [1, 0]  # read once; transferred
    assert page.evaluate("postMessage.toString()") == "function postMessage() { [native code] }"
    assert_contained(session, fake)


def test_messages_from_other_origins_name_their_upstream_origin(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """A frame of another upstream origin is on another proxy origin: its messages say the
    upstream origin, which sites compare with the origin they expect. A frame nested in a
    proxied page sends the console nothing (its parent is the page), so no warning either."""
    # posted on load: after what the bridge would send at DOMContentLoaded
    fake.add(CDN, "/n/frame.html", page_with("onload = function () { parent.postMessage('cdn', '*'); };"))
    logged: list[str] = []
    session.page.on("console", lambda message: logged.append(message.text))
    page = load(
        session,
        fake,
        page_with(
            "window.got = [];"
            "addEventListener('message', function (e) { got.push(e.data + ' ' + e.origin); });"
            "var f = document.createElement('iframe'); f.src = 'https://cdn.example/n/frame.html';"
            "document.body.appendChild(f);"
        ),
    )
    page.wait_for_function("window.got.length === 1")
    assert page.evaluate("window.got") == [f"cdn {CDN}"]
    assert [text for text in logged if "postMessage" in text] == []
    assert_contained(session, fake)


# --------------------------------------------------------------------------------------------
# masking of what scripts add later (the server masks the document it rewrites)


def test_a_field_a_script_adds_with_a_secret_autocomplete_is_masked(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """A checkout script fills a saved card's number into a field it adds: masked without any
    selector of the account's, as the server masks such a field in the document."""
    page = load(
        session,
        fake,
        page_with(
            "var c = document.createElement('input'); c.id = 'card';"
            "c.setAttribute('autocomplete', 'cc-number'); c.value = '4111111111111111';"
            "document.body.appendChild(c);"
            "var n = document.createElement('input'); n.id = 'name';"
            "n.setAttribute('autocomplete', 'cc-name'); n.value = 'Ana'; document.body.appendChild(n);"
            "var l = document.createElement('input'); l.id = 'later'; l.value = '6011000000000004';"
            "document.body.appendChild(l);"
            "var f = document.createElement('form'); f.id = 'form';"
            "f.setAttribute('autocomplete', 'new-password');"
            "f.innerHTML = '<input id=\"city\" value=\"Lisbon\"><p id=\"note\">Deliver by noon</p>';"
            "document.body.appendChild(f);"
            "setTimeout(function () { c.value = '5500000000000004';"
            " l.setAttribute('autocomplete', 'cc-number'); window.changed = true; }, 0);"
        ),
    )
    page.wait_for_function("window.changed === true")
    page.wait_for_function(f"document.getElementById('card').value === '{MASK}'")
    assert page.get_attribute("#card", "data-cobrowse-masked") == ""
    assert page.get_attribute("#card", "autocomplete") == "cc-number"  # kept: it still matches
    assert page.evaluate("document.getElementById('name').value") == "Ana"
    # the autocomplete set after the field was added masks it too
    page.wait_for_function(f"document.getElementById('later').value === '{MASK}'")
    assert page.get_attribute("#later", "data-cobrowse-masked") == ""
    # a form may say it (against autofill): only fields are masked, not what the form holds
    city, note = page.locator("#city"), page.locator("#note")
    held = [city.input_value(), note.text_content()]
    assert held == ["Lisbon", "Deliver by noon"]


def test_dynamically_added_password_and_masked_elements_are_masked(
    session: BrowserSession, fake: FakeProxy
) -> None:
    fake.masked = [".secret"]
    page = load(
        session,
        fake,
        page_with(
            "var p = document.createElement('input'); p.type = 'password'; p.id = 'pw'; p.value = 'hunter2';"
            "document.body.appendChild(p);"
            "var d = document.createElement('div'); d.className = 'secret'; d.id = 'card';"
            "d.innerHTML = '<span>4111 1111 1111 1111</span><img src=\"/card.png\">';"
            "document.body.appendChild(d);"
            "var t = document.createElement('input'); t.id = 'later'; t.value = 'visible';"
            "document.body.appendChild(t);"
            "var n = document.createElement('input'); n.className = 'secret'; n.id = 'note';"
            "n.placeholder = 'card 4111'; n.title = 'tip 4111'; n.setAttribute('data-card', '4111');"
            "document.body.appendChild(n);"
            "var a = document.createElement('textarea'); a.className = 'secret'; a.id = 'area';"
            "document.body.appendChild(a);"
            "setTimeout(function () { t.type = 'password'; p.value = 'again-secret';"
            "a.value = 'typed-secret'; window.changed = true; }, 0);"
        ),
    )
    page.wait_for_function("window.changed === true")
    page.wait_for_function("document.getElementById('later').value !== 'visible'")
    assert page.evaluate("document.getElementById('pw').value") == MASK
    assert page.evaluate("document.getElementById('later').value") == MASK
    assert page.get_attribute("#pw", "data-cobrowse-masked") == ""
    assert page.get_attribute("#card", "data-cobrowse-masked") == ""
    assert [page.get_attribute("#note", name) for name in ("placeholder", "title", "data-card")] == [
        MASK,
        MASK,
        None,
    ]  # text-bearing attributes masked, the others gone (rewriter/masking.py)
    assert page.evaluate("document.getElementById('area').value") == MASK
    assert page.inner_text("#card") == MASK
    assert page.evaluate("document.querySelector('#card').children.length") == 0  # as the server masks
    page.evaluate("document.getElementById('card').insertAdjacentHTML('beforeend', '<b>5500 0000</b>')")
    page.wait_for_function(f"document.getElementById('card').textContent === '{MASK}'")
    page.evaluate("document.getElementById('card').append('6011 0000')")  # a text node alone
    page.wait_for_function(f"document.getElementById('card').textContent === '{MASK}'")
    content = page.evaluate(
        "[...document.body.children].filter((e) => e.localName !== 'script').map((e) => e.outerHTML).join('')"
    )
    for secret in ("hunter2", "again-secret", "4111", "5500", "6011", "visible"):
        assert secret not in content
    assert page.evaluate("[...document.querySelectorAll('input')].map((i) => i.value)") == [MASK, MASK, MASK]


def test_cookie_store_api_shows_the_same_jar(session: BrowserSession, fake: FakeProxy) -> None:
    fake.cookies = [{"name": "sess", "value": "abc"}]
    page = load(
        session,
        fake,
        page_with(
            "window.out = null;"
            "(async function () {"
            "  var got = await cookieStore.get('sess');"
            "  await cookieStore.set('theme', 'dark');"
            "  await cookieStore.delete('sess');"
            "  var all = await cookieStore.getAll();"
            "  window.out = [got && got.value, all.map(function (c) { return c.name + '=' + c.value; }),"
            "                document.cookie];"
            "})();"
        ),
    )
    page.wait_for_function("window.out !== null")
    assert page.evaluate("window.out") == ["abc", ["theme=dark"], "theme=dark"]
    fake.wait_for(lambda: len([h for h in fake.hits if h.path == "/__cobrowse/cookies"]) >= 2)
    bodies = [json_body(h)["cookies"] for h in fake.hits if h.path == "/__cobrowse/cookies"]
    assert ["theme=dark"] in bodies and ["sess=; Max-Age=0"] in bodies
    assert [c["name"] for c in session.context.cookies()] == [f"__Host-cbjs_{SID}"]  # no real cookie was set


def test_cookie_store_api_takes_paths(session: BrowserSession, fake: FakeProxy) -> None:
    page = load(
        session,
        fake,
        page_with(
            "window.out = null;"
            "(async function () {"
            "  await cookieStore.set({name: 'root', value: '1', path: '/'});"
            "  await cookieStore.set({name: 'gone', value: '1', path: '/'});"
            "  await cookieStore.set({name: 'away', value: '1', path: '/elsewhere'});"
            "  await cookieStore.delete({name: 'gone', path: '/'});"  # not the default path, /dir
            "  window.out = document.cookie;"
            "})();"
        ),
        path="/dir/t.html",
    )
    page.wait_for_function("window.out !== null")
    assert page.evaluate("window.out") == "root=1"


def test_cookie_written_in_a_frame_is_seen_by_its_parent(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/frame.html", page_with("document.cookie = 'fromframe=1; path=/';"))
    page = load(session, fake, page_with("", body="<iframe src='/frame.html'></iframe>"))
    page.wait_for_function("document.cookie.indexOf('fromframe=1') >= 0")
    assert page.evaluate("document.cookie") == "fromframe=1"


def test_a_page_relaxing_document_domain_to_its_site_goes_on(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """Legacy ``document.domain = "upstream.example"`` on its pages: the proxy's host does
    not end with it, and the browser threw, stopping the page's script. A value the upstream host
    would take is a no-op (as in today's browsers); another still throws as the browser does."""
    page = load(
        session,
        fake,
        page_with(
            "document.domain = 'upstream.example'; document.domain = 'UPSTREAM.example';"
            "window.after = 'ran';"
            "try { document.domain = 'elsewhere.example'; window.other = 'set'; }"
            " catch (e) { window.other = e.name; }"
            "try { document.domain = 'example'; window.tld = 'set'; } catch (e) { window.tld = e.name; }"
        ),
    )
    outcomes = page.evaluate("[window.after, window.other, window.tld]")
    assert outcomes == ["ran", "SecurityError", "SecurityError"]
    assert page.evaluate("document.domain") == fake.proxy_host(UPSTREAM).split(":")[0]
    assert session.errors == []


def test_document_domain_set_to_itself_in_the_sandboxed_view_goes_on(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """The agent's view is a sandboxed frame, where the browser's ``document.domain`` setter throws
    whatever the value: ``document.domain = document.domain`` (the proxy's host) stopped the
    page's script there."""
    fake.add(UPSTREAM, "/d.html", page_with(
        "document.domain = document.domain; document.domain = 'upstream.example'; window.after = 'ran';"
    ))
    src = fake.proxy_url(UPSTREAM + "/d.html")
    fake.add("cobrowse.localhost", "/view.html",
             f'<iframe sandbox="allow-scripts allow-same-origin" src="{src}"></iframe>')
    session.page.goto(f"http://cobrowse.localhost:{fake.port}/view.html")
    frame = session.page.frame(url=src)
    assert frame is not None
    frame.wait_for_function("window.done === true")
    assert frame.evaluate("window.after") == "ran"
    assert session.errors == []
