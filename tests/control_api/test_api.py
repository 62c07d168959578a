"""HTTP routes in process (TestClient) on a real Redis: accounts, policy, agents, visitors, sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cb_api_helpers import ORIGIN, World, open_world

from control_api import accounts, keys, proxy_access, visitors
from control_api.exceptions import ApiError
from control_api.policy import narrows, validate_policy
from control_api.tokens import digest
from rewriter.cookies import load_records
from rewriter.urls import Origin, encode_label


def _connect_visitor(world: World, visitor: dict[str, Any]) -> Any:
    ws = world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"])
    return ws


@contextmanager
def _active_session(world: World) -> Iterator[tuple[Any, dict[str, Any], dict[str, Any], str]]:
    """A visitor's socket (its greeting read) and a session started at once:
    (socket, account, agent, sid)."""
    account = world.account(consent="none")
    agent = world.agent(account)
    visitor = world.visitor(account)
    with _connect_visitor(world, visitor) as ws:
        ws.receive_json()
        sid = world.session(agent, visitor)["id"]
        assert ws.receive_json()["to"] == "active"
        yield ws, account, agent, sid


def test_errors_are_json_everywhere(world: World) -> None:
    r = world.client.get("/no/such/route")
    assert (r.status_code, r.json()["error"]) == (404, "not_found")
    r = world.client.delete("/healthz")
    assert (r.status_code, r.json()["error"]) == (405, "method_not_allowed")
    r = world.client.post("/api/v1/accounts", content=b"{nope", headers=world.admin)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_json")
    r = world.client.post("/api/v1/accounts", json=[1], headers=world.admin)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_json")
    for unusable in (b"[" * 100_000, b'{"name": "a\\ud800"}'):  # too deep; a lone surrogate
        r = world.client.post("/api/v1/accounts", content=unusable, headers=world.admin)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_json")
    # a lone surrogate in a key is refused like one in a value, at any depth
    for in_a_key in (b'{"name": "x", "\\udc00": 1}', b'{"name": "x", "policy": [{"a\\ud800b": 1}]}'):
        r = world.client.post("/api/v1/accounts", content=in_a_key, headers=world.admin)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_json")
    # a name given twice in one object, at the top or deeper, is refused rather than one of the
    # two picked
    for twice in (b'{"name": "x", "name": "y"}', b'{"name": "x", "policy": {"mode": 1, "mode": 2}}'):
        r = world.client.post("/api/v1/accounts", content=twice, headers=world.admin)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_json"), r.json()
        assert "appears twice" in r.json()["detail"], r.json()
    # said in the API's words, not Python's
    for body, said in ((b'{"name": ' + b"1" * 5000 + b"}", "a number has more than 4300 digits"),
                       (b"\xff\xfe{", "the body is not UTF-8 text")):
        r = world.client.post("/api/v1/accounts", content=body, headers=world.admin)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_json")
        assert said in r.json()["detail"] and "sys." not in r.json()["detail"], r.json()
    r = world.client.post("/api/v1/accounts", json={"name": "x", "extra": 1}, headers=world.admin)
    assert (r.status_code, r.json()["field"]) == (422, "extra")
    r = world.client.post("/api/v1/accounts", content=b"x" * 300_000, headers=world.admin)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert world.client.get("/healthz").json() == {"status": "ok"}
    assert world.client.get("/readyz").json()["store"] == "redis"
    assert r.headers["x-request-id"]


def test_a_trailing_slash_is_redirected_relative_and_never_names_the_requests_host(world: World) -> None:
    """The redirect to a route without its trailing slash named whatever Host the client sent
    (Starlette builds an absolute URL from it): a cache in front could serve that to others."""
    for path, location in (
        ("/api/v1/accounts/?limit=5&q=a%20b", "/api/v1/accounts?limit=5&q=a%20b"),
        ("/api/v1/accounts//", "/api/v1/accounts"),
        ("/console/", "/console"),
    ):
        r = world.client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert (r.status_code, r.headers["location"]) == (307, location)
    r = world.client.get("/api/v1/accounts/", headers=world.admin)  # followed, it lands on the route
    assert r.status_code == 200 and str(r.url).endswith("/api/v1/accounts")
    for nowhere in ("//evil.example/x/", "/no/such/route/", "///"):
        r = world.client.get(nowhere, follow_redirects=False)
        assert (r.status_code, r.json()["error"]) == (404, "not_found")


def test_account_crud_and_activation_flag(world: World) -> None:
    r = world.client.post("/api/v1/accounts", json={"name": "Shop"}, headers=world.admin)
    assert r.status_code == 201
    account = r.json()
    assert account["cobrowse_enabled"] is False  # a paid feature: off by default
    assert account["policy"]["consent"] == "request"
    assert account["site_key"].startswith("sk_")
    aid = account["id"]
    assert world.client.get(f"/api/v1/accounts/{aid}", headers=world.admin).json() == account
    assert [
        a["id"] for a in world.client.get("/api/v1/accounts", headers=world.admin).json()["accounts"]
    ] == [aid]
    r = world.client.patch(
        f"/api/v1/accounts/{aid}", json={"cobrowse_enabled": True, "name": "S2"}, headers=world.admin
    )
    assert r.json()["cobrowse_enabled"] is True and r.json()["name"] == "S2"
    r = world.client.patch(f"/api/v1/accounts/{aid}", json={"cobrowse_enabled": "yes"}, headers=world.admin)
    assert (r.status_code, r.json()["field"]) == (422, "cobrowse_enabled")
    assert world.client.delete(f"/api/v1/accounts/{aid}", headers=world.admin).status_code == 204
    assert world.client.get(f"/api/v1/accounts/{aid}", headers=world.admin).status_code == 404
    assert world.client.delete(f"/api/v1/accounts/{aid}", headers=world.admin).status_code == 404


@pytest.mark.parametrize(
    "name",
    [
        "Shop\x00",  # C0
        "Shop\nInc",
        "Shop\x7f",
        "Shop\x9bInc",  # C1
        "evil\u202egnp.exe",  # right-to-left override
        "Shop \u2066Inc\u2069",  # isolates
        "\u202aShop",
        "Shop\u2028Inc",  # line separator
        "Shop\u2029Inc",  # paragraph separator (at an end, it is stripped as whitespace)
        "\u200fShop",  # right-to-left mark
        "Shop\u200e",  # left-to-right mark
        "\u061cShop",  # Arabic letter mark
    ],
)
def test_names_people_read_refuse_control_and_bidi_formatting_characters(world: World, name: str) -> None:
    """Account and agent names are shown in the console, the banner's prompt and the audit: a
    control character broke the line they are shown on, an override reordered what follows."""
    account = world.account()
    for method, url, field in (
        ("POST", "/api/v1/accounts", "name"),
        ("PATCH", f"/api/v1/accounts/{account['id']}", "name"),
        ("POST", f"/api/v1/accounts/{account['id']}/agents", "display_name"),
    ):
        r = world.client.request(method, url, json={field: name}, headers=world.admin)
        body = r.json()
        assert (r.status_code, body["error"], body["field"]) == (422, "invalid_request", field), r.text
    assert world.client.get(f"/api/v1/accounts/{account['id']}", headers=world.admin).json()["name"] == "Shop"
    # what is not control or formatting is a name: other scripts, marks, symbols
    r = world.client.post(
        "/api/v1/accounts", json={"name": "Caf\u00e9 \u05e9\u05dc\u05d5\u05dd \u2615"}, headers=world.admin
    )
    assert r.status_code == 201, r.text


def test_a_null_in_an_account_patch_is_refused_not_ignored(world: World) -> None:
    """``{"name": null}`` answered 200 and changed nothing: the administrator could not tell."""
    account = world.account()
    url = f"/api/v1/accounts/{account['id']}"
    for field in ("name", "cobrowse_enabled"):
        r = world.client.patch(url, json={field: None}, headers=world.admin)
        assert (r.status_code, r.json()["field"]) == (422, field), r.text
    assert world.client.patch(url, json={"name": "Renamed"}, headers=world.admin).json()["name"] == "Renamed"


def test_policy_get_put_patch(world: World) -> None:
    account = world.account(consent="none")
    url = f"/api/v1/accounts/{account['id']}/policy"
    assert world.client.get(url, headers=world.admin).json()["consent"] == "none"
    r = world.client.patch(url, json={"masked_selectors": ["#card"]}, headers=world.admin)
    assert (
        r.status_code == 200 and r.json()["masked_selectors"] == ["#card"] and r.json()["consent"] == "none"
    )
    r = world.client.put(url, json={"allowed_origins": ["https://shop.example"]}, headers=world.admin)
    assert r.json()["consent"] == "request"  # PUT replaces: missing keys take their defaults
    assert r.json()["masked_selectors"] == []
    for body, field in (
        ({"masked_selectors": ["a[["]}, "masked_selectors[0]"),
        ({"nope": 1}, "nope"),
        ({"allowed_origins": ["not an origin"]}, "allowed_origins[0]"),
        ({"idle_timeout_s": "10"}, "idle_timeout_s"),
        ({"min_bandwidth_kbps": 10**400}, "min_bandwidth_kbps"),  # past float range: was a 500
    ):
        r = world.client.patch(url, json=body, headers=world.admin)
        assert r.status_code == 422 and r.json()["field"] == field, r.text
    assert world.client.get("/api/v1/accounts/acc_missing/policy", headers=world.admin).status_code == 404


def test_agents_token_once_hashed_and_revocable(world: World) -> None:
    account = world.account()
    agent = world.agent(account)
    assert len(agent["token"]) >= 40
    listed = world.client.get(f"/api/v1/accounts/{account['id']}/agents", headers=world.admin).json()[
        "agents"
    ]
    assert [a["id"] for a in listed] == [agent["id"]] and "token" not in listed[0]
    assert world.client.get("/api/v1/me", headers=agent["headers"]).json()["agent"]["display_name"] == "Alice"
    r = world.client.delete(f"/api/v1/accounts/{account['id']}/agents/{agent['id']}", headers=world.admin)
    assert r.status_code == 204
    r = world.client.get("/api/v1/me", headers=agent["headers"])
    assert (r.status_code, r.json()["error"]) == (401, "invalid_token")


def test_visitor_registration_checks_site_key_and_origin_with_exact_cors(world: World) -> None:
    account = world.account()
    body = {"site_key": account["site_key"]}
    r = world.client.post("/api/v1/visitors", json=body, headers={"Origin": ORIGIN})
    assert r.status_code == 201 and r.headers["access-control-allow-origin"] == ORIGIN
    assert r.json()["visitor_id"].startswith("vis_") and r.json()["token"]
    r = world.client.post("/api/v1/visitors", json=body, headers={"Origin": "https://evil.example"})
    assert (r.status_code, r.json()["error"]) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in r.headers
    r = world.client.post("/api/v1/visitors", json=body)
    assert r.status_code == 403
    r = world.client.post("/api/v1/visitors", json={"site_key": "sk_wrong"}, headers={"Origin": ORIGIN})
    assert (r.status_code, r.json()["error"]) == (403, "invalid_site_key")
    # preflight: allowed for an origin some account allows, silent for others
    pre = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    r = world.client.options("/api/v1/visitors", headers=pre)
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ORIGIN
    r = world.client.options("/api/v1/visitors", headers={**pre, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    # rotation: the old key stops working
    new_key = world.client.post(
        f"/api/v1/accounts/{account['id']}/site-key/rotate", headers=world.admin
    ).json()
    assert new_key["site_key"] != account["site_key"]
    r = world.client.post("/api/v1/visitors", json=body, headers={"Origin": ORIGIN})
    assert r.status_code == 403
    r = world.client.post(
        "/api/v1/visitors", json={"site_key": new_key["site_key"]}, headers={"Origin": ORIGIN}
    )
    assert r.status_code == 201


@pytest.mark.parametrize("origin", ["null", "http://[x", "https://", "file://", "not an origin"])
def test_an_origin_that_is_no_origin_is_refused_for_registration_and_preflight(
    world: World, origin: str
) -> None:
    """``Origin: null`` (a sandboxed frame, a file) and malformed values: 403 with no CORS header,
    never a 500 or a grant to ``null``."""
    account = world.account()
    body = {"site_key": account["site_key"]}
    r = world.client.post("/api/v1/visitors", json=body, headers={"Origin": origin})
    assert (r.status_code, r.json()["error"]) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in r.headers
    pre = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    r = world.client.options("/api/v1/visitors", headers=pre)
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers


def test_bandwidth_is_bounded(world: World) -> None:
    visitor = world.visitor(world.account())
    r = world.client.get("/api/v1/bandwidth?bytes=1000", headers={**visitor["headers"], "Origin": ORIGIN})
    assert r.status_code == 200 and len(r.content) == 1000
    assert r.headers["access-control-allow-origin"] == ORIGIN
    headers = {**visitor["headers"], "Origin": ORIGIN}
    too_many = world.client.get("/api/v1/bandwidth?bytes=999999999", headers=headers)
    assert too_many.status_code == 422
    assert too_many.headers["access-control-allow-origin"] == ORIGIN  # the banner can read why
    assert world.client.get("/api/v1/bandwidth?bytes=-1", headers=visitor["headers"]).status_code == 422
    assert world.client.get("/api/v1/bandwidth?bytes=1").status_code == 401


def test_a_visitor_whose_site_the_policy_no_longer_allows_cannot_be_co_browsed(world: World) -> None:
    """An origin taken out of ``allowed_origins`` takes its visitors with it: the ones registered on
    it before are not available, and a request for one is refused (it was made, and its ticket led
    the agent to the first allowed origin's home page, another site)."""
    other = "http://localhost:8002"
    account = world.account(allowed_origins=[ORIGIN, other])
    agent = world.agent(account)
    visitor = world.visitor(account, origin=other)
    create = {"visitor_id": visitor["visitor_id"]}
    with _connect_visitor(world, visitor) as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "page", "url": other + "/cart", "title": "Cart"})
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"
        policy_url = f"/api/v1/accounts/{account['id']}/policy"
        r = world.client.patch(policy_url, json={"allowed_origins": [ORIGIN]}, headers=world.admin)
        assert r.status_code == 200, r.text
        listed = world.client.get("/api/v1/visitors", headers=agent["headers"]).json()["visitors"]
        assert [v["cobrowse"] for v in listed] == [{"available": False, "reason": "origin_not_allowed"}]
        r = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert (r.status_code, r.json()["error"]) == (409, "origin_not_allowed")
        # and back in the policy, it is available again
        r = world.client.patch(policy_url, json={"allowed_origins": [ORIGIN, other]}, headers=world.admin)
        assert r.status_code == 200, r.text
        assert world.client.post("/api/v1/sessions", json=create, headers=agent["headers"]).status_code == 201


