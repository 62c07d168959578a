"""The event hub: one Redis pub/sub connection per API process, fanned out to local sinks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from control_api.hub import EventHub
from control_api.store import Store
from tests.conftest import private_redis


async def _until(predicate: object, what: str, timeout_s: float = 10) -> None:
    async def poll() -> None:
        while not await predicate():  # type: ignore[operator]
            await asyncio.sleep(0.02)

    try:
        await asyncio.wait_for(poll(), timeout_s)
    except TimeoutError:
        raise AssertionError(f"{what} not within {timeout_s}s") from None


async def test_messages_reach_the_sinks_again_after_the_subscription_is_cut(tmp_path: Path) -> None:
    """A Redis restart or failover cuts the hub's pub/sub connection: it subscribes again to every
    channel that still has sinks, so consoles and visitors go on getting their events."""
    with private_redis(tmp_path) as (_, port):
        store = Store.connect(f"redis://127.0.0.1:{port}/0", "hub:")
        admin = aioredis.Redis(port=port)
        hub = EventHub(store)
        await hub.start()
        try:
            channel = store.channel("events-test")
            got: list[str] = []
            await hub.subscribe(channel, got.append)

            async def delivered(text: str) -> bool:
                """Seen, or sent (again: a message published while the hub resubscribes is lost)."""
                if text in got:
                    return True
                await store.redis.publish(channel, text)
                return False

            await _until(lambda: delivered("before"), "a message before the cut")
            assert await admin.client_kill_filter(_type="pubsub") == 1
            await _until(lambda: delivered("after"), "a message after the cut")
        finally:
            await hub.stop()
            await admin.aclose()
            await store.close()
