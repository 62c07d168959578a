"""Fixtures of the control API tests: a store on the real Redis and on the embedded backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from control_api.store import Store


@pytest.fixture(params=["redis", "embedded"])
async def store(request: pytest.FixtureRequest, redis_url: str, namespace: str) -> AsyncIterator[Store]:
    """The same contract runs against a real Redis and the embedded in-process store."""
    instance = Store.connect(redis_url if request.param == "redis" else None, namespace=namespace)
    try:
        yield instance
    finally:
        if request.param == "redis":
            keys = [k async for k in instance.redis.scan_iter(match=namespace + "*")]
            if keys:
                await instance.redis.delete(*keys)
        await instance.close()


@pytest.fixture
async def redis_store(redis_url: str, namespace: str) -> AsyncIterator[Store]:
    """A store on the real Redis only (races and multi-process tests)."""
    instance = Store.connect(redis_url, namespace=namespace)
    try:
        yield instance
    finally:
        keys = [k async for k in instance.redis.scan_iter(match=namespace + "*")]
        if keys:
            await instance.redis.delete(*keys)
        await instance.close()


# --- an in-process app on the real Redis, and helpers to populate it -------------------------------

import warnings  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

with warnings.catch_warnings():
    # starlette.testclient warns at import that it prefers httpx2; httpx is what we have.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from cobrowse.settings import Settings  # noqa: E402
from control_api import create_app  # noqa: E402

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


def open_world(store: Store, **settings: Any) -> Iterator[World]:
    app = create_app(make_settings(**settings), store=store)
    with TestClient(app, base_url="http://cobrowse.localhost:8000") as client:
        yield World(client, store)


@pytest.fixture
def sync_store(redis_url: str, namespace: str) -> Iterator[Store]:
    """A real-Redis store for sync (TestClient) tests; keys of the namespace are removed afterwards."""
    import redis as sync_redis

    yield Store.connect(redis_url, namespace=namespace)
    client = sync_redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=namespace + "*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def world(sync_store: Store) -> Iterator[World]:
    yield from open_world(sync_store)