def test_an_administrator_lists_the_live_sessions_of_an_account_and_ends_one(world: World) -> None:
    """To end a session an administrator needs its id: they had to dig it out of the audit trail."""
    account = world.account(consent="request")
    other = world.account()
    agent = world.agent(account)
    visitors = [world.visitor(account) for _ in range(2)]
    url = f"/api/v1/accounts/{account['id']}/sessions"
    with _connect_visitor(world, visitors[0]) as ws0, _connect_visitor(world, visitors[1]) as ws1:
        ws0.receive_json()
        ws1.receive_json()
        first = world.session(agent, visitors[0])
        second = world.session(agent, visitors[1])
        r = world.client.get(url, headers=world.admin)
        assert r.status_code == 200
        listed = r.json()["sessions"]
        assert [(s["id"], s["state"], s["visitor_id"]) for s in listed] == [
            (first["id"], "pending", visitors[0]["visitor_id"]),
            (second["id"], "pending", visitors[1]["visitor_id"]),
        ]
        assert world.client.get(f"/api/v1/accounts/{other['id']}/sessions", headers=world.admin).json() == {
            "sessions": []
        }
        r = world.client.post(f"/api/v1/sessions/{first['id']}/end", headers=world.admin)
        assert r.status_code == 200, r.text
        left = world.client.get(url, headers=world.admin).json()["sessions"]
        assert [s["id"] for s in left] == [second["id"]]
    assert world.client.get(url, headers=agent["headers"]).status_code == 403  # administrators only
    assert world.client.get("/api/v1/accounts/acc_nope/sessions", headers=world.admin).status_code == 404


