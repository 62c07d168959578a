"""cobrowse's mitmproxy addons, one small class each, listed in order in ``make_addons``.

Request path (``request`` hook, in this order; the first that sets ``flow.response`` wins and
nothing is fetched upstream): Routing -> Gate -> ReservedPaths -> Egress -> CookieJar ->
RequestFixup. Response path: CookieJar.responseheaders (Set-Cookie into the jar, never to the
browser) -> Rewriting (headers, stream or buffer, rewrite bodies off the event loop) ->
UpstreamTimeout (headers arrived; a buffered body gets an idle timeout) -> ClientClose (the
browser's ``Connection: close`` holds). Around them: PlainHttpOnly (no TLS on the listener),
HeadDeadline (a connection brings a request in time), BodyLimit (no ``100 Continue`` for a body
over the limit), Connections (a session's connections, closed at its end).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import posixpath
import re
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from mitmproxy import ctx as mitm_ctx
from mitmproxy import http
from mitmproxy.addonmanager import Loader
from mitmproxy.exceptions import OptionsError
from mitmproxy.net.tls import starts_like_tls_record
from mitmproxy.proxy import layer
from mitmproxy.proxy.layers.tcp import TCPLayer
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.tls import TlsData

from cobrowse.client_address import client_ip
from proxy import buffering, cookie_sync, foreign_cookies, request_fixup, rewriting
from proxy.buffering import BODY_WATCH
from proxy.context import ProxyContext
from proxy.exceptions import Refused
from proxy.responses import OWN, error_response, redirect, replace_while_streaming, respond, respond_error
from proxy.routing import Route, label_of_host, mapper_for, route_of_host, upstream_origin
from proxy.session_gate import credential_cookie, credential_cookie_name
from proxy.timeouts import BODY_TIMED_OUT, UpstreamTimer, take_timeout_mark
from rewriter.exceptions import RewriteError
from rewriter.headers import clear_site_data, trustworthy
from rewriter.runtime import RUNTIME_PATH
from rewriter.urls import ProxyConfig

logger = logging.getLogger(__name__)

RESERVED_PREFIX = "/__cobrowse/"
ENTER_PATH = "/__cobrowse/enter"
HEALTH_PATH = "/healthz"  # on any host that is not a proxied origin (load balancers, Docker)


def _reserved(path: str) -> bool:
    """Whether ``path`` names the proxy's own ``/__cobrowse/`` space, however written
    (``/%5F%5Fcobrowse/``, ``//__cobrowse/``, ``/./__cobrowse/``, ``/x/../__cobrowse/``,
    ``/%5C__cobrowse/``): such a request is never the upstream's, so a ticket or cookie write in
    it never goes there."""
    target = path.split("?", 1)[0]
    if target.startswith(RESERVED_PREFIX):
        return True
    if not any(mark in target for mark in ("%", "//", "/.", "\\")):
        return False  # nothing a browser or server would read differently
    decoded = urllib.parse.unquote(target).replace("\\", "/")
    normal = posixpath.normpath("/" + decoded.lstrip("/"))
    return (normal + "/").startswith(RESERVED_PREFIX)


# metadata keys carried on a flow between addons
ROUTE = "cobrowse.route"
SESSION = "cobrowse.session"
# the store did not answer the head's credential check (HeadDeadline): the gate does not wait again
STORE_DOWN = "cobrowse.store_down"
ORIGIN = "cobrowse.origin"
MAPPER = "cobrowse.mapper"


def _done(flow: http.HTTPFlow) -> bool:
    return flow.response is not None


Hook = TypeVar("Hook", bound=Callable[..., Any])


def _fail(hook_name: str, flow: http.HTTPFlow) -> None:
    logger.exception("cobrowse addon hook %s failed; refusing the request", hook_name)
    if hook_name == "request" or flow.response is None:
        flow.response = None
        respond_error(flow, "internal")
    elif hook_name == "responseheaders":
        replace_while_streaming(flow, "internal")
    else:
        flow.metadata["cobrowse.refused"] = "internal"
        flow.response = error_response(flow, "internal")


def fail_closed(hook: Hook) -> Hook:
    """An unexpected error in a hook answers with an error page; never lets the flow go on as if
    the hook had passed (mitmproxy would otherwise log the error and forward the request)."""
    if inspect.iscoroutinefunction(hook):
        @functools.wraps(hook)
        async def run_async(self: Any, flow: http.HTTPFlow) -> None:
            try:
                await hook(self, flow)
            except Exception:
                _fail(hook.__name__, flow)

        return run_async  # type: ignore[return-value]

    @functools.wraps(hook)
    def run(self: Any, flow: http.HTTPFlow) -> None:
        try:
            hook(self, flow)
        except Exception:
            _fail(hook.__name__, flow)

    return run  # type: ignore[return-value]


REFUSED_METHODS = frozenset({"TRACE", "TRACK"})  # CONNECT: mitmproxy answers it (400) in reverse mode


_BAD_FIELD_BYTE = re.compile(rb"[\r\n\x00]")


def _malformed_fields(headers: http.Headers) -> bool:
    """A CR, LF or NUL in a header field: mitmproxy lets a lone CR or a NUL through, which an
    upstream may read as the end of a line (another header, of the client's choosing)."""
    bad = _BAD_FIELD_BYTE.search
    return any(bad(name) or bad(value) for name, value in headers.fields)


class Routing:
    """Host label -> session id (the origin is decoded once the session's scope is known)."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        if _done(flow):
            return
        host = flow.request.host_header or ""
        if flow.request.method.upper() in REFUSED_METHODS:
            respond_error(flow, "method_not_allowed")  # TRACE would echo the jar's cookies back
            return
        if _malformed_fields(flow.request.headers) or _BAD_FIELD_BYTE.search(flow.request.data.path):
            respond_error(flow, "bad_request")
            return
        if flow.request.path == HEALTH_PATH and label_of_host(host, self.ctx.settings.proxy_domain) is None:
            respond(flow, http.Response.make(200, b'{"status":"ok"}', {"content-type": "application/json"}))
            return
        try:
            flow.metadata[ROUTE] = route_of_host(host, self.ctx.settings.proxy_domain)
        except Refused as exc:
            respond_error(flow, exc.page)


def client_address(flow: http.HTTPFlow, trusted: tuple[str, ...]) -> str:
    """The browser's IP address: the connection's peer, or, when that peer is a trusted load
    balancer (``--trusted-proxies``), the last address in ``X-Forwarded-For`` that is not one."""
    peer = str(flow.client_conn.peername[0]) if flow.client_conn.peername else None
    return client_ip(peer, flow.request.headers.get_all("x-forwarded-for"), trusted)


def _uncredentialed_in_session(flow: http.HTTPFlow, route: Route, proxy_domain: str) -> bool:
    """A request a page of the session sends without cookies, so without the proxy credential.

    - A CORS request (a fetch, a module script, a font, a preflight...) from another proxy origin
      of the same session: the browser sends those without cookies unless the page asks for
      credentials.
    - A request a page makes to its own origin with ``credentials: "omit"``: ``Sec-Fetch-Site:
      same-origin``, which no page of another origin can make its browser send.
    - A ``no-cors`` request without credentials from another proxy origin of the session
      (``fetch(cdn, {mode: "no-cors"})``, an analytics ping): no ``Origin``, but its ``Referer``
      is that page, which no page elsewhere can make its browser send (a page that sends none
      cannot be told apart, and stays refused)."""
    headers = flow.request.headers
    if _reserved(flow.request.path):
        return False
    mode = headers.get("sec-fetch-mode", "").strip().lower()
    site = headers.get("sec-fetch-site", "").strip().lower()
    if site == "same-origin" and mode in _SUBRESOURCE_MODES:
        return True
    if mode == "cors":
        origin = headers.get("origin", "")
        scheme, sep, rest = origin.partition("://")
        if not sep or "/" in rest:
            return False
    elif mode == "no-cors" and site == "same-site":
        scheme, sep, rest = headers.get("referer", "").partition("://")
        rest = rest.split("/", 1)[0]
    else:
        return False
    if not sep or scheme.lower() not in ("http", "https"):
        return False
    try:
        return route_of_host(rest, proxy_domain).sid == route.sid
    except Refused:
        return False


_SUBRESOURCE_MODES = frozenset({"cors", "no-cors", "same-origin"})  # not navigate, not websocket


def _from_another_session(flow: http.HTTPFlow, route: Route, proxy_domain: str) -> bool:
    """Whether the request's initiator (``Origin``, else ``Referer``) is a page of another
    session. Every proxy origin is on one site, so the browser sends this session's credential
    cookie (domain-wide, for all of its origins) with such a request: a page of another session
    (another visitor's site) could post into this one with this visitor's cookies."""
    headers = flow.request.headers
    value = headers.get("origin", "")
    if not value or value == "null":
        value = headers.get("referer", "")
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https", "ws", "wss"):
        return _initiator_hidden_from_elsewhere(flow)
    try:
        return route_of_host(rest.split("/", 1)[0], proxy_domain).sid != route.sid
    except Refused:
        return False  # not a proxy origin: the console, another site


def _initiator_hidden_from_elsewhere(flow: http.HTTPFlow) -> bool:
    """A request that names no initiator (no ``Origin``, or ``null``, and no ``Referer``: a page
    with ``no-referrer`` or ``same-origin`` referrer policy, a sandboxed or other opaque-origin
    frame) that may come from another session: the browser says it comes from another origin of
    the proxy's site (``Sec-Fetch-Site``), and it is not a plain navigation or fetch of a resource
    (``GET``, the agent's own frame loads with no referrer) but may change something (a post no
    user made, a beacon, a WebSocket). Such a request from a page of this session on another of
    its origins is refused too: it cannot be told apart. A page posting to its own origin says
    ``same-origin``; a client that sends no ``Sec-Fetch-Site`` is no browser's page."""
    headers = flow.request.headers
    site = headers.get("sec-fetch-site", "").strip().lower()
    if site in ("", "same-origin", "none"):
        return False
    mode = headers.get("sec-fetch-mode", "").strip().lower()
    if flow.request.method in ("GET", "HEAD"):
        return mode == "websocket"
    # A form the agent submitted themselves (a click or a key: ``Sec-Fetch-User``) to another
    # origin of the session from a page whose referrer policy hides it (``same-origin`` says
    # ``Origin: null`` to other origins, ``no-referrer`` everywhere): a page of another session
    # cannot make the agent's browser send it. Never the proxy's own paths (the jar's cookies).
    user = headers.get("sec-fetch-user", "").strip() == "?1"
    return not (mode == "navigate" and user and not _reserved(flow.request.path))


class Gate:
    """Active session + the agent's credential cookie, or 403; ``/__cobrowse/enter`` redeems tickets.

    One exception: a request a page of the session sends without cookies (a CORS request to another
    of its origins: fetch's default credentials mode, module scripts, fonts, ``crossorigin``
    elements, preflights; or ``credentials: "omit"`` to its own origin) passes when it comes from an
    address the session's credential has come from. It is forwarded as the browser would send it
    upstream: without the jar's cookies, and its ``Set-Cookie`` is not kept
    (``cookie_sync.ANONYMOUS``). The runtime asset is served to any request while the session is
    active: a frame sandboxed without ``allow-same-origin`` sends no credential, and without its
    runtime its pop-ups (top-level navigations, outside the confinement policy) left the proxy."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @fail_closed
    async def request(self, flow: http.HTTPFlow) -> None:
        if _done(flow):
            return
        route: Route = flow.metadata[ROUTE]
        try:
            if flow.metadata.get(STORE_DOWN):
                raise Refused("store_unavailable")
            path = flow.request.path.split("?", 1)[0]
            if path == ENTER_PATH:
                await self._enter(flow, route)
                return
            if path == RUNTIME_PATH and flow.request.method in ("GET", "HEAD"):
                await self.ctx.gate.active_session(route.sid)
                respond(flow, rewriting.runtime_response())
                return
            if _from_another_session(flow, route, self.ctx.settings.proxy_domain):
                raise Refused("other_session")
            credential = flow.request.cookies.get(credential_cookie_name(route.sid))
            address = client_address(flow, self.ctx.settings.trusted_proxies)
            if not credential and _uncredentialed_in_session(flow, route, self.ctx.settings.proxy_domain):
                session = await self.ctx.gate.check_address(route.sid, address)
                flow.metadata[cookie_sync.ANONYMOUS] = True
            else:
                session = await self.ctx.gate.check(route.sid, credential)
                await self.ctx.gate.note_address(route.sid, address)
            if self.ctx.gate.has_ended(route.sid):
                # heard ended while this request awaited the store: its connections were closed
                # before this one was tracked below, so it must not go on
                raise Refused("not_active")
        except Refused as exc:
            respond_error(flow, exc.page)
            return
        flow.metadata[SESSION] = session
        flow.metadata[MAPPER] = mapper_for(route.sid, self.ctx.public, session.allowed_origins)
        self.ctx.connections.add(route.sid, flow.client_conn.id)

    async def _enter(self, flow: http.HTTPFlow, route: Route) -> None:
        if flow.request.method not in ("GET", "HEAD"):
            raise Refused("bad_request")
        # read afresh: a request made just before the visitor accepted may have cached "pending"
        session = await self.ctx.gate.active_session(route.sid, fresh=True)
        mapper = mapper_for(route.sid, self.ctx.public, session.allowed_origins)
        target = flow.request.query.get("url") or ""
        if any(ord(ch) < 0x20 or ch == "\x7f" for ch in target):
            raise Refused("bad_request")
        if target.startswith("/") and target[1:2] not in ("/", "\\"):
            location = target  # a path on this origin ("/\\host" would leave it, as "//host")
        elif target:
            try:
                location = mapper.to_proxy(target)
                self.ctx.egress.check_scope(mapper.upstream_origin(location), session.allowed_origins)
            except RewriteError as exc:
                raise Refused("outside_scope") from exc
        else:
            location = "/"
        # the target is checked first: a refused target leaves the one-time ticket unused
        credential = await self.ctx.gate.enter(route.sid, flow.request.query.get("ticket", ""))
        if self.ctx.gate.has_ended(route.sid):
            raise Refused("not_active")
        # Secure wherever the browser keeps it (https, and localhost names over http): past its
        # limit of cookies per domain the browser evicts the ones without it first
        cookie = credential_cookie(
            route.sid, credential, self.ctx.public.domain, cookie_sync.host_only_names(self.ctx.public)
        )
        self.ctx.connections.add(route.sid, flow.client_conn.id)
        respond(flow, redirect(location, 303, [cookie]))


class ReservedPaths:
    """``/__cobrowse/runtime.js`` and ``POST /__cobrowse/cookies``; anything else there is 404."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @fail_closed
    async def request(self, flow: http.HTTPFlow) -> None:
        if _done(flow) or not _reserved(flow.request.path):
            return
        path = flow.request.path.split("?", 1)[0]
        if path == "/__cobrowse/runtime.js" and flow.request.method in ("GET", "HEAD"):
            respond(flow, rewriting.runtime_response())
        elif path == "/__cobrowse/cookies" and flow.request.method == "POST":
            try:
                session = flow.metadata[SESSION]
                origin = upstream_origin(flow.metadata[ROUTE], session.allowed_origins)
                await cookie_sync.post_cookies(self.ctx, flow, session, origin)
            except Refused as exc:
                respond_error(flow, exc.page)
        else:
            respond_error(flow, "not_found")


class Egress:
    """Decode the upstream origin, check it is in scope and resolvable to a permitted address, pin it."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "cobrowse_upstream_timeout", float, 30.0, "seconds before an upstream that does not answer"
        )

    def configure(self, updated: set[str]) -> None:
        if "cobrowse_upstream_timeout" in updated and mitm_ctx.options.cobrowse_upstream_timeout <= 0:
            raise OptionsError("cobrowse_upstream_timeout must be positive")

    @fail_closed
    async def request(self, flow: http.HTTPFlow) -> None:
        if _done(flow):
            return
        session = flow.metadata[SESSION]
        try:
            origin = upstream_origin(flow.metadata[ROUTE], session.allowed_origins)
            self.ctx.egress.check_scope(origin, session.allowed_origins)
            target = await self.ctx.egress.resolve(origin)
        except Refused as exc:
            respond_error(flow, exc.page)
            return
        flow.metadata[ORIGIN] = origin
        flow.request.scheme = origin.scheme
        flow.request.host = target.address
        flow.request.port = origin.port
        flow.request.host_header = origin.netloc
        flow.request.authority = ""  # origin-form upstream, whatever form the browser used
        if origin.scheme == "https":
            key = (flow.client_conn.id, target.address, origin.port)
            known = self.ctx.sni.get(key)
            if known is not None and known != origin.host:
                # this client connection already talks TLS to that address for another name
                respond_error(flow, "misdirected")
                return
            self.ctx.sni[key] = origin.host

    def tls_start_server(self, data: TlsData) -> None:
        server = data.context.server
        if server.address is None:
            return
        name = self.ctx.sni.get((data.context.client.id, str(server.address[0]), int(server.address[1])))
        if name is not None:
            server.sni = name

    def client_disconnected(self, client: Any) -> None:
        for key in [k for k in self.ctx.sni if k[0] == client.id]:
            del self.ctx.sni[key]

    def server_connect(self, data: ServerConnectionHookData) -> None:
        # Only addresses the Egress hook pinned may be connected to.
        if data.server.address is None or data.server.address == ("127.0.0.1", 1):
            data.server.error = "no upstream"


class RequestFixup:
    """Host/Origin/Referer back to upstream form, hop-by-hop headers and proxy cookies dropped."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @fail_closed
    def request(self, flow: http.HTTPFlow) -> None:
        if _done(flow):
            return
        cookie = flow.metadata.get(cookie_sync.UPSTREAM_COOKIE, "")
        request_fixup.fix_request(flow, flow.metadata[MAPPER], flow.metadata[ORIGIN], cookie)


class CookieJar:
    """The session's server-side cookie jar: fills ``Cookie``, takes ``Set-Cookie``, merges
    ``__cbjs_{sid}``."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    @fail_closed
    async def request(self, flow: http.HTTPFlow) -> None:
        if _done(flow):
            return
        try:
            await cookie_sync.on_request(self.ctx, flow, flow.metadata[SESSION])
        except Refused as exc:
            respond_error(flow, exc.page)

    @fail_closed
    async def responseheaders(self, flow: http.HTTPFlow) -> None:
        if OWN in flow.metadata or flow.response is None:
            return
        set_cookies = tuple(flow.response.headers.get_all("set-cookie"))
        flow.response.headers.pop("set-cookie", None)
        origin = flow.metadata.get(ORIGIN)
        clear = origin is not None and trustworthy(origin.serialize()) and any(
            clear_site_data(v)[1] for v in flow.response.headers.get_all("clear-site-data")
        )
        if SESSION in flow.metadata and ORIGIN in flow.metadata and "cobrowse.refused" not in flow.metadata:
            await cookie_sync.on_set_cookies(
                self.ctx, flow, flow.metadata[SESSION], set_cookies, clear_site=clear
            )


class Rewriting:
    """Response headers and bodies through the rewriter; everything else streams."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    def load(self, loader: Loader) -> None:
        loader.add_option("cobrowse_max_rewrite_bytes", int, 16 * 1024 * 1024, "largest rewritten body")
        loader.add_option(
            "cobrowse_max_decompressed_bytes", int, 64 * 1024 * 1024, "largest decompressed body"
        )

    def configure(self, updated: set[str]) -> None:
        for name in ("cobrowse_max_rewrite_bytes", "cobrowse_max_decompressed_bytes"):
            if name in updated and getattr(mitm_ctx.options, name) <= 0:
                raise OptionsError(f"{name} must be positive")

    @fail_closed
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        if OWN in flow.metadata:
            return
        if MAPPER not in flow.metadata or ORIGIN not in flow.metadata or "cobrowse.refused" in flow.metadata:
            return
        rewriting.on_response_headers(self.ctx, flow, flow.metadata[SESSION], flow.metadata[MAPPER])

    @fail_closed
    async def response(self, flow: http.HTTPFlow) -> None:
        if OWN in flow.metadata:
            return
        if flow.metadata.get(BODY_TIMED_OUT):  # cut short, though it may look complete
            take_timeout_mark(flow.client_conn)  # answered here: no later failure may reuse it
            flow.response = error_response(flow, "upstream_timeout")
            return
        if "cobrowse.refused" in flow.metadata:
            rewriting.finish_refused(flow)
            return
        if MAPPER not in flow.metadata or ORIGIN not in flow.metadata:
            return
        await rewriting.on_response(self.ctx, flow, flow.metadata[SESSION], flow.metadata[MAPPER])


class UpstreamTimeout:
    """504 when upstream does not answer (headers) within ``upstream_timeout_s``, or a body
    buffered for rewriting stops arriving for as long (after ``Rewriting``: it decides that)."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.timer = UpstreamTimer(ctx)

    def request(self, flow: http.HTTPFlow) -> None:
        if not _done(flow):
            self.timer.start(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self.timer.cancel(flow)
        watch = flow.metadata.get(BODY_WATCH)
        if watch is not None and flow.response is not None and not flow.response.stream:
            self.timer.watch_body(flow, watch)

    def error(self, flow: http.HTTPFlow) -> None:
        self.timer.cancel(flow)


class Connections:
    """Remembers each session's client connections; closes them all when the session ends."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    def running(self) -> None:
        self.ctx.gate.on_ended(self.ctx.connections.close_session)
        self.ctx.gate.track_open_sessions(self.ctx.connections.sessions)

    def client_disconnected(self, client: Any) -> None:
        self.ctx.connections.discard_client(client.id)

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        if SESSION in flow.metadata:
            self.ctx.connections.add(flow.metadata[SESSION].session_id, flow.client_conn.id)


class RelayedMessages:
    """A WebSocket's flow keeps only the message being relayed. mitmproxy keeps every message of
    an open WebSocket in its flow (for a UI we do not have): a socket that streams for hours held
    everything it had ever relayed, a few megabytes a minute for a busy dashboard."""

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is not None:
            del flow.websocket.messages[:-1]


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class PlainHttpOnly:
    """The listener speaks plain HTTP/1 (TLS ends at the load balancer in front): a TLS handshake
    on it is closed, not answered with a certificate mitmproxy makes up for whatever name it asks,
    and so is an HTTP/2 preface (mitmproxy logged a warning for each: anyone could fill the log)."""

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        if nextlayer.layer is not None or nextlayer.context.client.tls:
            return
        data = nextlayer.data_client()
        if starts_like_tls_record(data) or data.startswith(H2_PREFACE):
            nextlayer.layer = TCPLayer(nextlayer.context, ignore=True)  # to no upstream: closed


HEAD_TIMEOUT_S = 60.0  # as nginx's client_header_timeout (and under its keepalive_timeout)


class HeadDeadline:
    """A connection must bring a complete request within ``HEAD_TIMEOUT_S``: from when it opens,
    and again from the end of each answer (an idle keep-alive connection is closed then, as
    servers do; browsers open another). A request that carries a valid credential is exempt from
    its head on (an agent's slow upload); any other has until its body is in. Without it, clients
    that never finish (or trickle) a head or a body hold connections for as long as they like,
    without a credential: mitmproxy only closes after 10 idle minutes, and a trickle is not idle.
    A WebSocket, once open, has no deadline."""

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def client_connected(self, client: Any) -> None:
        self._arm(client.id)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        client_id = flow.client_conn.id
        if client_id not in self._timers:
            return
        try:
            route = route_of_host(flow.request.host_header or "", self.ctx.settings.proxy_domain)
            credential = flow.request.cookies.get(credential_cookie_name(route.sid))
            if credential:
                await self.ctx.gate.check(route.sid, credential)
                self._cancel(client_id)
        except Refused as exc:
            if exc.page == "store_unavailable":
                flow.metadata[STORE_DOWN] = True  # one wait for the store per request, not two
        except (RewriteError, ValueError):
            pass  # the gate answers it; the deadline holds until its body is in

    def request(self, flow: http.HTTPFlow) -> None:
        self._cancel(flow.client_conn.id)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            self._arm(flow.client_conn.id)  # the next request (keep-alive) has as long

    def client_disconnected(self, client: Any) -> None:
        self._cancel(client.id)

    def _arm(self, client_id: str) -> None:
        self._cancel(client_id)
        loop = asyncio.get_running_loop()
        self._timers[client_id] = loop.call_later(HEAD_TIMEOUT_S, self._expire, client_id)

    def _cancel(self, client_id: str) -> None:
        timer = self._timers.pop(client_id, None)
        if timer is not None:
            timer.cancel()

    def _expire(self, client_id: str) -> None:
        self._timers.pop(client_id, None)
        self.ctx.connections.close_client(client_id)


class BodyLimit:
    """A request that declares a body over ``buffering.MAX_REQUEST_BODY`` is not told to send it
    (no ``100 Continue``, which mitmproxy sends before reading): its first bytes get the 413 page."""

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        declared = flow.request.headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > buffering.MAX_REQUEST_BODY:
            flow.request.headers.pop("expect", None)


class ClientClose:
    """A browser's ``Connection: close`` (taken off the request before it goes upstream) holds
    for the answer: it says ``Connection: close`` and mitmproxy closes the connection after it."""

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._close(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._close(flow)

    @staticmethod
    def _close(flow: http.HTTPFlow) -> None:
        if flow.metadata.get(request_fixup.CLIENT_CLOSE) and flow.response is not None \
                and flow.response.status_code != 101:
            flow.response.headers["connection"] = "close"


def flood_expiries(public: ProxyConfig, host: str, path: str, cookie_headers: list[str]) -> list[str]:
    """The ``Set-Cookie`` values that expire a flood of cookies the proxy did not set, for a
    request to ``host`` and ``path`` that carried ``cookie_headers`` (``proxy.foreign_cookies``);
    none for fewer of them."""
    if not foreign_cookies.may_flood(cookie_headers):
        return []  # most requests: nothing more to read
    label = label_of_host(host, public.domain)
    if label is None:
        return []  # not one of the proxy's origins: a cookie for its domain is not this host's
    sid = label[:10]
    names = (cookie_sync.script_cookie_name(sid, public), cookie_sync.view_cookie_name(sid, public))
    flood = foreign_cookies.flood_names(cookie_headers, foreign_cookies.own_script_names(sid, names))
    if not flood:
        return []
    paths = foreign_cookies.cookie_paths(path)
    return foreign_cookies.expiries(flood, public.domain, paths, secure=cookie_sync.host_only_names(public))


class ForeignCookies:
    """Answers expire a flood of the browser's cookies of the proxy domain that are not the
    proxy's own (``proxy.foreign_cookies``): a page that got round the runtime could otherwise
    break every session of the agent's browser with them. Last in the list: its ``response``
    hook runs after every other addon may have replaced the answer. Its options tell the 431 page
    of a head too large (``proxy/server.py``, before any addon) the proxy's domain and scheme."""

    EXPIRIES = "cobrowse.foreign_cookie_expiries"  # flow metadata: the Set-Cookie values to add
    DONE = "cobrowse.foreign_cookies_expired"  # flow metadata: the response they were added to

    def __init__(self, ctx: ProxyContext) -> None:
        self.ctx = ctx

    def load(self, loader: Loader) -> None:
        loader.add_option("cobrowse_proxy_domain", str, "", "domain of the proxied origins")
        loader.add_option("cobrowse_proxy_scheme", str, "http", "scheme browsers reach the proxy with")

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        cookies = flow.request.headers.get_all("cookie")
        if not cookies:
            return
        values = flood_expiries(self.ctx.public, flow.request.host_header or "", flow.request.path, cookies)
        if values:
            flow.metadata[self.DONE] = None
            flow.metadata[self.EXPIRIES] = values

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._expire(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._expire(flow)

    def _expire(self, flow: http.HTTPFlow) -> None:
        values = flow.metadata.get(self.EXPIRIES)
        response = flow.response
        if not values or response is None or response.status_code == 101:
            return
        if flow.metadata[self.DONE] is response:  # added in responseheaders
            return
        flow.metadata[self.DONE] = response
        for value in values:
            response.headers.add("set-cookie", value)


def make_addons(ctx: ProxyContext) -> list[Any]:
    """Every cobrowse addon, in hook order. They run before mitmproxy's own (TLS needs our SNI)."""
    return [
        PlainHttpOnly(),
        HeadDeadline(ctx),
        BodyLimit(),
        Routing(ctx),
        Gate(ctx),
        ReservedPaths(ctx),
        Egress(ctx),
        CookieJar(ctx),
        RequestFixup(ctx),
        Rewriting(ctx),
        UpstreamTimeout(ctx),
        Connections(ctx),
        RelayedMessages(),
        ClientClose(),
        ForeignCookies(ctx),
    ]
