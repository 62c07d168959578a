"""One visitor across the account's allowed origins (handoff codes) and across the tabs that copied
a registration key before the registration's answer came (``control_api/handoff.py``,
``visitors.register``)."""

from __future__ import annotations

from typing import Any

import pytest
from cb_api_helpers import ORIGIN, World, open_world

from control_api import handoff, keys
from control_api.tokens import digest

CHECKOUT = "http://127.0.0.1:8003"  # the account's second allowed origin


def _account(world: World, **policy: Any) -> dict[str, Any]:
    return world.account(allowed_origins=[ORIGIN, CHECKOUT], **policy)


def _code(world: World, visitor: dict[str, Any]) -> str:
    r = world.client.post("/api/v1/visitor/handoff", headers={**visitor["headers"], "Origin": ORIGIN})
    assert r.status_code == 201, r.text
    assert r.json()["expires_in"] == handoff.CODE_TTL_S
    assert r.headers["access-control-allow-origin"] == ORIGIN  # the banner reads it
    return str(r.json()["code"])


def _register(world: World, account: dict[str, Any], origin: str = CHECKOUT, **more: Any) -> Any:
    return world.client.post(
        "/api/v1/visitors", json={"site_key": account["site_key"], **more}, headers={"Origin": origin}
    )


def test_a_code_registers_the_same_visitor_on_another_allowed_origin_once(world: World) -> None:
    account = _account(world)
    visitor = world.visitor(account)
    assert visitor["allowed_origins"] == [ORIGIN, CHECKOUT]  # where the banner may hand over
    code = _code(world, visitor)
    r = _register(world, account, handoff=code)
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == CHECKOUT
    moved = r.json()
    assert moved["visitor_id"] == visitor["visitor_id"] and moved["token"] != visitor["token"]
    # both tokens are the visitor's (each origin's page keeps its own)
    for token in (visitor["token"], moved["token"]):
        with world.client.websocket_connect(
            "/api/v1/visitor/ws", headers={"Authorization": f"Bearer {token}"}
        ) as ws:
            assert ws.receive_json()["visitor_id"] == visitor["visitor_id"]
    again = _register(world, account, handoff=code)  # used: a new visitor, the same answer's shape
    assert again.status_code == 201 and again.json()["visitor_id"] != visitor["visitor_id"]
    assert set(again.json()) == set(moved)


def test_a_code_that_expired_registers_a_new_visitor(world: World) -> None:
    account = _account(world)
    visitor = world.visitor(account)
    code = _code(world, visitor)
    key = keys.handoff(world.store, digest(code))
    portal = world.client.portal  # type: ignore[union-attr]
    assert 0 < portal.call(world.store.redis.ttl, key) <= handoff.CODE_TTL_S
    assert portal.call(world.store.redis.get, key) == f"{account['id']} {visitor['visitor_id']}"
    portal.call(world.store.redis.delete, key)  # its minute is over
    r = _register(world, account, handoff=code)
    assert r.status_code == 201 and r.json()["visitor_id"] != visitor["visitor_id"]


@pytest.mark.parametrize("code", ["not-a-code", "x" * 128])
def test_an_unknown_code_registers_a_new_visitor(world: World, code: str) -> None:
    account = _account(world)
    visitor = world.visitor(account)
    r = _register(world, account, handoff=code)
    assert r.status_code == 201 and r.json()["visitor_id"] != visitor["visitor_id"]


def test_a_code_of_another_account_registers_a_new_visitor_and_is_used_up(world: World) -> None:
    account, other = _account(world), _account(world)
    visitor = world.visitor(account)
    code = _code(world, visitor)
    r = _register(world, other, handoff=code)
    assert r.status_code == 201 and r.json()["visitor_id"] != visitor["visitor_id"]
    assert r.json()["account_id"] == other["id"]
    r = _register(world, account, handoff=code)  # tried once, and gone
    assert r.status_code == 201 and r.json()["visitor_id"] != visitor["visitor_id"]


def test_a_code_brings_no_visitor_to_an_origin_the_account_does_not_allow(world: World) -> None:
    account = _account(world)
    visitor = world.visitor(account)
    code = _code(world, visitor)
    r = _register(world, account, "https://evil.example", handoff=code)
    assert (r.status_code, r.json()["error"]) == (403, "origin_not_allowed")
    r = _register(world, account, handoff=code)  # checked before the code was touched
    assert r.json()["visitor_id"] == visitor["visitor_id"]


def test_handoff_codes_are_for_visitors_only(world: World) -> None:
    account = _account(world)
    agent = world.agent(account)
    r = world.client.post("/api/v1/visitor/handoff", headers=agent["headers"])
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")
    r = world.client.post("/api/v1/visitor/handoff")
    assert (r.status_code, r.json()["error"]) == (401, "unauthorized")


