"""Responses through the rewriter: headers always, HTML/CSS bodies buffered, everything else streamed.

Rewriting runs in a worker thread (``asyncio.to_thread``) so a large page never stalls the event
loop that serves the other sessions. A rewritable body over ``max_rewrite_bytes`` (compressed or
not) gets the "too large" page, never a half-rewritten one.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from mitmproxy import http

from control_api.proxy_access import ProxySession
from proxy import buffering, compression, cookie_sync, validators
from proxy.buffering import BODY_WATCH, BodyWatch
from proxy.context import ProxyContext
from proxy.exceptions import BodyTooLarge, ContentDecodingError
from proxy.request_fixup import BROWSER_ACCEPT_ENCODING
from proxy.responses import (
    MEDIA_DESTS,
    NOT_SCRIPTS,
    SUBRESOURCE_DESTS,
    as_inert_document,
    destination,
    error_response,
    is_worker_script,
    replace_while_streaming,
    untouched_untyped,
    vary_on,
    vary_on_destination,
)
from rewriter.charset import charset_param, extract_content_type, mime_type
from rewriter.dispatch import SNIFF_BYTES, UNKNOWN_TYPES, Kind, Rewritten, kind_of
from rewriter.exceptions import RewriteError
from rewriter.headers import confinement_policy, rewrite_response_headers
from rewriter.public_suffixes import public_ancestors
from rewriter.runtime import injection_markup, prelude_offset, runtime_js, worker_prelude
from rewriter.urls import Origin, UrlMapper

logger = logging.getLogger(__name__)

KIND = "cobrowse.kind"
STYLE_AS_SENT = "cobrowse.style_as_sent"  # the type of a body rewritten as CSS for a stylesheet

def runtime_response() -> http.Response:
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


def _in_scope(mapper: UrlMapper, location: str, allowed: frozenset[Origin]) -> bool:
    if not location.lower().startswith(("http:", "https:", "//")):
        return True  # relative: the same origin
    try:
        return mapper.upstream_origin(location) in allowed
    except RewriteError:
        return False


def _allowed(session: ProxySession) -> frozenset[Origin]:
    out = set()
    for text in session.allowed_origins:
        try:
            out.add(Origin.parse(text))
        except RewriteError:
            continue
    return frozenset(out)


def on_response_headers(
    ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession, mapper: UrlMapper
) -> None:
    """Headers through ``rewriter.headers``; redirects out of scope refused; stream or buffer."""
    response = flow.response
    assert response is not None
    if response.status_code == 101 and not _websocket_handshake(flow):
        # a protocol switch the browser did not ask for would make this connection a raw tunnel
        # between the browser and the upstream: nothing rewritten, the credential cookie of every
        # later request on it sent upstream as it is
        replace_while_streaming(flow, "bad_content")
        response.headers["connection"] = "close"
        return
    origin: Origin = flow.metadata["cobrowse.origin"]
    rewritten = rewrite_response_headers(
        response.headers.items(multi=True), url=_upstream_url(flow, origin), mapper=mapper
    )
    own_cookies = response.headers.get_all("set-cookie")  # only the proxy's own by now
    fields = [(_enc(n), _enc(v)) for n, v in rewritten.headers]
    fields += [(b"set-cookie", _enc(c)) for c in own_cookies]
    fields += _framing(response.headers, _has_body(flow))
    # what the rewriting misses fails in the browser rather than reaching the upstream directly
    fields.append((b"content-security-policy", _enc(confinement_policy(mapper.proxy))))
    if response.status_code == 101:  # the WebSocket handshake keeps its hop-by-hop pair
        upgrade = response.headers.get("upgrade", "websocket")
        fields += [(b"connection", b"Upgrade"), (b"upgrade", _enc(upgrade))]
    response.headers = http.Headers(fields)
    # how a body is answered depends on where the browser puts it (a document, a stylesheet, an
    # image): caches must not answer one destination with a copy made for another (304s too)
    vary_on_destination(flow)
    location = response.headers.get("location")
    if location is not None and not _in_scope(mapper, location, _allowed(session)):
        replace_while_streaming(flow, "outside_scope")
        return
    if not _has_body(flow):
        response.stream = True
        validators.tag_not_modified(flow)
        declared = extract_content_type(response.headers.get_all("content-type"))
        rewritable = (
            kind_of(declared) != "passthrough" or mime_type(declared) in UNKNOWN_TYPES
            or destination(flow) == "style" or is_worker_script(flow)
        )
        if rewritable:  # what a 200 would say (RFC 9110 15.4.5): its coding depends on the browser
            vary_on(response, "Accept-Encoding")
        if flow.request.method == "HEAD" and rewritable:
            # what a GET would get is rewritten: another length, and decoded
            for name in ("content-length", "content-encoding"):
                response.headers.pop(name, None)
        return
    # the one Content-Type a browser acts on (none valid: it sniffs), and the only one sent on
    content_type = extract_content_type(response.headers.get_all("content-type"))
    if content_type is None:
        response.headers.pop("content-type", None)
    else:
        response.headers["content-type"] = content_type
    kind: str = kind_of(content_type)  # or "worker" (below)
    untyped = mime_type(content_type) in UNKNOWN_TYPES  # sniffed once the body is here
    if destination(flow) == "style" and kind != "css":
        # a stylesheet: Chromium applies an untyped one (and, in quirks mode, a same-origin one
        # of any type), so it is rewritten as CSS whatever it says; its type is given back after
        flow.metadata[STYLE_AS_SENT] = content_type
        kind, untyped = "css", False
    if is_worker_script(flow) and not mime_type(content_type).startswith(NOT_SCRIPTS):
        kind, untyped = "worker", False  # buffered: the runtime goes in front of it (on_response)
    if kind == "passthrough" and not untyped:
        response.stream = True
        if _is_xml_document(content_type):  # rendered with live links, which are not rewritten
            as_inert_document(flow, "text/plain" + _charset_param(content_type))
            validators.tag_response(flow, rewritten=False)  # inert as a page, as it is for a script
        return
    # from here on what the browser gets depends on where it puts it (proxy/validators.py)
    download = _is_attachment(response.headers) and destination(flow) not in SUBRESOURCE_DESTS
    if response.status_code == 206 or download:
        # a part of a document (a Range request) cannot be rewritten, and a download (an
        # attachment where a browser saves it: a navigation, a frame) is the file as the site
        # sends it; a rewritten copy would carry the runtime's config, the visitor's
        # script-visible cookies among it. Both go untouched, and never as a document (an
        # <object> or <embed> might show an attachment)
        response.stream = True
        as_inert_document(flow)
        validators.tag_response(flow, rewritten=False)
        return
    # html, css, or no type at all (sniffed once the body is here)
    validators.tag_response(flow, rewritten=True)  # an untyped body left as it is counts as ours
    flow.metadata[KIND] = kind
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > ctx.settings.max_rewrite_bytes:
        if kind == "passthrough":
            response.stream = True
            untouched_untyped(flow, None)  # not sniffed: nothing of it is here yet
        elif kind == "worker":
            response.stream = True  # untouched, without the runtime (the CSP still holds)
        else:
            replace_while_streaming(flow, "too_large")
        return
    if not buffering.installed():
        return  # checked once complete (on_response)
    # buffered: the limit holds while the body arrives (a chunked body has no length to check)
    stream_if = None
    coding = response.headers.get("content-encoding", "").strip().lower()
    if kind == "worker":
        stream_if = lambda prefix: True  # noqa: E731 - past the limit: untouched, as just above
    elif kind == "passthrough" and coding in ("", "identity"):
        stream_if = lambda prefix: kind_of(content_type, prefix) == "passthrough"  # noqa: E731
    flow.metadata[BODY_WATCH] = BodyWatch(ctx.settings.max_rewrite_bytes, stream_if)


def _is_attachment(headers: http.Headers) -> bool:
    """``Content-Disposition: attachment``: every browser downloads it, never renders it (any other
    type, however odd, is rewritten: the safe side)."""
    value = headers.get("content-disposition", "")
    return value.split(";", 1)[0].strip().lower() == "attachment"


def _websocket_handshake(flow: http.HTTPFlow) -> bool:
    """A WebSocket handshake answered as one: the only protocol switch the proxy relays."""
    assert flow.response is not None
    return (flow.request.headers.get("upgrade", "").strip().lower() == "websocket"
            and flow.response.headers.get("upgrade", "").strip().lower() == "websocket")


def _enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _is_xml_document(content_type: str | None) -> bool:
    """XML types a browser renders as a document (XHTML or SVG elements in it are live)."""
    mime = mime_type(content_type)
    return mime in ("text/xml", "application/xml", "text/xsl") or mime.endswith("+xml")


def _charset_param(content_type: str | None) -> str:
    charset = charset_param(content_type)
    return f"; charset={charset}" if charset else ""


def _has_body(flow: http.HTTPFlow) -> bool:
    assert flow.response is not None
    status = flow.response.status_code
    return flow.request.method != "HEAD" and status >= 200 and status not in (204, 304)


def _framing(upstream: http.Headers, has_body: bool) -> list[tuple[bytes, bytes]]:
    """The upstream's hop-by-hop framing, kept on the response object although the header policy
    drops it: mitmproxy decides from these headers, once the body is in, whether the upstream
    connection can carry the next request, and how to frame a streamed body for the browser. With
    ``Transfer-Encoding: chunked`` gone, both would read "until the connection closes", and every
    chunked response would cost a new upstream connection (a TLS handshake) and the browser its
    keep-alive connection. ``Connection: close`` is kept so a closing upstream is never reused.
    A rewritten body replaces ``Transfer-Encoding`` with ``Content-Length`` (``on_response``).
    Responses without a body (HEAD, 1xx, 204, 304) keep no ``Transfer-Encoding``: mitmproxy would
    end them with a stray last chunk, corrupting the browser's next response."""
    out = []
    coding = upstream.get("transfer-encoding", "")
    if coding.strip() and has_body:
        out.append((b"transfer-encoding", _enc(coding)))
    if "close" in (token.strip().lower() for token in upstream.get("connection", "").split(",")):
        out.append((b"connection", b"close"))
    return out


