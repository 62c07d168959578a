"""A burst larger than the connection pool waits for connections instead of failing (was a 503)."""

import asyncio

from control_api.store import Store


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
