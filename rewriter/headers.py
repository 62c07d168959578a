"""HTTP header rewriting, as two tables: response header -> action, request header -> action.

Pure functions over lists of ``(name, value)`` pairs, returning frozen results. The response
side also hands back the ``Set-Cookie`` values for the session jar: they never reach the browser.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from rewriter.exceptions import RewriteError
from rewriter.public_suffixes import PUBLIC_SUFFIXES
from rewriter.url_values import map_url, refresh_url_span, replace_spans, srcset_url_spans
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
    CLEAR_SITE_DATA = "clear-site-data"  # "cookies" clears the jar, the other types go on
    FETCH_SITE = "fetch-site"  # request: Sec-Fetch-Site as the upstream would see it


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
    "clear-site-data": Rule(
        Action.CLEAR_SITE_DATA,
        '"cookies" clears the jar (in the browser it would clear every session\'s credential); '
        "storage, cache and the rest are the proxy origin's own and go on",
    ),
    "speculation-rules": Rule(Action.DROP, "a rules file's prefetches would go straight to the upstream"),
    "integrity-policy": Rule(Action.DROP, "rewritten documents carry no integrity: the runtime is blocked"),
    "integrity-policy-report-only": Rule(Action.DROP, "reports would leak proxy URLs upstream"),
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
    "sec-fetch-site": Rule(Action.FETCH_SITE, "proxy origins share one site: upstream sites differ"),
    **{
        name: Rule(Action.DROP, "names the agent's address or the proxy chain (load balancers add it)")
        for name in (
            "x-real-ip", "true-client-ip", "cf-connecting-ip", "x-client-ip", "x-cluster-client-ip",
            "fastly-client-ip", "x-original-forwarded-for", "x-forwarded", "forwarded-for",
            "x-forwarded-port", "x-forwarded-server", "x-forwarded-prefix", "x-original-host",
            "x-proxyuser-ip", "via",
        )
    },
}


@dataclass(frozen=True)
class ResponseHeaders:
    """Rewritten response headers, the Set-Cookie values for the jar, and what was dropped."""

    headers: Headers
    set_cookies: tuple[str, ...]
    dropped: tuple[str, ...]
    clear_cookies: bool = False  # Clear-Site-Data named "cookies" (or "*"): empty the jar's site


_NEVER_HOP = frozenset({"host", "content-length"})


def _connection_tokens(headers: Iterable[tuple[str, str]]) -> set[str]:
    tokens: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            tokens.update(t.strip().lower() for t in value.split(",") if t.strip())
    return tokens


_IMAGESRCSET_RE = re.compile(r'(;\s*imagesrcset\s*=\s*)(?:"([^"]*)"|([^;,"\s][^;,]*))', re.IGNORECASE)


def map_link_header(value: str, mapper: UrlMapper, base: str) -> str:
    """Map every ``<url>`` of a Link header value, and the candidates of its ``imagesrcset``
    parameters (a preload of a responsive image); other parameters are kept as they are."""
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
    text = "".join(out)
    if "imagesrcset" not in text.lower():
        return text

    def srcset(match: re.Match[str]) -> str:
        candidates = match.group(2) if match.group(2) is not None else match.group(3)
        mapped = replace_spans(candidates, srcset_url_spans(candidates), lambda u: map_url(mapper, u, base))
        return f'{match.group(1)}"{mapped}"'

    return _IMAGESRCSET_RE.sub(srcset, text)


# Clear-Site-Data types the browser may apply to the proxy origin (each session and upstream
# origin has its own): everything but cookies, which live in the jar
_SITE_DATA_PASSED = ('"cache"', '"storage"', '"executionContexts"', '"clientHints"', '"prefetchCache"',
                     '"prerenderCache"')  # fmt: skip


def trustworthy(url: str) -> bool:
    """A potentially trustworthy origin (https, loopback, ``localhost``): browsers apply
    ``Clear-Site-Data`` only from one."""
    try:
        origin = Origin.parse(url)
    except RewriteError:
        return False
    host = origin.host
    return (origin.scheme == "https" or host == "localhost" or host.endswith(".localhost")
            or host == "::1" or (host.startswith("127.") and host.replace(".", "").isdigit()))


def clear_site_data(value: str) -> tuple[str | None, bool]:
    """The Clear-Site-Data value the browser gets (None: none), and whether the jar is cleared."""
    types = [t.strip() for t in value.split(",") if t.strip()]
    everything = '"*"' in types
    clear_cookies = everything or '"cookies"' in types
    passed = list(_SITE_DATA_PASSED) if everything else [t for t in types if t in _SITE_DATA_PASSED]
    return (", ".join(passed) if passed else None), clear_cookies


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


# A redirect (Location, Refresh) to a script or a document made of its URL: browsers do not follow
# one, and the proxy does not send it on (``None``: the header is dropped).
_SCRIPT_SCHEMES = re.compile(r"[\x00-\x20]*(?:javascript|vbscript|data)[\t\n\r]*:", re.IGNORECASE)


def _map_response_value(action: Action, value: str, mapper: UrlMapper, url: str) -> str | None:
    if action is Action.MAP_URL:
        if _SCRIPT_SCHEMES.match(value):
            return None
        return map_url(mapper, value, url)
    if action is Action.MAP_REFRESH:
        span = refresh_url_span(value)
        if span is None:
            return value
        if _SCRIPT_SCHEMES.match(value[span[0] : span[1]]):
            return None
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
    clear_cookies = False
    for name, value in headers:
        lower = name.lower()
        rule = RESPONSE_RULES.get(lower)
        if lower in hop or (rule is not None and rule.action is Action.DROP):
            dropped.append(lower)
        elif rule is not None and rule.action is Action.TO_JAR:
            cookies.append(value)
        elif rule is not None and rule.action is Action.CLEAR_SITE_DATA:
            passed, clears = clear_site_data(value) if trustworthy(url) else (None, False)
            clear_cookies = clear_cookies or clears
            if passed is None:
                dropped.append(lower)
            else:
                kept.append((name, passed))
        elif rule is None:
            kept.append((name, value))
        else:
            new = _map_response_value(rule.action, value, mapper, url)
            if new is None:
                dropped.append(lower)
            else:
                kept.append((name, new))
    return ResponseHeaders(tuple(kept), tuple(cookies), tuple(dropped), clear_cookies)


def _to_upstream_url(value: str, mapper: UrlMapper) -> str | None:
    try:
        return mapper.to_upstream(value)
    except RewriteError:
        return None  # not one of this session's proxy URLs: nothing upstream should see


def _to_upstream_origin(value: str, mapper: UrlMapper) -> str:
    """This session's proxy origin -> its upstream origin; any other (another session's, the
    console's, another site's) -> ``null``: an origin the upstream does not trust, never a
    missing header, which some servers take for a same-origin request."""
    if value.strip() == "null":
        return value
    try:
        return mapper.upstream_origin(value).serialize()
    except RewriteError:
        return "null"


@functools.lru_cache(maxsize=4096)
def site_of_host(host: str) -> str:
    """The registrable part of a host (its public suffix and one label before it, by the Public
    Suffix List, as browsers take it: ``alice.github.io`` is a site of its own); an address, or a
    public suffix itself, is its own site."""
    if ":" in host or host.replace(".", "").isdigit():
        return host
    return PUBLIC_SUFFIXES.privatesuffix(host.lower()) or host


def schemeful_site(origin: Origin) -> tuple[str, str]:
    """The schemeful site of an origin, as the session jar's SameSite decisions take it
    (``proxy.cookie_sync``)."""
    return origin.scheme, site_of_host(origin.host)


def upstream_fetch_site(value: str, initiator: Origin | None, target: Origin) -> str:
    """``Sec-Fetch-Site`` as the upstream would see it. Every proxy origin is on the proxy's site,
    so the browser says ``same-site`` between any two of them, of this session or another: the
    upstream relation is recomputed from the initiator (this session's origin that ``Origin`` or
    ``Referer`` names, else unknown: ``cross-site``). ``none`` and ``same-origin`` (one proxy
    origin is one upstream origin of one session) and ``cross-site`` stay."""
    if value.strip().lower() != "same-site":
        return value
    if initiator is None:
        return "cross-site"
    if initiator == target:
        return "same-origin"
    return "same-site" if schemeful_site(initiator) == schemeful_site(target) else "cross-site"


def _initiator(headers: list[tuple[str, str]], mapper: UrlMapper) -> Origin | None:
    """The upstream origin of the request's initiator, when ``Origin`` (else ``Referer``) is one
    of this session's proxy origins."""
    values = {name.lower(): value for name, value in headers if name.lower() in ("origin", "referer")}
    for name in ("origin", "referer"):
        value = values.get(name)
        if value and value.strip() != "null":
            try:
                if name == "origin":
                    return mapper.upstream_origin(value)
                return Origin.parse(mapper.to_upstream(value))
            except RewriteError:
                return None
    return None


def rewrite_request_headers(
    headers: Iterable[tuple[str, str]], *, mapper: UrlMapper, origin: Origin
) -> Headers:
    """Rewrite the agent browser's request headers for the upstream ``origin``.

    ``Host`` becomes the upstream host, ``Origin`` and ``Referer`` the upstream origin and URL
    (``Origin: null`` and no ``Referer`` when they are not this session's proxy URLs),
    ``Sec-Fetch-Site`` the upstream relation; hop-by-hop headers, ``Cookie`` (the jar supplies
    it), forwarding and client-address headers are dropped.
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
        elif rule is not None and rule.action is Action.FETCH_SITE:
            new = upstream_fetch_site(value, _initiator(headers, mapper), origin)
        if new is not None:
            out.append((name, new))
    return tuple(out)
