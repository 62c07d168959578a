"""Request headers on their way upstream, through ``rewriter.headers`` (policy as a table there).

Host, Origin and Referer become the upstream's; hop-by-hop, forwarding and Cookie headers are
dropped (the jar supplies Cookie, so the proxy's own ``__cb_*``/``__cbjs`` cookies never leave);
a WebSocket handshake keeps its Upgrade/Connection pair; only encodings the proxy can decode are
offered.
"""

from __future__ import annotations

from mitmproxy import http

from proxy.compression import ACCEPT_ENCODING
from proxy.responses import is_worker_script
from rewriter.headers import rewrite_request_headers
from rewriter.urls import Origin, UrlMapper

PROXY_COOKIE_PREFIXES = ("__cb_", "__cbjs")


def is_proxy_cookie(name: str) -> bool:
    return name.startswith(PROXY_COOKIE_PREFIXES)


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def fix_request(flow: http.HTTPFlow, mapper: UrlMapper, origin: Origin, cookie: str = "") -> None:
    """Rewrite ``flow``'s request headers for ``origin``; ``cookie`` is the jar's Cookie header."""
    request = flow.request
    is_websocket = request.headers.get("upgrade", "").lower() == "websocket"
    rewritten = rewrite_request_headers(request.headers.items(multi=True), mapper=mapper, origin=origin)
    fields = [(_enc(name), _enc(value)) for name, value in rewritten]
    if is_websocket:
        fields += [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]
    if cookie:
        fields.append((b"cookie", _enc(cookie)))
    request.headers = http.Headers(fields)
    if is_worker_script(flow):
        # the browser may revalidate with the validators of a copy it holds as a plain script:
        # a 304 would hand the worker that copy, without the runtime in front (proxy/rewriting.py)
        for name in ("if-none-match", "if-modified-since"):
            request.headers.pop(name, None)
    if "accept-encoding" in request.headers:
        request.headers["accept-encoding"] = ACCEPT_ENCODING
