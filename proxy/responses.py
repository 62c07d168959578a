"""Building the proxy's own responses on mitmproxy flows (error pages, redirects, static assets)."""

from __future__ import annotations

from collections.abc import Iterable

from mitmproxy import http

from proxy.error_pages import render, wants_json
from rewriter.dispatch import sniffs_as_text


def error_response(flow: http.HTTPFlow, page: str) -> http.Response:
    """The error page ``page`` for ``flow``'s request (HTML for navigations, JSON for fetch/XHR)."""
    status, headers, body = render(page, wants_json(flow.request.headers))
    return http.Response.make(status, body, headers)


OWN = "cobrowse.own"


OWN_POLICY = "default-src 'none'"


def respond(flow: http.HTTPFlow, response: http.Response) -> None:
    """Answer ``flow`` from the proxy itself (in a ``request`` hook): nothing is fetched upstream,
    and the response hooks leave the response alone."""
    flow.metadata[OWN] = True
    if "content-security-policy" not in response.headers:
        # the runtime asset, JSON answers, redirects: none is a document that may fetch anything,
        # should a page frame it (a same-origin frame with no policy would be a way out)
        response.headers["content-security-policy"] = OWN_POLICY
    flow.response = response


def respond_error(flow: http.HTTPFlow, page: str) -> None:
    """Short-circuit ``flow`` with an error page: nothing is fetched upstream."""
    flow.metadata["cobrowse.refused"] = page
    respond(flow, error_response(flow, page))


def redirect(location: str, status: int = 303, set_cookies: Iterable[str] = ()) -> http.Response:
    headers = http.Headers(location=location, cache_control="no-store", content_length="0")
    for cookie in set_cookies:
        headers.add("set-cookie", cookie)
    return http.Response.make(status, b"", headers)


# Sec-Fetch-Dest values of requests whose response the browser never renders as a document
SUBRESOURCE_DESTS = frozenset({
    "audio", "audioworklet", "empty", "font", "image", "manifest", "paintworklet", "report", "script",
    "serviceworker", "sharedworker", "style", "track", "video", "worker", "xslt",
})  # fmt: skip


# Sec-Fetch-Dest values whose response is shown as an image or played, never parsed as markup
MEDIA_DESTS = frozenset({"audio", "font", "image", "track", "video"})


def destination(flow: http.HTTPFlow) -> str:
    """The request's ``Sec-Fetch-Dest`` (set by the browser; scripts cannot forge it), '' if none."""
    return flow.request.headers.get("sec-fetch-dest", "").strip().lower()


WORKER_DESTS = frozenset({"worker", "sharedworker"})
# what Chromium never runs as a classic worker script (it runs any other type, or none)
NOT_SCRIPTS = ("image/", "audio/", "video/", "text/csv")


def is_worker_script(flow: http.HTTPFlow) -> bool:
    """The top-level script of a worker or shared worker. A module worker's imports come with the
    same destination but in ``cors`` mode: they get no prelude (one runtime per worker is enough;
    it reads its base from the worker's own URL)."""
    headers = flow.request.headers
    return destination(flow) in WORKER_DESTS and headers.get("sec-fetch-mode", "").strip().lower() != "cors"



def vary_on(response: http.Response, field: str) -> None:
    """Add ``field`` to the response's ``Vary`` (once; ``*`` already covers it)."""
    vary = response.headers.get("vary", "")
    names = {name.strip().lower() for name in vary.split(",")}
    if field.lower() not in names and "*" not in names:
        response.headers["vary"] = f"{vary}, {field}" if vary.strip() else field


def vary_on_destination(flow: http.HTTPFlow) -> None:
    """The response depends on ``Sec-Fetch-Dest``: a cached copy fetched as an image must not
    answer a later navigation to the same URL."""
    assert flow.response is not None
    vary_on(flow.response, "Sec-Fetch-Dest")


def as_inert_document(flow: http.HTTPFlow, content_type: str = "application/octet-stream") -> None:
    """A body that passes untouched although a browser could render it with live links (an
    untyped body that did not sniff as HTML, an XML document): where the browser may load it as
    a document (a navigation, a frame, or a destination it does not say) it gets an inert type
    and ``nosniff``, so no unrewritten link in it is ever followed. Scripts, styles, images,
    fetches... keep the upstream's headers: they are never rendered as a document, and
    ``nosniff`` would block an untyped script or stylesheet."""
    assert flow.response is not None
    vary_on_destination(flow)
    if destination(flow) in SUBRESOURCE_DESTS:
        return
    flow.response.headers["content-type"] = content_type
    flow.response.headers["x-content-type-options"] = "nosniff"


def untouched_untyped(flow: http.HTTPFlow, head: bytes | None) -> None:
    """An untyped body that did not sniff as HTML, passing untouched (``as_inert_document``): as a
    document it is text (shown as such, as a browser would) when its ``head`` sniffs as text, else
    a download; ``head`` None (not read yet) counts as binary."""
    as_inert_document(flow, "text/plain" if head is not None and sniffs_as_text(head) else
                      "application/octet-stream")


def replace_while_streaming(flow: http.HTTPFlow, page: str) -> None:
    """In ``responseheaders``: answer with an error page instead of the upstream body.

    The upstream body is drained and dropped; the browser receives only the page.
    """
    assert flow.response is not None
    page_response = error_response(flow, page)
    body = page_response.content or b""
    flow.response.status_code = page_response.status_code
    flow.response.reason = page_response.reason
    flow.response.headers = page_response.headers
    flow.response.headers["content-length"] = str(len(body))
    flow.metadata["cobrowse.refused"] = page
    sent = False

    def drop(chunk: bytes) -> bytes:
        nonlocal sent
        if chunk == b"" and not sent:
            sent = True
            return body
        return b""

    flow.response.stream = drop
