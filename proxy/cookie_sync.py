"""The session's cookie jar on the server, shared by every proxy process through the store.

The browser holds only proxy cookies: the credential (``__cb_{sid}``), ``__cbjs_{sid}``, the
runtime's note of ``document.cookie`` writes not yet merged, and ``__cbjv_{sid}``, the jar's
script-visible cookies of the origin for the runtime. On every request the proxy merges
``__cbjs_{sid}`` into the jar (and expires it), then sends upstream the jar's ``Cookie`` header; every
upstream ``Set-Cookie`` goes into the jar and never to the browser. The cookie model (RFC 6265 on
``http.cookiejar``) is ``rewriter.cookies``; the store keeps JSON records (``proxy_access.jar_*``).
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Sequence
from typing import Any

from mitmproxy import http

from control_api import json_text, proxy_access
from control_api.exceptions import StoreUnavailable
from control_api.proxy_access import ProxySession
from proxy.context import ProxyContext
from proxy.exceptions import Refused
from proxy.responses import respond
from rewriter import cookies as jar_model
from rewriter.cookies import CookieChange, CookieRecord
from rewriter.exceptions import RewriteError
from rewriter.headers import schemeful_site, site_of_host
from rewriter.urls import Origin, ProxyConfig, UrlMapper

SCRIPT_COOKIE = "__cbjs"
# the jar's script-visible cookies of the origin, kept current in the browser for the runtime:
# a cookie a fetch's answer sets (a CSRF token a script then reads) shows at once, and a page the
# browser had cached shows the jar as it is now, not as it was
VIEW_COOKIE = "__cbjv"
# Both are named after the session (``__cbjs_{sid}``): a page can write a cookie for the whole
# proxy domain (with a Document cookie setter borrowed from a frame the runtime is not in, such
# as a blob: document), which the browser then sends to every session's origins; under the bare
# names, one session's page put cookies into another session's jar. It knows no other session id.
# Where the browser keeps ``__Host-`` cookies (https, and the secure-context ``localhost`` names),
# they are ``__Host-cbjs_{sid}``/``__Host-cbjv_{sid}``: the browser refuses such a cookie with a
# Domain, so a page cannot plant one for the session's other origins either (the runtime,
# ``cookieNames`` in runtime.js, computes the same names).
HOST_PREFIX = "__Host-"


def host_only_names(public: ProxyConfig) -> bool:
    """Whether the proxy's own script cookies get the ``__Host-`` prefix (it needs ``Secure``,
    which browsers keep over https and on ``localhost`` names, secure contexts over http)."""
    return public.scheme == "https" or public.domain == "localhost" or public.domain.endswith(".localhost")


def _name(base: str, sid: str, public: ProxyConfig) -> str:
    if host_only_names(public):
        return f"{HOST_PREFIX}{base[2:]}_{sid}"
    return f"{base}_{sid}"


def script_cookie_name(sid: str, public: ProxyConfig) -> str:
    return _name(SCRIPT_COOKIE, sid, public)


def view_cookie_name(sid: str, public: ProxyConfig) -> str:
    return _name(VIEW_COOKIE, sid, public)


def _attributes(public: ProxyConfig) -> str:
    """What follows the value of a proxy script cookie the proxy sets or expires."""
    return "Path=/; SameSite=Lax" + ("; Secure" if host_only_names(public) else "")


MAX_VIEW_BYTES = 3800  # a browser keeps a cookie of at most 4096 bytes, name included
SESSION_ID_CHARS = 10  # every session id (``rewriter.urls.SESSION_ID_RE``)
VIEW_NAME_BYTES = len(HOST_PREFIX) + len(VIEW_COOKIE) - 2 + 1 + SESSION_ID_CHARS  # the longer name
HELD_VIEW = "cobrowse.held_view"  # flow metadata: the browser's __cbjv_{sid} as the request came
# flow metadata
RECORDS = "cobrowse.jar"  # dict key -> CookieRecord, as of this request
UPSTREAM_COOKIE = "cobrowse.upstream_cookie"  # the Cookie header the jar gives this request
SCRIPT_COOKIES = "cobrowse.script_cookies"
EXPIRE_SCRIPT_COOKIE = "cobrowse.expire_cbjs"
# a request the browser sent without credentials (``addons.Gate``): no jar cookies go upstream and
# its Set-Cookie is not kept, as a browser neither sends nor stores cookies for such a request
ANONYMOUS = "cobrowse.anonymous"
MAX_SCRIPT_WRITES = 50
MAX_POST_BYTES = 64 * 1024


def _upstream_url(flow: http.HTTPFlow, origin: Origin) -> str:
    return origin.serialize() + flow.request.path


def _page_url(flow: http.HTTPFlow, mapper: UrlMapper, origin: Origin) -> str:
    """The upstream URL of the document that made a script write: the Referer when it is a page
    of the same upstream origin, else the request's own URL."""
    referer = flow.request.headers.get("referer")
    if referer:
        try:
            upstream = mapper.to_upstream(referer)
            if Origin.parse(upstream) == origin:
                return upstream
        except RewriteError:
            pass
    return _upstream_url(flow, origin)


