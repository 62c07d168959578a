"""What the addons of one proxy process share: settings, store, gate, egress policy, connections."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from cobrowse.settings import Settings
from control_api.store import Store
from proxy.egress import EgressPolicy
from proxy.rewrite_pool import RewritePool
from proxy.session_gate import SessionGate
from proxy.websocket_close import end_client
from rewriter.urls import ProxyConfig

logger = logging.getLogger(__name__)


class ConnectionTracker:
    """Client connections seen per session, so a session's connections can be closed at its end."""

    def __init__(self) -> None:
        self._by_session: dict[str, set[str]] = defaultdict(set)
        self.proxyserver: Any = None  # mitmproxy's Proxyserver addon, set once the master exists

    def add(self, sid: str, client_id: str) -> None:
        self._by_session[sid].add(client_id)

    def discard_client(self, client_id: str) -> None:
        for sid in [s for s, ids in self._by_session.items() if client_id in ids]:
            self._by_session[sid].discard(client_id)
            if not self._by_session[sid]:
                del self._by_session[sid]

    def sessions(self) -> list[str]:
        """The sessions with client connections seen here."""
        return list(self._by_session)

    def session_clients(self, sid: str) -> set[str]:
        return set(self._by_session.get(sid, ()))

    def close_session(self, sid: str) -> int:
        """Close every client connection (HTTP keep-alive and WebSocket) of ``sid``."""
        return sum(self.close_client(client_id) for client_id in self._by_session.pop(sid, set()))

    def close_client(self, client_id: str) -> bool:
        """Close one client connection; whether it was open."""
        handler = (self.proxyserver.connections if self.proxyserver else {}).get(client_id)
        if handler is None:
            return False
        try:
            end_client(handler)
        except (KeyError, AssertionError, OSError):  # already closing
            logger.debug("connection %s already closed", client_id)
            return False
        return True


@dataclass
class ProxyContext:
    settings: Settings
    store: Store
    gate: SessionGate
    egress: EgressPolicy
    public: ProxyConfig
    connections: ConnectionTracker = field(default_factory=ConnectionTracker)
    rewrite_pool: RewritePool = field(default_factory=RewritePool)
    # (client connection id, address, port) -> TLS server name for pinned upstream connections
    sni: dict[tuple[str, str, int], str] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, store: Store) -> ProxyContext:
        public = ProxyConfig(
            domain=settings.proxy_domain,
            port=settings.public_proxy_port or 80,
            scheme=settings.proxy_public_scheme,
        )
        return cls(
            settings=settings,
            store=store,
            gate=SessionGate(store),
            egress=EgressPolicy(settings.dev_allow_origins),
            public=public,
            rewrite_pool=RewritePool(
                None if settings.rewrite_workers < 0 else settings.rewrite_workers,
                timeout_s=settings.upstream_timeout_s,  # as long as the upstream may take
            ),
        )
