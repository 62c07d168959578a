"""Authorization matrix: every HTTP route x (no token, wrong kinds, another account's callers, the right one).

Denied callers are tried first and must change nothing; the allowed caller comes last.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from cb_api_helpers import World

from control_api.app import ENDPOINTS


@dataclass
class Cast:
    world: World
    account: dict[str, Any]
    agent: dict[str, Any]
    visitor: dict[str, Any]
    other_agent: dict[str, Any]  # another account's
    other_visitor: dict[str, Any]  # another account's
    session: dict[str, Any]  # active, of agent and visitor
    pending: dict[str, Any]  # pending, of agent and a second visitor
    pending_visitor: dict[str, Any]

    def headers(self, who: str) -> dict[str, str]:
        return {
            "none": {},
            "bad": {"Authorization": "Bearer not-a-token"},
            "admin": dict(self.world.admin),
            "agent": self.agent["headers"],
            "visitor": self.visitor["headers"],
            "other_agent": self.other_agent["headers"],
            "other_visitor": self.other_visitor["headers"],
            "pending_visitor": self.pending_visitor["headers"],
        }[who]


@pytest.fixture
def cast(world: World) -> Iterator[Cast]:
    account = world.account(consent="request")
    other = world.account()
    agent, other_agent = world.agent(account), world.agent(other, "Eve")
    visitor, pending_visitor, other_visitor = (
        world.visitor(account),
        world.visitor(account),
        world.visitor(other),
    )
    with (
        world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as v1,
        world.client.websocket_connect("/api/v1/visitor/ws", headers=pending_visitor["headers"]) as v2,
    ):
        v1.receive_json()
        v2.receive_json()
        session = world.session(agent, visitor)
        r = world.client.post(f"/api/v1/sessions/{session['id']}/accept", headers=visitor["headers"])
        assert r.status_code == 200
        pending = world.session(agent, pending_visitor)
        yield Cast(
            world, account, agent, visitor, other_agent, other_visitor, session, pending, pending_visitor
        )


A, S, P = "{aid}", "{sid}", "{pid}"
# (method, path, body, allowed caller, success status, {denied caller: status})
NOT_ADMIN = {"none": 401, "bad": 401, "agent": 403, "visitor": 403, "other_agent": 403}
NOT_AGENT = {"none": 401, "bad": 401, "admin": 403, "visitor": 403}
ROUTES: list[tuple[str, str, Any, str, int, dict[str, int]]] = [
    ("GET", "/api/v1/accounts", None, "admin", 200, NOT_ADMIN),
    ("POST", "/api/v1/accounts", {"name": "n"}, "admin", 201, NOT_ADMIN),
    ("GET", f"/api/v1/accounts/{A}", None, "admin", 200, NOT_ADMIN),
    ("PATCH", f"/api/v1/accounts/{A}", {"name": "n2"}, "admin", 200, NOT_ADMIN),
    ("DELETE", f"/api/v1/accounts/{A}", None, "admin", 204, NOT_ADMIN),
    ("GET", f"/api/v1/accounts/{A}/policy", None, "admin", 200, NOT_ADMIN),
    ("PUT", f"/api/v1/accounts/{A}/policy", {}, "admin", 200, NOT_ADMIN),
    ("PATCH", f"/api/v1/accounts/{A}/policy", {"consent": "none"}, "admin", 200, NOT_ADMIN),
    ("POST", f"/api/v1/accounts/{A}/agents", {"display_name": "x"}, "admin", 201, NOT_ADMIN),
    ("GET", f"/api/v1/accounts/{A}/agents", None, "admin", 200, NOT_ADMIN),
    ("DELETE", f"/api/v1/accounts/{A}/agents/{{agent_id}}", None, "admin", 204, NOT_ADMIN),
    ("POST", f"/api/v1/accounts/{A}/site-key/rotate", None, "admin", 200, NOT_ADMIN),
    ("GET", f"/api/v1/accounts/{A}/sessions", None, "admin", 200, NOT_ADMIN),
    ("GET", f"/api/v1/accounts/{A}/audit", None, "admin", 200, NOT_ADMIN),
    ("GET", f"/api/v1/sessions/{S}/audit", None, "admin", 200, NOT_ADMIN),
    ("GET", "/api/v1/me", None, "agent", 200, NOT_AGENT),
    ("GET", "/api/v1/visitors", None, "agent", 200, NOT_AGENT),
    (
        "POST",
        "/api/v1/sessions",
        {"visitor_id": "{other_vid}"},
        "other_agent",
        409,
        {**NOT_AGENT, "agent": 404},
    ),  # the other account's visitor is offline: 409, but never another account's
    (
        "GET",
        f"/api/v1/sessions/{S}",
        None,
        "agent",
        200,
        {"none": 401, "bad": 401, "other_agent": 404, "other_visitor": 404, "pending_visitor": 404},
    ),
    ("GET", f"/api/v1/sessions/{S}", None, "visitor", 200, {}),
    ("GET", f"/api/v1/sessions/{S}", None, "admin", 200, {}),
    (
        "POST",
        f"/api/v1/sessions/{S}/proxy-ticket",
        None,
        "agent",
        200,
        {"none": 401, "bad": 401, "admin": 403, "visitor": 403, "other_agent": 404},
    ),
    (
        "POST",
        f"/api/v1/sessions/{P}/accept",
        None,
        "pending_visitor",
        200,
        {"none": 401, "bad": 401, "admin": 403, "agent": 403, "visitor": 404, "other_visitor": 404},
    ),
    (
        "POST",
        f"/api/v1/sessions/{P}/refuse",
        None,
        "pending_visitor",
        200,
        {"none": 401, "bad": 401, "admin": 403, "agent": 403, "visitor": 404, "other_visitor": 404},
    ),
    (
        "POST",
        f"/api/v1/sessions/{S}/end",
        None,
        "visitor",
        200,
        {"none": 401, "bad": 401, "other_agent": 404, "other_visitor": 404, "pending_visitor": 404},
    ),
    ("POST", f"/api/v1/sessions/{S}/end", None, "agent", 200, {}),
    ("POST", f"/api/v1/sessions/{S}/end", None, "admin", 200, {}),
    (
        "GET",
        "/api/v1/bandwidth?bytes=10",
        None,
        "visitor",
        200,
        {"none": 401, "bad": 401, "admin": 403, "agent": 403},
    ),
    ("POST", "/api/v1/visitors", {"site_key": "{site_key}"}, "none", 403, {}),  # no Origin: refused
    ("GET", "/healthz", None, "none", 200, {}),
    ("GET", "/readyz", None, "none", 200, {}),
    ("GET", "/metrics", None, "none", 200, {}),
    ("GET", "/openapi.json", None, "none", 200, {}),
]


def _fill(text: Any, cast: Cast) -> Any:
    if isinstance(text, dict):
        return {k: _fill(v, cast) for k, v in text.items()}
    if not isinstance(text, str):
        return text
    return (
        text.replace(A, cast.account["id"])
        .replace(S, cast.session["id"])
        .replace(P, cast.pending["id"])
        .replace("{agent_id}", cast.agent["id"])
        .replace("{other_vid}", cast.other_visitor["visitor_id"])
        .replace("{site_key}", cast.account["site_key"])
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed", "status", "denied"),
    ROUTES,
    ids=[f"{m} {p} as {a}" for m, p, _, a, _, _ in ROUTES],
)
def test_route_authorization(
    cast: Cast, method: str, path: str, body: Any, allowed: str, status: int, denied: dict[str, int]
) -> None:
    url, payload = _fill(path, cast), _fill(body, cast)
    client = cast.world.client
    for who, expected in denied.items():
        r = client.request(method, url, json=payload, headers=cast.headers(who))
        assert r.status_code == expected, (who, r.text)
        assert r.json()["error"], r.text
    r = client.request(method, url, json=payload, headers=cast.headers(allowed))
    assert r.status_code == status, r.text


def test_matrix_covers_every_route() -> None:
    covered = {(m, p.split("?")[0]) for m, p, *_ in ROUTES}
    for endpoint in ENDPOINTS:
        template = (
            endpoint.full_path.replace("{aid}", A).replace("{sid}", S).replace("{agent_id}", "{agent_id}")
        )
        assert (endpoint.method, template) in covered or (
            endpoint.method,
            template.replace(S, P),
        ) in covered, (
            endpoint.method,
            endpoint.full_path,
        )
