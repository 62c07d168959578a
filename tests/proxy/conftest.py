"""Proxy test harness: fixture sites, a proxy on its own event loop thread, sessions made through
the control API's store functions (as the API makes them)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest

from cobrowse.settings import Settings
from control_api import accounts, agents, proxy_access, sessions, visitors
from control_api.sessions import Actor
from control_api.store import Store
from proxy.server import ProxyServer
from rewriter.urls import Origin, encode_label
from tests.proxy.sites import Site, SiteServer, cdn_app, shop_app

T = TypeVar("T")
DOMAIN = "cobrowse.localhost"


@dataclass(frozen=True)
class Sites:
    shop: Site
    cdn: Site


@pytest.fixture
def sites() -> Iterator[Sites]:
    shop, cdn = Site("shop"), Site("cdn")
    shop_server = SiteServer(None)
    cdn_server = SiteServer(None)
    shop.port, cdn.port = shop_server.port, cdn_server.port
    shop_server.server.config.app = shop_app(shop, cdn)
    cdn_server.server.config.app = cdn_app(cdn, shop)
    shop_server.start()
    cdn_server.start()
    try:
        yield Sites(shop, cdn)
    finally:
        shop_server.stop()
        cdn_server.stop()


@dataclass
class OpenSession:
    sid: str
    agent_id: str
    account_id: str
    origins: tuple[str, ...]


class Harness:
    """A proxy (and its store) on an event loop in a background thread."""

    def __init__(self, settings: Settings, redis_url: str, namespace: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.settings = settings
        self.store = Store.connect(redis_url, namespace)
        self.proxy = ProxyServer(settings, self.store)
        self.call(self.proxy.start())
        self.port = self.proxy.port

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.call(self.proxy.stop())
        # Whatever is left may still use the store: stop it before closing the store, or it opens
        # a new Redis connection that nobody closes (a ResourceWarning in a later test).
        self.call(self._cancel_leftovers())
        self.call(self.store.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()

    @staticmethod
    async def _cancel_leftovers() -> None:
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- sessions, as the API makes them

    def open_session(
        self, origins: tuple[str, ...], *, consent: str = "none", masked: tuple[str, ...] = (),
        agent_of: OpenSession | None = None,
    ) -> OpenSession:
        """A new session (and visitor); by a new agent of a new account, or by ``agent_of``'s agent
        (in its account: its origins, consent and masks)."""
        async def go() -> OpenSession:
            if agent_of is not None:
                account = await accounts.get(self.store, agent_of.account_id)
                agent = await agents.find(self.store, agent_of.agent_id)
                assert agent is not None
            else:
                policy = {"allowed_origins": list(origins), "consent": consent,
                          "masked_selectors": list(masked)}
                account = await accounts.create(self.store, "Fixture", True, policy)
                agent, _token = await agents.create(self.store, account.id, "Agent")
            visitor, _vt = await visitors.register(self.store, account, origins[0], 30)
            record = await sessions.create(self.store, account, agent, visitor.id)
            return OpenSession(record["id"], agent.id, account.id, origins)

        return self.call(go())

    def session_on(self, origin: str) -> tuple[OpenSession, str, str]:
        """An active session on ``origin`` alone: (session, the agent's credential, its proxy host)."""
        s = self.open_session((origin,))
        return s, self.credential(s), self.host(s, origin)

    def accept(self, s: OpenSession) -> None:
        self.call(sessions.accept(self.store, s.sid, Actor("visitor", "v")))

    def refuse(self, s: OpenSession) -> None:
        self.call(sessions.refuse(self.store, s.sid, Actor("visitor", "v")))

    def end(self, s: OpenSession) -> None:
        self.call(sessions.end(self.store, s.sid, Actor("agent", s.agent_id)))

    def ticket(self, s: OpenSession) -> str:
        return self.call(proxy_access.store_ticket(self.store, s.sid, s.agent_id, 60))

    def credential(self, s: OpenSession) -> str:
        return self.call(proxy_access.issue_credential(self.store, s.sid, s.agent_id))

    # -- URLs

    def host(self, s: OpenSession, origin: str) -> str:
        return f"{encode_label(s.sid, Origin.parse(origin))}.{DOMAIN}:{self.port}"

    def url(self, s: OpenSession, upstream_url: str) -> str:
        parsed = urllib.parse.urlsplit(upstream_url)
        origin = f"{parsed.scheme}://{parsed.netloc}"
        path = upstream_url[len(origin):] or "/"
        return f"http://{self.host(s, origin)}{path}"

    def enter_url(self, s: OpenSession, upstream_url: str) -> str:
        query = urllib.parse.urlencode({"ticket": self.ticket(s), "url": upstream_url})
        return f"http://{self.host(s, s.origins[0])}/__cobrowse/enter?{query}"

    # -- a Python client (it cannot resolve *.localhost: connect to 127.0.0.1 with a Host header)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=20)

    def get(self, s: OpenSession | None, host: str, path: str, *, credential: str | None = None,
            headers: dict[str, str] | None = None, method: str = "GET", **kwargs: Any) -> httpx.Response:
        all_headers = {"host": host, **(headers or {})}
        if s is not None and credential is not None:
            all_headers["cookie"] = f"__cb_{s.sid}={credential}" + (
                "; " + all_headers.pop("cookie") if "cookie" in all_headers else ""
            )
        with self.client() as c:
            return c.request(method, path, headers=all_headers, **kwargs)

    # -- a raw socket, for what no HTTP client sends (floods, smuggling, malformed fields)

    def raw_exchange(self, data: bytes) -> bytes:
        """Send ``data`` on a new connection and read until the proxy closes it (a socket
        timeout fails); the proxy may close before it has read all of ``data``."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            with contextlib.suppress(OSError):
                sock.sendall(data)
            return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the proxy sends until it closes the connection (a socket timeout fails)."""
    received = b""
    with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread
        while chunk := sock.recv(65536):
            received += chunk
    return received


def make_settings(sites: Sites, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "proxy_port": 0,
        "proxy_domain": DOMAIN,
        "dev_allow_origins": (sites.shop.origin, sites.cdn.origin),
        "upstream_timeout_s": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def harness(sites: Sites, redis_url: str, namespace: str) -> Iterator[Harness]:
    h = Harness(make_settings(sites), redis_url, namespace)
    try:
        yield h
    finally:
        h.close()