def test_availability_reasons_and_session_lifecycle(world: World) -> None:
    account = world.account(min_bandwidth_kbps=500)
    agent = world.agent(account)
    visitor = world.visitor(account)

    def reason() -> str:
        listed = world.client.get("/api/v1/visitors", headers=agent["headers"]).json()["visitors"]
        return [v for v in listed if v["id"] == visitor["visitor_id"]][0]["cobrowse"]["reason"]

    create = {"visitor_id": visitor["visitor_id"]}
    assert reason() == "visitor_offline"
    r = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
    assert r.status_code == 409
    assert r.json() == {
        "error": "visitor_offline",
        "detail": "the visitor is offline: no page of theirs is connected now",
    }
    with _connect_visitor(world, visitor) as ws:
        assert ws.receive_json()["type"] == "hello"
        assert reason() == "low_bandwidth"
        r = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert (r.status_code, r.json()["error"]) == (409, "low_bandwidth")
        assert r.json()["detail"] == (
            "the visitor's bandwidth is not measured yet or is below the account's minimum"
        )
        ws.send_json({"type": "bandwidth", "kbps": 100})
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"
        assert reason() == "low_bandwidth"
        ws.send_json({"type": "bandwidth", "kbps": 5000})
        ws.send_json({"type": "page", "url": ORIGIN + "/cart?x=1", "title": "Cart"})
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"
        assert reason() == "available"
        listed = world.client.get("/api/v1/visitors", headers=agent["headers"]).json()["visitors"][0]
        assert listed["url"] == ORIGIN + "/cart?x=1" and listed["bandwidth_kbps"] == 5000
        r = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert r.status_code == 201
        session = r.json()
        assert (session["state"], session["agent_name"], session["agent_interface"]) == (
            "pending",
            "Alice",
            "popin",
        )
        assert session["agent_can_navigate"] is False
        assert reason() == "request_pending"  # not a session yet: the visitor has not answered
        r = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert (r.status_code, r.json()["error"]) == (409, "request_pending")
        assert r.json()["detail"] == (
            "another request to co-browse with the visitor is waiting for their answer"
        )
        event = ws.receive_json()
        assert (event["type"], event["to"], event["session"]["agent_name"]) == ("session", "pending", "Alice")
        sid = session["id"]
        r = world.client.post(f"/api/v1/sessions/{sid}/proxy-ticket", headers=agent["headers"])
        assert (r.status_code, r.json()["error"]) == (409, "session_not_active")
        cookies = [{"name": "cart", "value": "42", "url": ORIGIN + "/"}]
        r = world.client.post(
            f"/api/v1/sessions/{sid}/accept", json={"cookies": cookies}, headers=visitor["headers"]
        )
        assert r.status_code == 200 and r.json()["state"] == "active"
        assert ws.receive_json()["to"] == "active"
        assert reason() == "session_live"
        r = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert (r.status_code, r.json()["error"]) == (409, "session_live")
        assert r.json()["detail"] == "the visitor already has a live session"
        r = world.client.post(f"/api/v1/sessions/{sid}/proxy-ticket", headers=agent["headers"])
        assert r.status_code == 200
        ticket = r.json()
        assert 0 < ticket["expires_in"] <= 60
        label = encode_label(sid, Origin.parse(ORIGIN))
        assert ticket["enter_url"].startswith(
            f"http://{label}.cobrowse.localhost:8001/__cobrowse/enter?ticket="
        )
        assert "url=http%3A%2F%2F127.0.0.1%3A8002%2Fcart%3Fx%3D1" in ticket["enter_url"]
        r = world.client.post(f"/api/v1/sessions/{sid}/end", headers=visitor["headers"])
        assert r.json()["state"] == "ended" and r.json()["reason"] == "visitor_ended"
        assert ws.receive_json()["to"] == "ended"
    r = world.client.post(f"/api/v1/sessions/{sid}/end", headers=agent["headers"])
    assert (r.status_code, r.json()["error"]) == (409, "invalid_transition")
    audit = world.client.get(f"/api/v1/sessions/{sid}/audit", headers=world.admin).json()["entries"]
    assert [(e["from"], e["to"]) for e in audit] == [
        ("none", "pending"),
        ("pending", "active"),
        ("active", "ended"),
    ]
    page = world.client.get(f"/api/v1/accounts/{account['id']}/audit?limit=2", headers=world.admin).json()
    assert len(page["entries"]) == 2 and page["next_cursor"]
    rest = world.client.get(
        f"/api/v1/accounts/{account['id']}/audit?limit=2&cursor={page['next_cursor']}", headers=world.admin
    ).json()
    assert [e["to"] for e in rest["entries"]] == ["ended"]
    assert (
        world.client.get(f"/api/v1/accounts/{account['id']}/audit?cursor=zz", headers=world.admin).status_code
        == 422
    )
    r = world.client.get(f"/api/v1/accounts/{account['id']}/audit?since=20&until=10", headers=world.admin)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request") and "since" in r.json()["detail"]