def finish_refused(flow: http.HTTPFlow) -> None:
    """A refused upstream response whose (empty) body was consumed rather than streamed gets its
    page body back; after streaming, replacing the response changes nothing on the wire."""
    if flow.response is not None:
        close = flow.response.headers.get("connection", "").strip().lower() == "close"
        flow.response = error_response(flow, flow.metadata["cobrowse.refused"])
        if close:  # decided with the headers (a protocol switch nobody asked for)
            flow.response.headers["connection"] = "close"


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
        # document.cookie refuses a Domain that is one, as the jar does
        "publicDomains": public_ancestors(origin.host),
        "now": time.time(),  # the jar's expiry times are on this clock, not the agent's
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
    except (BodyTooLarge, ContentDecodingError) as exc:
        if kind == "worker":
            return  # as it came, without the runtime (the CSP still holds)
        flow.response = error_response(flow, "too_large" if isinstance(exc, BodyTooLarge) else "bad_content")
        return
    content_type = response.headers.get("content-type")
    # sniffed here: an untyped download is not sent to a worker and back
    declared: str = kind
    if declared == "worker":  # the runtime and its config first, then the script as it came
        config = {**runtime_config(ctx, session, mapper, origin, []), "base": _upstream_url(flow, origin)}
        at = prelude_offset(body)
        body = body[:at] + worker_prelude(config) + body[at:]
        kind = "passthrough"  # nothing more to do to it
        # validators of this copy would let a later revalidation keep a copy without it
        response.headers.pop("etag", None)
        response.headers.pop("last-modified", None)
        response.headers["accept-ranges"] = "none"  # nor may a range of the script complete it
    else:
        kind = "css" if STYLE_AS_SENT in flow.metadata else kind_of(content_type, body[:SNIFF_BYTES])
    if kind == "passthrough" and declared not in ("passthrough", "worker"):
        # labelled HTML/CSS/SVG, starting like an image: where a browser may parse it as
        # labelled (not an <img>, <video>...), it is rewritten as labelled, never passed raw
        if destination(flow) not in MEDIA_DESTS:
            kind = declared
    inject = ""
    if kind == "html":
        cookies = cookie_sync.script_cookies(flow)
        inject = injection_markup(runtime_config(ctx, session, mapper, origin, cookies))
    try:
        if kind == "passthrough":
            out = Rewritten(body, content_type, "passthrough")
        else:
            out = await ctx.rewrite_pool.run(
                cast(Kind, kind), body, url=_upstream_url(flow, origin), mapper=mapper,
                content_type=content_type, inject=inject, masked=session.masked_selectors,
                # fetch/XHR: markup a script reads (htmx, Turbo, templates) gets nothing added
                document=destination(flow) != "empty",
                encoding=compression.choose_coding(flow.metadata.get(BROWSER_ACCEPT_ENCODING)),
            )
    except RewriteError:
        logger.warning("rewriting failed for a %s body", kind, exc_info=True)
        flow.response = error_response(flow, "bad_content")
        return
    response.headers.pop("content-encoding", None)
    # the upstream's framing has served its purpose (the upstream connection is done with): the
    # browser gets a Content-Length, and its connection stays open whatever upstream said
    response.headers.pop("transfer-encoding", None)
    response.headers.pop("connection", None)
    if out.kind == "passthrough":
        response.raw_content = body
        if mime_type(content_type) in UNKNOWN_TYPES:
            untouched_untyped(flow, body[:SNIFF_BYTES])
        elif declared not in ("passthrough", "worker"):  # labelled HTML/CSS/SVG, for an <img> or a <video>
            response.headers["content-type"] = "application/octet-stream"
            response.headers["x-content-type-options"] = "nosniff"
    else:
        response.raw_content = out.body
        # a rewritten copy is no byte range of the upstream's: never resumed with one
        response.headers["accept-ranges"] = "none"
        vary_on(response, "Accept-Encoding")  # sent in a coding the browser accepts, or none
        if out.encoding:
            # the validator stays as it was (validators.tag_response): made weak, it would reach
            # the upstream weak in an If-Match, which never matches (412); a rewritten copy is
            # never resumed with a range, where a coding of its own would matter
            response.headers["content-encoding"] = out.encoding
        if STYLE_AS_SENT in flow.metadata:  # the browser decides on the type it was sent
            sent = flow.metadata[STYLE_AS_SENT]
            if sent is None:
                response.headers.pop("content-type", None)
            else:
                # (none when the sheet is read in its document's encoding: rewrite_body said so)
                charset = "; charset=utf-8" if "charset=" in (out.content_type or "") else ""
                response.headers["content-type"] = f"{mime_type(sent)}{charset}"
        elif out.content_type:
            response.headers["content-type"] = out.content_type
    response.headers["content-length"] = str(len(response.raw_content or b""))
