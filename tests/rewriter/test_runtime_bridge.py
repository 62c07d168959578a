"""The runtime's postMessage bridge with the virtual browser, and ``cssPath`` (docs/PROTOCOL.md).

A "console" page on ``cobrowse.localhost:PORT`` (the console origin of the config) embeds the
proxied page in an iframe, as the virtual browser does; a page on ``evil.localhost:PORT`` embeds
the same iframe to show that other origins are ignored.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from runtime_fixtures.fake_proxy import (
    DOMAIN,
    UPSTREAM,
    BrowserSession,
    FakeProxy,
    browser_session,
    serve_fake_proxy,
)

pytestmark = pytest.mark.browser

MASK = "\u2022" * 6

FRAME_PAGE = """<!doctype html><html><head><title>Bridge page</title>
<style>body { margin: 0 } #tall { height: 4000px; position: relative }
#target { position: absolute; top: 1500px; height: 20px }</style></head><body>
<div id="tall">
  <a id="link" href="/elsewhere.html" onclick="window.pageClicks++">link</a>
  <input id="name"><input id="other"><input id="pw" type="password"><input id="box" type="checkbox">
  <ul><li>one</li><li class="x">two</li></ul>
  <div id="target">target</div>
  <select id="pick"><option>first</option><option>second</option></select>
  <input id="r1" type="radio" name="r" checked><input id="r2" type="radio" name="r">
  <input id="level" type="range" min="0" max="10" value="5">
  <a id="up" href="/elsewhere.html?by=link" target="_top">up</a>
  <form id="upform" action="/elsewhere.html" target="_parent">
    <input name="by" value="form"><button id="upsubmit">go</button></form>
  <a id="upstop" href="/elsewhere.html?by=stopped" target="_top" onclick="event.stopPropagation()">up</a>
  <form id="upscript" action="/elsewhere.html" target="_top"><input name="by" value="script"></form>
  <button id="upscripted" onclick="document.getElementById('upscript').submit()">script</button>
