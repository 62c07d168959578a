"""WebSockets are relayed to upstream untouched, gated like requests, and closed at session end."""

from __future__ import annotations

import socket
import time

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from proxy import addons
from tests.proxy.conftest import Harness, Sites


def _connect(harness: Harness, host: str, cookie: str | None) -> object:
    sock = socket.create_connection(("127.0.0.1", harness.port), timeout=10)
    headers = {"Cookie": cookie} if cookie else {}
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


def test_websocket_without_credential_is_refused_before_upstream(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    host = harness.host(s, sites.shop.origin)
    with pytest.raises(InvalidStatus) as info:
        _connect(harness, host, None)
    assert info.value.response.status_code == 403
    assert sites.shop.hits["/ws"] == 0


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