def test_handoff_codes_are_limited_per_visitor_and_documented(world: World) -> None:
    account = _account(world)
    visitor, other = world.visitor(account), world.visitor(account)
    for _ in range(handoff.HANDOFFS_PER_MIN):
        _code(world, visitor)
    r = world.client.post("/api/v1/visitor/handoff", headers=visitor["headers"])
    assert (r.status_code, r.json()["error"]) == (429, "rate_limited")
    _code(world, other)  # another visitor's count is its own
    document = world.client.get("/openapi.json").json()
    operation = document["paths"]["/api/v1/visitor/handoff"]["post"]
    assert {"201", "401", "403", "429"} <= set(operation["responses"])
    assert operation["security"] == [{"bearer": []}]
    schemas = document["components"]["schemas"]
    assert {"handoff", "registration"} <= set(schemas["VisitorRegister"]["properties"])
    assert "allowed_origins" in schemas["VisitorRegistered"]["required"]


def test_a_second_token_lives_as_long_as_the_visitor_its_sockets_keep(world: World) -> None:
    """As the first token does: a token of the checkout that lapsed 24 hours after the handoff
    while the visitor went on would make its End a 401 there."""
    account = _account(world)
    visitor = world.visitor(account)
    moved = _register(world, account, handoff=_code(world, visitor)).json()
    key = keys.token(world.store, digest(moved["token"]))
    portal = world.client.portal  # type: ignore[union-attr]
    portal.call(world.store.redis.expire, key, 100)  # as if handed over almost 24 hours ago
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as ws:
        ws.receive_json()  # the greeting comes after the socket counted the visitor as seen
        assert portal.call(world.store.redis.ttl, key) > 3600


def test_a_session_goes_on_with_the_visitor_on_the_other_origin(world: World) -> None:
    account = _account(world, consent="none")
    agent = world.agent(account)
    visitor = world.visitor(account)
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as first:
        first.receive_json()
        sid = world.session(agent, visitor)["id"]
        code = _code(world, visitor)
    # the first origin's page closed: the checkout's page comes within the grace period
    moved = _register(world, account, handoff=code).json()
    headers = {"Authorization": f"Bearer {moved['token']}", "Origin": CHECKOUT}
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=headers) as ws:
        hello = ws.receive_json()
        assert hello["session"]["id"] == sid and hello["session"]["state"] == "active"
    r = world.client.post(f"/api/v1/sessions/{sid}/end", headers={"Authorization": headers["Authorization"]})
    assert r.status_code == 200 and r.json()["state"] == "ended"


def test_a_visitor_has_a_bounded_number_of_tokens(world: World) -> None:
    account = _account(world)
    visitor = world.visitor(account)
    ids = [_register(world, account, handoff=_code(world, visitor)).json()["visitor_id"] for _ in range(17)]
    assert ids[:16] == [visitor["visitor_id"]] * 16 and ids[16] != visitor["visitor_id"]


KEY = "k" * 16 + "_-0123456789"


def test_a_tab_that_copied_the_registration_key_is_the_same_visitor(world: World) -> None:
    account = _account(world)
    first = _register(world, account, ORIGIN, registration=KEY).json()
    second = _register(world, account, ORIGIN, registration=KEY).json()
    assert second["visitor_id"] == first["visitor_id"] and second["token"] != first["token"]
    # bound to its origin and account: elsewhere the key names nothing
    assert _register(world, account, CHECKOUT, registration=KEY).json()["visitor_id"] != first["visitor_id"]
    other = _account(world)
    assert _register(world, other, ORIGIN, registration=KEY).json()["visitor_id"] != first["visitor_id"]
    key = keys.registration(world.store, digest(KEY))
    portal = world.client.portal  # type: ignore[union-attr]
    assert 0 < portal.call(world.store.redis.ttl, key) <= 120
    portal.call(world.store.redis.delete, key)  # its time is over
    assert _register(world, account, ORIGIN, registration=KEY).json()["visitor_id"] != first["visitor_id"]


@pytest.mark.parametrize("key", ["short", "k" * 65, "has space in it!!", 12345678901234567])
def test_a_registration_key_that_the_banner_cannot_have_made_is_refused(world: World, key: Any) -> None:
    r = _register(world, _account(world), ORIGIN, registration=key)
    assert (r.status_code, r.json()["error"], r.json()["field"]) == (422, "invalid_request", "registration")


def test_registrations_with_a_code_count_against_the_registration_limit(sync_store: Any) -> None:
    for world in open_world(sync_store, visitor_registrations_per_min=2):
        account = _account(world)
        visitor = world.visitor(account)
        code = _code(world, visitor)
        assert _register(world, account, handoff="unknown").status_code == 201
        r = _register(world, account, handoff=code)
        assert (r.status_code, r.json()["error"]) == (429, "rate_limited")
