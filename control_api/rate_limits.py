"""Fixed-window counters in the store, shared by every API process."""

from __future__ import annotations

import time

from control_api import keys
from control_api.store import Store, translate_errors


async def allow(store: Store, name: str, subject: str, limit: int, window_s: int = 60) -> bool:
    """Count one ``name`` event by ``subject``; False once more than ``limit`` fell in the current
    window of ``window_s`` seconds. ``limit`` 0 counts nothing and allows everything."""
    if limit <= 0:
        return True
    key = keys.rate_window(store, name, subject, int(time.time() // window_s))
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, window_s * 2)
            count, _ = await pipe.execute()
    return int(count) <= limit
