"""WebSockets are relayed to upstream untouched, gated like requests, and closed at session end."""

from __future__ import annotations

import base64
import os
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from proxy import addons
from tests.proxy.conftest import Harness, OpenSession, Sites, make_settings, read_until_closed
from tests.proxy.raw_upstream import unconnectable_origin
from tests.proxy.test_tls import serve_tls
from tests.proxy.ws_upstream import Peer, frame, ws_upstream


def _connect(harness: Harness, host: str, cookie: str | None, **headers: str) -> object:
    sock = socket.create_connection(("127.0.0.1", harness.port), timeout=10)
    if cookie:
        headers["Cookie"] = cookie
    return connect(f"ws://{host}/ws", sock=sock, additional_headers=headers, open_timeout=10)


def test_websocket_echo_through_the_proxy_and_closed_at_session_end(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    host = harness.host(s, sites.shop.origin)
    ws = _connect(harness, host, f"__cb_{s.sid}={harness.credential(s)}")
    with ws:  # type: ignore[attr-defined]
        message = "héllo \u2028 {\"url\": \"http://127.0.0.1/\"}"
        ws.send(message)  # type: ignore[attr-defined]
        assert ws.recv(timeout=5) == message  # type: ignore[attr-defined]
        assert sites.shop.hits["/ws"] == 1
        ended_at = time.monotonic()
        harness.end(s)
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=1.0)  # type: ignore[attr-defined]
        assert time.monotonic() - ended_at < 1.0


def test_a_websocket_of_an_https_origin_is_relayed_over_tls(
    sites: Sites, tmp_path: Path, redis_url: str, namespace: str
) -> None:
    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse("<h1>secure</h1>")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"over tls: {text}")

    with serve_tls(tmp_path, home, routes=[WebSocketRoute("/ws", echo)]) as (port, ca):
        origin = f"https://localhost:{port}"
        settings = make_settings(sites, dev_allow_origins=(origin,), upstream_ca_file=str(ca))
        harness = Harness(settings, redis_url, namespace)
        try:
            s = harness.open_session((origin,))
            ws = _connect(harness, harness.host(s, origin), f"__cb_{s.sid}={harness.credential(s)}")
            with ws:  # type: ignore[attr-defined]
                ws.send("hello")  # type: ignore[attr-defined]
                assert ws.recv(timeout=5) == "over tls: hello"  # type: ignore[attr-defined]
        finally:
            harness.close()