@pytest.mark.parametrize(
    ("cursor", "status"),
    [
        ("99999999999999999999-0", 422),  # past 2**64 - 1: Redis refused it, a 500
        ("0-99999999999999999999", 422),
        ("1-1%0A", 422),  # a trailing newline passed the pattern's "$"
        ("18446744073709551615-18446744073709551615", 422),  # the last id: nothing comes after it
        ("18446744073709551615-18446744073709551614", 200),
        ("0-0", 200),
    ],
)
def test_audit_cursors_redis_cannot_take_are_a_422(world: World, cursor: str, status: int) -> None:
    account = world.account()
    for url in (f"/api/v1/accounts/{account['id']}/audit", "/api/v1/sessions/k3j9x2ab7q/audit"):
        r = world.client.get(f"{url}?cursor={cursor}", headers=world.admin)
        expected = 404 if status == 200 and "sessions" in url else status  # no such session
        assert r.status_code == expected, r.text
        if status == 422:
            assert r.json()["field"] == "cursor"


def test_ids_that_name_other_store_keys_are_not_found(world: World) -> None:
    """An id goes into a store key, where ``:`` is the separator: ``vis_x:conns`` named the
    visitor's presence set, and Redis answered WRONGTYPE (a 500, with a traceback per request,
    an agent's token enough for it)."""
    account = world.account(consent="request")
    agent, visitor = world.agent(account), world.visitor(account)
    aid, vid = account["id"], visitor["visitor_id"]
    with _connect_visitor(world, visitor) as ws:
        ws.receive_json()
        world.session(agent, visitor)  # the visitor's :live, the agent's :live, the account's :live
        for suffix in (":conns", ":live"):
            body = {"visitor_id": vid + suffix}
            r = world.client.post("/api/v1/sessions", json=body, headers=agent["headers"])
            assert (r.status_code, r.json()["error"]) == (404, "visitor_not_found"), r.text
        for method, path in (
            ("GET", f"/api/v1/accounts/{aid}:agents"),
            ("GET", f"/api/v1/accounts/{aid}:live/policy"),
            ("PATCH", f"/api/v1/accounts/{aid}:audit/policy"),
            ("GET", f"/api/v1/accounts/{aid}:visitors/audit"),
            ("DELETE", f"/api/v1/accounts/{aid}/agents/{agent['id']}:live"),
        ):
            r = world.client.request(method, path, json={}, headers=world.admin)
            assert r.status_code == 404, (path, r.text)