def _same_site(flow: http.HTTPFlow, mapper: UrlMapper, origin: Origin) -> bool:
    """Whether the request is same-site in upstream terms (for SameSite cookies)."""
    site = (flow.request.headers.get("sec-fetch-site") or "").lower()
    if site in ("", "none", "same-origin"):
        return True
    initiator = flow.request.headers.get("origin") or flow.request.headers.get("referer")
    if not initiator or initiator == "null":
        return False
    try:
        initiator_origin = mapper.upstream_origin(initiator)
    except RewriteError:
        return False
    return schemeful_site(initiator_origin) == schemeful_site(origin)


def _apply(records: dict[str, CookieRecord], change: CookieChange) -> None:
    for key in change.deletes:
        records.pop(key, None)
    for record in change.upserts:
        records[record.key] = record


def _bounded(records: dict[str, CookieRecord], change: CookieChange) -> CookieChange:
    """``change`` (already applied to ``records``) plus the deletions that keep the jar within
    its limits (``rewriter.cookies.over_limits``), which leave ``records`` too."""
    evicted = jar_model.over_limits(records.values())
    if not evicted:
        return change
    for key in evicted:
        records.pop(key, None)
    gone = set(evicted)
    return CookieChange(tuple(r for r in change.upserts if r.key not in gone),
                        tuple(dict.fromkeys((*change.deletes, *evicted))))


async def _load(ctx: ProxyContext, sid: str) -> dict[str, CookieRecord]:
    try:
        stored = await proxy_access.jar_load(ctx.store, sid)
    except StoreUnavailable as exc:
        raise Refused("store_unavailable") from exc
    return {r.key: r for r in jar_model.load_records(stored)}


async def _save(ctx: ProxyContext, sid: str, change: CookieChange) -> None:
    if not change.upserts and not change.deletes:
        return
    upserts, deletes = change.as_store_update()
    try:
        await proxy_access.jar_update(ctx.store, sid, upserts, deletes)
    except StoreUnavailable as exc:
        raise Refused("store_unavailable") from exc


def _script_writes(raw: str) -> list[str]:
    try:
        value = json_text.loads(urllib.parse.unquote(raw))
    except ValueError:  # not JSON, too deep, or a lone surrogate
        return []
    if not isinstance(value, list):
        return []
    return [v for v in value if isinstance(v, str)][:MAX_SCRIPT_WRITES]


def _merge_writes(records: dict[str, CookieRecord], writes: list[str], page_url: str) -> CookieChange:
    upserts: dict[str, CookieRecord] = {}
    deletes: dict[str, None] = {}
    for write in writes:
        change = jar_model.parse_script_write(write, page_url, records)
        _apply(records, change)
        for key in change.deletes:
            upserts.pop(key, None)
            deletes[key] = None
        for record in change.upserts:
            deletes.pop(record.key, None)
            upserts[record.key] = record
    return CookieChange(tuple(upserts.values()), tuple(deletes))


