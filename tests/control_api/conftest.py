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