def test_a_404_echoes_at_most_64_characters_of_the_id(world: World) -> None:
    """The detail repeated the id the client sent whole, however long (up to what a URL holds)."""
    account = world.account()
    long_id = "acc_" + "x" * 4000
    for path, what in (
        (f"/api/v1/accounts/{long_id}", "account"),
        (f"/api/v1/accounts/{account['id']}/agents/{long_id}", "agent"),
    ):
        r = world.client.request("GET" if what == "account" else "DELETE", path, headers=world.admin)
        assert r.status_code == 404, r.text
        assert r.json()["detail"] == f"no such {what}: {long_id[:64]}..."
    short = "acc_" + "x" * 60  # 64: whole
    r = world.client.get(f"/api/v1/accounts/{short}", headers=world.admin)
    assert r.json()["detail"] == f"no such account: {short}"


def test_seed_cookies_reach_the_jar_only_when_policy_allows(world: World, sync_store: Any) -> None:
    for allowed in (True, False):
        account = world.account(seed_cookies=allowed)
        agent = world.agent(account)
        visitor = world.visitor(account)
        with _connect_visitor(world, visitor) as ws:
            ws.receive_json()
            sid = world.session(agent, visitor)["id"]
            for url in ("https://elsewhere.example/", "http://[::1"):  # the second: a 500 once
                bad = [{"name": "a", "value": "1", "url": url}]
                r = world.client.post(
                    f"/api/v1/sessions/{sid}/accept", json={"cookies": bad}, headers=visitor["headers"]
                )
                assert (r.status_code, r.json()["field"]) == (422, "cookies[0].url")
            good = [{"name": "cart", "value": "42", "url": ORIGIN + "/shop"}]
            r = world.client.post(
                f"/api/v1/sessions/{sid}/accept", json={"cookies": good}, headers=visitor["headers"]
            )
            assert r.status_code == 200
            jar = world.client.portal.call(proxy_access.jar_load, sync_store, sid)  # type: ignore[union-attr]
            assert bool(jar) is allowed
            if allowed:
                (record,) = load_records(jar)
                assert (record.name, record.value, record.domain, record.http_only) == (
                    "cart",
                    "42",
                    "127.0.0.1",
                    False,
                )


def test_a_request_sent_again_gets_the_session_it_made_and_only_its_own_agents(world: World) -> None:
    """``request_id`` makes ``POST /sessions`` idempotent: the console's window sends the request
    again when the console's answer was lost; it gets the session the first one made (in its
    current state), never a second session, and another agent's request never finds it."""
    account = world.account()
    agent, other = world.agent(account), world.agent(account, "Bob")
    visitor, second = world.visitor(account), world.visitor(account)
    rid = "req-0123456789abcdef"
    create = {"visitor_id": visitor["visitor_id"], "request_id": rid}
    with _connect_visitor(world, visitor) as ws, _connect_visitor(world, second) as ws2:
        ws.receive_json()
        ws2.receive_json()
        first = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert (first.status_code, first.json()["state"]) == (201, "pending")
        sid = first.json()["id"]
        again = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert (again.status_code, again.json()["id"], again.json()["state"]) == (201, sid, "pending")
        # another agent with the same request id: its own request, refused as the visitor is busy
        r = world.client.post("/api/v1/sessions", json=create, headers=other["headers"])
        assert (r.status_code, r.json()["error"]) == (409, "request_pending")
        assert sid not in r.text
        # the same request id for another visitor is a client bug, not a new request
        reused = {"visitor_id": second["visitor_id"], "request_id": rid}
        r = world.client.post("/api/v1/sessions", json=reused, headers=agent["headers"])
        assert (r.status_code, r.json()["error"]) == (409, "request_id_reused")
        world.client.post(f"/api/v1/sessions/{sid}/refuse", headers=visitor["headers"]).raise_for_status()
        late = world.client.post("/api/v1/sessions", json=create, headers=agent["headers"])
        assert (late.status_code, late.json()["id"], late.json()["state"]) == (201, sid, "refused")
        fresh = {"visitor_id": visitor["visitor_id"], "request_id": "req-fedcba9876543210"}
        r = world.client.post("/api/v1/sessions", json=fresh, headers=agent["headers"])
        assert r.status_code == 201 and r.json()["id"] != sid
    audit = world.client.get(f"/api/v1/accounts/{account['id']}/audit", headers=world.admin).json()
    assert [(e["session_id"], e["to"]) for e in audit["entries"] if e["to"] == "pending"] == [
        (sid, "pending"),
        (r.json()["id"], "pending"),
    ]
    for bad in ("short", "x" * 65, "has space in it here", 12345678901234567):
        r = world.client.post(
            "/api/v1/sessions",
            json={"visitor_id": visitor["visitor_id"], "request_id": bad},
            headers=agent["headers"],
        )
        assert (r.status_code, r.json()["error"], r.json().get("field")) == (
            422,
            "invalid_request",
            "request_id",
        )


