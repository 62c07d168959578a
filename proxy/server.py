"""mitmproxy embedded as a library: one ``Master`` on the caller's event loop, our addons first.

mitmproxy runs in reverse-proxy mode towards a dummy target with ``connection_strategy=lazy``: the
``request`` hooks route every request to its real upstream before any connection is opened.
Its options are updated only after the addons that declare them are added, and its confdir is a
private temporary directory, so nothing lands in the user's home.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import shutil
import socket
import ssl
import tempfile
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    # mitmproxy.addons imports ldap3, which uses deprecated pyasn1 names at import time
    warnings.simplefilter("ignore", DeprecationWarning)
    from mitmproxy import options as mitm_options
    from mitmproxy.addons import core, disable_h2c, next_layer, proxyserver, tlsconfig
    from mitmproxy.connection import ConnectionState
    from mitmproxy.master import Master
    from mitmproxy.net.http import status_codes
    from mitmproxy.proxy import commands, events
    from mitmproxy.proxy.layers.http import _http1
    from mitmproxy.proxy.layers.http._base import ReceiveHttp
    from mitmproxy.proxy.layers.http._events import ResponseProtocolError

from cobrowse.settings import Settings
from control_api.store import Store
from proxy import buffering, websocket_close
from proxy.addons import make_addons
from proxy.context import ProxyContext
from proxy.error_pages import STATUS_PAGES, render, wants_json
from proxy.exceptions import ProxyError
from proxy.timeouts import take_timeout_mark
from rewriter.urls import ProxyConfig

logger = logging.getLogger(__name__)

# every request is routed by our addons; this target is never connected to (see Egress.server_connect)
DUMMY_TARGET = "reverse:http://127.0.0.1:1"
TESTED_MITMPROXY = ((11, 0), (13, 0))


def _page_bytes(page: str, status_code: int, json_body: bool = False) -> bytes:
    from mitmproxy import http
    from mitmproxy.net.http import http1

    status, headers, body = render(page, json_body)
    response = http.Response.make(status_code if status_code >= 400 else status, body, headers)
    response.headers["connection"] = "close"
    return http1.assemble_response(response)


def _error_response(status_code: int, message: str = "") -> bytes:
    """Replaces mitmproxy's own error page, which names hosts and exceptions, with ours."""
    return _page_bytes(STATUS_PAGES.get(status_code, "internal"), status_code)


_original_send = _http1.Http1Server.send


def _send(self: Any, event: Any) -> Any:
    if isinstance(event, ResponseProtocolError):
        return _send_failure(self, event)
    return _original_send(self, event)


def _send_failure(self: Any, event: ResponseProtocolError) -> Generator[Any, Any, None]:
    """What mitmproxy's ``Http1Server.send`` does for a failed exchange (an answer if none was
    sent yet, then close), with our page: JSON for fetch/XHR, "too slow" after our upstream
    timeout, "too large" for a buffered body over the limit."""
    assert event.stream_id == self.stream_id  # as mitmproxy's own
    timed_out = take_timeout_mark(self.conn)
    if not (self.conn.state & ConnectionState.CAN_WRITE):
        return
    # an interim answer (100 Continue) is no answer; a 101 is, and what follows it is a WebSocket
    # whose end (its closing handshake included) arrives here too: no page written into it
    status = self.response.status_code if self.response is not None else 0
    answered = status >= 200 or status == 101
    if not answered and event.code != status_codes.NO_RESPONSE:
        if timed_out:
            page, code = "upstream_timeout", 504
        elif event.message == buffering.TOO_LARGE_MESSAGE:
            page, code = "too_large", event.code
        else:
            page, code = STATUS_PAGES.get(event.code, "internal"), event.code
        json_body = self.request is not None and wants_json(self.request.headers)
        yield commands.SendData(self.conn, _page_bytes(page, code, json_body))
    yield commands.CloseConnection(self.conn)


def install_error_pages() -> None:
    """mitmproxy's HTTP/1 layer answers failed exchanges (upstream unreachable, timed out, a
    buffered body over the limit) with our pages, which name no host, address or exception."""
    _http1.make_error_response = _error_response
    _http1.Http1Server.send = _send  # type: ignore[method-assign]
    buffering.install()


# mitmproxy reads an HTTP/1 head for as long as it grows ("FIXME: protect against header size
# DoS"): anyone who can connect could fill the proxy's memory before any hook of ours runs
MAX_REQUEST_HEAD = 64 * 1024  # nginx's default allows 32 KiB, Node 16 KiB
MAX_RESPONSE_HEAD = 256 * 1024  # what Chromium accepts from a server
HEAD_TOO_LARGE = "response head too large"

