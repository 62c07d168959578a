"""The banner's registration key: a tab the page opened before the first registration was answered
copied the key, not the identity, and registers with it as the same visitor (``visitors.register``)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from cb_api_helpers import ORIGIN, World, open_world

from control_api import accounts, auth, keys, visitors
from control_api.store import Store
from control_api.tokens import digest

OTHER_ORIGIN = "http://127.0.0.1:8003"


def _key() -> str:
    return secrets.token_urlsafe(16)  # 22 characters, 128 bits: what the banner sends at least


def _register(world: World, account: dict[str, Any], key: Any, origin: str = ORIGIN) -> Any:
    body: dict[str, Any] = {"site_key": account["site_key"]}
    if key is not ...:
        body["registration"] = key
    return world.client.post("/api/v1/visitors", json=body, headers={"Origin": origin})


def _agent_rows(world: World, account: dict[str, Any]) -> list[str]:
    agent = world.agent(account)
    r = world.client.get("/api/v1/visitors", headers=agent["headers"])
    assert r.status_code == 200, r.text
    return [v["id"] for v in r.json()["visitors"]]


def test_a_second_registration_with_the_key_is_the_same_visitor_with_a_token_of_its_own(
    world: World,
) -> None:
    account = world.account()
    key = _key()
    first, second = _register(world, account, key), _register(world, account, key)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["visitor_id"] == second.json()["visitor_id"]
    # tokens are kept only hashed: the opened tab gets one of its own for the same visitor
    assert first.json()["token"] != second.json()["token"]
    for answer in (first, second):
        with world.client.websocket_connect("/api/v1/visitor/ws") as ws:
            ws.send_json({"type": "auth", "token": answer.json()["token"]})
            hello = ws.receive_json()
            assert (hello["type"], hello["visitor_id"]) == ("hello", first.json()["visitor_id"])
    assert _agent_rows(world, account) == [first.json()["visitor_id"]]
    # another key, or none, is another visitor
    assert _register(world, account, _key()).json()["visitor_id"] != first.json()["visitor_id"]
    assert _register(world, account, ...).json()["visitor_id"] != first.json()["visitor_id"]


def test_the_key_is_stored_hashed_for_two_minutes_and_never_in_clear(world: World) -> None:
    account = world.account()
    key = _key()
    vid = _register(world, account, key).json()["visitor_id"]
    redis = world.client.portal.call(lambda: _dump(world.store))  # type: ignore[union-attr]
    stored = keys.registration(world.store, digest(key))
    assert stored in redis
    value, ttl = redis[stored]
    assert value == f"{account['id']} {ORIGIN} {vid}"
    assert 0 < ttl <= visitors.REGISTRATION_KEY_TTL_S
    assert not [k for k, (v, _) in redis.items() if key in k or key in str(v)]


async def _dump(store: Store) -> dict[str, tuple[Any, int]]:
    out: dict[str, tuple[Any, int]] = {}
    async for name in store.redis.scan_iter(match=store.namespace + "*"):
        kind = await store.redis.type(name)
        if kind == "string":
            value: Any = await store.redis.get(name)
        elif kind == "hash":
            value = await store.redis.hgetall(name)
        else:
            value = kind
        out[name] = (value, await store.redis.ttl(name))
    return out


def test_a_key_of_another_account_or_origin_names_nothing_there(world: World) -> None:
    account = world.account(allowed_origins=[ORIGIN, OTHER_ORIGIN])
    other = world.account()
    key = _key()
    vid = _register(world, account, key).json()["visitor_id"]
    elsewhere = _register(world, account, key, OTHER_ORIGIN)
    assert elsewhere.status_code == 201 and elsewhere.json()["visitor_id"] != vid
    assert _register(world, other, key).json()["visitor_id"] != vid
    # and the key still names its own visitor where it was made
    assert _register(world, account, key).json()["visitor_id"] == vid


def test_an_expired_key_or_a_gone_visitor_makes_a_new_visitor_that_the_key_then_names(
    world: World,
) -> None:
    account = world.account()
    key = _key()
    first = _register(world, account, key).json()["visitor_id"]
    stored = keys.registration(world.store, digest(key))
    world.client.portal.call(world.store.redis.delete, stored)  # type: ignore[union-attr]
    second = _register(world, account, key).json()["visitor_id"]
    assert second != first
    assert _register(world, account, key).json()["visitor_id"] == second
    # the visitor the key named is gone (its record expired): a new one, named by the key
    world.client.portal.call(world.store.redis.delete, keys.visitor(world.store, second))  # type: ignore[union-attr]
    third = _register(world, account, key).json()["visitor_id"]
    assert third not in (first, second)
    assert _register(world, account, key).json()["visitor_id"] == third


@pytest.mark.parametrize(
    "key",
    [
        "",
        "short",
        "a" * 21,
        "a" * 129,
        "has space in it 0123456789",
        "has/slash/0123456789abcdef",
        "ünïcödé-ünïcödé-ünïcödé",
        None,
        12345678901234567890123,
        ["aaaaaaaaaaaaaaaaaaaaaaaa"],
        {"k": "aaaaaaaaaaaaaaaaaaaaaaaa"},
    ],
)
def test_a_malformed_key_is_a_typed_422_that_does_not_echo_it(world: World, key: Any) -> None:
    account = world.account()
    r = _register(world, account, key)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and r.json()["field"] == "registration"
    if isinstance(key, str) and key:
        assert key not in r.text


def test_the_registration_rate_limit_applies_with_a_key(sync_store: Store) -> None:
    for world in open_world(sync_store, visitor_registrations_per_min=2):
        account = world.account()
        key = _key()
        statuses = [_register(world, account, key).status_code for _ in range(3)]
        assert statuses == [201, 201, 429]


def test_the_openapi_document_describes_the_key(world: World) -> None:
    schema = world.client.get("/openapi.json").json()["components"]["schemas"]["VisitorRegister"]
    assert schema["required"] == ["site_key"] and schema["additionalProperties"] is False
    assert schema["properties"]["registration"]["pattern"] == "^[A-Za-z0-9_-]{22,128}$"


# --- the store functions, on the real Redis and the embedded store ------------------------------


def _meet_before_writing(store: Store, parties: int) -> None:
    """The first ``parties`` transactions of ``store`` wait for each other before they run: each
    has read what it read (the key unclaimed) before any of them writes."""
    arrived = 0
    met = asyncio.Event()
    make = store.redis.pipeline

    def pipeline(*args: Any, **kwargs: Any) -> Any:
        pipe = make(*args, **kwargs)
        execute = pipe.execute

        async def gated(*eargs: Any, **ekwargs: Any) -> Any:
            nonlocal arrived
            if arrived < parties:
                arrived += 1
                if arrived == parties:
                    met.set()
                await met.wait()
            return await execute(*eargs, **ekwargs)

        pipe.execute = gated
        return pipe

    store.redis.pipeline = pipeline


@pytest.mark.parametrize("tabs", [2, 8])
async def test_registrations_with_one_key_at_once_make_one_visitor(store: Store, tabs: int) -> None:
    """The second tab's registration may arrive while the first is still being made: the key's
    claim and the visitor are one transaction, so however they interleave there is one visitor."""
    account = await accounts.create(store, "Shop", True, {"allowed_origins": [ORIGIN]})
    key = _key()
    _meet_before_writing(store, tabs)
    made = await asyncio.gather(
        *(visitors.register(store, account, ORIGIN, 30.0, key) for _ in range(tabs))
    )
    assert len({v.id for v, _ in made}) == 1
    assert len({t for _, t in made}) == tabs
    assert await visitors.present_ids(store, account.id) == [made[0][0].id]
    for _, token in made:
        principal = await auth.resolve(store, "", token)
        assert principal is not None and (principal.kind, principal.id) == ("visitor", made[0][0].id)


async def test_a_tabs_token_lives_as_long_as_the_visitor(store: Store) -> None:
    account = await accounts.create(store, "Shop", True, {"allowed_origins": [ORIGIN]})
    key = _key()
    visitor, _ = await visitors.register(store, account, ORIGIN, 30.0, key)
    _, tab_token = await visitors.register(store, account, ORIGIN, 30.0, key)
    token_key = keys.token(store, digest(tab_token))
    await store.redis.expire(token_key, 5)
    found = await visitors.find(store, visitor.id)
    assert found is not None and found.tab_token_hashes == (digest(tab_token),)
    await visitors.touch_connection(store, found, "c1", 30.0, 30.0)
    assert await store.redis.ttl(token_key) > 5


async def test_a_visitor_joined_by_too_many_tabs_leaves_the_next_one_a_visitor_of_its_own(
    store: Store,
) -> None:
    account = await accounts.create(store, "Shop", True, {"allowed_origins": [ORIGIN]})
    key = _key()
    first, _ = await visitors.register(store, account, ORIGIN, 30.0, key)
    for _ in range(visitors.MAX_TAB_TOKENS):
        assert (await visitors.register(store, account, ORIGIN, 30.0, key))[0].id == first.id
    assert (await visitors.register(store, account, ORIGIN, 30.0, key))[0].id != first.id
