"""A WebSocket ends on each side as it ended on the other.

A side that drops the connection without a close frame (a reset, a plain end, a protocol error
the proxy fails the connection for) has the other side's connection dropped too, with no close
frame: a page sees 1006, as it would without the proxy, and reconnects. mitmproxy 11 sent a close
frame instead, and wsproto writes the local-only 1006 as 1000: the page saw "the server said
goodbye" and stayed stale, and an upstream heard a goodbye from a browser that had vanished. When
the proxy itself ends the browser's connection (the session ended), the upstream is told 1001.

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

# the most one message (its frames together) may hold: mitmproxy holds a message whole before it
# relays it, so a peer sending one without end (an upstream's, or a page's) grew the proxy's memory
# without bound; browsers read messages of this size, and a page's are rarely a thousandth of it
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SIZE = "_cobrowse_message_bytes"  # on a side's connection: the bytes of its message so far
AWAITING = "_cobrowse_awaiting_client_close"
DROPPED = "_cobrowse_dropped"  # the connection that ended without a close frame
WATCHED = "_cobrowse_watched"
ENDED_HERE = "_cobrowse_ended_by_proxy"  # on a client connection the proxy closes itself

_original_relay = websocket.WebsocketLayer.relay_messages


def end_client(handler: Any) -> None:
    """Close a client connection for the proxy's own reasons (the session ended, the proxy
    stops). Its WebSocket's upstream is told 1001, going away, as when a browser leaves a page;
    one whose browser just vanished has its connection dropped."""
    setattr(handler.client, ENDED_HERE, True)
    handler.close_connection(handler.client)


def _watch_end(self: Any, ws: Any) -> None:
    """Note a side whose end came without a close frame: after one, wsproto's state is
    REMOTE_CLOSING (or CLOSED, had we sent ours); a lost connection is the local-only 1006, and a
    protocol error leaves the state as it was. A message over ``MAX_MESSAGE_BYTES`` is such an
    error: its sender is told 1009 (too big) and the other side's connection dropped."""
    events_of = ws.events

    def watched() -> Generator[ws_events.Event, None, None]:
        for ws_event in events_of():
            if isinstance(ws_event, ws_events.Message):
                data = ws_event.data
                size = getattr(ws, SIZE, 0) + len(data.encode() if isinstance(data, str) else data)
                if size > MAX_MESSAGE_BYTES:
                    setattr(self, DROPPED, ws.conn)
                    too_big = CloseReason.MESSAGE_TOO_BIG
                    yield ws_events.CloseConnection(code=too_big, reason="message too big")
                    return  # nothing more of this side is relayed
                setattr(ws, SIZE, 0 if ws_event.message_finished else size)
            elif isinstance(ws_event, ws_events.CloseConnection):
                lost = ws_event.code == CloseReason.ABNORMAL_CLOSURE
                failed = ws.state in (ConnectionState.OPEN, ConnectionState.LOCAL_CLOSING)
                if lost and getattr(ws.conn, ENDED_HERE, False):  # by the proxy: not a drop
                    ws_event = ws_events.CloseConnection(code=CloseReason.GOING_AWAY)
                elif lost or failed:
                    setattr(self, DROPPED, ws.conn)
            yield ws_event

    ws.events = watched


def _relay(self: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
    if not getattr(self, WATCHED, False):
        _watch_end(self, self.client_ws)
        _watch_end(self, self.server_ws)
        setattr(self, WATCHED, True)
    client = self.context.client
    for command in _original_relay(self, event):
        dropped = getattr(self, DROPPED, None)
        if dropped is not None:
            if isinstance(command, commands.SendData) and command.connection is not dropped:
                continue  # the close frame: the other side's connection just ends too
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
