"""How a relayed WebSocket ends, as the page sees it in Chromium (``CloseEvent`` code, reason,
``wasClean``) and as the upstream sees it: the upstream's close frame comes through as it was, a
connection the upstream drops is dropped (the page sees 1006 and reconnects, where a 1000 told
it the server had said goodbye), the browser's close reaches the upstream, and a refused upgrade
fails the page's WebSocket at once."""

from __future__ import annotations

import hashlib
import logging
import random
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy import websocket_close
from tests.proxy.conftest import Harness, OpenSession, Sites, make_settings
from tests.proxy.test_tls import write_pki
from tests.proxy.ws_upstream import Frame, Peer, WsUpstream, close_frame, frame, ws_upstream

pytestmark = pytest.mark.browser

OPEN_JS = """([url, protocols]) => {
  const log = window.__ws = {events: [], messages: []};
  const ws = new WebSocket(url, protocols);
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

    def open(self, path: str, origin: str | None = None, protocols: list[str] | None = None) -> None:
        host = self.harness.host(self.session, origin or self.upstream.origin)
        self.page.evaluate(OPEN_JS, [f"ws://{host}{path}", protocols or []])

    def closed(self) -> dict[str, Any]:
        """The page's ``CloseEvent``, once it has come (15 s at most)."""
        self.page.wait_for_function("() => window.__ws.close !== undefined", timeout=15000)
        return dict(self.page.evaluate("() => ({events: window.__ws.events, ...window.__ws.close})"))


@pytest.fixture
def proxied(
    browser: Any, sites: Sites, redis_url: str, namespace: str, tmp_path: Path
) -> Iterator[Callable[[dict[str, Callable[[Peer], None]]], Proxied]]:
    opened: list[Callable[[], None]] = []

    def open_with(
        scripts: dict[str, Callable[[Peer], None]], also: tuple[str, ...] = (), tls: bool = False,
        **settings: Any
    ) -> Proxied:
        server_tls = None
        if tls:
            ca, cert, key = write_pki(tmp_path, "ws upstream CA")
            server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            server_tls.load_cert_chain(cert, key)
            settings["upstream_ca_file"] = str(ca)
        context = ws_upstream(scripts, server_tls)
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


