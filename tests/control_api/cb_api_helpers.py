"""Helpers shared by the control API tests (a uniquely named module: conftests are not importable)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

with warnings.catch_warnings():
    # starlette.testclient warns at import that it prefers httpx2; httpx is what we have.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cobrowse.settings import Settings
from control_api import create_app
from control_api.store import Store
from tests.conftest import free_port
from tests.serve_process import ServeProcess

ADMIN_TOKEN = "admin-test-token"
ORIGIN = "http://127.0.0.1:8002"


def make_settings(**changes: Any) -> Settings:
    base = Settings(admin_token=ADMIN_TOKEN, visitor_grace_s=30.0, proxy_port=8001)
    return base.replace(**changes)


@dataclass
class World:
    """A TestClient plus shortcuts that create accounts, agents and visitors through the API."""

    client: TestClient
    store: Store

    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def account(self, enabled: bool = True, **policy: Any) -> dict[str, Any]:
        policy.setdefault("allowed_origins", [ORIGIN])
        policy.setdefault("min_bandwidth_kbps", 0)
        r = self.client.post(
            "/api/v1/accounts",
            json={"name": "Shop", "cobrowse_enabled": enabled, "policy": policy},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        return r.json()

    def agent(self, account: dict[str, Any], name: str = "Alice") -> dict[str, Any]:
        r = self.client.post(
            f"/api/v1/accounts/{account['id']}/agents", json={"display_name": name}, headers=self.admin
        )
        assert r.status_code == 201, r.text
        agent = r.json()
        agent["headers"] = {"Authorization": f"Bearer {agent['token']}"}
        return agent

    def visitor(self, account: dict[str, Any], origin: str = ORIGIN) -> dict[str, Any]:
        r = self.client.post(
            "/api/v1/visitors", json={"site_key": account["site_key"]}, headers={"Origin": origin}
        )
        assert r.status_code == 201, r.text
        visitor = r.json()
        visitor["headers"] = {"Authorization": f"Bearer {visitor['token']}"}
        return visitor

    def session(self, agent: dict[str, Any], visitor: dict[str, Any]) -> dict[str, Any]:
        r = self.client.post(
            "/api/v1/sessions", json={"visitor_id": visitor["visitor_id"]}, headers=agent["headers"]
        )
        assert r.status_code == 201, r.text
        return r.json()


def open_world(store: Store, peer: str = "testclient", **settings: Any) -> Iterator[World]:
    """An app on ``store``; ``peer`` is the address requests come from (a load balancer's)."""
    app = create_app(make_settings(**settings), store=store)
    with TestClient(app, base_url="http://cobrowse.localhost:8000", client=(peer, 50000)) as client:
        yield World(client, store)


class ApiProcess(ServeProcess):
    """A real ``cobrowse serve --role api`` subprocess on a free port; its output is drained by a thread."""

    def __init__(
        self, redis_url: str, port: int | None = None, log_level: str = "warning", namespace: str = ""
    ) -> None:
        """``namespace``: the Redis prefix of its keys (the default one when empty)."""
        self.port = port or free_port()
        env = {**os.environ, "COBROWSE_ADMIN_TOKEN": ADMIN_TOKEN}
        env.pop("COBROWSE_REDIS_URL", None)
        env.pop("COBROWSE_REDIS_NAMESPACE", None)
        if namespace:
            env["COBROWSE_REDIS_NAMESPACE"] = namespace
        args = [
            "--role",
            "api",
            "--host",
            "127.0.0.1",
            "--api-port",
            str(self.port),
            "--redis-url",
            redis_url,
            "--log-level",
            log_level,
        ]
        super().__init__(args, env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
