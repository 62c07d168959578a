"""Fixtures of the control API tests: a store on the real Redis and on the embedded backend."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

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


# --- an in-process app on the real Redis ------------------------------------------------------------

from cb_api_helpers import World, open_world  # noqa: E402


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


# --- a live API process for the OpenAPI fuzzing (one per module: each fuzzing module runs alone) --

from cb_api_helpers import ADMIN_TOKEN, ApiProcess  # noqa: E402


@pytest.fixture(scope="module")
def live_api(redis_server_url: str) -> Iterator[ApiProcess]:
    """``cobrowse serve --role api`` on Redis database 15, in a namespace of this module's own (the
    fuzzing modules may run at once on two workers), with an account and an agent to find."""
    import httpx
    import redis as sync_redis

    url = f"{redis_server_url}/15"
    namespace = f"fuzz{uuid.uuid4().hex[:10]}:"
    api = ApiProcess(url, namespace=namespace).wait_ready()
    # something real to find: an account with an agent, so generated calls are not all 404s
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        account = c.post("/api/v1/accounts", json={"name": "Fuzz", "cobrowse_enabled": True}).json()
        agent = c.post(f"/api/v1/accounts/{account['id']}/agents", json={"display_name": "F"}).json()
    api.tokens = {"admin": ADMIN_TOKEN, "agent": agent["token"]}  # type: ignore[attr-defined]
    try:
        yield api
    finally:
        assert api.stop() == 0
        client = sync_redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=namespace + "*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def api_schema(live_api: ApiProcess) -> Any:
    import schemathesis

    return schemathesis.openapi.from_url(live_api.url + "/openapi.json")