_original_server_read_headers = _http1.Http1Server.read_headers
_original_client_read_headers = _http1.Http1Client.read_headers
_original_server_handle_event = _http1.Http1Server._handle_event
_HEAD_END = re.compile(rb"\n\r?\n")  # where h11 ends a head
_BLANK = re.compile(rb"[\r\n]*")


def _data(buf: Any) -> bytes | bytearray:
    """The bytes of mitmproxy's (h11's) receive buffer, without a copy where it allows."""
    data = getattr(buf, "_data", None)
    return data if isinstance(data, bytearray) else bytes(buf)


def _head_too_long(buf: Any, limit: int) -> bool:
    """Whether the head being read (``buf`` holds what has arrived) is longer than ``limit``."""
    return len(buf) > limit and _HEAD_END.search(_data(buf), 0, limit + 3) is None


def _drop_blank_lines(buf: Any) -> None:
    """Blank lines before a request line are allowed, but h11 takes away one per read: a flood of
    them would grow the buffer for ever without ever being a head too long."""
    match = _BLANK.match(_data(buf))
    if match is not None and match.end():
        buf.maybe_extract_at_most(match.end())


_REQUEST_LINE = re.compile(rb"[A-Z]+ (/[^ \r\n]*) ")
_HOST_LINE = re.compile(rb"\r?\nhost:[ \t]*([^\r\n]*)", re.IGNORECASE)
_COOKIE_LINE = re.compile(rb"\r?\ncookie:[ \t]*([^\r\n]*)", re.IGNORECASE)


def _too_long_page(options: Any, head: bytes) -> bytes:
    """The 431 page. A flood of cookies the proxy did not set (``proxy.foreign_cookies``) is what
    usually makes an agent's request heads too large: the page expires those it could read, or
    a page that planted them would break every session of the agent's browser until they expire.
    ``options``: mitmproxy's, where ``addons.ForeignCookies`` keeps the proxy's domain and scheme
    (none without our addons: mitmproxy alone, in the bench)."""
    from mitmproxy import http
    from mitmproxy.net.http import http1

    from proxy.addons import flood_expiries

    status, headers, body = render("head_too_large", wants_json(_head_fields(head)))
    response = http.Response.make(431, body, headers)
    response.headers["connection"] = "close"
    domain = getattr(options, "cobrowse_proxy_domain", "")
    line, host = _REQUEST_LINE.match(head), _HOST_LINE.search(head)
    if domain and line and host:
        public = ProxyConfig(domain, 80, getattr(options, "cobrowse_proxy_scheme", "http"))
        # decoded as mitmproxy decodes header values (and encodes them back): an expiry names a
        # non-ASCII cookie with the bytes it came with
        def text(raw: bytes) -> str:
            return raw.decode("utf-8", "surrogateescape")

        cookies = [text(m.group(1)) for m in _COOKIE_LINE.finditer(head)]
        for value in flood_expiries(public, text(host.group(1)).strip(), text(line.group(1)), cookies):
            response.headers.add("set-cookie", value)
    return bytes(http1.assemble_response(response))


def _head_fields(head: bytes) -> dict[str, str]:
    """The request head's fields an error page looks at (what the browser accepts)."""
    fields = {}
    for key in (b"accept", b"sec-fetch-mode", b"sec-fetch-dest"):
        found = re.search(rb"\r?\n" + key + rb":[ \t]*([^\r\n]*)", head, re.IGNORECASE)
        if found:
            fields[key.decode()] = found.group(1).decode("latin-1")
    return fields


def _server_read_headers(self: Any, event: Any) -> Generator[Any, Any, None]:
    if isinstance(event, events.DataReceived):
        _drop_blank_lines(self.buf)
        if _head_too_long(self.buf, MAX_REQUEST_HEAD):
            head = bytes(_data(self.buf)[:MAX_REQUEST_HEAD])
            yield commands.SendData(self.conn, _too_long_page(self.context.options, head))
            yield commands.CloseConnection(self.conn)
            self.state = self.done
            return
    yield from _original_server_read_headers(self, event)


def _server_handle_event(self: Any, event: Any) -> Generator[Any, Any, None]:
    """What a client sends while its request is being answered (pipelining, which browsers do
    not do) waits in the buffer: past a head's limit, the connection closes."""
    yield from _original_server_handle_event(self, event)
    if isinstance(event, events.DataReceived) and getattr(self.state, "__name__", "") in ("wait", "done") \
            and len(self.buf) > MAX_REQUEST_HEAD:
        self.buf.maybe_extract_at_most(len(self.buf))
        yield commands.CloseConnection(self.conn)


