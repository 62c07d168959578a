"""Upstream timeout: a request whose response headers do not arrive within
``settings.upstream_timeout_s`` gets the 504 page, and its upstream connection is closed. The
same holds for a body buffered for rewriting that stops arriving: no new data for that long.

mitmproxy has no such timeout of its own, not even for the connect (the OS gives up on an
unanswered one after about two minutes: a 502). The timer marks the client connection and closes
the server connection, or the one being opened while its connect or TLS handshake hangs; the
HTTP/1 layer then reports the failure, and ``server._send_failure`` turns that report into a 504
(``server.install_error_pages`` wraps mitmproxy's ``Http1Server.send``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from mitmproxy import http

from proxy.buffering import BodyWatch
from proxy.context import ProxyContext

logger = logging.getLogger(__name__)

MARK = "_cobrowse_upstream_timeout"
# flow metadata: the body stopped arriving and its upstream connection was closed. An upstream
# whose body ends with its connection (HTTP/1.0, no length) then looks complete to mitmproxy:
# ``Rewriting.response`` answers the 504 page instead of rewriting what came.
BODY_TIMED_OUT = "cobrowse.body_timed_out"


def take_timeout_mark(connection: Any) -> bool:
    """True once if ``connection`` (a client) had an upstream time out; clears the mark."""
    if getattr(connection, MARK, False):
        setattr(connection, MARK, False)
        return True
    return False


class UpstreamTimer:
    """Per-flow timers from the moment a request goes upstream until its response headers."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def start(self, flow: http.HTTPFlow) -> None:
        loop = asyncio.get_running_loop()
        self._timers[flow.id] = loop.call_later(self.ctx.settings.upstream_timeout_s, self._expire, flow)

    def watch_body(self, flow: http.HTTPFlow, watch: BodyWatch) -> None:
        """Time out a buffered body after ``upstream_timeout_s`` without new data (not in total:
        a large page on a slow link keeps arriving)."""
        loop = asyncio.get_running_loop()
        timeout = self.ctx.settings.upstream_timeout_s
        last = [loop.time()]

        def check() -> None:
            idle = loop.time() - last[0]
            if idle >= timeout:
                self._expire(flow, body=True)
            else:  # re-armed lazily: one timer per timeout period, not one per chunk
                self._timers[flow.id] = loop.call_later(timeout - idle, check)

        def on_data() -> None:
            last[0] = loop.time()

        watch.on_data = on_data
        watch.on_end = lambda: self.cancel(flow)
        self.cancel(flow)
        self._timers[flow.id] = loop.call_later(timeout, check)

    def cancel(self, flow: http.HTTPFlow) -> None:
        handle = self._timers.pop(flow.id, None)
        if handle is not None:
            handle.cancel()

    def _expire(self, flow: http.HTTPFlow, body: bool = False) -> None:
        self._timers.pop(flow.id, None)
        if (flow.response is not None and not body) or not flow.live:
            return
        ps = self.ctx.connections.proxyserver
        handler = ps.connections.get(flow.client_conn.id) if ps is not None else None
        if handler is None:
            return
        setattr(flow.client_conn, MARK, True)
        if body:
            flow.metadata[BODY_TIMED_OUT] = True
        upstream = _upstream_of(handler, flow)
        try:
            if upstream is not None:
                handler.close_connection(upstream)
            else:  # no upstream connection of its own yet: give up on the whole client connection
                handler.close_connection(handler.client)
        except (KeyError, AssertionError, OSError):
            logger.debug("upstream connection already closed")


def _upstream_of(handler: Any, flow: http.HTTPFlow) -> Any:
    """The upstream connection of ``flow`` in ``handler`` (its client's), or None.

    mitmproxy sets ``flow.server_conn`` only once the connection is established: while its TCP
    connect (or TLS handshake) hangs, it is the connection to the flow's address not yet
    established. Closing that one fails the attempt, and the HTTP layer reports it (the 504 page);
    closing the client connection instead would leave the browser without an answer."""
    if flow.server_conn in handler.transports:
        return flow.server_conn
    address = (flow.request.host, flow.request.port)
    for conn in handler.transports:
        if conn is handler.client or conn.address != address or conn.error:
            continue
        if conn.timestamp_tcp_setup is None or (conn.tls and not conn.tls_established):
            return conn
    return None
