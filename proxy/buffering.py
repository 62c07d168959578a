"""Bodies buffered for rewriting (HTML, CSS): held to the size limit and an idle timeout *while*
they arrive, not once they are complete.

mitmproxy buffers a body that is not streamed until its end. Its own ``body_size_limit`` cannot
serve here: it is one global option, checked before the ``responseheaders`` hook, so it would
also refuse the large bodies we stream untouched (video, downloads). Instead the ``Rewriting``
addon puts a ``BodyWatch`` on each flow it buffers, and ``install()`` wraps mitmproxy's
"consume the response body" state so that every arriving chunk is checked against it:

- a body that grows past ``limit`` is dropped at once (its upstream connection closed, the
  buffer freed) and the browser gets the "too large" page: a chunked 1 GB page costs the proxy
  at most ``limit`` bytes, not 1 GB; except that a body buffered only to be sniffed (no
  Content-Type) whose start is not HTML is streamed on untouched instead, as a typed one would be;
- each chunk calls ``on_data`` and the end calls ``on_end``; ``UpstreamTimeout`` uses them for an
  idle timeout, so a body that stops arriving ends with the 504 page instead of a page that
  never loads.

Streamed bodies are not watched (an event stream or a paused download may idle for long).

Request bodies are held to ``MAX_REQUEST_BODY`` the same way (``_consume_request``): mitmproxy reads
them whole before the ``request`` hook, where the gate runs, whoever sends them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from mitmproxy import flow as mitm_flow
from mitmproxy.proxy.layers import http as mitm_http
from mitmproxy.proxy.layers.http._events import (
    RequestData,
    RequestProtocolError,
    ResponseData,
    ResponseEndOfMessage,
    ResponseProtocolError,
)
from mitmproxy.proxy.layers.http._hooks import HttpErrorHook

from proxy.responses import untouched_untyped
from rewriter.dispatch import SNIFF_BYTES

logger = logging.getLogger(__name__)

BODY_WATCH = "cobrowse.body_watch"
# the message of the protocol error that ends an over-limit body (proxy.server maps it to our page)
TOO_LARGE_MESSAGE = "response body over the rewrite limit"


def _nothing() -> None:
    return None


@dataclass
class BodyWatch:
    """What to enforce on one buffered response body."""

    limit: int
    # given the body's first bytes, whether it may pass untouched (streamed) once over the limit
    stream_if: Callable[[bytes], bool] | None = None
    on_data: Callable[[], None] = field(default=_nothing)
    on_end: Callable[[], None] = field(default=_nothing)


_original_consume = mitm_http.HttpStream.state_consume_response_body


def _consume(self: Any, event: Any) -> Generator[Any, Any, None]:
    watch: BodyWatch | None = self.flow.metadata.get(BODY_WATCH)
    if watch is not None:
        if isinstance(event, ResponseData):
            if len(self.response_body_buf) + len(event.data) > watch.limit:
                watch.on_end()
                del self.flow.metadata[BODY_WATCH]
                prefix = (bytes(self.response_body_buf) + event.data[:SNIFF_BYTES])[:SNIFF_BYTES]
                if watch.stream_if is not None and watch.stream_if(prefix):
                    yield from _stream_from_here(self, event)
                else:
                    yield from _refuse_too_large(self)
                return
            watch.on_data()
        elif isinstance(event, ResponseEndOfMessage):
            watch.on_end()
    yield from _original_consume(self, event)


def _stream_from_here(self: Any, event: ResponseData) -> Generator[Any, Any, None]:
    """Stream the rest untouched: what mitmproxy does for ``stream_large_bodies``. The browser
    is told not to sniff it: we found no HTML at its start, it must not find any either."""
    self.flow.response.stream = True
    buffered = bytes(self.response_body_buf)
    untouched_untyped(self.flow, (buffered[:SNIFF_BYTES] + event.data)[:SNIFF_BYTES])
    self.response_body_buf.clear()
    yield from self.start_response_stream()
    if buffered:
        yield from self.handle_event(ResponseData(self.stream_id, buffered))
    yield from self.handle_event(event)


def _refuse_too_large(self: Any) -> Generator[Any, Any, None]:
    """What mitmproxy does for its own ``body_size_limit`` (error hook, the client answered with
    an error, the upstream exchange abandoned and its connection closed), with our message."""
    self.response_body_buf.clear()
    self.flow.error = mitm_flow.Error(TOO_LARGE_MESSAGE)
    yield HttpErrorHook(self.flow)
    client, server = self.context.client, self.context.server
    yield mitm_http.SendHttp(ResponseProtocolError(self.stream_id, TOO_LARGE_MESSAGE, 502), client)
    self.client_state = self.state_errored
    yield mitm_http.SendHttp(RequestProtocolError(self.stream_id, TOO_LARGE_MESSAGE, 502), server)
    self.server_state = self.state_errored
    self.flow.live = False


# mitmproxy reads a request's whole body before the ``request`` hook, where the gate runs: without
# a limit anyone who can connect (no credential needed) could make it hold any amount
MAX_REQUEST_BODY = 32 * 1024 * 1024
REQUEST_TOO_LARGE_MESSAGE = "request body over the limit"

_original_consume_request = mitm_http.HttpStream.state_consume_request_body


def _consume_request(self: Any, event: Any) -> Generator[Any, Any, None]:
    if isinstance(event, RequestData):
        declared = self.flow.request.headers.get("content-length", "").strip()
        if len(self.request_body_buf) + len(event.data) > MAX_REQUEST_BODY or (
            declared.isdigit() and int(declared) > MAX_REQUEST_BODY
        ):
            self.request_body_buf.clear()
            self.flow.error = mitm_flow.Error(REQUEST_TOO_LARGE_MESSAGE)
            yield HttpErrorHook(self.flow)
            yield mitm_http.SendHttp(
                ResponseProtocolError(self.stream_id, REQUEST_TOO_LARGE_MESSAGE, 413), self.context.client
            )
            self.client_state = self.state_errored
            self.flow.live = False
            return
    yield from _original_consume_request(self, event)


_NEEDED = ("state_consume_response_body", "state_consume_request_body", "start_response_stream",
           "state_errored", "handle_event")


def installed() -> bool:
    """Whether buffered bodies are watched as they arrive (else ``BODY_WATCH`` must not be set:
    its callbacks would never run)."""
    return bool(mitm_http.HttpStream.state_consume_response_body is _consume)


def install() -> bool:
    """Wrap mitmproxy's body-consuming state (idempotent). False, with a warning, if this
    mitmproxy lacks what the wrapper uses: bodies are then checked once complete, as before."""
    stream = mitm_http.HttpStream
    if installed():
        return True
    if not all(hasattr(stream, name) for name in _NEEDED):
        logger.warning("this mitmproxy cannot check buffered bodies as they arrive; checking them whole")
        return False
    stream.state_consume_response_body = _consume  # type: ignore[method-assign]
    stream.state_consume_request_body = _consume_request  # type: ignore[method-assign]
    return True