_INTERIM_HEAD = re.compile(rb"HTTP/1\.[01] 1(?!01)[0-9][0-9][ \r\n]")


def _drop_interim_heads(buf: Any) -> None:
    """Drop the upstream's 1xx interim answers (100, 102, 103 Early Hints) but a 101: mitmproxy's
    HTTP/1 client takes the first head for the final answer, and the page behind it never came.
    Browsers ignore them over HTTP/1.1 (mitmproxy drops them over HTTP/2 too)."""
    while len(buf) and _INTERIM_HEAD.match(_data(buf)):
        if buf.maybe_extract_lines() is None:
            return  # not all here yet: dropped once it is


def _client_read_headers(self: Any, event: Any) -> Generator[Any, Any, None]:
    if isinstance(event, events.DataReceived):
        _drop_interim_heads(self.buf)
    if isinstance(event, events.DataReceived) and self.stream_id is not None \
            and _head_too_long(self.buf, MAX_RESPONSE_HEAD):
        yield commands.CloseConnection(self.conn)
        yield ReceiveHttp(ResponseProtocolError(self.stream_id, HEAD_TOO_LARGE))
        self.state = self.done
        return
    yield from _original_client_read_headers(self, event)


class _NoPriorKnowledgeWarning(logging.Filter):
    """mitmproxy warns on the root logger for every HTTP/2 prior-knowledge preface it refuses:
    anyone who can connect could fill the log with it (``PlainHttpOnly`` closes a preface that
    arrives whole; one sent in pieces reaches mitmproxy's HTTP/1 layer)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "HTTP/2 connections with prior knowledge" not in record.getMessage()


class _NoMitmproxyListenHints(logging.Filter):
    """When the proxy cannot listen, mitmproxy logs the reason with a hint about its own ``--mode``
    flag (with our placeholder target in it), then an empty error line: keep the reason only.
    ``ProxyServer.start`` then says it again, with our ``--proxy-port``."""

    HINT = "\nTry specifying a different port by using `--mode"

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if not message.strip():
            return False
        if self.HINT in message:
            record.msg, record.args = message.split(self.HINT, 1)[0], ()
        return True


def install_head_limits() -> None:
    """Request heads over ``MAX_REQUEST_HEAD`` get a 431 page and the connection closes; an
    upstream response head over ``MAX_RESPONSE_HEAD`` closes the upstream connection and the
    browser gets the 502 page. The upstream's interim 1xx answers are dropped."""
    _http1.Http1Server.read_headers = _server_read_headers  # type: ignore[method-assign]
    _http1.Http1Server._handle_event = _server_handle_event  # type: ignore[method-assign]
    _http1.Http1Client.read_headers = _client_read_headers  # type: ignore[method-assign]
    root = logging.getLogger()
    if not any(isinstance(f, _NoPriorKnowledgeWarning) for f in root.filters):
        root.addFilter(_NoPriorKnowledgeWarning())
    servers = logging.getLogger("mitmproxy.addons.proxyserver")
    if not any(isinstance(f, _NoMitmproxyListenHints) for f in servers.filters):
        servers.addFilter(_NoMitmproxyListenHints())


def check_mitmproxy_version() -> None:
    from mitmproxy import version

    parts = tuple(int(p) for p in version.VERSION.split(".")[:2])
    low, high = TESTED_MITMPROXY
    if not low <= parts < high:
        raise ProxyError(f"mitmproxy {version.VERSION} is outside the tested range {low}..{high}")


def upstream_ca_bundle(settings: Settings, confdir: Path) -> str | None:
    """The CA file for upstream TLS: the system store, plus ``settings.upstream_ca_file`` if set.
    None only when there is neither (mitmproxy then falls back to certifi's bundle, which it
    would otherwise use instead of the system store, ignoring CAs installed on the machine)."""
    system = ssl.get_default_verify_paths().cafile
    has_system = bool(system) and Path(str(system)).is_file()
    if not settings.upstream_ca_file:
        return system if has_system else None
    bundle = confdir / "upstream-ca.pem"
    parts = []
    if has_system:
        parts.append(Path(str(system)).read_bytes())
    parts.append(Path(settings.upstream_ca_file).read_bytes())
    bundle.write_bytes(b"\n".join(parts))
    return str(bundle)


class Ready:
    """Sets an event once mitmproxy's servers listen (the ``running`` hook)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()

    def running(self) -> None:
        self.event.set()


def _bind_failure(host: str, port: int) -> str:
    """Why ``host:port`` cannot be listened on, as ``": address already in use (...)"``, or "".

    mitmproxy only logs the reason; binding once more tells it for the one-line error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, proto) as sock:
            sock.bind(address)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        hint = " (choose another port with --proxy-port)" if exc.errno == errno.EADDRINUSE else ""
        return f": {reason}{hint}"
    return ""


