"""A WebSocket ends in the browser as it ended upstream.

An upstream that drops the connection without a close frame (a reset, a plain end, a protocol
error the proxy fails the connection for) has the browser's connection dropped too, with no close
frame: the page sees 1006, as it would without the proxy, and reconnects. mitmproxy 11 sent the
browser a close frame instead, and wsproto writes the local-only 1006 as 1000: the page saw
"the server said goodbye" and stayed stale.

A close frame from upstream is relayed as it came (code and reason). mitmproxy 11 closes the
browser's connection in the same step. The browser then answers with its own close frame on a
closed connection: its TCP connection is reset, and the page sees ``wasClean`` false (about half
the time in Chromium). Here the browser's connection stays open until its close frame (or anything
else from it, or its end) arrives, as RFC 6455 7.1.1 has the server wait, and then closes.
A browser that never answers loses its connection when the session ends, like any other.
"""

from __future__ import annotations

import warnings
from collections.abc import Generator
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy.proxy import commands, events
    from mitmproxy.proxy.layers import websocket
    from mitmproxy.proxy.utils import expect
    from wsproto import ConnectionState
    from wsproto import events as ws_events
    from wsproto.frame_protocol import CloseReason

AWAITING = "_cobrowse_awaiting_client_close"
DROPPED = "_cobrowse_upstream_dropped"
WATCHED = "_cobrowse_watched"

_original_relay = websocket.WebsocketLayer.relay_messages


def _watch_upstream_end(self: Any) -> None:
    """Note whether the upstream's end came with a close frame: after one, wsproto's state is
    REMOTE_CLOSING (or CLOSED, had we sent ours); a lost connection is the local-only 1006, and a
    protocol error leaves the state as it was."""
    upstream = self.server_ws
    events_of = upstream.events

    def watched() -> Generator[ws_events.Event, None, None]:
        for ws_event in events_of():
            if isinstance(ws_event, ws_events.CloseConnection):
                lost = ws_event.code == CloseReason.ABNORMAL_CLOSURE
                failed = upstream.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING)
                setattr(self, DROPPED, lost or failed)
            yield ws_event

    upstream.events = watched
    setattr(self, WATCHED, True)


def _relay(self: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
    if not getattr(self, WATCHED, False):
        _watch_upstream_end(self)
    client = self.context.client
    for command in _original_relay(self, event):
        if getattr(self, DROPPED, False):
            if isinstance(command, commands.SendData) and command.connection is client:
                continue  # the close frame: the browser's connection just ends, as upstream's did
        elif (
            isinstance(command, commands.CloseConnection)
            and command.connection is client
            and self.flow.websocket is not None
            and self.flow.websocket.closed_by_client is False
        ):
            setattr(self, AWAITING, True)  # closed once the browser has answered (_done)
            continue
        yield command


@expect(events.DataReceived, events.ConnectionClosed, websocket.WebSocketMessageInjected)
def _done(self: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
    if (
        getattr(self, AWAITING, False)
        and isinstance(event, events.ConnectionEvent)
        and event.connection is self.context.client
    ):
        setattr(self, AWAITING, False)
        yield commands.CloseConnection(self.context.client)


def install() -> None:
    websocket.WebsocketLayer.relay_messages = _relay  # type: ignore[method-assign]
    websocket.WebsocketLayer.done = _done  # type: ignore[method-assign]