async def on_request(ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession) -> None:
    """Merge ``__cbjs_{sid}``; the jar's Cookie header for upstream goes to ``UPSTREAM_COOKIE`` (the
    browser's Cookie header, proxy cookies only, is dropped by ``request_fixup``)."""
    if flow.metadata.get(ANONYMOUS):
        flow.metadata[RECORDS] = {}
        flow.metadata[UPSTREAM_COOKIE] = ""
        return
    mapper: UrlMapper = flow.metadata["cobrowse.mapper"]
    origin: Origin = flow.metadata["cobrowse.origin"]
    sid = session.session_id
    # the browser's Cookie header goes soon (request_fixup)
    flow.metadata[HELD_VIEW] = flow.request.cookies.get(view_cookie_name(sid, ctx.public))
    records = await _load(ctx, sid)
    script_raw = flow.request.cookies.get(script_cookie_name(sid, ctx.public))
    if script_raw is not None:
        flow.metadata[EXPIRE_SCRIPT_COOKIE] = True
        change = _merge_writes(records, _script_writes(script_raw), _page_url(flow, mapper, origin))
        await _save(ctx, session.session_id, _bounded(records, change))
    expired = jar_model.expired_keys(records.values())
    if expired:
        for key in expired:
            records.pop(key, None)
        await _save(ctx, session.session_id, CookieChange((), expired))
    trimmed = _bounded(records, CookieChange())  # responses saved side by side may overshoot
    if trimmed.deletes:
        await _save(ctx, session.session_id, trimmed)
    flow.metadata[RECORDS] = records
    url = _upstream_url(flow, origin)
    # SameSite=Lax cookies go with top-level navigations by safe methods only: a cross-site form
    # POST must not carry them (RFC 6265bis "lax"), or the proxy would undo the site's CSRF defence
    navigation = (flow.request.headers.get("sec-fetch-mode") or "").lower() == "navigate" and (
        flow.request.method in ("GET", "HEAD")
    )
    header = jar_model.cookie_header(
        records.values(), url, same_site=_same_site(flow, mapper, origin), top_level_navigation=navigation
    )
    flow.metadata[UPSTREAM_COOKIE] = header


def _site_keys(records: dict[str, CookieRecord], host: str) -> tuple[str, ...]:
    """The jar's cookies of ``host``'s site (what ``Clear-Site-Data: "cookies"`` clears)."""
    site = site_of_host(host)
    return tuple(key for key, r in records.items() if r.domain == site or r.domain.endswith("." + site))


async def on_set_cookies(
    ctx: ProxyContext,
    flow: http.HTTPFlow,
    session: ProxySession,
    set_cookies: tuple[str, ...],
    *,
    clear_site: bool = False,
) -> None:
    """Upstream ``Set-Cookie`` values go into the jar; the browser only sees ``__cbjs_{sid}`` expire.
    ``clear_site`` (``Clear-Site-Data: "cookies"``) first empties the jar of the response's site,
    as a browser clears its cookies (a logout must log out)."""
    origin: Origin = flow.metadata["cobrowse.origin"]
    records: dict[str, CookieRecord] = flow.metadata.setdefault(RECORDS, {})
    if clear_site and not flow.metadata.get(ANONYMOUS):
        if not records:  # a request that read no jar (the gate's own answers): read it now
            records.update(await _load(ctx, session.session_id))
        gone = _site_keys(records, origin.host)
        for key in gone:
            records.pop(key, None)
        await _save(ctx, session.session_id, CookieChange((), gone))
    if set_cookies and not flow.metadata.get(ANONYMOUS):
        change = jar_model.parse_set_cookies(set_cookies, _upstream_url(flow, origin))
        _apply(records, change)
        await _save(ctx, session.session_id, _bounded(records, change))
    assert flow.response is not None
    flow.response.headers.pop("set-cookie", None)
    if flow.metadata.get(EXPIRE_SCRIPT_COOKIE):
        name = script_cookie_name(session.session_id, ctx.public)
        flow.response.headers.add("set-cookie", f"{name}=; Max-Age=0; {_attributes(ctx.public)}")
    if not flow.metadata.get(ANONYMOUS):
        await _send_view(ctx, flow, session, origin, records)