def test_feature_disabled(world: World) -> None:
    account = world.account(enabled=False)
    agent = world.agent(account)
    visitor = world.visitor(account)
    with _connect_visitor(world, visitor) as ws:
        ws.receive_json()
        r = world.client.post(
            "/api/v1/sessions", json={"visitor_id": visitor["visitor_id"]}, headers=agent["headers"]
        )
        assert (r.status_code, r.json()["error"]) == (403, "feature_disabled")
        listed = world.client.get("/api/v1/visitors", headers=agent["headers"]).json()["visitors"]
        assert listed[0]["cobrowse"] == {"available": False, "reason": "feature_disabled"}


def test_disabling_the_account_ends_live_sessions(world: World) -> None:
    with _active_session(world) as (ws, account, _, sid):
        world.client.patch(
            f"/api/v1/accounts/{account['id']}", json={"cobrowse_enabled": False}, headers=world.admin
        )
        event = ws.receive_json()
        assert (event["to"], event["reason"]) == ("ended", "feature_disabled")
    assert world.client.get(f"/api/v1/sessions/{sid}", headers=world.admin).json()["state"] == "ended"


def test_a_policy_that_narrows_ends_live_sessions_and_one_that_widens_does_not(world: World) -> None:
    """A live session keeps the policy it was made under: a field masked now must stop reaching
    the agent now, so a narrowing change ends the account's live sessions; a widening one (an
    origin more, a selector fewer) leaves them be."""
    with _active_session(world) as (ws, account, _, sid):
        url = f"/api/v1/accounts/{account['id']}/policy"
        r = world.client.patch(
            url, json={"allowed_origins": [ORIGIN, "https://more.example"]}, headers=world.admin
        )
        assert r.status_code == 200
        assert world.client.get(f"/api/v1/sessions/{sid}", headers=world.admin).json()["state"] == "active"
        r = world.client.patch(url, json={"masked_selectors": ["#card"]}, headers=world.admin)
        assert r.status_code == 200 and r.json()["masked_selectors"] == ["#card"]
        event = ws.receive_json()
        assert (event["to"], event["reason"]) == ("ended", "policy_changed")
    assert world.client.get(f"/api/v1/sessions/{sid}", headers=world.admin).json()["state"] == "ended"


@pytest.mark.parametrize(
    ("before", "after", "narrower"),
    [
        ({}, {"masked_selectors": ["#card"]}, True),
        ({"masked_selectors": ["#card", "#cvc"]}, {"masked_selectors": ["#cvc"]}, False),
        ({"allowed_origins": [ORIGIN, "https://b.example"]}, {"allowed_origins": [ORIGIN]}, True),
        ({"allowed_origins": [ORIGIN]}, {"allowed_origins": [ORIGIN, "https://b.example"]}, False),
        ({"agent_can_navigate": True}, {"agent_can_navigate": False}, True),
        ({"agent_can_navigate": False}, {"agent_can_navigate": True}, False),
        ({"consent": "none"}, {"consent": "request"}, True),
        ({"consent": "request"}, {"consent": "none"}, False),
        ({}, {"agent_interface": "tab", "idle_timeout_s": 300}, False),
        ({"seed_cookies": True}, {"seed_cookies": False}, False),  # an active session: seeded already
    ],
)
def test_which_policy_changes_narrow(before: dict[str, Any], after: dict[str, Any], narrower: bool) -> None:
    old = validate_policy({"allowed_origins": [ORIGIN], **before})
    assert narrows(old, validate_policy(after, base=old)) is narrower


def test_a_pending_session_is_narrowed_by_seeding_no_more_cookies() -> None:
    old = validate_policy({"allowed_origins": [ORIGIN], "seed_cookies": True})
    assert narrows(old, validate_policy({"seed_cookies": False}, base=old), pending=True)


def test_each_live_session_is_judged_by_the_policy_it_was_made_under(world: World) -> None:
    """A session started without a mask; the mask then came back by a write whose own pass over
    the live sessions missed this one (another API process, a race). The next change, which does
    not narrow the stored policy, still ends the session: it is judged by the policy it has."""
    with _active_session(world) as (ws, account, _, sid):
        url = f"/api/v1/accounts/{account['id']}/policy"
        masked = {**world.client.get(url, headers=world.admin).json(), "masked_selectors": ["#ssn"]}
        portal = world.client.portal  # type: ignore[union-attr]
        portal.call(accounts.set_policy, world.store, account["id"], masked)  # no pass over sessions
        assert world.client.get(f"/api/v1/sessions/{sid}", headers=world.admin).json()["state"] == "active"
        r = world.client.patch(url, json={"idle_timeout_s": 300}, headers=world.admin)
        assert r.status_code == 200 and r.json()["masked_selectors"] == ["#ssn"]
        event = ws.receive_json()
        assert (event["to"], event["reason"]) == ("ended", "policy_changed")
    assert world.client.get(f"/api/v1/sessions/{sid}", headers=world.admin).json()["state"] == "ended"


