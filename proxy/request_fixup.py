"""Request headers on their way upstream, through ``rewriter.headers`` (policy as a table there).

Host, Origin and Referer become the upstream's; hop-by-hop, forwarding and Cookie headers are
dropped (the jar supplies Cookie, so the proxy's own cookies (``proxy.cookie_sync``) never leave);
a WebSocket handshake keeps its Upgrade/Connection pair; only encodings the proxy can decode are
offered (of those the browser offers).
"""

from __future__ import annotations

from mitmproxy import http

from proxy.compression import accept_encoding
from proxy.responses import is_worker_script
from proxy.validators import untag_request
from rewriter.headers import rewrite_request_headers
from rewriter.urls import Origin, UrlMapper


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


CLIENT_CLOSE = "cobrowse.client_close"  # flow metadata: the browser asked to close after this
BROWSER_ACCEPT_ENCODING = "cobrowse.accept_encoding"  # flow metadata: the browser's, for rewritten bodies


def fix_request(flow: http.HTTPFlow, mapper: UrlMapper, origin: Origin, cookie: str = "") -> None:
    """Rewrite ``flow``'s request headers for ``origin``; ``cookie`` is the jar's Cookie header."""
    request = flow.request
    flow.metadata[BROWSER_ACCEPT_ENCODING] = request.headers.get("accept-encoding")
    is_websocket = request.headers.get("upgrade", "").lower() == "websocket"
    framed = "content-length" in request.headers or "transfer-encoding" in request.headers
    if any(t.strip().lower() == "close" for t in request.headers.get("connection", "").split(",")):
        flow.metadata[CLIENT_CLOSE] = True  # answered with Connection: close (proxy/addons.py)
    rewritten = rewrite_request_headers(request.headers.items(multi=True), mapper=mapper, origin=origin)
    fields = [(_enc(name), _enc(value)) for name, value in rewritten if name.lower() != "content-length"]
    if is_websocket:
        fields += [(b"connection", b"Upgrade"), (b"upgrade", b"websocket")]
    if cookie:
        fields.append((b"cookie", _enc(cookie)))
    if framed or request.raw_content:
        # the body is here whole (mitmproxy buffers it, chunked or not): it goes with its length,
        # never unframed, where the upstream would read it as the start of another request
        fields.append((b"content-length", str(len(request.raw_content or b"")).encode()))
    request.headers = http.Headers(fields)
    untag_request(flow)  # validators name the destination their copy was made for
    if is_worker_script(flow):
        # the browser may revalidate with the validators of a copy it holds as a plain script:
        # a 304 would hand the worker that copy, without the runtime in front (proxy/rewriting.py)
        for name in ("if-none-match", "if-modified-since"):
            request.headers.pop(name, None)
    if "accept-encoding" in request.headers:
        request.headers["accept-encoding"] = accept_encoding(request.headers["accept-encoding"])
