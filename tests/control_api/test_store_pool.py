"""A burst larger than the connection pool waits for connections instead of failing (was a 503)."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from control_api.store import Store
from tests.conftest import free_port, start_redis_server


async def test_a_burst_larger_than_the_pool_waits_for_connections(redis_url: str, namespace: str) -> None:
    store = Store.connect(redis_url, namespace=namespace, max_connections=4)
    key = store.key("counter")

    async def transaction() -> None:
        # WATCH holds a connection for the whole transaction, as session transitions do
        async with store.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(store.key("other"))
            await asyncio.sleep(0.01)
            pipe.multi()
            pipe.incr(key)
            await pipe.execute()

    try:
        results = await asyncio.gather(*(transaction() for _ in range(40)), return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert int(await store.redis.get(key)) == 40
    finally:
        await store.redis.delete(key)
        await store.close()


async def test_every_pooled_connection_a_restarted_redis_closed_is_replaced_without_an_error(
    tmp_path: Path,
) -> None:
    """Redis restarts (or fails over): every connection in the pool is closed. The first command
    on each failed (a 503, or a socket closed with 1013, while Redis was back; CI saw the latter)."""
    port = free_port()
    server = start_redis_server(port, tmp_path)
    store = Store.connect(f"redis://127.0.0.1:{port}/0", namespace="restart:")
    try:
        all_watching = asyncio.Barrier(6)

        async def held(key: str) -> None:  # a transaction holds its connection: six are opened
            async with store.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(store.key(key))
                await all_watching.wait()
                pipe.multi()
                pipe.set(store.key(key), "1")
                await pipe.execute()

        await asyncio.gather(*(held(f"k{i}") for i in range(6)))
        assert len(store.redis.connection_pool._available_connections) == 6
        server.terminate()
        server.wait()
        server = start_redis_server(port, tmp_path)
        results = await asyncio.gather(
            *(store.redis.incr(store.key("counter")) for _ in range(6)), return_exceptions=True
        )
        assert [r for r in results if isinstance(r, BaseException)] == []
        assert int(await store.redis.get(store.key("counter"))) == 6  # each once
    finally:
        await store.close()
        server.terminate()
        server.wait()


async def test_a_connection_lost_while_a_policy_write_watches_the_account_is_tried_again(
    redis_url: str, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py raises WatchError when the connection goes while keys are watched, from the read
    that found it gone too: set_policy caught it only around EXEC, and the read's was a 500."""
    from redis.asyncio.client import Pipeline
    from redis.exceptions import WatchError

    from control_api import accounts

    store = Store.connect(redis_url, namespace=namespace)
    try:
        account = await accounts.create(store, "Shop", True, {"allowed_origins": ["https://a.example"]})
        real = Pipeline.immediate_execute_command
        lost = []

        async def once_lost(self: Pipeline, *args: Any, **options: Any) -> Any:
            if args and args[0] == "HGETALL" and not lost:
                lost.append(args)
                raise WatchError("A ConnectionError occurred on while watching one or more keys")
            return await real(self, *args, **options)

        monkeypatch.setattr(Pipeline, "immediate_execute_command", once_lost)
        policy = {**account.policy, "allowed_origins": ["https://b.example"]}
        updated = await accounts.set_policy(store, account.id, policy, base=account.policy)
        assert lost and updated.policy["allowed_origins"] == ["https://b.example"]
    finally:
        await store.close()