def test_metrics_exposition(world: World) -> None:
    account = world.account(consent="none")
    agent = world.agent(account)
    visitor = world.visitor(account)
    with _connect_visitor(world, visitor) as ws:
        ws.receive_json()
        world.session(agent, visitor)
        text = world.client.get("/metrics").text
    assert 'cobrowse_sessions{state="active"} 1' in text
    assert 'cobrowse_http_requests_total{method="POST",route="/api/v1/sessions",status="201"} 1' in text
    assert 'cobrowse_websockets_open{side="visitor"} 1' in text
    assert "cobrowse_event_latency_seconds_bucket" in text
    assert world.client.get("/metrics").headers["content-type"].startswith("text/plain")


def test_ticket_redeems_once_and_only_for_its_session(world: World, sync_store: Any) -> None:
    with _active_session(world) as (_, account, agent, sid):
        ticket = world.client.post(f"/api/v1/sessions/{sid}/proxy-ticket", headers=agent["headers"]).json()[
            "ticket"
        ]
        portal = world.client.portal  # type: ignore[union-attr]
        grant = portal.call(proxy_access.redeem_ticket, sync_store, ticket)
        assert grant == proxy_access.TicketGrant(sid, agent["id"])
        assert portal.call(proxy_access.redeem_ticket, sync_store, ticket) is None
        other = world.agent(account, "Bob")
        r = world.client.post(f"/api/v1/sessions/{sid}/proxy-ticket", headers=other["headers"])
        assert r.status_code == 404


def test_a_page_url_python_cannot_split_leaves_the_ticket_to_the_first_allowed_origin(world: World) -> None:
    """The visitor reports its URL: one ``urlsplit`` refuses ("http://[x") made the agent's
    ticket a 500, so a visitor could keep the agent from ever opening the view."""
    with _active_session(world) as (ws, _account, agent, sid):
        ws.send_json({"type": "page", "url": "http://[::1"})
        ws.send_json({"type": "ping"})
        assert ws.receive_json()["type"] == "pong"  # the page is stored before the pong
        r = world.client.post(f"/api/v1/sessions/{sid}/proxy-ticket", headers=agent["headers"])
        assert r.status_code == 200, r.text
        assert "url=http%3A%2F%2F127.0.0.1%3A8002%2F&" in r.json()["enter_url"] + "&"


def test_a_visitor_token_lives_as_long_as_the_visitor_its_socket_keeps(world: World, sync_store: Any) -> None:
    """The token lapsed 24 hours after registration whatever the visitor did since: a visitor
    whose socket stayed open (and went on relaying to the agent) then got a 401 for its End."""
    account = world.account(consent="none")
    visitor = world.visitor(account)
    key = keys.token(sync_store, digest(visitor["token"]))
    portal = world.client.portal  # type: ignore[union-attr]
    portal.call(sync_store.redis.expire, key, 100)  # as if registered almost 24 hours ago
    with _connect_visitor(world, visitor) as ws:
        ws.receive_json()  # the greeting comes after the socket counted the visitor as seen
        assert portal.call(sync_store.redis.ttl, key) > 3600
        sid = world.session(world.agent(account), visitor)["id"]
        r = world.client.post(f"/api/v1/sessions/{sid}/end", headers=visitor["headers"])
        assert r.status_code == 200


