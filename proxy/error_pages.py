"""Every page the proxy answers by itself, in one table.

Navigations get a small HTML page; fetch/XHR (by ``Sec-Fetch-Mode``/``Accept``) get JSON
``{"error": code, "detail": text}``. The texts name no host, address, exception or session state
beyond what the agent can act on.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Page:
    status: int
    title: str
    detail: str


PAGES: dict[str, Page] = {
    "not_active": Page(403, "Co-browsing session not active",
                       "This co-browsing session is not active. Start a new session from the console."),
    "no_credential": Page(403, "Not signed in to this session",
                          "Open this co-browsing session from the agent console."),
    "bad_ticket": Page(403, "Link expired",
                       "This co-browsing link is invalid or was already used. Open the session again "
                       "from the agent console."),
    "outside_scope": Page(403, "Outside co-browse scope",
                          "This address is outside the co-browse scope of this session."),
    "other_session": Page(403, "From another co-browsing session",
                          "A page of another co-browsing session cannot reach this one."),
    "unknown_host": Page(404, "Unknown address", "This address is not a co-browsing address."),
    "not_found": Page(404, "Not found", "There is nothing at this address."),
    "bad_request": Page(400, "Bad request", "The request could not be understood."),
    "head_too_large": Page(431, "Request too large",
                           "The browser sent request headers larger than co-browsing accepts, usually "
                           "too many cookies. Reload the page."),
    "method_not_allowed": Page(405, "Method not allowed", "This request method is not co-browsed."),
    "misdirected": Page(421, "Misdirected request", "Reload the page."),
    "upstream_unreachable": Page(502, "Site unreachable", "The site could not be reached. Try again later."),
    "upstream_timeout": Page(504, "Site too slow", "The site did not answer in time. Try again later."),
    "too_large": Page(502, "Page too large",
                      "This page is too large to be shown in co-browsing."),
    "request_too_large": Page(413, "Request too large",
                              "This request is too large to be sent while co-browsing."),
    "bad_content": Page(502, "Unreadable page", "The site sent a page that could not be read."),
    "store_unavailable": Page(503, "Temporarily unavailable", "Co-browsing is temporarily unavailable."),
    "internal": Page(500, "Error", "Something went wrong while showing this page."),
}

# status mitmproxy reports for a failed upstream exchange -> our page
STATUS_PAGES: dict[int, str] = {
    400: "bad_request", 413: "request_too_large", 502: "upstream_unreachable", 504: "upstream_timeout",
}

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;margin:15vh auto;max-width:36em;padding:0 1em;color:#222}}
h1{{font-size:1.4em}}p{{color:#555}}</style></head>
<body><h1>{title}</h1><p>{detail}</p><p><small>cobrowse &middot; {status}</small></p></body></html>
"""


def wants_json(headers: Mapping[str, str]) -> bool:
    """Whether the request is a fetch/XHR (JSON) rather than a navigation (HTML)."""
    mode = (headers.get("sec-fetch-mode") or "").lower()
    if mode:
        return mode not in ("navigate", "nested-navigate")
    accept = (headers.get("accept") or "").lower()
    return "application/json" in accept and "text/html" not in accept


def render(page: str, json_body: bool = False) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` of the error page ``page`` (a key of ``PAGES``)."""
    entry = PAGES.get(page) or PAGES["internal"]
    if json_body:
        body = json.dumps({"error": page if page in PAGES else "internal", "detail": entry.detail}).encode()
        content_type = "application/json"
    else:
        body = _HTML.format(
            title=html.escape(entry.title), detail=html.escape(entry.detail), status=entry.status
        ).encode()
        content_type = "text/html; charset=utf-8"
    headers = {
        "content-type": content_type,
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'",
    }
    return entry.status, headers, body
