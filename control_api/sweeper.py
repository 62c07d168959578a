"""Deadlines swept by every API process: consent timeouts, session max, idle, visitors gone.

The deadlines live in the store (sorted sets), so they fire with nobody connected and survive
process restarts; several processes may sweep at once because every transition is atomic.
"""

from __future__ import annotations

import asyncio
import logging
import time

from control_api import presence, sessions, visitors
from control_api.exceptions import ApiError, StoreUnavailable
from control_api.store import Store, translate_errors
from control_api.tasks import check_cancelled

log = logging.getLogger("cobrowse.api.sweeper")


async def sweep_once(store: Store, grace_s: float) -> int:
    """Apply every due deadline; returns how many sessions or visitors changed."""
    now = time.time()
    changed = 0
    for sid in await sessions.due_sessions(store, now):
        if await sessions.enforce_deadline(store, sid, now):
            changed += 1
    for vid in await visitors.due_for_sweep(store, now):
        gone, lapsed = await visitors.settle(store, vid, grace_s)
        if lapsed:
            await _tell_offline(store, vid)
        if gone is None:
            continue
        # End the live session first: if that fails, the visitor stays due and the next sweep
        # tries again (forgetting it first would leave the session live with nobody to end it).
        live = await sessions.live_of_visitor(store, vid)
        if live:
            try:
                await sessions.end(store, live, sessions.SYSTEM, "visitor_left")
            except ApiError as exc:
                if exc.status >= 500:
                    raise
        if await visitors.forget(store, gone):
            changed += 1
            await presence.publish_left(store, gone.account_id, vid)
    return changed


async def _tell_offline(store: Store, vid: str) -> None:
    """The visitor's pages' sockets lapsed with no close (their API process died): a new
    revision and a view, so consoles show it offline now, not once its grace period ends."""
    visitor = await visitors.find(store, vid)
    if visitor is None:
        return
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            visitors.queue_rev(pipe, store, vid)
            await pipe.execute()
    await presence.publish_visitor(store, visitor.account_id, vid)


async def run(store: Store, grace_s: float, interval_s: float = 0.25) -> None:
    while True:
        check_cancelled()
        try:
            await sweep_once(store, grace_s)
        except StoreUnavailable:
            await asyncio.sleep(1.0)
        except Exception:
            log.exception("sweep failed")
            await asyncio.sleep(1.0)
        await asyncio.sleep(interval_s)