def test_a_session_asked_for_while_the_account_is_deleted_is_not_left_live(
    world: World, sync_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The account's live sessions were ended first and the account deleted last: a request that
    came between (consent none: at once active) made a session the proxy served for an account
    that no longer existed, and no one ended it."""
    from control_api import agents, sessions

    account = world.account(consent="none")
    agent, visitor = world.agent(account), world.visitor(account)
    portal = world.client.portal  # type: ignore[union-attr]
    # an agent's request that has read its account and itself before the deletion began...
    stored = portal.call(accounts.find, sync_store, account["id"])
    found = portal.call(agents.find, sync_store, agent["id"])
    assert stored is not None and found is not None
    made: list[Any] = []
    real_delete_all_for = agents.delete_all_for

    async def agent_asks_meanwhile(store: Any, aid: str) -> list[str]:
        try:  # ...and makes its session now, the live ones ended, its token not yet gone
            made.append(await sessions.create(store, stored, found, visitor["visitor_id"]))
        except ApiError as exc:
            made.append(exc.code)
        return await real_delete_all_for(store, aid)

    monkeypatch.setattr(agents, "delete_all_for", agent_asks_meanwhile)
    with _connect_visitor(world, visitor) as ws:
        ws.receive_json()
        r = world.client.delete(f"/api/v1/accounts/{account['id']}", headers=world.admin)
        assert r.status_code == 204
    assert made == ["feature_disabled"]  # it was made, active, once
    assert portal.call(sessions.live_of_account, sync_store, account["id"]) == []


def test_a_proxy_ticket_lives_at_most_60_seconds_whatever_the_setting(sync_store: Any) -> None:
    for world in open_world(sync_store, ticket_ttl_s=600):
        with _active_session(world) as (_, _account, agent, sid):
            r = world.client.post(f"/api/v1/sessions/{sid}/proxy-ticket", headers=agent["headers"])
            assert r.status_code == 200 and r.json()["expires_in"] == 60


async def test_a_client_that_goes_away_mid_request_is_not_an_error(
    namespace: str, caplog: Any
) -> None:
    """A browser that navigates away while posting (ClientDisconnect) gets no 500 and no error log."""
    import logging

    from cobrowse.settings import Settings
    from control_api.app import create_app
    from control_api.store import Store

    store = Store.connect(None, namespace=namespace)
    app = create_app(Settings(admin_token="a" * 32), store=store)
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/api/v1/visitors", "raw_path": b"/api/v1/visitors", "query_string": b"",
        "root_path": "", "headers": [(b"content-type", b"application/json"), (b"content-length", b"40")],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "app": app,
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with caplog.at_level(logging.INFO, logger="cobrowse"):
        await app(scope, receive, send)
    await store.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == []
    assert any("client disconnected" in r.getMessage() for r in caplog.records)


def test_registrations_that_never_connect_cannot_hide_an_online_visitor(world: World) -> None:
    """Agents see at most MAX_PRESENT visitors, the most recently seen first, and a registration
    whose socket never opens ranks below them all: 500 registrations made while a visitor is
    online (a script with the public site key, faster than its heartbeat) do not push it off."""
    account = world.account()
    agent = world.agent(account)
    real = world.visitor(account)
    with _connect_visitor(world, real) as ws:
        assert ws.receive_json()["type"] == "hello"  # seen now
        for _ in range(visitors.MAX_PRESENT):
            world.visitor(account)
        listed = world.client.get("/api/v1/visitors", headers=agent["headers"]).json()["visitors"]
        assert len(listed) == visitors.MAX_PRESENT
        assert listed[0]["id"] == real["visitor_id"] and listed[0]["online"] is True


def test_visitor_registrations_are_limited_per_address_and_account(sync_store: Any) -> None:
    """The site key is public: one script could register visitors without end (3000 in 16 s in
    a probe), filling the store and the agents' lists. Past the limit in a minute, from one
    address for one account, registration gets 429; another address (behind a trusted load
    balancer, from X-Forwarded-For) or another account still registers."""
    balancer = "10.0.0.2"
    for world in open_world(sync_store, peer=balancer, visitor_registrations_per_min=3,
                            trusted_proxies=(balancer,)):
        _limited_registrations(world)


def _limited_registrations(world: World) -> None:
    account, other = world.account(), world.account()

    def register(acc: dict[str, Any], address: str) -> Any:
        return world.client.post("/api/v1/visitors", json={"site_key": acc["site_key"]},
                                 headers={"Origin": ORIGIN, "X-Forwarded-For": address})

    assert [register(account, "198.51.100.7").status_code for _ in range(4)] == [201, 201, 201, 429]
    r = register(account, "198.51.100.7")
    assert (r.status_code, r.json()["error"]) == (429, "rate_limited")
    documented = world.client.get("/openapi.json").json()["paths"]["/api/v1/visitors"]["post"]
    assert "429" in documented["responses"]  # a banner's integrator reads what to expect there
    assert register(account, "198.51.100.8").status_code == 201
    assert register(other, "198.51.100.7").status_code == 201


def test_visitor_registrations_are_not_limited_when_the_limit_is_zero(sync_store: Any) -> None:
    """``visitor_registrations_per_min`` 0 means no limit (as documented), not "none allowed"."""
    for world in open_world(sync_store, visitor_registrations_per_min=0):
        account = world.account()
        statuses = [
            world.client.post("/api/v1/visitors", json={"site_key": account["site_key"]},
                              headers={"Origin": ORIGIN}).status_code
            for _ in range(5)
        ]
        assert statuses == [201] * 5


def test_an_unexpected_error_is_a_bare_500_that_reveals_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(store: Any) -> Any:
        raise RuntimeError("secret detail: /srv/cobrowse/db.py line 12")

    monkeypatch.setattr(accounts, "list_all", broken)
    r = world.client.get("/api/v1/accounts", headers=world.admin)
    assert r.status_code == 500 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"] == "internal_error" and "secret" not in r.text and "db.py" not in r.text
    assert "secret detail" in caplog.text  # the operator's log has it
    monkeypatch.undo()
    assert world.client.get("/api/v1/accounts", headers=world.admin).status_code == 200


def test_policy_changes_made_at_once_all_apply(world: World) -> None:
    """A script that changes the policy from 20 threads at once: each change applies on top of the
    others (5 tries with no pause got 5 of 10 such changes a 409)."""
    from concurrent.futures import ThreadPoolExecutor

    account = world.account()

    def change(i: int) -> int:
        return world.client.patch(
            f"/api/v1/accounts/{account['id']}/policy", json={"masked_selectors": [f"#f{i}"]},
            headers=world.admin,
        ).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(change, range(20)))
    assert statuses == [200] * 20, statuses
    final = world.client.get(f"/api/v1/accounts/{account['id']}/policy", headers=world.admin).json()
    assert final["masked_selectors"][0] in {f"#f{i}" for i in range(20)}


def test_a_method_the_path_does_not_take_says_every_one_it_does(world: World) -> None:
    """405's Allow named only the first route of the path (one route per method)."""
    account = world.account()
    for method, path, allowed in (
        ("PUT", f"/api/v1/accounts/{account['id']}", "DELETE, GET, HEAD, PATCH"),
        ("PUT", "/api/v1/accounts", "GET, HEAD, POST"),
        ("POST", f"/api/v1/accounts/{account['id']}/policy", "GET, HEAD, PATCH, PUT"),
    ):
        r = world.client.request(method, path, headers=world.admin)
        assert (r.status_code, r.json()["error"], r.headers["allow"]) == (405, "method_not_allowed", allowed)
