"""A tiny threaded HTTP server that stands in for the proxy in the runtime's browser tests.

It answers for every ``*.cobrowse.localhost`` host on one loopback port: proxy hosts (one label)
serve the test pages registered for their upstream origin, with the runtime's injection markup
inserted first in ``<head>``, plus ``/__cobrowse/runtime.js`` and ``POST /__cobrowse/cookies``;
other hosts (``cobrowse.localhost`` itself, ``evil.localhost``) serve "console" pages as they are.
Every request is recorded (method, Host, path, headers, body), so a test can assert where the
browser went. A request that names ``127.0.0.1`` directly is an escape past the proxy.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from proxy.responses import NOT_SCRIPTS
from rewriter.exceptions import RewriteError
from rewriter.public_suffixes import public_ancestors
from rewriter.runtime import RUNTIME_PATH, injection_markup, prelude_offset, runtime_js, worker_prelude
from rewriter.urls import Origin, ProxyConfig, UrlMapper

SID = "k3j9x2ab7q"
DOMAIN = "cobrowse.localhost"
UPSTREAM = "http://upstream.example"
CDN = "https://cdn.example"


@dataclass(frozen=True)
class Hit:
    method: str
    host: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeProxy:
    port: int = 0
    pages: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    hits: list[Hit] = field(default_factory=list)
    cookies: list[dict[str, Any]] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)
    clock_offset_s: float = 0.0  # the proxy's clock less the browser's (runtime config "now")
    known_origins: list[str] = field(default_factory=lambda: [UPSTREAM, CDN])
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def mapper(self) -> UrlMapper:
        return UrlMapper(SID, ProxyConfig(DOMAIN, self.port, "http"), self.known_origins)

    @property
    def console_origin(self) -> str:
        return f"http://{DOMAIN}:{self.port}"

    def proxy_url(self, upstream_url: str) -> str:
        return self.mapper.to_proxy(upstream_url)

    def proxy_host(self, origin: str = UPSTREAM) -> str:
        return urllib.parse.urlsplit(self.proxy_url(origin + "/")).netloc

    def config(self, origin: str) -> dict[str, Any]:
        return {
            "sid": SID,
            "proxyDomain": DOMAIN,
            "proxyPort": self.port,
            "proxyScheme": "http",
            "origin": origin,
            "knownOrigins": list(self.known_origins),
            "cookies": list(self.cookies),
            "masked": list(self.masked),
            "consoleOrigin": self.console_origin,
            "publicDomains": public_ancestors(urllib.parse.urlsplit(origin).hostname or ""),
            "now": time.time() + self.clock_offset_s,
        }

    def add(self, where: str, path: str, body: str | bytes, content_type: str = "text/html") -> None:
        """Serve ``body`` at ``path`` on upstream origin or console host ``where``."""
        data = body.encode() if isinstance(body, str) else body
        with self.lock:
            self.pages[(where, path)] = (content_type, data)

    def record(self, hit: Hit) -> None:
        with self.lock:
            self.hits.append(hit)

    def paths_on(self, host: str) -> list[str]:
        with self.lock:
            return [h.path for h in self.hits if h.host == host]

    def escaped(self) -> list[Hit]:
        """Requests that reached this server without going through a proxy host name."""
        with self.lock:
            return [
                h
                for h in self.hits
                if not h.host.split(":")[0].endswith(".localhost") and h.host.split(":")[0] != DOMAIN
            ]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            time.sleep(0.02)
        return predicate()

    def wait_for_path(self, path: str, host: str | None = None, timeout: float = 10.0) -> Hit:
        host = host or self.proxy_host()

        def found() -> bool:
            return path in self.paths_on(host)

        if not self.wait_for(found, timeout):
            with self.lock:
                seen = [(h.host, h.path) for h in self.hits]
            raise AssertionError(f"no request for {path} on {host}; seen: {seen}")
        with self.lock:
            return next(h for h in self.hits if h.host == host and h.path == path)


def _handler(fake: FakeProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("Host", "")
            fake.record(
                Hit(self.command, host, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            name = host.rsplit(":", 1)[0]
            path = urllib.parse.urlsplit(self.path).path
            if name.endswith("." + DOMAIN) and name.count(".") == DOMAIN.count(".") + 1:
                self._proxy(host, path, body)
            else:
                self._console(name, path)

        def _proxy(self, host: str, path: str, body: bytes) -> None:
            try:
                origin: Origin = fake.mapper.origin_of_host(host)
            except RewriteError:
                return self._send(404, "text/plain", b"outside scope")
            if path == RUNTIME_PATH:
                return self._send(200, "application/javascript", runtime_js())
            if path == "/__cobrowse/cookies" and self.command == "POST":
                return self._send(204, "text/plain", b"")
            with fake.lock:
                page = fake.pages.get((origin.serialize(), path))
            if page is None:
                return self._send(200, "text/plain", b"")
            content_type, data = page
            worker = self.headers.get("Sec-Fetch-Dest") in ("worker", "sharedworker")
            top_level = self.headers.get("Sec-Fetch-Mode") != "cors"  # not a module worker's import
            if worker and top_level and not content_type.startswith(NOT_SCRIPTS):
                # what the proxy does (proxy/rewriting.py): the runtime in front of a worker's script
                config = {**fake.config(origin.serialize()), "base": origin.serialize() + path}
                at = prelude_offset(data)
                data = data[:at] + worker_prelude(config) + data[at:]
            if content_type == "text/html":
                markup = injection_markup(fake.config(origin.serialize())).encode()
                head = data.find(b"<head>")
                data = data[: head + 6] + markup + data[head + 6 :] if head >= 0 else markup + data
            return self._send(200, content_type, data)

        def _console(self, name: str, path: str) -> None:
            with fake.lock:
                page = fake.pages.get((name, path))
            if page is None:
                return self._send(404, "text/plain", b"not found")
            return self._send(200, *page)

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header(
                "Content-Type", content_type + ("; charset=utf-8" if "text" in content_type else "")
            )
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the browser went away (a navigation, a closed socket)

        do_GET = do_POST = do_PUT = do_HEAD = _serve

    return Handler


@contextmanager
def serve_fake_proxy() -> Iterator[FakeProxy]:
    fake = FakeProxy()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="fake-proxy", daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def json_body(hit: Hit) -> Any:
    return json.loads(hit.body.decode())


@dataclass
class BrowserSession:
    """One browser context on the fake proxy, with what it requested and what went wrong."""

    context: Any
    page: Any
    requests: list[str] = field(default_factory=list)
    websockets: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def escapes(self) -> list[str]:
        """Requested URLs whose host is not a proxy (or console) host: what left the proxy."""
        out = []
        for url in self.requests + self.websockets:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme in ("http", "https", "ws", "wss") and not (parts.hostname or "").endswith(
                "localhost"
            ):
                out.append(url)
        return out


@contextmanager
def browser_session(browser: Any, fake: FakeProxy) -> Iterator[BrowserSession]:
    context = browser.new_context()
    page = context.new_page()
    session = BrowserSession(context, page)

    def watch(p: Any) -> None:
        p.on("pageerror", lambda exc: session.errors.append(str(exc)))
        p.on("websocket", lambda ws: session.websockets.append(ws.url))

    context.on("request", lambda request: session.requests.append(request.url))
    context.on("page", watch)
    watch(page)
    try:
        yield session
    finally:
        context.close()
