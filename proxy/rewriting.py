"""Responses through the rewriter: headers always, HTML/CSS bodies buffered, everything else streamed.

Rewriting runs in a worker thread (``asyncio.to_thread``) so a large page never stalls the event
loop that serves the other sessions. A rewritable body over ``max_rewrite_bytes`` (compressed or
not) gets the "too large" page, never a half-rewritten one.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from typing import Any

from mitmproxy import http

from control_api.proxy_access import ProxySession
from proxy import compression
from proxy.context import ProxyContext
from proxy.exceptions import BodyTooLarge, ContentDecodingError
from proxy.responses import error_response, replace_while_streaming
from rewriter.exceptions import RewriteError
from rewriter.urls import Origin, UrlMapper

logger = logging.getLogger(__name__)

KIND = "cobrowse.kind"

# MIME type -> rewriter kind
REWRITTEN_TYPES: dict[str, str] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "text/css": "css",
}
# response headers the browser must not get from upstream
DROP_RESPONSE_HEADERS = frozenset(
    {
        "strict-transport-security", "public-key-pins", "public-key-pins-report-only", "alt-svc",
        "expect-ct", "report-to", "nel", "clear-site-data", "set-cookie", "set-cookie2",
        "content-security-policy", "content-security-policy-report-only",
        "cross-origin-embedder-policy", "cross-origin-opener-policy",
    }
)
URL_RESPONSE_HEADERS = ("location", "content-location", "refresh")


def rewrite_kind(content_type: str | None) -> str | None:
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    return REWRITTEN_TYPES.get(mime)


def runtime_response() -> http.Response:
    from rewriter.runtime import runtime_js

    return http.Response.make(
        200,
        runtime_js(),
        {
            "content-type": "application/javascript; charset=utf-8",
            "cache-control": "public, max-age=300",
            "x-content-type-options": "nosniff",
        },
    )


def _upstream_url(flow: http.HTTPFlow, origin: Origin) -> str:
    return origin.serialize() + flow.request.path


def _map_location(mapper: UrlMapper, base: str, value: str) -> tuple[str, Origin] | None:
    absolute = urllib.parse.urljoin(base, value.strip())
    try:
        mapped = mapper.to_proxy(absolute)
        return mapped, mapper.upstream_origin(mapped)
    except RewriteError:
        return None


def on_response_headers(
    ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession, mapper: UrlMapper
) -> None:
    response = flow.response
    assert response is not None
    origin: Origin = flow.metadata["cobrowse.origin"]
    base = _upstream_url(flow, origin)
    for name in list(response.headers.keys()):
        if name.lower() in DROP_RESPONSE_HEADERS:
            del response.headers[name]
    location = response.headers.get("location")
    if location is not None:
        mapped = _map_location(mapper, base, location)
        if mapped is None or mapped[1].serialize() not in {
            Origin.parse(o).serialize() for o in session.allowed_origins
        }:
            replace_while_streaming(flow, "outside_scope")
            return
        response.headers["location"] = mapped[0]
    acao = response.headers.get("access-control-allow-origin")
    if acao and acao not in ("*", "null"):
        try:
            response.headers["access-control-allow-origin"] = mapper.proxy_origin(Origin.parse(acao))
        except RewriteError:
            del response.headers["access-control-allow-origin"]
    kind = rewrite_kind(response.headers.get("content-type"))
    if kind is None or flow.request.method == "HEAD" or response.status_code in (204, 304):
        response.stream = True
        return
    flow.metadata[KIND] = kind
    length = response.headers.get("content-length", "")
    limit = ctx.settings.max_rewrite_bytes
    if length.isdigit() and int(length) > limit:
        replace_while_streaming(flow, "too_large")


def finish_refused(flow: http.HTTPFlow) -> None:
    """A refused upstream response whose (empty) body was consumed rather than streamed gets its
    page body back; after streaming, replacing the response changes nothing on the wire."""
    if flow.response is not None:
        flow.response = error_response(flow, flow.metadata["cobrowse.refused"])


def _rewrite(kind: str, body: bytes, *, url: str, mapper: UrlMapper, content_type: str,
             inject: str, masked: tuple[str, ...]) -> bytes:
    if kind == "css":
        from rewriter.css import rewrite_css

        return rewrite_css(body, url=url, mapper=mapper, content_type=content_type)
    from rewriter.html import rewrite_html

    result: Any = rewrite_html(
        body, url=url, mapper=mapper, content_type=content_type, inject=inject, mask_selectors=masked
    )
    return bytes(result)


def runtime_config(ctx: ProxyContext, session: ProxySession, mapper: UrlMapper, origin: Origin,
                   cookies: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "sid": session.session_id,
        "proxyDomain": ctx.public.domain,
        "proxyPort": ctx.public.port,
        "proxyScheme": ctx.public.scheme,
        "origin": origin.serialize(),
        "knownOrigins": [o.serialize() for o in mapper.known_origins],
        "cookies": cookies,
        "masked": list(session.masked_selectors),
        # the virtual browser (served by the API) is the only frame parent the runtime bridge talks to
        "consoleOrigin": ctx.settings.public_api_url,
    }


async def on_response(
    ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession, mapper: UrlMapper
) -> None:
    response = flow.response
    kind = flow.metadata.get(KIND)
    if response is None or response.stream or kind is None:
        return
    origin: Origin = flow.metadata["cobrowse.origin"]
    limit = ctx.settings.max_rewrite_bytes
    raw = response.raw_content or b""
    try:
        if len(raw) > limit:
            raise BodyTooLarge("raw body over the rewrite limit")
        body = compression.decode(
            raw, response.headers.get("content-encoding", ""), min(limit, ctx.settings.max_decompressed_bytes)
        )
    except BodyTooLarge:
        flow.response = error_response(flow, "too_large")
        return
    except ContentDecodingError:
        flow.response = error_response(flow, "bad_content")
        return
    content_type = response.headers.get("content-type", "")
    inject = ""
    if kind == "html":
        from proxy import cookie_sync
        from rewriter.runtime import injection_markup

        cookies = flow.metadata.get(cookie_sync.SCRIPT_COOKIES, [])
        inject = injection_markup(runtime_config(ctx, session, mapper, origin, cookies))
    try:
        out = await asyncio.to_thread(
            _rewrite, kind, body, url=_upstream_url(flow, origin), mapper=mapper,
            content_type=content_type, inject=inject, masked=session.masked_selectors,
        )
    except RewriteError:
        logger.warning("rewriting failed for a %s body", kind, exc_info=True)
        flow.response = error_response(flow, "bad_content")
        return
    response.headers.pop("content-encoding", None)
    response.headers.pop("transfer-encoding", None)
    mime = content_type.split(";", 1)[0].strip() or ("text/html" if kind == "html" else "text/css")
    response.headers["content-type"] = f"{mime}; charset=utf-8"
    response.raw_content = out
    response.headers["content-length"] = str(len(out))
