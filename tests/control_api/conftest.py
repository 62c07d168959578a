"""Fixtures of the control API tests: a store on the real Redis and on the embedded backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

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
