"""Contract of control_api.store and control_api.proxy_access, on a real Redis and on the embedded store."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from control_api import keys, proxy_access
from control_api.exceptions import StoreUnavailable
from control_api.store import Store, translate_errors


async def _put_session(store: Store, sid: str, state: str = "active", ttl_s: float = 600) -> None:
    # The session record layout the proxy reads (written by control_api.sessions in production).
    await store.redis.hset(
        keys.session(store, sid),
        mapping={
            "state": state,
            "account_id": "acc_1",
            "agent_id": "agt_1",
            "visitor_id": "vis_1",
            "allowed_origins": json.dumps(["https://shop.example.com", "http://127.0.0.1:8002"]),
            "masked_selectors": json.dumps(["#card"]),
            "expires_at": str(time.time() + ttl_s),
        },
    )


async def test_key_and_channel_use_the_namespace(store: Store, namespace: str) -> None:
    assert store.key("a", "b") == namespace + "a:b"
    assert store.channel("x") == namespace + "x"
    assert proxy_access.session_ended_channel(store).startswith(namespace)


async def test_ping_and_ttl(store: Store) -> None:
    assert await store.ping() is True
    await store.redis.set(store.key("ttl"), "v", px=150)
    assert await store.redis.get(store.key("ttl")) == "v"
    await asyncio.sleep(0.3)
    assert await store.redis.get(store.key("ttl")) is None


async def test_pubsub_delivers_across_clients(store: Store) -> None:
    pubsub = store.redis.pubsub()
    channel = store.channel("c")
    await pubsub.subscribe(channel)
    assert (await pubsub.get_message(timeout=1))["type"] == "subscribe"
    await store.redis.publish(channel, "hello")
    message = await pubsub.get_message(timeout=1, ignore_subscribe_messages=True)
    assert message is not None and message["data"] == "hello"
    await pubsub.aclose()


async def test_watch_makes_exactly_one_of_two_racers_win(store: Store) -> None:
    key = store.key("race")
    await store.redis.set(key, "pending")

    async def flip(to: str) -> bool:
        async with store.redis.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            current = await pipe.get(key)
            await asyncio.sleep(0.01)
            if current != "pending":
                return False
            pipe.multi()
            pipe.set(key, to)
            try:
                await pipe.execute()
            except Exception:  # WatchError: the other racer won
                return False
            return True

    results = await asyncio.gather(flip("active"), flip("refused"))
    assert sorted(results) == [False, True]


async def test_get_proxy_session(store: Store) -> None:
    assert await proxy_access.get_proxy_session(store, "abcdefghij") is None
    await _put_session(store, "k3j9x2ab7q")
    got = await proxy_access.get_proxy_session(store, "k3j9x2ab7q")
    assert got is not None
    assert got.state == "active"
    assert got.allowed_origins == ("https://shop.example.com", "http://127.0.0.1:8002")
    assert got.masked_selectors == ("#card",)
    assert (got.account_id, got.agent_id, got.visitor_id) == ("acc_1", "agt_1", "vis_1")
    assert got.expires_at > time.time()


async def test_ticket_is_one_time(store: Store) -> None:
    ticket = await proxy_access.store_ticket(store, "k3j9x2ab7q", "agt_1", ttl_s=60)
    grant = await proxy_access.redeem_ticket(store, ticket)
    assert grant == proxy_access.TicketGrant("k3j9x2ab7q", "agt_1")
    assert await proxy_access.redeem_ticket(store, ticket) is None
    assert await proxy_access.redeem_ticket(store, "not-a-ticket") is None
    assert await proxy_access.redeem_ticket(store, "") is None


async def test_ticket_racing_redeems_grant_once(store: Store) -> None:
    ticket = await proxy_access.store_ticket(store, "k3j9x2ab7q", "agt_1", ttl_s=60)
    grants = await asyncio.gather(*(proxy_access.redeem_ticket(store, ticket) for _ in range(5)))
    assert sum(g is not None for g in grants) == 1


async def test_ticket_expires(store: Store) -> None:
    ticket = await proxy_access.store_ticket(store, "k3j9x2ab7q", "agt_1", ttl_s=1)
    await asyncio.sleep(1.3)
    assert await proxy_access.redeem_ticket(store, ticket) is None


async def test_ticket_is_stored_hashed(store: Store, namespace: str) -> None:
    ticket = await proxy_access.store_ticket(store, "k3j9x2ab7q", "agt_1", ttl_s=60)
    stored = [k async for k in store.redis.scan_iter(match=namespace + "*")]
    assert stored and all(ticket not in k for k in stored)


async def test_credentials(store: Store) -> None:
    await _put_session(store, "k3j9x2ab7q")
    await _put_session(store, "b000000000")
    cred = await proxy_access.issue_credential(store, "k3j9x2ab7q", "agt_1")
    assert await proxy_access.check_credential(store, "k3j9x2ab7q", cred) is True
    assert await proxy_access.check_credential(store, "b000000000", cred) is False
    assert await proxy_access.check_credential(store, "k3j9x2ab7q", cred + "x") is False
    assert await proxy_access.check_credential(store, "k3j9x2ab7q", "") is False
    raw = await store.redis.smembers(keys.session_cred(store, "k3j9x2ab7q"))
    assert cred not in raw
    ttl = await store.redis.ttl(keys.session_cred(store, "k3j9x2ab7q"))
    assert 0 < ttl <= 700


async def test_credential_fails_once_session_is_not_active(store: Store) -> None:
    await _put_session(store, "k3j9x2ab7q")
    cred = await proxy_access.issue_credential(store, "k3j9x2ab7q", "agt_1")
    await store.redis.hset(keys.session(store, "k3j9x2ab7q"), "state", "ended")
    assert await proxy_access.check_credential(store, "k3j9x2ab7q", cred) is False


async def test_agent_addresses(store: Store) -> None:
    await _put_session(store, "k3j9x2ab7q")
    await proxy_access.note_agent_address(store, "k3j9x2ab7q", "198.51.100.7")
    assert await proxy_access.is_agent_address(store, "k3j9x2ab7q", "198.51.100.7") is True
    assert await proxy_access.is_agent_address(store, "k3j9x2ab7q", "198.51.100.8") is False
    assert await proxy_access.is_agent_address(store, "b000000000", "198.51.100.7") is False
    assert 0 < await store.redis.ttl(keys.session_agent_addresses(store, "k3j9x2ab7q")) <= 700
    await store.redis.hset(keys.session(store, "k3j9x2ab7q"), "state", "ended")
    assert await proxy_access.is_agent_address(store, "k3j9x2ab7q", "198.51.100.7") is False


async def test_jar(store: Store) -> None:
    await _put_session(store, "k3j9x2ab7q")
    assert await proxy_access.jar_load(store, "k3j9x2ab7q") == {}
    await proxy_access.jar_update(store, "k3j9x2ab7q", {"a": '{"v":1}', "b": '{"v":2}'}, [])
    await proxy_access.jar_update(store, "k3j9x2ab7q", {"c": '{"v":3}'}, ["a", "missing"])
    assert await proxy_access.jar_load(store, "k3j9x2ab7q") == {"b": '{"v":2}', "c": '{"v":3}'}
    assert await proxy_access.jar_load(store, "b000000000") == {}
    assert 0 < await store.redis.ttl(keys.session_jar(store, "k3j9x2ab7q")) <= 700


async def test_session_ended_channel_reaches_a_listener(store: Store) -> None:
    pubsub = store.redis.pubsub()
    await pubsub.subscribe(proxy_access.session_ended_channel(store))
    await pubsub.get_message(timeout=1)
    await store.redis.publish(proxy_access.session_ended_channel(store), "k3j9x2ab7q")
    message = await pubsub.get_message(timeout=1, ignore_subscribe_messages=True)
    assert message is not None and message["data"] == "k3j9x2ab7q"
    await pubsub.aclose()


async def test_unreachable_redis_is_store_unavailable() -> None:
    from tests.conftest import free_port

    store = Store.connect(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=0.5)
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await proxy_access.get_proxy_session(store, "k3j9x2ab7q")
    with pytest.raises(StoreUnavailable), translate_errors():
        await store.redis.get("x")
    await store.close()
