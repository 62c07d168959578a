"""The API's HTTP protocol: uvicorn's own (httptools or h11), with a deadline on each request head.

uvicorn waits for a request head as long as the client likes: a client that opened connections
and sent nothing, or a byte now and then (slowloris), held each of them for ever, and enough of
them took every file descriptor of the API process, banner and console sockets included. The
proxy has one of its own (``proxy.addons.HeadDeadline``, 60 s as nginx's); this one is shorter, as
a browser's idle connection to the API is closed after 5 s by uvicorn's keep-alive anyway.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

HEAD_TIMEOUT_S = 10.0  # from the connection, or the end of its last answer, to a whole request head


class HeadDeadline:
    """Over one of uvicorn's HTTP protocols: closes a connection whose next request head has not
    all arrived within ``head_timeout_s`` of the connection opening or of its last answer. A
    request being answered, however long it takes, and a WebSocket are never cut."""

    head_timeout_s = HEAD_TIMEOUT_S
    cycle: Any
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:
        self._head_timer: asyncio.TimerHandle | None = None
        self._cycle_at_arm: Any = None
        super().connection_made(transport)  # type: ignore[misc]
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._cycle_at_arm = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._overdue)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _overdue(self) -> None:
        self._head_timer = None
        cycle = self.cycle
        waiting = cycle is self._cycle_at_arm and (cycle is None or cycle.response_complete)
        if waiting and not self.transport.is_closing() and self.transport.get_protocol() is self:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)  # type: ignore[misc]
        if self._head_timer is not None and self.cycle is not self._cycle_at_arm:
            self._disarm()  # a whole head came: the request is the app's now

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        # the next request's head (keep-alive); not when a pipelined upgrade has just made this
        # connection a WebSocket's (h11 handles it inside the call above)
        if not self.transport.is_closing() and self.transport.get_protocol() is self:
            self._arm()

    def handle_websocket_upgrade(self, *args: Any) -> None:
        self._disarm()
        super().handle_websocket_upgrade(*args)  # type: ignore[misc]

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]


class HeadDeadlineProtocol(HeadDeadline, AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's own protocol (httptools when installed, else h11) with the head deadline."""