</div>
<script>
window.$ = function (id) { return document.getElementById(id); };
window.pageClicks = 0; window.inputEvents = 0; window.seen = []; window.scrolls = 0;
document.addEventListener('input', function () { window.inputEvents++; });
addEventListener('scroll', function () { window.scrolls++; });
addEventListener('message', function (e) {
  window.seen.push(e.data);
  if (e.data === 'marker') parent.postMessage('pong', '*');
});
</script></body></html>"""

PARENT_PAGE = """<!doctype html><html><body style="margin:0">
<iframe id="f" src="{src}" style="border:0;width:800px;height:400px"></iframe>
<script>
window.got = [];
addEventListener('message', function (e) {{
  if (e.source !== document.getElementById('f').contentWindow) return;
  window.got.push({{origin: e.origin, data: e.data}});
}});
window.send = function (m) {{ document.getElementById('f').contentWindow.postMessage(m, '*'); }};
</script></body></html>"""


@pytest.fixture
def fake() -> Iterator[FakeProxy]:
    with serve_fake_proxy() as server:
        server.add(UPSTREAM, "/bridge.html", FRAME_PAGE)
        server.add(UPSTREAM, "/elsewhere.html", "<html><head></head><body>elsewhere</body></html>")
        src = server.proxy_url(UPSTREAM + "/bridge.html")
        server.add(DOMAIN, "/console.html", PARENT_PAGE.format(src=src))
        server.add("evil.localhost", "/console.html", PARENT_PAGE.format(src=src))
        yield server


@pytest.fixture
def session(browser: Any, fake: FakeProxy) -> Iterator[BrowserSession]:
    with browser_session(browser, fake) as s:
        yield s


def open_console(session: BrowserSession, fake: FakeProxy, host: str = DOMAIN) -> tuple[Any, Any]:
    page = session.page
    page.goto(f"http://{host}:{fake.port}/console.html")
    frame = page.frame(url=fake.proxy_url(UPSTREAM + "/bridge.html"))
    assert frame is not None
    frame.wait_for_function("window.pageClicks === 0")
    return page, frame


def messages(page: Any, kind: str) -> list[dict[str, Any]]:
    return [
        m["data"]
        for m in page.evaluate("window.got")
        if isinstance(m["data"], dict) and m["data"].get("type") == kind
    ]


def wait_message(page: Any, kind: str, count: int = 1) -> list[dict[str, Any]]:
    page.wait_for_function(
        "([kind, count]) => window.got.filter((m) => m.data && m.data.type === kind).length >= count",
        arg=[kind, count],
    )
    return messages(page, kind)


def send(page: Any, message: dict[str, Any]) -> None:
    page.evaluate("(m) => window.send(m)", {"cobrowse": 1, **message})


def roundtrip(page: Any, frame: Any) -> None:
    """Wait until everything the parent sent before this has been handled by the frame."""
    count = len(page.evaluate("window.got.filter((m) => m.data === 'pong')"))
    page.evaluate("window.send('marker')")
    page.wait_for_function("(n) => window.got.filter((m) => m.data === 'pong').length > n", arg=count)


def test_loading_ready_and_navigated_carry_upstream_urls(session: BrowserSession, fake: FakeProxy) -> None:
    page, frame = open_console(session, fake)
    ready = wait_message(page, "ready")
    assert ready == [
        {"cobrowse": 1, "type": "ready", "url": UPSTREAM + "/bridge.html", "title": "Bridge page"}
    ]
    # "loading" first, as the runtime starts (the page shows before it is ready)
    kinds = [m["data"]["type"] for m in page.evaluate("window.got") if isinstance(m["data"], dict)]
    assert kinds[:2] == ["loading", "ready"]
    assert messages(page, "loading") == [{"cobrowse": 1, "type": "loading", "url": UPSTREAM + "/bridge.html"}]
    origins = {m["origin"] for m in page.evaluate("window.got")}
    assert origins == {"http://" + fake.proxy_host()}
    frame.evaluate("history.pushState({}, '', '/spa/route?x=1')")
    assert wait_message(page, "navigated")[-1]["url"] == UPSTREAM + "/spa/route?x=1"
    frame.evaluate("document.title = 'Renamed'; location.hash = 'part'")
    last = wait_message(page, "navigated", 2)[-1]
    assert last == {
        "cobrowse": 1,
        "type": "navigated",
        "url": UPSTREAM + "/spa/route?x=1#part",
        "title": "Renamed",
    }
    frame.evaluate("history.back()")
    assert wait_message(page, "navigated", 3)[-1]["url"] == UPSTREAM + "/spa/route?x=1"
    assert session.errors == []


def test_scroll_anchored_to_an_element_else_pixels(session: BrowserSession, fake: FakeProxy) -> None:
    page, frame = open_console(session, fake)
    send(page, {"type": "scroll", "x": 0, "y": 10, "anchor": {"selector": "#target", "offset": 100}})
    frame.wait_for_function("window.scrollY === 1400")
    send(page, {"type": "scroll", "x": 0, "y": 700, "anchor": {"selector": "#missing", "offset": 100}})
    frame.wait_for_function("window.scrollY === 700")
    send(page, {"type": "scroll", "x": 0, "y": 250})
    frame.wait_for_function("window.scrollY === 250")


def test_field_values_and_masking(session: BrowserSession, fake: FakeProxy) -> None:
    page, frame = open_console(session, fake)
    send(page, {"type": "field", "selector": "#name", "value": "Alice"})
    send(page, {"type": "field", "selector": "#other", "value": "secret", "masked": True})
    send(page, {"type": "field", "selector": "#pw", "value": "leaked"})
    send(page, {"type": "field", "selector": "#box", "checked": True})
    roundtrip(page, frame)
    values = frame.evaluate("['name', 'other', 'pw'].map((id) => document.getElementById(id).value)")
    assert values == ["Alice", MASK, MASK]
    assert frame.evaluate("document.getElementById('box').checked") is True
    assert frame.evaluate("window.inputEvents") == 2  # the masked ones dispatch nothing
    assert "leaked" not in frame.content() and "secret" not in frame.content()


def test_bridge_messages_are_hidden_from_the_page(session: BrowserSession, fake: FakeProxy) -> None:
    page, frame = open_console(session, fake)
    send(page, {"type": "mode", "mode": "pointer"})
    send(page, {"type": "highlight", "selector": "#target"})
    roundtrip(page, frame)
    assert frame.evaluate("window.seen") == ["marker"]


def test_agent_pointer_in_document_coordinates(session: BrowserSession, fake: FakeProxy) -> None:
    page, frame = open_console(session, fake)
    send(page, {"type": "scroll", "x": 0, "y": 100})
    frame.wait_for_function("window.scrollY === 100")
    page.mouse.move(50, 60)
    roundtrip(page, frame)
    assert messages(page, "agent-pointer") == []  # mode is "none"
    send(page, {"type": "mode", "mode": "pointer"})
    roundtrip(page, frame)
    page.mouse.move(120, 80)
    pointer = wait_message(page, "agent-pointer")[-1]
    assert (pointer["x"], pointer["y"]) == (120, 180)
    send(page, {"type": "mode", "mode": "scribble"})  # no such mode: the mode stays
    roundtrip(page, frame)
    page.mouse.move(130, 90)
    pointer = wait_message(page, "agent-pointer", 2)[-1]
    assert (pointer["x"], pointer["y"]) == (130, 190)


def test_highlight_mode_click_is_prevented_and_reported(session: BrowserSession, fake: FakeProxy) -> None:
    page, frame = open_console(session, fake)
    send(page, {"type": "mode", "mode": "highlight"})
    roundtrip(page, frame)
    frame.click("#link")
    report = wait_message(page, "agent-click-highlight")
    assert report == [{"cobrowse": 1, "type": "agent-click-highlight", "selector": "#link"}]
    assert frame.evaluate("window.pageClicks") == 0
    assert frame.url == fake.proxy_url(UPSTREAM + "/bridge.html")
    # the page's own clicks (element.click(), untrusted) are none of the agent's
    clicks = frame.evaluate(
        "() => { let n = 0; const li = document.querySelector('li'); li.addEventListener('click', () => n++);"
        " li.click(); return n; }"
    )
    assert clicks == 1
    assert len(messages(page, "agent-click-highlight")) == 1
    send(page, {"type": "mode", "mode": "none"})
    roundtrip(page, frame)
    frame.click("#link")
    frame.wait_for_url(fake.proxy_url(UPSTREAM + "/elsewhere.html"))


def test_scrolled_only_for_the_agents_own_scrolls_while_follow_is_off(
    session: BrowserSession, fake: FakeProxy
) -> None:
    page, frame = open_console(session, fake)
    send(page, {"type": "scroll", "x": 0, "y": 900})
    frame.wait_for_function("window.scrollY === 900 && window.scrolls >= 1")
    send(page, {"type": "follow", "on": True})
    roundtrip(page, frame)
    frame.evaluate("scrolls = 0; scrollTo(0, 300)")
    frame.wait_for_function("window.scrolls >= 1")
    send(page, {"type": "follow", "on": False})
    roundtrip(page, frame)
    frame.evaluate("scrollTo(0, 600)")
    scrolled = wait_message(page, "scrolled")
    assert scrolled == [{"cobrowse": 1, "type": "scrolled", "x": 0, "y": 600}]


def test_position_follows_every_scroll_of_the_window_whatever_scrolled_it(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """The console keeps its ink on the page as it scrolls: "position" says where the window is,
    whether the console scrolled it (follow on) or the page or the agent did, the last one always."""
    page, frame = open_console(session, fake)
    wait_message(page, "ready")
    send(page, {"type": "follow", "on": True})
    send(page, {"type": "scroll", "x": 0, "y": 900})
    page.wait_for_function(
        "window.got.some((m) => m.data && m.data.type === 'position' && m.data.y === 900)"
    )
    frame.evaluate("() => new Promise((done) => { let y = 900; (function step() {"
                   " scrollTo(0, y += 40); if (y < 1700) requestAnimationFrame(step); else done(); })(); })")
    page.wait_for_function(
        "window.got.some((m) => m.data && m.data.type === 'position' && m.data.y === 1700)"
    )
    positions = messages(page, "position")
    assert positions[-1] == {"cobrowse": 1, "type": "position", "x": 0, "y": 1700}


def test_messages_from_another_origin_are_ignored(session: BrowserSession, fake: FakeProxy) -> None:
    page, frame = open_console(session, fake, host="evil.localhost")
    bad = {"cobrowse": 1, "type": "scroll", "x": 0, "y": 500}
    page.evaluate("(m) => window.send(m)", bad)
    page.evaluate(
        "(m) => window.send(m)", {"cobrowse": 1, "type": "field", "selector": "#name", "value": "x"}
    )
    roundtrip(page, frame)
    assert frame.evaluate("window.scrollY") == 0
    assert frame.evaluate("document.getElementById('name').value") == ""
    assert frame.evaluate("window.seen")[0] == bad  # not taken as a bridge message: the page saw it
    assert [m["data"] for m in page.evaluate("window.got")] == ["pong"]  # no ready posted to this origin


def test_messages_from_another_window_of_the_console_origin_are_ignored(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """Only the parent speaks for the console: another window of its origin (here a blank frame
    of the console page) is not the virtual browser."""
    page, frame = open_console(session, fake)
    wait_message(page, "ready")
    bad = {"cobrowse": 1, "type": "scroll", "x": 0, "y": 500}
    page.evaluate(
        """(m) => {
          const other = document.createElement('iframe');
          document.body.appendChild(other);
          const post = '(m) => parent.document.getElementById("f").contentWindow.postMessage(m, "*")';
          other.contentWindow.eval(post)(m);
        }""",
        bad,
    )
    roundtrip(page, frame)
    assert frame.evaluate("window.scrollY") == 0
    assert frame.evaluate("window.seen")[0] == bad  # the page saw it: not a bridge message


CSS_PATH_PAGE = """<!doctype html><html><head><title>paths</title></head><body>
<div id="main"><ul><li>a</li><li id="dup">b</li><li id="dup">c</li></ul><p>x</p><ul><li>d</li></ul></div>
<section><span id="only">u</span><svg><foreignObject><div>f</div></foreignObject></svg></section>
<div id="a:b.c">weird id</div>
<script>window.done = true;</script></body></html>"""


def test_css_path(session: BrowserSession, fake: FakeProxy) -> None:
    fake.add(UPSTREAM, "/paths.html", CSS_PATH_PAGE)
    page = session.page
    page.goto(fake.proxy_url(UPSTREAM + "/paths.html"))
    page.wait_for_function("window.done === true")
    paths = page.evaluate(
        """() => {
          const p = window.__cobrowse.cssPath;
          const q = (s) => document.querySelector(s);
          return [p(q('#main')), p(q('#main ul li')), p(document.querySelectorAll('#main li')[1]),
                  p(q('#main > ul:nth-of-type(2) > li')), p(q('section')), p(q('#only')),
                  p(q('foreignObject div')), p(document.getElementById('a:b.c')), p(document.documentElement),
                  p(document.createElement('i')),
                  p(document.body)];
        }"""
    )
    assert paths == [
        "#main",
        "#main > ul:nth-of-type(1) > li:nth-of-type(1)",
        "#main > ul:nth-of-type(1) > li:nth-of-type(2)",
        "#main > ul:nth-of-type(2) > li:nth-of-type(1)",
        "html > body:nth-of-type(1) > section:nth-of-type(1)",
        "#only",
        "html > body:nth-of-type(1) > section:nth-of-type(1) > svg:nth-of-type(1)"
        " > foreignObject:nth-of-type(1)"
        " > div:nth-of-type(1)",
        "#a\\:b\\.c",
        "html",
        None,
        "html > body:nth-of-type(1)",
    ]
    every = page.evaluate(
        "[...document.querySelectorAll('*')]"
        ".every((e) => document.querySelector(window.__cobrowse.cssPath(e)) === e)"
    )
    assert every is True
    assert page.evaluate("Object.isFrozen(window.__cobrowse)") is True


def test_while_following_the_agents_edits_of_fields_do_not_happen_and_the_console_is_told(
    session: BrowserSession, fake: FakeProxy
) -> None:
    """The view's fields show what the visitor types: with Follow on, the agent's typing, ticking
    and choosing change nothing (the page hears nothing) and the console gets `edit-refused`; with
    Follow off the page is the agent's own and takes them."""
    page, frame = open_console(session, fake)
    wait_message(page, "ready")
    send(page, {"type": "follow", "on": True})
    roundtrip(page, frame)
    frame.locator("#name").type("agent")
    frame.locator("#box").click()
    frame.locator("#r2").click()
    frame.locator("#pick").focus()
    frame.page.keyboard.press("ArrowDown")
    frame.locator("#r1").focus()
    frame.page.keyboard.press("ArrowRight")
    # a slider's move cannot be prevented: it is put back
    frame.locator("#level").focus()
    frame.page.keyboard.press("ArrowRight")
    state = "[$('name').value, $('box').checked, $('r1').checked, $('pick').value, $('level').value]"
    assert frame.evaluate(state) == ["", False, True, "first", "5"]
    assert wait_message(page, "edit-refused")[0] == {"cobrowse": 1, "type": "edit-refused"}
    # the visitor's values still come in
    send(page, {"type": "field", "selector": "#name", "value": "Visitor"})
    roundtrip(page, frame)
    assert frame.evaluate("$('name').value") == "Visitor"

    send(page, {"type": "follow", "on": False})
    roundtrip(page, frame)
    refused = len(messages(page, "edit-refused"))
    frame.locator("#other").type("own")
    frame.locator("#box").click()
    frame.locator("#pick").focus()
    frame.page.keyboard.press("ArrowDown")
    frame.locator("#level").focus()
    frame.page.keyboard.press("ArrowRight")
    own = "[$('other').value, $('box').checked, $('pick').value, $('level').value]"
    assert frame.evaluate(own) == ["own", True, "second", "6"]
    roundtrip(page, frame)
    assert len(messages(page, "edit-refused")) == refused
    assert session.errors == []


@pytest.mark.parametrize(
    ("element", "by"),
    [("#up", "link"), ("#upsubmit", "form"), ("#upstop", "stopped"), ("#upscripted", "script")],
)
def test_a_link_or_form_aimed_at_the_window_above_loads_in_the_view(
    session: BrowserSession, fake: FakeProxy, element: str, by: str
) -> None:
    """``target=_top``/``_parent`` in the view would replace the agent's whole virtual browser (the
    real view's sandbox refuses it, and the click did nothing): it loads in the frame, as it loads
    in the visitor's window; also when the page's handler stops the click, and for a script's
    ``form.submit()`` (no submit event)."""
    page, frame = open_console(session, fake)
    wait_message(page, "ready")
    console_url = page.url
    frame.click(element)
    page.wait_for_function(
        "(by) => window.got.some((m) => m.data && m.data.type === 'ready'"
        " && m.data.url.endsWith('by=' + by))",
        arg=by,
    )
    assert page.url == console_url
    assert session.errors == []