def test_websocket_without_credential_is_refused_before_upstream(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    host = harness.host(s, sites.shop.origin)
    with pytest.raises(InvalidStatus) as info:
        _connect(harness, host, None)
    assert info.value.response.status_code == 403
    assert sites.shop.hits["/ws"] == 0


def test_a_websocket_from_a_page_that_hides_its_origin_on_the_proxys_site_is_refused(
    harness: Harness, sites: Sites
) -> None:
    """``Origin: null`` (a sandboxed or other opaque-origin frame) from another origin of the
    proxy's site: the credential comes along, and the page may be another session's. From this
    session's own origin (``same-origin``) it goes on."""
    s = harness.open_session((sites.shop.origin,))
    host, cookie = harness.host(s, sites.shop.origin), f"__cb_{s.sid}={harness.credential(s)}"
    hidden = {"Origin": "null", "Sec-Fetch-Mode": "websocket"}
    with pytest.raises(InvalidStatus) as info:
        _connect(harness, host, cookie, **hidden, **{"Sec-Fetch-Site": "same-site"})
    assert info.value.response.status_code == 403
    assert sites.shop.hits["/ws"] == 0
    ws = _connect(harness, host, cookie, **hidden, **{"Sec-Fetch-Site": "same-origin"})
    with ws:  # type: ignore[attr-defined]
        ws.send("mine")  # type: ignore[attr-defined]
        assert ws.recv(timeout=5) == "mine"  # type: ignore[attr-defined]


def test_an_open_websocket_has_no_request_deadline(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection must bring a request in time (``HeadDeadline``), but once it is a WebSocket
    it may stay quiet for as long as it likes."""
    monkeypatch.setattr(addons, "HEAD_TIMEOUT_S", 0.5)
    s = harness.open_session((sites.shop.origin,))
    ws = _connect(harness, harness.host(s, sites.shop.origin), f"__cb_{s.sid}={harness.credential(s)}")
    with ws:  # type: ignore[attr-defined]
        time.sleep(1.5)  # quiet past the deadline
        ws.send("still here")  # type: ignore[attr-defined]
        assert ws.recv(timeout=5) == "still here"  # type: ignore[attr-defined]


def _frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (payloads under 126 bytes)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + masked


def _open_raw(
    harness: Harness, sites: Sites, origin: str = "", s: OpenSession | None = None
) -> tuple[socket.socket, bytes]:
    """A WebSocket of a new session (or of ``s``) to the shop (or to ``origin``) opened on a raw
    socket: the socket, and any bytes that came after the 101 answer."""
    origin = origin or sites.shop.origin
    s = s or harness.open_session((origin,))
    key = base64.b64encode(os.urandom(16)).decode()
    handshake = (
        f"GET /ws HTTP/1.1\r\nHost: {harness.host(s, origin)}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Cookie: __cb_{s.sid}={harness.credential(s)}\r\n\r\n"
    )
    sock = socket.create_connection(("127.0.0.1", harness.port), timeout=10)
    sock.sendall(handshake.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, head
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    return sock, rest


def _open_raw_hello(harness: Harness, sites: Sites, s: OpenSession) -> socket.socket:
    """As ``_open_raw`` to the session's origin, once the upstream's first message (hello) is in."""
    sock, rest = _open_raw(harness, sites, s.origins[0], s)
    while len(rest) < 7:
        chunk = sock.recv(4096)
        assert chunk, rest
        rest += chunk
    assert rest == b"\x81\x05hello"
    return sock


def _upstream_end(ends: list[int | None]) -> Callable[[Peer], None]:
    """An upstream WebSocket that says hello and notes how it ended: the close frame's code, or
    None for a connection that ended without one."""
    def script(peer: Peer) -> None:
        peer.accept()
        peer.sock.sendall(frame(0x1, b"hello"))
        try:
            ends.append(peer.receive_until_close().close_code)
        except (EOFError, ConnectionResetError):
            ends.append(None)

    return script


def test_a_closing_handshake_ends_cleanly(harness: Harness, sites: Sites) -> None:
    """After the close frames the connection just ends: no error page written into the stream
    (the browser read one as a broken frame, and every close became 1006)."""
    sock, rest = _open_raw(harness, sites)
    with sock:
        sock.sendall(_frame(0x1, b"hi"))
        while len(rest) < 4:
            rest += sock.recv(4096)
        assert rest == b"\x81\x02hi"  # the echo
        sock.sendall(_frame(0x8, struct.pack("!H", 1000) + b"bye"))
        after = read_until_closed(sock)
    assert after == b"\x88\x05" + struct.pack("!H", 1000) + b"bye"  # the upstream's close, and the end


def test_a_close_from_the_server_waits_for_the_browsers_answer(harness: Harness, sites: Sites) -> None:
    """The upstream ends the WebSocket: the browser gets its close frame and the connection stays
    open until the browser has answered with its own, then ends (closed at once, the browser's
    answer met a closed connection and pages saw wasClean false)."""
    close = b"\x88\x0c" + struct.pack("!H", 4001) + b"server bye"
    sock, rest = _open_raw(harness, sites)
    with sock:
        sock.sendall(_frame(0x1, b"close, please"))
        while len(rest) < len(close):
            chunk = sock.recv(4096)
            assert chunk, rest
            rest += chunk
        assert rest == close
        # the proxy waits for our answer: nothing more comes, and the connection is still open
        # (a deliberate wait: there is no event for "did not close")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        sock.settimeout(10)
        sock.sendall(_frame(0x8, struct.pack("!H", 4001)))  # the browser's answer
        assert read_until_closed(sock) == b""  # and then it ends


def test_a_websocket_to_an_upstream_whose_connect_never_completes_gets_504(
    sites: Sites, redis_url: str, namespace: str
) -> None:
    """The upgrade is a request like any other: the upstream timeout answers it with 504 when
    the connect hangs, and no WebSocket opens."""
    timeout = 1.0
    with unconnectable_origin() as hung:
        settings = make_settings(sites, dev_allow_origins=(hung,), upstream_timeout_s=timeout)
        harness = Harness(settings, redis_url, namespace)
        try:
            s = harness.open_session((hung,))
            cookie = f"__cb_{s.sid}={harness.credential(s)}"
            with socket.create_connection(("127.0.0.1", harness.port), timeout=timeout + 4) as sock:
                started = time.monotonic()
                with pytest.raises(InvalidStatus) as info:
                    connect(f"ws://{harness.host(s, hung)}/ws", sock=sock, open_timeout=timeout + 4,
                            additional_headers={"Cookie": cookie})
                elapsed = time.monotonic() - started
            assert info.value.response.status_code == 504
            assert elapsed >= timeout, elapsed  # the client's own limit bounds it above
        finally:
            harness.close()


@pytest.mark.parametrize("vanish", ["reset", "fin", "protocol error"])
def test_a_browser_that_vanishes_has_the_upstreams_connection_dropped(
    sites: Sites, redis_url: str, namespace: str, vanish: str
) -> None:
    """No close frame from the browser: none goes upstream either (it got a 1000 from the proxy,
    a goodbye the browser never said; for a protocol error, the proxy's 1002 meant for the
    client)."""
    ends: list[int | None] = []
    with ws_upstream({"/ws": _upstream_end(ends)}) as upstream:
        harness = Harness(make_settings(sites, dev_allow_origins=(upstream.origin,)), redis_url, namespace)
        try:
            sock = _open_raw_hello(harness, sites, harness.open_session((upstream.origin,)))
            if vanish == "reset":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif vanish == "fin":
                sock.shutdown(socket.SHUT_WR)
            else:
                sock.sendall(b"\x81\x02hi")  # unmasked: the proxy fails the connection
                told = read_until_closed(sock)
                assert told[0] == 0x88 and told[2:4] == struct.pack("!H", 1002), told  # told why
            sock.close()
            assert upstream.done.wait(10)
        finally:
            harness.close()
    assert ends == [None]


@pytest.mark.parametrize("ending", ["session end", "proxy stop"])
def test_the_proxy_ending_a_websocket_tells_the_upstream_it_is_going_away(
    sites: Sites, redis_url: str, namespace: str, ending: str
) -> None:
    """The proxy ends the browser's connection (the page sees 1006) and tells the upstream 1001,
    as a browser leaving the page does."""
    ends: list[int | None] = []
    with ws_upstream({"/ws": _upstream_end(ends)}) as upstream:
        harness = Harness(make_settings(sites, dev_allow_origins=(upstream.origin,)), redis_url, namespace)
        stopped = False
        try:
            s = harness.open_session((upstream.origin,))
            with _open_raw_hello(harness, sites, s) as sock:
                if ending == "session end":
                    harness.end(s)
                else:
                    stopped = True
                    harness.close()
                assert read_until_closed(sock) == b""  # no close frame: the page sees 1006
            assert upstream.done.wait(10)
        finally:
            if not stopped:
                harness.close()
    assert ends == [1001]