def view_value(view: Sequence[tuple[str, str, str] | tuple[str, str, str, int]]) -> str:
    """The ``__cbjv_{sid}`` cookie value of a view: URL-encoded JSON ``[[name, value, path[, expires]],
    ...]``, or,
    too large for a cookie, ``!`` and a digest of it (the runtime then asks the proxy)."""
    # ASCII: a value the upstream sent in Latin-1 holds lone surrogates (mitmproxy's
    # surrogateescape), which have no UTF-8 to percent-encode
    text = json.dumps(view, separators=(",", ":"))
    encoded = urllib.parse.quote(text, safe="")
    if len(encoded) + VIEW_NAME_BYTES + 1 <= MAX_VIEW_BYTES:
        return encoded
    return "!" + hashlib.sha256(text.encode()).hexdigest()[:16]


async def _send_view(
    ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession, origin: Origin,
    records: dict[str, CookieRecord],
) -> None:
    """Set ``__cbjv_{sid}`` when the jar's view for this origin is not what the browser holds. The view
    is read from the store again then: another answer may have changed the jar meanwhile."""
    held = flow.metadata.get(HELD_VIEW)
    if held == view_value(jar_model.origin_script_view(records.values(), origin.serialize() + "/")):
        return
    fresh = await _load(ctx, session.session_id)
    value = view_value(jar_model.origin_script_view(fresh.values(), origin.serialize() + "/"))
    if value == held:
        return
    assert flow.response is not None
    name = view_cookie_name(session.session_id, ctx.public)
    flow.response.headers.add("set-cookie", f"{name}={value}; {_attributes(ctx.public)}")


def script_cookies(flow: http.HTTPFlow) -> list[dict[str, str | int]]:
    """The jar's non-HttpOnly cookies for this document, for the runtime's ``document.cookie``."""
    origin: Origin = flow.metadata["cobrowse.origin"]
    records: dict[str, CookieRecord] = flow.metadata.get(RECORDS, {})
    return jar_model.script_view(records.values(), _upstream_url(flow, origin))


async def post_cookies(
    ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession, origin: Origin
) -> None:
    """``POST /__cobrowse/cookies`` with JSON ``{"url": page URL, "cookies": [raw strings]}`` (the
    page's upstream URL, as the runtime sends it; a proxy URL is accepted too), on the proxy origin
    of that page. Answers ``{"cookies": [...]}``, the page's script view after the merge."""
    mapper: UrlMapper = flow.metadata["cobrowse.mapper"]
    body = flow.request.raw_content or b""
    try:
        if len(body) > MAX_POST_BYTES:
            raise ValueError("too large")
        data: Any = json_text.loads(body)
        writes = [w for w in data["cookies"] if isinstance(w, str)][:MAX_SCRIPT_WRITES]
        page_url = str(data["url"])
        try:
            page_url = mapper.to_upstream(page_url)
        except RewriteError:
            pass  # already an upstream URL
        page_origin = Origin.parse(page_url)
    except (ValueError, KeyError, TypeError, RewriteError) as exc:
        raise Refused("bad_request") from exc
    if page_origin != origin:
        raise Refused("outside_scope")  # a page writes only its own origin's cookies
    records = await _load(ctx, session.session_id)
    change = _merge_writes(records, writes, page_url)
    await _save(ctx, session.session_id, _bounded(records, change))
    view = jar_model.script_view(records.values(), page_url)
    respond(
        flow,
        http.Response.make(
            200, json.dumps({"cookies": view}).encode(),
            {"content-type": "application/json", "cache-control": "no-store"},
        ),
    )
