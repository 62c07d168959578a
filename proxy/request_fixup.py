"""Request headers on their way upstream: the browser's view of the proxy mapped back to the site's.

Host is set by the Egress addon; here Origin and Referer are mapped back to upstream URLs (or
dropped when they are not of this session), hop-by-hop headers are dropped, the proxy's own
cookies (``__cb_*``, ``__cbjs*``) never leave, and only encodings the proxy can decode are offered.
"""

from __future__ import annotations

from mitmproxy import http

from proxy.compression import ACCEPT_ENCODING
from rewriter.exceptions import RewriteError
from rewriter.urls import Origin, UrlMapper

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade",
    }
)
# headers only the proxy or the browser's view of it should see
DROP = frozenset({"forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"})
PROXY_COOKIE_PREFIXES = ("__cb_", "__cbjs")


def is_proxy_cookie(name: str) -> bool:
    return name.startswith(PROXY_COOKIE_PREFIXES)


def _map_back(mapper: UrlMapper, value: str, origin_only: bool) -> str | None:
    try:
        if origin_only:
            return mapper.upstream_origin(value).serialize()
        return mapper.to_upstream(value)
    except RewriteError:
        return None


def fix_request(flow: http.HTTPFlow, mapper: UrlMapper, origin: Origin) -> None:
    headers = flow.request.headers
    is_websocket = headers.get("upgrade", "").lower() == "websocket"
    connection_tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    for name in list(headers.keys()):
        lower = name.lower()
        if lower in DROP or (lower in connection_tokens and lower not in ("upgrade",)):
            del headers[name]
        elif lower in HOP_BY_HOP and not (is_websocket and lower in ("connection", "upgrade")):
            del headers[name]
    for name, origin_only in (("origin", True), ("referer", False)):
        value = headers.get(name)
        if value is None or value == "null":
            continue
        mapped = _map_back(mapper, value, origin_only)
        if mapped is None:
            del headers[name]
        else:
            headers[name] = mapped
    if "accept-encoding" in headers:
        headers["accept-encoding"] = ACCEPT_ENCODING