@pytest.mark.parametrize("scheme", ["ws", "wss"])
@pytest.mark.parametrize("end", ["reset", "fin"])
def test_an_upstream_that_drops_the_connection_is_an_abnormal_close_in_the_page(
    proxied: Callable[..., Proxied], end: str, scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    """No close frame from upstream: the page sees 1006, not clean (it was a clean 1000: apps
    that reconnect on 1006 took it for the server's goodbye and went stale). Over TLS, a plain
    end is one without TLS's own close_notify either."""
    hello_seen = threading.Event()

    def drop(peer: Peer) -> None:
        assert hello_seen.wait(15)  # a reset throws away what the proxy has not read yet
        if end == "reset":
            peer.reset()
        else:
            peer.sock.shutdown(socket.SHUT_WR)
            assert peer.at_eof()  # the proxy ends its side too

    p = proxied({"/ws": _hello_then(drop)}, tls=scheme == "wss")
    p.open("/ws")
    p.page.wait_for_function("() => window.__ws.messages.length === 1", timeout=15000)
    hello_seen.set()
    closed = p.closed()
    assert closed["events"] == ["open", "close"]
    assert (closed["code"], closed["reason"], closed["wasClean"]) == (1006, "", False)
    assert p.page.evaluate("() => window.__ws.messages") == ["hello"]
    assert p.upstream.done.wait(10) and not p.upstream.errors
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


CLOSES = [
    (1000, "done here"),
    (1000, ""),
    (1001, "restarting"),
    (1011, "unexpected condition"),
    (4000, ""),
    (4321, "réunion terminée ✓"),
    (4999, "é" * 61 + "x"),  # 123 bytes: the most a close frame carries
]


@pytest.mark.parametrize(("code", "reason"), CLOSES)
def test_the_upstreams_close_frame_reaches_the_page_as_it_was(
    proxied: Callable[..., Proxied], code: int, reason: str
) -> None:
    answers: list[tuple[int | None, str]] = []

    def close(peer: Peer) -> None:
        peer.sock.sendall(close_frame(code, reason))
        answer = peer.receive_until_close()
        answers.append((answer.close_code, answer.close_reason))
        assert peer.at_eof()

    assert len(reason.encode()) <= 123
    p = proxied({"/ws": _hello_then(close)})
    p.open("/ws")
    closed = p.closed()
    assert closed["events"] == ["open", "close"]
    assert (closed["code"], closed["reason"], closed["wasClean"]) == (code, reason, True)
    assert p.upstream.done.wait(10) and not p.upstream.errors
    assert answers and answers[0][0] == code  # the close handshake went both ways


def test_a_close_frame_without_a_code_reaches_the_page_as_1005(proxied: Callable[..., Proxied]) -> None:
    def close(peer: Peer) -> None:
        peer.sock.sendall(frame(0x8))
        peer.receive_until_close()

    p = proxied({"/ws": _hello_then(close)})
    p.open("/ws")
    closed = p.closed()
    assert (closed["code"], closed["reason"], closed["wasClean"]) == (1005, "", True)


@pytest.mark.parametrize(("code", "reason"), [(1000, "bye"), (4100, "agent left ✓"), (None, "")])
def test_the_browsers_close_reaches_the_upstream(
    proxied: Callable[..., Proxied], code: int | None, reason: str
) -> None:
    def echo_close(peer: Peer) -> None:
        peer.accept()
        peer.sock.sendall(frame(0x1, b"hello"))
        received = peer.receive_until_close()
        peer.sock.sendall(frame(0x8, received.payload))  # the answer, as servers echo it
        assert peer.at_eof()

    p = proxied({"/ws": echo_close})
    p.open("/ws")
    p.page.wait_for_function("() => window.__ws.messages.length === 1", timeout=15000)
    p.page.evaluate("([code, reason]) => code === null ? window.__socket.close() "
                    ": window.__socket.close(code, reason)", [code, reason])
    closed = p.closed()
    assert p.upstream.done.wait(10) and not p.upstream.errors
    close = p.upstream.peers[0].seen[-1]
    assert (close.close_code, close.close_reason) == (code, reason)
    assert (closed["code"], closed["reason"], closed["wasClean"]) == (code or 1005, reason, True)


def _refuse(status: bytes) -> Callable[[Peer], None]:
    def script(peer: Peer) -> None:
        body = b"no websocket here"
        peer.sock.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\nContent-Length: "
                          + str(len(body)).encode() + b"\r\n\r\n" + body)
        assert peer.at_eof()  # the proxy lets the connection go

    return script


def _assert_the_upgrade_fails(p: Proxied, caplog: pytest.LogCaptureFixture) -> None:
    """The page's WebSocket fails at once (error, then close 1006), and nothing crashed."""
    p.open("/ws")
    closed = p.closed()
    assert closed["events"] == ["error", "close"]
    assert (closed["code"], closed["wasClean"]) == (1006, False)
    assert p.upstream.done.wait(10) and not p.upstream.errors
    _no_traceback(caplog)


