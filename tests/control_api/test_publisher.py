"""The batching publisher of sync messages: order kept, batches formed, store failures reported."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from control_api.hub import Publisher
from control_api.store import UNAVAILABLE_ERRORS, Store


async def test_concurrent_messages_go_out_in_order_and_in_batches(redis_store: Store) -> None:
    channel = redis_store.channel("sync-test")
    pubsub = redis_store.redis.pubsub()
    await pubsub.subscribe(channel)
    assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
    pipelines = 0
    real_pipeline = redis_store.redis.pipeline

    def counting_pipeline(*args: Any, **kwargs: Any) -> Any:
        nonlocal pipelines
        pipelines += 1
        return real_pipeline(*args, **kwargs)

    redis_store.redis.pipeline = counting_pipeline
    publisher = Publisher(redis_store)
    publisher.start()
    try:
        await asyncio.gather(*(publisher.publish(channel, str(i)) for i in range(300)))
        got = []
        while len(got) < 300:
            message = await pubsub.get_message(timeout=2, ignore_subscribe_messages=True)
            assert message is not None, f"only {len(got)} of 300 arrived"
            got.append(message["data"])
        assert got == [str(i) for i in range(300)]
        assert 1 <= pipelines < 300 / 10  # batched, not one round trip per message
    finally:
        await publisher.stop()
        del redis_store.redis.pipeline
        await pubsub.aclose()


async def test_a_store_failure_reaches_every_caller_and_the_publisher_goes_on(namespace: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = Store.connect(f"redis://127.0.0.1:{port}/0", namespace=namespace)
    publisher = Publisher(store)
    publisher.start()
    try:
        results = await asyncio.gather(
            *(publisher.publish("c", "x") for _ in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, UNAVAILABLE_ERRORS) for r in results), results
        with pytest.raises(UNAVAILABLE_ERRORS):
            await publisher.publish("c", "again")  # still serving callers after a failure
    finally:
        await publisher.stop()
        await store.close()


async def test_an_unexpected_error_fails_its_batch_and_not_the_publisher(
    redis_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a batch raises reaches its callers; nobody waits forever, later batches go out."""
    real_pipeline = redis_store.redis.pipeline
    calls = 0

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("a bug in a command")
        return real_pipeline(*args, **kwargs)

    monkeypatch.setattr(redis_store.redis, "pipeline", failing_once)
    publisher = Publisher(redis_store)
    publisher.start()
    try:
        with pytest.raises(ValueError):
            await asyncio.wait_for(publisher.publish(redis_store.channel("c"), "x"), 5)
        await asyncio.wait_for(publisher.publish(redis_store.channel("c"), "y"), 5)
    finally:
        await publisher.stop()
