"""How a relayed WebSocket ends, as the page sees it in Chromium (``CloseEvent`` code, reason,
``wasClean``) and as the upstream sees it: the upstream's close frame comes through as it was, a
connection the upstream drops is dropped (the page sees 1006 and reconnects, where a 1000 told
it the server had said goodbye), the browser's close reaches the upstream, and a refused upgrade
fails the page's WebSocket at once."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.proxy.conftest import Harness, OpenSession, Sites, make_settings
from tests.proxy.ws_upstream import Peer, WsUpstream, close_frame, frame, ws_upstream

pytestmark = pytest.mark.browser

OPEN_JS = """(url) => {
  const log = window.__ws = {events: [], messages: []};
  const ws = new WebSocket(url);
  ws.binaryType = 'arraybuffer';
  window.__socket = ws;
  ws.onopen = () => log.events.push('open');
  ws.onerror = () => log.events.push('error');
  ws.onmessage = (e) => log.messages.push(typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
  ws.onclose = (e) => {
    log.events.push('close');
    log.close = {code: e.code, reason: e.reason, wasClean: e.wasClean};
  };
}"""


class Proxied:
    """A proxy for one scripted upstream, with a page of a session open on it."""

    def __init__(self, harness: Harness, session: OpenSession, page: Any, upstream: WsUpstream) -> None:
        self.harness, self.session, self.page, self.upstream = harness, session, page, upstream

    def open(self, path: str, origin: str | None = None) -> None:
        host = self.harness.host(self.session, origin or self.upstream.origin)
        self.page.evaluate(OPEN_JS, f"ws://{host}{path}")

    def closed(self) -> dict[str, Any]:
        """The page's ``CloseEvent``, once it has come (15 s at most)."""
        self.page.wait_for_function("() => window.__ws.close !== undefined", timeout=15000)
        return dict(self.page.evaluate("() => ({events: window.__ws.events, ...window.__ws.close})"))


@pytest.fixture
def proxied(
    browser: Any, sites: Sites, redis_url: str, namespace: str
) -> Iterator[Callable[[dict[str, Callable[[Peer], None]]], Proxied]]:
    opened: list[Callable[[], None]] = []

    def open_with(
        scripts: dict[str, Callable[[Peer], None]], also: tuple[str, ...] = (), **settings: Any
    ) -> Proxied:
        context = ws_upstream(scripts)
        upstream = context.__enter__()
        opened.append(lambda: context.__exit__(None, None, None))
        harness = Harness(make_settings(sites, dev_allow_origins=(upstream.origin, *also),
                                        **settings),
                          redis_url, namespace)
        opened.append(harness.close)
        session = harness.open_session((upstream.origin, *also))
        browser_context = browser.new_context()
        opened.append(browser_context.close)
        page = browser_context.new_page()
        page.goto(harness.enter_url(session, upstream.origin + "/"))
        page.wait_for_selector("#ready")
        return Proxied(harness, session, page, upstream)

    try:
        yield open_with
    finally:
        for close in reversed(opened):
            close()


def _hello_then(end: Callable[[Peer], None]) -> Callable[[Peer], None]:
    """Accept, send one message (so the page is surely open), then end as ``end`` does."""
    def script(peer: Peer) -> None:
        peer.accept()
        peer.sock.sendall(frame(0x1, b"hello"))
        end(peer)
    return script


def _no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


@pytest.mark.parametrize("end", ["reset", "fin"])
def test_an_upstream_that_drops_the_connection_is_an_abnormal_close_in_the_page(
    proxied: Callable[..., Proxied], end: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No close frame from upstream: the page sees 1006, not clean (it was a clean 1000: apps
    that reconnect on 1006 took it for the server's goodbye and went stale)."""
    def drop(peer: Peer) -> None:
        if end == "reset":
            peer.reset()
        else:
            peer.sock.shutdown(socket.SHUT_WR)
            peer.at_eof()  # the proxy ends its side too

    p = proxied({"/ws": _hello_then(drop)})
    p.open("/ws")
    closed = p.closed()
    assert closed["events"] == ["open", "close"]
    assert (closed["code"], closed["reason"], closed["wasClean"]) == (1006, "", False)
    assert p.page.evaluate("() => window.__ws.messages") == ["hello"]
    _no_traceback(caplog)


@pytest.mark.parametrize(("violation", "code"), [
    (close_frame(1004), 1002),  # a reserved code
    (frame(0x1, b"caf\xe9"), 1007),  # text that is not UTF-8
], ids=["reserved-code", "text-not-utf8"])
def test_an_upstream_that_breaks_the_protocol_is_an_abnormal_close_in_the_page(
    proxied: Callable[..., Proxied], violation: bytes, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The proxy fails the connection, as the browser would have: the upstream is told why, and
    the page sees 1006 (it saw the proxy's 1002 or 1007, a close the upstream never sent)."""
    def violate(peer: Peer) -> None:
        peer.sock.sendall(violation)
        peer.receive_until_close()
        peer.at_eof()

    p = proxied({"/ws": _hello_then(violate)})
    p.open("/ws")
    closed = p.closed()
    assert (closed["code"], closed["reason"], closed["wasClean"]) == (1006, "", False)
    assert p.upstream.done.wait(10) and not p.upstream.errors
    assert p.upstream.peers[0].seen[-1].close_code == code
    _no_traceback(caplog)