@pytest.mark.parametrize("status", [b"403 Forbidden", b"404 Not Found", b"500 Internal Server Error"])
def test_an_upgrade_the_upstream_refuses_fails_the_pages_websocket(
    proxied: Callable[..., Proxied], status: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    p = proxied({"/ws": _refuse(status)})
    _assert_the_upgrade_fails(p, caplog)


def test_an_upgrade_the_upstream_never_answers_fails_the_pages_websocket(
    proxied: Callable[..., Proxied], caplog: pytest.LogCaptureFixture
) -> None:
    """Past the upstream timeout the proxy answers 504 and lets the upstream's connection go."""
    def never_answer(peer: Peer) -> None:
        assert peer.at_eof()

    p = proxied({"/ws": never_answer}, upstream_timeout_s=1.0)
    _assert_the_upgrade_fails(p, caplog)


def test_an_upgrade_to_an_unreachable_upstream_fails_the_pages_websocket(
    proxied: Callable[..., Proxied], caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}"
    p = proxied({}, also=(gone,))
    p.open("/ws", gone)
    closed = p.closed()
    assert closed["events"] == ["error", "close"]
    assert (closed["code"], closed["wasClean"]) == (1006, False)
    _no_traceback(caplog)


def test_the_subprotocol_is_chosen_by_the_upstream(proxied: Callable[..., Proxied]) -> None:
    """graphql-ws, STOMP, MQTT and the like: the page's subprotocols reach the upstream, and its
    choice reaches the page."""
    def serve(peer: Peer) -> None:
        assert peer.header("sec-websocket-protocol") == "graphql-transport-ws, graphql-ws"
        peer.accept(b"Sec-WebSocket-Protocol: graphql-ws\r\n")
        peer.sock.sendall(frame(0x1, b"hello"))
        peer.sock.sendall(frame(0x8, peer.receive_until_close().payload))

    p = proxied({"/ws": serve})
    p.open("/ws", protocols=["graphql-transport-ws", "graphql-ws"])
    p.page.wait_for_function("() => window.__ws.messages.length === 1", timeout=15000)
    assert p.page.evaluate("() => window.__socket.protocol") == "graphql-ws"
    p.page.evaluate("() => window.__socket.close(1000)")
    assert p.closed()["wasClean"] is True
    assert p.upstream.done.wait(10) and not p.upstream.errors


HEX_JS = """async (data) => Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', data)),
                                 (b) => b.toString(16).padStart(2, '0')).join('')"""


def test_large_binary_and_bursts_of_messages_arrive_untouched_and_in_order(
    proxied: Callable[..., Proxied]
) -> None:
    """Both ways: a message of megabytes in fragments, a text message whose fragments split a
    character, a thousand small messages in one write, each as it was and in order."""
    big = random.Random(7).randbytes(3_000_000)
    burst = [f"s{i}" for i in range(1000)]
    received: list[Frame] = []

    def serve(peer: Peer) -> None:
        peer.accept()
        peer.sock.sendall(frame(0x2, big[:1_000_000], fin=False)
                          + frame(0x0, big[1_000_000:2_000_000], fin=False) + frame(0x0, big[2_000_000:]))
        peer.sock.sendall(frame(0x1, "aé".encode()[:2], fin=False) + frame(0x0, "é✓".encode()[1:]))
        peer.sock.sendall(b"".join(frame(0x1, m.encode()) for m in burst))
        while (message := peer.receive_message()).opcode != 0x8:
            received.append(message)
            peer.sock.sendall(frame(message.opcode, message.payload))  # echoed
        peer.sock.sendall(frame(0x8, message.payload))
        assert peer.at_eof()

    p = proxied({"/ws": serve})
    p.open("/ws")
    p.page.wait_for_function("() => window.__ws.messages.length === 1002", timeout=20000)
    first = p.page.evaluate(f"async () => [await ({HEX_JS})(window.__ws.messages[0]), "
                            "window.__ws.messages.slice(1)]")
    assert first == [hashlib.sha256(big).hexdigest(), ["aé✓", *burst]]

    sent = p.page.evaluate(f"""async () => {{
      const data = new Uint8Array(2_500_000);
      for (let i = 0; i < data.length; i += 65536) crypto.getRandomValues(data.subarray(i, i + 65536));
      window.__sent = data;
      window.__socket.send(data);
      for (let i = 0; i < 1000; i++) window.__socket.send('c' + i);
      return await ({HEX_JS})(data);
    }}""")
    p.page.wait_for_function("() => window.__ws.messages.length === 2003", timeout=20000)
    echoed = p.page.evaluate("""() => {
      const [data, ...texts] = window.__ws.messages.slice(1002), sent = window.__sent;
      return [data.length === sent.length && data.every((b, i) => b === sent[i]), texts];
    }""")
    assert echoed == [True, [f"c{i}" for i in range(1000)]]
    assert [m.opcode for m in received] == [0x2] + [0x1] * 1000
    assert hashlib.sha256(received[0].payload).hexdigest() == sent
    assert [m.payload.decode() for m in received[1:]] == [f"c{i}" for i in range(1000)]
    p.page.evaluate("() => window.__socket.close(1000, 'all seen')")
    closed = p.closed()
    assert (closed["code"], closed["reason"], closed["wasClean"]) == (1000, "all seen", True)
    assert p.upstream.done.wait(10) and not p.upstream.errors


def test_compressed_messages_arrive_untouched(browser: Any, harness: Harness, sites: Sites) -> None:
    """With permessage-deflate (Chromium offers it, uvicorn takes it) the proxy inflates and
    deflates each side's messages: a large text message made of repeats and noise comes back as
    it was sent."""
    s = harness.open_session((sites.shop.origin,))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(harness.enter_url(s, sites.shop.origin + "/about"))
        result = page.evaluate("""(url) => new Promise((resolve) => {
          const noise = new Uint8Array(200000);
          for (let i = 0; i < noise.length; i += 65536) crypto.getRandomValues(noise.subarray(i, i + 65536));
          const text = 'é✓ repeat '.repeat(50000)
            + Array.from(noise, (b) => String.fromCharCode(32 + b % 90)).join('');
          const ws = new WebSocket(url);
          ws.onopen = () => ws.send(text);
          ws.onmessage = (e) => { resolve([ws.extensions, e.data === text, e.data.length]); ws.close(); };
          ws.onclose = (e) => resolve(['closed', e.code]);
        })""", f"ws://{harness.host(s, sites.shop.origin)}/ws")
        assert result[0].startswith("permessage-deflate") and result[1] is True, result
    finally:
        context.close()


def test_a_message_over_the_limit_fails_the_connection_of_its_sender(
    proxied: Callable[..., Proxied], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """mitmproxy holds a message whole before it relays it: an upstream sending one without end
    grew the proxy's memory without bound. Past the limit the sender is told 1009 and the page's
    connection is dropped (1006), as for any connection the proxy fails; a message under it
    (fragments and all) still arrives."""
    monkeypatch.setattr(websocket_close, "MAX_MESSAGE_BYTES", 256 * 1024)
    told: list[tuple[int | None, str]] = []

    def serve(peer: Peer) -> None:
        peer.accept()
        peer.sock.sendall(frame(0x2, b"a" * 150_000, fin=False) + frame(0x0, b"b" * 100_000))  # under it
        try:  # then fragments that never end: refused once past 256 KiB
            for _ in range(40):
                peer.sock.sendall(frame(0x2 if _ == 0 else 0x0, b"c" * 100_000, fin=False))
        except OSError:
            pass  # the proxy closed the connection under the rest
        answer = peer.receive_until_close()
        told.append((answer.close_code, answer.close_reason))

    p = proxied({"/ws": serve})
    p.open("/ws")
    closed = p.closed()
    assert (closed["code"], closed["wasClean"]) == (1006, False)
    assert p.page.evaluate("() => window.__ws.messages.map((m) => m.length)") == [250_000]
    assert p.upstream.done.wait(10) and not p.upstream.errors
    assert told == [(1009, "message too big")]
    _no_traceback(caplog)


def test_a_pages_message_over_the_limit_fails_its_own_connection(
    proxied: Callable[..., Proxied], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same limit the other way: the page is told 1009 and the upstream's connection ends
    without a close frame (the proxy failed it; no goodbye the page never said)."""
    monkeypatch.setattr(websocket_close, "MAX_MESSAGE_BYTES", 256 * 1024)
    seen: list[int] = []

    def serve(peer: Peer) -> None:
        peer.accept()
        peer.sock.sendall(frame(0x1, b"hello"))
        try:
            while True:
                seen.append(peer.receive_message().opcode)
        except (EOFError, OSError):
            pass  # dropped: no close frame came

    p = proxied({"/ws": serve})
    p.open("/ws")
    p.page.wait_for_function("() => window.__ws.messages.length === 1", timeout=15000)
    p.page.evaluate("() => { window.__socket.send('x'.repeat(1000));"
                    " window.__socket.send(new Uint8Array(300000)); }")
    closed = p.closed()
    assert closed["code"] == 1009, closed
    assert p.upstream.done.wait(10) and not p.upstream.errors
    assert seen == [0x1]  # the small one came, the big one did not, and no close frame
