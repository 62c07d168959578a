"""Presence updates for the agent consoles of an account (published on the account channel)."""

from __future__ import annotations

import json
import time
from typing import Any

from control_api import accounts, keys, visitors
from control_api.policy import agent_view
from control_api.store import Store, translate_errors


async def publish_visitor(store: Store, account_id: str, vid: str) -> None:
    """Publish the visitor's current view (with availability) to the account's agents."""
    # The visitor before the account: an account change bumps its visitors' ``rev`` before it
    # publishes (``publish_account``), so a view that read that ``rev`` reads the account after
    # the change too, and a view that read the account before it has an older ``rev``.
    visitor = await visitors.find(store, vid)
    if visitor is None:
        return
    account = await accounts.find(store, account_id)
    message = {"type": "visitor", "visitor": visitors.view(account, visitor), "ts": time.time()}
    with translate_errors():
        await store.redis.publish(keys.account_channel(store, account_id), json.dumps(message))


async def publish_account(store: Store, account_id: str) -> None:
    """Publish every present visitor's view again: the account's switch or policy changed, and
    with it who can be co-browsed (consoles would otherwise show the old availability until each
    visitor next reports)."""
    vids = await visitors.present_ids(store, account_id)
    if not vids:
        return
    # A new revision for each, then the visitors, then the account, each read after the last: a
    # view of one of them read before the change (published late by their own socket, or by
    # another change of the account) is then older than this one.
    with translate_errors():
        async with store.redis.pipeline(transaction=False) as pipe:
            for vid in vids:
                visitors.queue_rev(pipe, store, vid)
            await pipe.execute()
    present = await visitors.find_many(store, vids)
    account = await accounts.find(store, account_id)
    now = time.time()
    channel = keys.account_channel(store, account_id)
    with translate_errors():
        async with store.redis.pipeline(transaction=False) as pipe:
            for visitor in present:
                message = {"type": "visitor", "visitor": visitors.view(account, visitor), "ts": now}
                pipe.publish(channel, json.dumps(message))
            await pipe.execute()


async def publish_policy(store: Store, account_id: str, policy: dict[str, Any]) -> None:
    """The policy as the account's consoles know it (``GET /me``), after an administrator changed
    it: the next press opens the window the policy now says (a pop-in or a tab)."""
    message = {"type": "policy", "policy": agent_view(policy), "ts": time.time()}
    with translate_errors():
        await store.redis.publish(keys.account_channel(store, account_id), json.dumps(message))


async def publish_left(store: Store, account_id: str, vid: str) -> None:
    message = {"type": "visitor_left", "visitor_id": vid, "ts": time.time()}
    with translate_errors():
        await store.redis.publish(keys.account_channel(store, account_id), json.dumps(message))
