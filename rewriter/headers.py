"""HTTP header rewriting, as two tables: response header -> action, request header -> action.

Pure functions over lists of ``(name, value)`` pairs, returning frozen results. The response
side also hands back the ``Set-Cookie`` values for the session jar: they never reach the browser.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass

from rewriter.exceptions import RewriteError
from rewriter.url_values import map_url, refresh_url_span
from rewriter.urls import DEFAULT_PORTS, Origin, ProxyConfig, UrlMapper

Headers = tuple[tuple[str, str], ...]


class Action(enum.Enum):
    KEEP = "keep"
    DROP = "drop"
    MAP_URL = "map-url"  # the value is one URL: absolute -> proxy
    MAP_REFRESH = "map-refresh"  # "5; url=..."
    MAP_LINK = "map-link"  # <url>; rel=..., <url>; ...
    MAP_ORIGIN = "map-origin"  # an upstream origin -> its proxy origin
    TO_JAR = "to-jar"  # Set-Cookie: parsed into the session jar
    TO_UPSTREAM_URL = "to-upstream-url"  # request: a proxy URL -> the upstream URL
    TO_UPSTREAM_ORIGIN = "to-upstream-origin"  # request: a proxy origin -> the upstream origin
    TO_UPSTREAM_HOST = "to-upstream-host"  # request: Host -> the upstream host[:port]


@dataclass(frozen=True)
class Rule:
    action: Action
    why: str


# Hop-by-hop headers (RFC 9110 7.6.1) are dropped both ways, with any the Connection header lists.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
     "proxy-authenticate", "proxy-authorization"}
)  # fmt: skip

RESPONSE_RULES: dict[str, Rule] = {
    "location": Rule(Action.MAP_URL, "redirects must stay inside the proxy"),
    "content-location": Rule(Action.MAP_URL, "names the resource's URL"),
    "refresh": Rule(Action.MAP_REFRESH, "a timed redirect, like <meta http-equiv=refresh>"),
    "link": Rule(Action.MAP_LINK, "preload/preconnect/modulepreload hints fetch URLs"),
    "sourcemap": Rule(Action.MAP_URL, "developer tools fetch it"),
    "x-sourcemap": Rule(Action.MAP_URL, "developer tools fetch it"),
    "set-cookie": Rule(Action.TO_JAR, "cookies live in the session jar, never in the agent's browser"),
    "content-security-policy": Rule(Action.DROP, "names upstream origins and would block the runtime"),
    "content-security-policy-report-only": Rule(Action.DROP, "reports would leak proxy URLs upstream"),
    "x-frame-options": Rule(Action.DROP, "the agent console frames proxied pages from another origin"),
    "strict-transport-security": Rule(Action.DROP, "would pin the proxy domain to https"),
    "public-key-pins": Rule(Action.DROP, "pins upstream keys on the proxy domain"),
    "report-to": Rule(Action.DROP, "reports go upstream from the agent's browser"),
    "reporting-endpoints": Rule(Action.DROP, "reports go upstream from the agent's browser"),
    "nel": Rule(Action.DROP, "network error logging reports to upstream collectors"),
    "cross-origin-embedder-policy": Rule(Action.DROP, "would refuse proxied subresources"),
    "cross-origin-opener-policy": Rule(Action.DROP, "would cut the page off its console"),
    "clear-site-data": Rule(Action.DROP, "would clear the proxy origin's own state and credential"),
    "alt-svc": Rule(Action.DROP, "advertises upstream's alternative services, not the proxy's"),
    "service-worker-allowed": Rule(Action.DROP, "service workers are blocked on proxied pages"),
    "access-control-allow-origin": Rule(Action.MAP_ORIGIN, "CORS answers name the requesting origin"),
    "timing-allow-origin": Rule(Action.MAP_ORIGIN, "names origins that may read timings"),
}

REQUEST_RULES: dict[str, Rule] = {
    "host": Rule(Action.TO_UPSTREAM_HOST, "upstream serves its own host name"),
    "origin": Rule(Action.TO_UPSTREAM_ORIGIN, "CORS and CSRF checks compare upstream origins"),
    "referer": Rule(Action.TO_UPSTREAM_URL, "upstream expects its own URLs"),
    "cookie": Rule(Action.DROP, "the browser only holds proxy cookies; the session jar supplies Cookie"),
    "forwarded": Rule(Action.DROP, "would expose the proxy chain"),
    "x-forwarded-for": Rule(Action.DROP, "would expose the proxy chain"),
    "x-forwarded-host": Rule(Action.DROP, "names the proxy host"),
    "x-forwarded-proto": Rule(Action.DROP, "names the proxy scheme"),
}


@dataclass(frozen=True)
class ResponseHeaders:
    """Rewritten response headers, the Set-Cookie values for the jar, and what was dropped."""

    headers: Headers
    set_cookies: tuple[str, ...]
    dropped: tuple[str, ...]


_NEVER_HOP = frozenset({"host", "content-length"})


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


def map_link_header(value: str, mapper: UrlMapper, base: str) -> str:
    """Map every ``<url>`` of a Link header value; parameters are kept as they are."""
    out: list[str] = []
    pos = 0
    while True:
        start = value.find("<", pos)
        if start == -1:
            break
        end = value.find(">", start + 1)
        if end == -1:
            break
        out.append(value[pos : start + 1])
        out.append(map_url(mapper, value[start + 1 : end], base))
        pos = end
    out.append(value[pos:])
    return "".join(out)


def _map_origin(value: str, mapper: UrlMapper) -> str | None:
    """An origin (or a comma-separated list of them, as Timing-Allow-Origin allows) mapped to the
    proxy; None, to drop the header, when one of them is not an http(s) origin."""
    text = value.strip()
    if text in ("*", "null", ""):
        return value
    try:
        return ", ".join(_one_origin(part, mapper) for part in (p.strip() for p in text.split(",")) if part)
    except RewriteError:
        return None


def _one_origin(text: str, mapper: UrlMapper) -> str:
    """A serialised origin's proxy origin. Browsers compare these headers with the request's
    ``Origin`` byte for byte: one written otherwise (upper case, a path, the default port) stays
    as it is and fails through the proxy as it would against the upstream."""
    if text == "*":
        return text
    origin = Origin.parse(text)
    return mapper.proxy_origin(origin) if origin.serialize() == text else text


def _map_response_value(action: Action, value: str, mapper: UrlMapper, url: str) -> str | None:
    if action is Action.MAP_URL:
        return map_url(mapper, value, url)
    if action is Action.MAP_REFRESH:
        span = refresh_url_span(value)
        if span is None:
            return value
        return value[: span[0]] + map_url(mapper, value[span[0] : span[1]], url) + value[span[1] :]
    if action is Action.MAP_LINK:
        return map_link_header(value, mapper, url)
    if action is Action.MAP_ORIGIN:
        return _map_origin(value, mapper)
    return value


@functools.lru_cache(maxsize=16)
def confinement_policy(proxy: ProxyConfig) -> str:
    """The ``Content-Security-Policy`` every proxied response carries: the agent's browser may load
    and connect only to proxy origins (``*.{proxy-domain}``, every session's and the blocked
    origin's), ``data:`` and ``blob:``, and submit forms only there.

    A backstop behind the URL rewriting, not a replacement for it: what the rewriter and the
    client runtime miss (``import()`` in a worker, which no runtime can wrap; a URL a script
    builds in a way nothing wraps) fails in the browser instead of reaching the upstream directly, with the
    agent's own address. Scripts, styles and event handlers inline and ``eval`` stay allowed, as
    on the pages this replaces the (dropped) upstream policy of; so do forms whose action is a
    ``javascript:``, ``mailto:`` or ``tel:`` URL (Chromium checks those against ``form-action``).
    Top-level navigations are not covered by CSP (a frame's are, by ``default-src``); the runtime
    keeps those inside.
    """
    port = "" if proxy.port == DEFAULT_PORTS[proxy.scheme] else f":{proxy.port}"
    ws = {"http": "ws", "https": "wss"}[proxy.scheme]
    hosts = f"{proxy.scheme}://*.{proxy.domain}{port} {ws}://*.{proxy.domain}{port}"
    return (
        f"default-src {hosts} data: blob: 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval'; "
        f"form-action {proxy.scheme}://*.{proxy.domain}{port} javascript: mailto: tel:"
    )


def rewrite_response_headers(
    headers: Iterable[tuple[str, str]], *, url: str, mapper: UrlMapper
) -> ResponseHeaders:
    """Rewrite the headers of the upstream response to ``url`` for the agent's browser."""
    headers = list(headers)
    hop = HOP_BY_HOP | _connection_tokens(headers)
    kept: list[tuple[str, str]] = []
    cookies: list[str] = []
    dropped: list[str] = []
    for name, value in headers:
        lower = name.lower()
        rule = RESPONSE_RULES.get(lower)
        if lower in hop or (rule is not None and rule.action is Action.DROP):
            dropped.append(lower)
        elif rule is not None and rule.action is Action.TO_JAR:
            cookies.append(value)
        elif rule is None:
            kept.append((name, value))
        else:
            new = _map_response_value(rule.action, value, mapper, url)
            if new is None:
                dropped.append(lower)
            else:
                kept.append((name, new))
    return ResponseHeaders(tuple(kept), tuple(cookies), tuple(dropped))


def _to_upstream_url(value: str, mapper: UrlMapper) -> str | None:
    try:
        return mapper.to_upstream(value)
    except RewriteError:
        return None  # not one of this session's proxy URLs: nothing upstream should see


def _to_upstream_origin(value: str, mapper: UrlMapper) -> str | None:
    if value.strip() == "null":
        return value
    try:
        return mapper.upstream_origin(value).serialize()
    except RewriteError:
        return None


def rewrite_request_headers(
    headers: Iterable[tuple[str, str]], *, mapper: UrlMapper, origin: Origin
) -> Headers:
    """Rewrite the agent browser's request headers for the upstream ``origin``.

    ``Host`` becomes the upstream host, ``Origin`` and ``Referer`` the upstream origin and URL
    (dropped when they are not this session's proxy URLs); hop-by-hop headers, ``Cookie`` (the
    jar supplies it) and forwarding headers are dropped.
    """
    headers = list(headers)
    # a Connection header cannot take away what the upstream needs to read the request
    hop = HOP_BY_HOP | (_connection_tokens(headers) - _NEVER_HOP)
    out: list[tuple[str, str]] = []
    for name, value in headers:
        lower = name.lower()
        rule = REQUEST_RULES.get(lower)
        if lower in hop or (rule is not None and rule.action is Action.DROP):
            continue
        new: str | None = value
        if rule is not None and rule.action is Action.TO_UPSTREAM_HOST:
            new = origin.netloc
        elif rule is not None and rule.action is Action.TO_UPSTREAM_ORIGIN:
            new = _to_upstream_origin(value, mapper)
        elif rule is not None and rule.action is Action.TO_UPSTREAM_URL:
            new = _to_upstream_url(value, mapper)
        if new is not None:
            out.append((name, new))
    return tuple(out)
