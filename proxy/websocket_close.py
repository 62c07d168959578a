"""A WebSocket the upstream closes ends cleanly in the browser.

mitmproxy 11 relays the upstream's close frame to the browser and closes the browser's
connection in the same step. The browser then answers with its own close frame on a closed
connection: its TCP connection is reset, and the page sees ``wasClean`` false (about half the
time in Chromium). Here the browser's connection stays open until its close frame (or anything
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

AWAITING = "_cobrowse_awaiting_client_close"

_original_relay = websocket.WebsocketLayer.relay_messages


def _relay(self: Any, event: events.Event) -> Generator[commands.Command, Any, None]:
    for command in _original_relay(self, event):
        if (
            isinstance(command, commands.CloseConnection)
            and command.connection is self.context.client
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