class ProxyServer:
    """The rewriting proxy of one process. ``await start()`` returns once it listens."""

    def __init__(self, settings: Settings, store: Store, *, with_cobrowse: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.with_cobrowse = with_cobrowse
        self.ctx = ProxyContext.create(settings, store)
        self.master: Master | None = None
        self._task: asyncio.Task[None] | None = None
        self._confdir: Path | None = None
        self.port = 0

    async def start(self) -> None:
        check_mitmproxy_version()
        install_error_pages()
        install_head_limits()
        websocket_close.install()
        if self.settings.insecure_upstream:
            logger.warning("upstream TLS certificates are NOT verified (--insecure-upstream): dev only")
        self._confdir = Path(tempfile.mkdtemp(prefix="cobrowse-mitmproxy-"))
        opts = mitm_options.Options(
            listen_host=self.settings.host,
            listen_port=self.settings.proxy_port,
            mode=[DUMMY_TARGET],
            confdir=str(self._confdir),
        )
        master = Master(opts, event_loop=asyncio.get_running_loop())
        ready = Ready()
        ours: list[Any] = make_addons(self.ctx) if self.with_cobrowse else []
        master.addons.add(
            *ours,
            ready,
            core.Core(),
            proxyserver.Proxyserver(),
            next_layer.NextLayer(),
            tlsconfig.TlsConfig(),
            disable_h2c.DisableH2C(),
        )
        # options declared by addons exist only now
        updates: dict[str, Any] = {
            "connection_strategy": "lazy",
            "keep_host_header": True,
            "websocket": True,
            "ssl_insecure": self.settings.insecure_upstream,
            "http2": False,
        }
        ca = upstream_ca_bundle(self.settings, self._confdir)
        if ca:
            updates["ssl_verify_upstream_trusted_ca"] = ca
        if self.with_cobrowse:
            updates.update(
                cobrowse_max_rewrite_bytes=self.settings.max_rewrite_bytes,
                cobrowse_max_decompressed_bytes=self.settings.max_decompressed_bytes,
                cobrowse_upstream_timeout=self.settings.upstream_timeout_s,
                cobrowse_proxy_domain=self.ctx.public.domain,
                cobrowse_proxy_scheme=self.ctx.public.scheme,
            )
        opts.update(**updates)
        self.master = master
        ps = master.addons.get("proxyserver")
        self.ctx.connections.proxyserver = ps
        if self.with_cobrowse:
            try:
                await self.ctx.gate.start()
            except ProxyError:  # the store cannot be reached: nothing of ours is left behind
                await self.stop()
                raise
        self._task = asyncio.create_task(master.run(), name="cobrowse-proxy")
        ready_wait = asyncio.create_task(ready.event.wait())
        await asyncio.wait([ready_wait, self._task], return_when=asyncio.FIRST_COMPLETED)
        if not ps.listen_addrs():
            ready_wait.cancel()
            await self.stop()
            host, port = self.settings.host, self.settings.proxy_port
            raise ProxyError(f"the proxy could not listen on {host}:{port}{_bind_failure(host, port)}")
        self.port = int(ps.listen_addrs()[0][1])
        if self.settings.proxy_public_port == 0:
            self.ctx.public = ProxyConfig(self.ctx.public.domain, self.port, self.ctx.public.scheme)

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def _close_connections(self) -> None:
        """Stop listening and close every client connection (mitmproxy leaves both to process exit)."""
        assert self.master is not None
        ps = self.master.addons.get("proxyserver")
        await ps.servers.update([])
        handlers = list(ps.connections.values())
        for handler in handlers:
            try:
                websocket_close.end_client(handler)
            except (KeyError, AssertionError, OSError):
                logger.debug("connection already closed")
        deadline = asyncio.get_running_loop().time() + 5
        while ps.connections and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        # mitmproxy leaves a closed connection's addon hooks running (a request being checked, a
        # page being rewritten); stopped means none of them goes on to use the store or a worker.
        hooks = [task for handler in handlers for task in getattr(handler, "hook_tasks", ())
                 if not task.done()]
        for task in hooks:
            task.cancel()
        if hooks:
            await asyncio.wait(hooks, timeout=5)

    async def stop(self) -> None:
        if self.master is not None and self._task is not None:
            await self._close_connections()
            self.master.shutdown()
            try:
                await asyncio.wait_for(self._task, 10)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
            self._task = None
        await self.ctx.gate.stop()
        self.ctx.rewrite_pool.close()
        if self._confdir is not None:
            shutil.rmtree(self._confdir, ignore_errors=True)
            self._confdir = None
