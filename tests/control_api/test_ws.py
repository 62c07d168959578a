"""WebSockets in process on a real Redis: relay between the two sides, isolation, and abuse."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from cb_api_helpers import ORIGIN, World, open_world
from starlette.websockets import WebSocketDisconnect

from control_api import accounts, messages, presence, visitors
from control_api.store import Store


@contextmanager
def live_session(world: World, **policy: Any) -> Iterator[tuple[Any, Any, dict[str, Any], dict[str, Any]]]:
    """An active session with both sockets open: (visitor_ws, agent_ws, session, agent)."""
    policy.setdefault("consent", "none")
    account = world.account(**policy)
    agent = world.agent(account)
    visitor = world.visitor(account)
    with (
        world.client.websocket_connect("/api/v1/visitor/ws") as vws,
        world.client.websocket_connect("/api/v1/agent/ws") as aws,
    ):
        vws.send_json({"type": "auth", "token": visitor["token"]})
        assert vws.receive_json()["type"] == "hello"
        aws.send_json({"type": "auth", "token": agent["token"]})
        assert aws.receive_json()["type"] == "hello"
        session = world.session(agent, visitor)
        assert vws.receive_json()["to"] == "active"
        assert _next(aws, "session")["to"] == "active"
        yield vws, aws, session, agent


@contextmanager
def both_sides(world: World) -> Iterator[tuple[Any, Any, dict[str, Any], dict[str, Any]]]:
    """Both sockets open and greeted, no session yet: (visitor_ws, agent_ws, agent, visitor)."""
    account = world.account()
    agent = world.agent(account)
    visitor = world.visitor(account)
    with (
        world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as vws,
        world.client.websocket_connect("/api/v1/agent/ws", headers=agent["headers"]) as aws,
    ):
        vws.receive_json()
        aws.receive_json()
        yield vws, aws, agent, visitor


def _next(ws: Any, kind: str) -> dict[str, Any]:
    """The next message of a type, skipping presence updates."""
    for _ in range(20):
        message = ws.receive_json()
        if message["type"] == kind:
            return message
        assert message["type"] in ("visitor", "visitor_left", "policy"), message
    raise AssertionError(f"no {kind} message")


def _closed_with(ws: Any) -> int:
    """The close code of a socket that an event from elsewhere closes (no bound: use
    ``_closed_on`` when the close follows from what this socket sent)."""
    with pytest.raises(WebSocketDisconnect) as info:
        for _ in range(500):
            ws.receive_json()
    return info.value.code


def _closed_on(ws: Any) -> int:
    """The close code of a socket that must close on what it was sent: a ping sent after it gets
    no pong (the socket handles messages in order), so a socket that stays open fails at once
    instead of waiting for the test's timeout."""
    ws.send_json({"type": "ping"})
    return _closed_before_pong(ws)


def test_sync_relays_both_ways_with_only_validated_fields(world: World) -> None:
    with live_session(world) as (vws, aws, session, _):
        sid = session["id"]
        vws.send_json(
            {"type": "scroll", "x": 0, "y": 120, "anchor": {"selector": "#a", "offset": 4}, "junk": 1}
        )
        got = _next(aws, "scroll")
        assert (got["session_id"], got["from"], got["y"], got["anchor"]) == (
            sid,
            "visitor",
            120,
            {"selector": "#a", "offset": 4},
        )
        assert "junk" not in got and isinstance(got["ts"], float)
        vws.send_json({"type": "page", "url": ORIGIN + "/p2", "title": "P2"})
        assert _next(aws, "page")["url"] == ORIGIN + "/p2"
        for message in (
            {"type": "pointer", "session_id": sid, "x": 3, "y": 4},
            {"type": "highlight", "session_id": sid, "selector": "#buy"},
            {"type": "draw", "session_id": sid, "points": [[1, 2], [3, 4]], "color": "#f00"},
            {"type": "clear", "session_id": sid},
            {"type": "resync", "session_id": sid},
        ):
            aws.send_json(message)
            got = _next(vws, message["type"])
            assert got["from"] == "agent" and got["session_id"] == sid


def test_the_agent_using_the_view_counts_as_activity_and_is_not_relayed(world: World) -> None:
    """With Follow off the agent may use the site while the visitor reads: the view says so with
    ``active``, which keeps the session from its idle timeout and reaches no one."""
    from control_api import keys, sessions

    portal = world.client.portal  # type: ignore[union-attr]
    with live_session(world, idle_timeout_s=30) as (vws, aws, session, _):
        sid = session["id"]
        activity_key = keys.session_activity(world.store, sid)
        portal.call(world.store.redis.set, activity_key, "1000.0")  # long ago
        aws.send_json({"type": "active", "session_id": sid})
        aws.send_json({"type": "ping"})  # answered once the socket has handled what came before
        assert _next(aws, "pong")
        touched = float(portal.call(world.store.redis.get, activity_key))
        assert touched > 1000.0
        aws.send_json({"type": "clear", "session_id": sid})  # relayed: the first the visitor gets
        assert _next(vws, "clear")["from"] == "agent"
        # the sweeper finds the session not idle: it would have ended it at the old activity
        record = portal.call(sessions.get_record, world.store, sid)
        assert sessions.due(record, 1000.0, 1000.0 + 31) == ("ended", "idle_timeout")
        assert sessions.due(record, touched, touched + 29) is None
        assert portal.call(sessions.enforce_deadline, world.store, sid, touched + 29) is None
        assert portal.call(sessions.get_record, world.store, sid)["state"] == "active"


def test_masked_and_password_fields_are_dropped_and_counted(world: World) -> None:
    with live_session(world, masked_selectors=["#card", "input[name=cvv]"]) as (vws, aws, _, _agent):
        vws.send_json({"type": "field", "selector": "#pw", "input_type": "password", "value": "hunter2"})
        vws.send_json({"type": "field", "selector": "#card", "input_type": "text", "value": "4111"})
        vws.send_json(
            {
                "type": "field",
                "selector": "form > input:nth-of-type(3)",
                "input_type": "text",
                "value": "123",
                "tag": "input",
                "attrs": {"name": "cvv"},
            }
        )
        vws.send_json({"type": "field", "selector": "#name", "input_type": "text", "value": "Ada"})
        got = _next(aws, "field")
        assert (got["selector"], got["value"]) == (
            "#name",
            "Ada",
        )  # the first field to arrive is the clear one
        metrics = world.client.get("/metrics").text
        assert "cobrowse_masked_fields_dropped_total 3" in metrics


def test_navigate_needs_the_policy(world: World) -> None:
    with live_session(world) as (vws, aws, session, _):
        aws.send_json({"type": "navigate", "session_id": session["id"], "url": ORIGIN + "/x"})
        assert _next(aws, "error")["error"] == "navigate_forbidden"
    with live_session(world, agent_can_navigate=True) as (vws, aws, session, _):
        aws.send_json({"type": "navigate", "session_id": session["id"], "url": "https://elsewhere.example/"})
        assert _next(aws, "error")["error"] == "navigate_forbidden"
        aws.send_json({"type": "navigate", "session_id": session["id"], "url": ORIGIN + "/x"})
        assert _next(vws, "navigate")["url"] == ORIGIN + "/x"
        # a scheme has no case: an upper-case one closed the agent's socket (4400)
        loud = ORIGIN.replace("http://", "HTTP://") + "/y"
        aws.send_json({"type": "navigate", "session_id": session["id"], "url": loud})
        aws.send_json({"type": "ping"})
        assert _next(aws, "pong")  # (open still: a closed one fails here at once)
        assert _next(vws, "navigate")["url"] == loud


def test_sessions_do_not_leak_into_each_other(world: World) -> None:
    with live_session(world) as (vws1, aws1, s1, _), live_session(world) as (vws2, aws2, s2, _):
        vws1.send_json({"type": "scroll", "x": 0, "y": 1})
        vws2.send_json({"type": "scroll", "x": 0, "y": 2})
        assert _next(aws1, "scroll")["session_id"] == s1["id"]
        assert _next(aws2, "scroll")["session_id"] == s2["id"]
        aws1.send_json({"type": "pointer", "session_id": s2["id"], "x": 1, "y": 1})  # someone else's session
        assert _closed_on(aws1) == messages.CLOSE_FORBIDDEN


def _closed_before_pong(ws: Any) -> int:
    """The close code of a socket that must close before it answers the ping sent last."""
    with pytest.raises(WebSocketDisconnect) as info:
        for _ in range(20):
            assert ws.receive_json()["type"] != "pong", "the socket stayed open"
    return info.value.code


def test_a_visitor_message_naming_another_session_closes_the_socket(world: World) -> None:
    with live_session(world) as (vws1, aws1, s1, _), live_session(world) as (vws2, aws2, s2, _):
        vws1.send_json({"type": "scroll", "session_id": s2["id"], "x": 0, "y": 1})
        vws1.send_json({"type": "ping"})
        assert _closed_before_pong(vws1) == messages.CLOSE_FORBIDDEN


def test_sync_waits_for_consent(world: World) -> None:
    with both_sides(world) as (vws, aws, agent, visitor):
        session = world.session(agent, visitor)
        assert _next(aws, "session")["to"] == "pending"
        aws.send_json({"type": "pointer", "session_id": session["id"], "x": 1, "y": 1})
        assert _next(aws, "error")["error"] == "session_not_active"
        vws.send_json({"type": "scroll", "x": 0, "y": 9})  # not relayed while pending
        world.client.post(f"/api/v1/sessions/{session['id']}/accept", headers=visitor["headers"])
        assert _next(aws, "session")["to"] == "active"
        vws.send_json({"type": "scroll", "x": 0, "y": 10})
        assert _next(aws, "scroll")["y"] == 10


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (json.dumps({"type": "page", "url": ORIGIN + "/" + "a" * 70_000}), messages.CLOSE_TOO_BIG),
        (json.dumps({"type": "teleport"}), messages.CLOSE_INVALID),
        ("{not json", messages.CLOSE_INVALID),
        (json.dumps({"type": "scroll", "x": "far", "y": 0}), messages.CLOSE_INVALID),
        # an integer past float range: 4400, not 1011 with a traceback in the log
        pytest.param('{"type": "pointer", "x": 1' + "0" * 400 + ', "y": 0}', messages.CLOSE_INVALID,
                     id="huge-int"),
    ],
)
def test_abusive_messages_close_the_socket(world: World, payload: str, code: int) -> None:
    visitor = world.visitor(world.account())
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as ws:
        ws.receive_json()
        ws.send_text(payload)
        assert _closed_on(ws) == code


def test_the_rate_limiter_allows_bursts_of_three_seconds_worth_and_refills_at_its_rate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from types import SimpleNamespace

    from control_api import ws

    clock = [1000.0]
    monkeypatch.setattr(ws, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    limiter = ws.RateLimiter(5)  # bursts of 3 s worth: 15
    assert [limiter.allow() for _ in range(16)] == [True] * 15 + [False]
    clock[0] += 0.2  # one message's worth
    assert [limiter.allow() for _ in range(2)] == [True, False]
    clock[0] += 60  # a long pause saves up no more than one burst
    assert [limiter.allow() for _ in range(16)] == [True] * 15 + [False]
    # A client within the rate (4 a second) whose messages this process read late, all at once,
    # after a stall of its own of up to 3 s: not one refused.
    for stall in (1.0, 2.0, 3.0):
        clock[0] += 60
        for _ in range(40):  # 10 s of reading each as it comes
            clock[0] += 0.25
            assert limiter.allow()
        clock[0] += stall
        assert all(limiter.allow() for _ in range(int(4 * stall))), stall


def test_one_visitor_holds_a_bounded_number_of_sockets(world: World) -> None:
    """Each socket keeps under its own rate: one visitor token opening sockets without end slowed
    every session's relay. Past the limit a socket is closed with 4429; one closing makes room."""
    from control_api.ws import MAX_SOCKETS_PER_VISITOR

    visitor = world.visitor(world.account())
    other = world.visitor(world.account())
    with contextlib.ExitStack() as sockets:
        for _ in range(MAX_SOCKETS_PER_VISITOR):
            ws = sockets.enter_context(
                world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"])
            )
            assert ws.receive_json()["type"] == "hello"
        with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as extra:
            assert _closed_on(extra) == messages.CLOSE_RATE_LIMITED
        with world.client.websocket_connect("/api/v1/visitor/ws", headers=other["headers"]) as ws:
            assert ws.receive_json()["type"] == "hello"  # another visitor is not counted with it
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as ws:
        assert ws.receive_json()["type"] == "hello"  # closed ones no longer count


def test_flood_is_rate_limited(world: World) -> None:
    visitor = world.visitor(world.account())
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as ws:
        ws.receive_json()
        for _ in range(200):
            ws.send_json({"type": "pointer", "x": 1, "y": 1})
        assert _closed_on(ws) == messages.CLOSE_RATE_LIMITED
    assert 'code="4429"' in world.client.get("/metrics").text


def test_both_hellos_say_the_rate_a_socket_may_send(sync_store: Store) -> None:
    """The banner and the virtual browser keep under the rate the hello gives (an operator's lower
    rate got busy pages' and pointing agents' sockets closed, 4429)."""
    for world in open_world(sync_store, ws_rate_per_s=12):
        account = world.account()
        for side, who in (("visitor", world.visitor(account)), ("agent", world.agent(account))):
            with world.client.websocket_connect(f"/api/v1/{side}/ws") as ws:
                ws.send_json({"type": "auth", "token": who["token"]})
                hello = ws.receive_json()
                assert (hello["type"], hello["rate_per_s"]) == ("hello", 12), (side, hello)


@pytest.mark.parametrize("who", ["nobody", "visitor-on-agent", "agent-on-visitor", "first-not-auth"])
def test_authentication_failures(world: World, who: str) -> None:
    account = world.account()
    agent = world.agent(account)
    visitor = world.visitor(account)
    path, first = {
        "nobody": ("/api/v1/agent/ws", {"type": "auth", "token": "wrong"}),
        "visitor-on-agent": ("/api/v1/agent/ws", {"type": "auth", "token": visitor["token"]}),
        "agent-on-visitor": ("/api/v1/visitor/ws", {"type": "auth", "token": agent["token"]}),
        "first-not-auth": ("/api/v1/agent/ws", {"type": "ping"}),
    }[who]
    with world.client.websocket_connect(path) as ws:
        ws.send_json(first)
        assert _closed_on(ws) == messages.CLOSE_UNAUTHORIZED


@pytest.mark.parametrize("path", ["/api/v1/agent/ws", "/api/v1/visitor/ws"])
def test_a_header_token_of_another_kind_is_refused(world: World, path: str) -> None:
    """A visitor's token on the agent socket would otherwise see the account's visitors."""
    account = world.account()
    agent = world.agent(account)
    visitor = world.visitor(account)
    other = visitor if path == "/api/v1/agent/ws" else agent
    with world.client.websocket_connect(path, headers=other["headers"]) as ws:
        ws.send_json({"type": "ping"})
        assert _closed_before_pong(ws) == messages.CLOSE_UNAUTHORIZED


def test_visitor_socket_from_a_foreign_origin_is_refused(world: World) -> None:
    visitor = world.visitor(world.account())
    headers = {**visitor["headers"], "Origin": "https://evil.example"}
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=headers) as ws:
        assert _closed_on(ws) == messages.CLOSE_FORBIDDEN


def test_agent_console_sees_presence(world: World) -> None:
    account = world.account()
    agent = world.agent(account)
    visitor = world.visitor(account)
    with world.client.websocket_connect("/api/v1/agent/ws", headers=agent["headers"]) as aws:
        hello = aws.receive_json()
        assert [v["id"] for v in hello["visitors"]] == [visitor["visitor_id"]]
        assert hello["visitors"][0]["cobrowse"]["reason"] == "visitor_offline"
        with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as vws:
            vws.receive_json()
            update = _next(aws, "visitor")
            assert update["visitor"]["online"] is True and update["visitor"]["cobrowse"]["available"] is True
        update = _next(aws, "visitor")
        assert update["visitor"]["online"] is False


def test_everything_works_on_the_embedded_store(namespace: str) -> None:
    """The default of `cobrowse serve` without --redis-url: same flow, fakeredis in process."""
    for world in open_world(Store.connect(None, namespace=namespace)):
        with live_session(world, masked_selectors=["#card"]) as (vws, aws, session, agent):
            vws.send_json({"type": "scroll", "x": 0, "y": 5})
            assert _next(aws, "scroll")["y"] == 5
            vws.send_json({"type": "field", "selector": "#card", "input_type": "text", "value": "4111"})
            vws.send_json({"type": "viewport", "width": 800, "height": 600})
            assert _next(aws, "viewport")["width"] == 800
            aws.send_json({"type": "clear", "session_id": session["id"]})
            assert _next(vws, "clear")["from"] == "agent"
            r = world.client.post(f"/api/v1/sessions/{session['id']}/proxy-ticket", headers=agent["headers"])
            assert r.status_code == 200
            r = world.client.post(f"/api/v1/sessions/{session['id']}/end", headers=agent["headers"])
            assert r.json()["state"] == "ended"
            assert _next(vws, "session")["to"] == "ended"
        assert world.client.get("/readyz").json()["store"] == "embedded"


def test_revoking_an_agent_closes_its_console_and_ends_its_sessions(world: World) -> None:
    with live_session(world) as (vws, aws, session, agent):
        r = world.client.delete(
            f"/api/v1/accounts/{session['account_id']}/agents/{agent['id']}", headers=world.admin
        )
        assert r.status_code == 204
        event = _next(vws, "session")
        assert (event["to"], event["reason"]) == ("ended", "agent_revoked")
        assert _closed_with(aws) == messages.CLOSE_UNAUTHORIZED


def _after_the_sockets_account_read(monkeypatch: pytest.MonkeyPatch, action: Any) -> None:
    """``action(store, account_id)``, an administrator's, runs right after the next socket's setup
    has read its account (``accounts.find``), before it subscribes."""
    from control_api import accounts

    real_find = accounts.find

    async def find_then_act(store: Any, aid: str) -> Any:
        monkeypatch.setattr(accounts, "find", real_find)
        found = await real_find(store, aid)
        await action(store, aid)
        return found

    monkeypatch.setattr(accounts, "find", find_then_act)


def test_an_agent_revoked_while_its_socket_authenticates_is_closed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation is published to the agent's channel: one that comes after the token was
    checked and before the socket subscribed reached no one, and the socket stayed open."""
    from control_api import agents

    account = world.account()
    agent = world.agent(account)

    async def revoke(store: Any, aid: str) -> None:
        await agents.revoke(store, aid, agent["id"])

    _after_the_sockets_account_read(monkeypatch, revoke)
    with world.client.websocket_connect("/api/v1/agent/ws", headers=agent["headers"]) as ws:
        assert _closed_on(ws) == messages.CLOSE_UNAUTHORIZED


@pytest.mark.timeout(30)  # a socket left open would keep the test waiting for its close
def test_deleting_the_account_closes_its_agents_consoles(world: World) -> None:
    """The agents' tokens go with the account; their open sockets went on hearing the account's
    visitors (the pages they visit) with no token left to revoke."""
    with live_session(world) as (vws, aws, session, _agent):
        r = world.client.delete(f"/api/v1/accounts/{session['account_id']}", headers=world.admin)
        assert r.status_code == 204
        event = _next(vws, "session")
        assert (event["to"], event["reason"]) == ("ended", "account_deleted")
        assert _closed_with(aws) == messages.CLOSE_UNAUTHORIZED


@pytest.mark.timeout(30)  # a socket left open would keep the test waiting for its close
def test_deleting_the_account_closes_its_visitors_sockets(world: World) -> None:
    """The agents' sockets closed, the visitors' stayed open: their banners went on reporting pages
    and bandwidth for an account that no longer existed, until the page was left."""
    with live_session(world) as (vws, _aws, session, _agent):
        account = world.client.get(f"/api/v1/accounts/{session['account_id']}", headers=world.admin).json()
        idle = world.visitor(account)  # no session
        with world.client.websocket_connect("/api/v1/visitor/ws", headers=idle["headers"]) as ows:
            assert ows.receive_json()["type"] == "hello"
            r = world.client.delete(f"/api/v1/accounts/{account['id']}", headers=world.admin)
            assert r.status_code == 204
            event = _next(vws, "session")
            assert (event["to"], event["reason"]) == ("ended", "account_deleted")
            assert _closed_with(vws) == messages.CLOSE_GONE
            assert _closed_with(ows) == messages.CLOSE_GONE


def test_a_visitor_whose_account_is_deleted_while_its_socket_opens_is_closed(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deletion is published to the visitors the account lists once it is gone: a socket that
    read the account before and subscribed after reached no one, and stayed open."""
    from control_api import accounts, visitors

    account = world.account()
    visitor = world.visitor(account)

    async def delete(store: Any, aid: str) -> None:
        await accounts.delete(store, aid)
        await visitors.close_all_for(store, aid)

    _after_the_sockets_account_read(monkeypatch, delete)
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as ws:
        assert _closed_on(ws) == messages.CLOSE_GONE


def test_a_visitor_of_a_deleted_account_that_connects_again_is_told_it_is_gone(world: World) -> None:
    """Its token outlives the account for a while: it is told the account is gone (4410, the banner
    stops), not that its token failed (4401, on which the banner registers again, and again)."""
    account = world.account()
    visitor = world.visitor(account)
    assert world.client.delete(f"/api/v1/accounts/{account['id']}", headers=world.admin).status_code == 204
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as ws:
        assert _closed_on(ws) == messages.CLOSE_GONE


@pytest.mark.timeout(30)  # without the re-read the agent waits for the scroll forever
def test_a_message_right_after_accept_is_relayed(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The visitor accepted over HTTP, its socket has not yet seen the lifecycle event (here: never
    will), and its next scroll still reaches the agent: the socket re-reads its pending session."""
    from control_api import keys

    with both_sides(world) as (vws, aws, agent, visitor):
        session = world.session(agent, visitor)
        assert _next(vws, "session")["to"] == "pending"
        assert _next(aws, "session")["to"] == "pending"
        real_channel = keys.visitor_channel
        monkeypatch.setattr(keys, "visitor_channel", lambda store, vid: real_channel(store, "elsewhere"))
        world.client.post(f"/api/v1/sessions/{session['id']}/accept", headers=visitor["headers"])
        monkeypatch.setattr(keys, "visitor_channel", real_channel)
        assert _next(aws, "session")["to"] == "active"
        vws.send_json({"type": "scroll", "x": 0, "y": 11})
        assert _next(aws, "scroll")["y"] == 11


@pytest.mark.timeout(30)  # with the store write first, the agent would wait for the scroll forever
def test_the_relay_does_not_wait_for_the_visitor_state_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from control_api import visitors

    with live_session(world) as (vws, aws, _, _):
        async def stalled_store(*args: Any, **kwargs: Any) -> None:
            await asyncio.Event().wait()  # a store write that never completes

        monkeypatch.setattr(visitors, "update_state", stalled_store)
        vws.send_json({"type": "scroll", "x": 0, "y": 31})
        assert _next(aws, "scroll")["y"] == 31


def _visitor_views_until(aws: Any, sentinel: str) -> dict[str, dict[str, Any]]:
    """The last view of each visitor the console was sent, up to the first one of ``sentinel``."""
    views: dict[str, dict[str, Any]] = {}
    for _ in range(50):
        message = aws.receive_json()
        if message["type"] != "visitor":
            continue
        if message["visitor"]["id"] == sentinel:
            return views
        views[message["visitor"]["id"]] = message["visitor"]
    raise AssertionError(f"no view of {sentinel}")


@pytest.mark.parametrize(
    ("method", "path", "body", "reason"),
    [
        ("PATCH", "", {"cobrowse_enabled": False}, "feature_disabled"),
        ("PATCH", "/policy", {"min_bandwidth_kbps": 5000}, "low_bandwidth"),
        ("PUT", "/policy", {"allowed_origins": [ORIGIN], "min_bandwidth_kbps": 5000}, "low_bandwidth"),
        ("PATCH", "/policy", {"allowed_origins": ["https://other.example"]}, "origin_not_allowed"),
    ],
)
def test_an_admin_change_reaches_the_consoles_at_once(
    world: World, method: str, path: str, body: dict[str, Any], reason: str
) -> None:
    """Switching co-browse off or raising the bandwidth minimum greys the button now, not when the
    visitor next reports (its bandwidth only every 30 s)."""
    account = world.account()
    agent = world.agent(account)
    visitor = world.visitor(account)
    other = world.visitor(account)  # connects after the change: its view marks where to stop reading
    with (
        world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as vws,
        world.client.websocket_connect("/api/v1/agent/ws", headers=agent["headers"]) as aws,
    ):
        vws.receive_json()
        assert aws.receive_json()["type"] == "hello"
        vws.send_json({"type": "bandwidth", "kbps": 1000})
        for _ in range(10):
            view = _next(aws, "visitor")
            if view["visitor"]["id"] == visitor["visitor_id"] and view["visitor"]["bandwidth_kbps"] == 1000:
                break
        assert view["visitor"]["bandwidth_kbps"] == 1000
        assert view["visitor"]["cobrowse"] == {"available": True, "reason": "available"}
        url = f"/api/v1/accounts/{account['id']}{path}"
        r = world.client.request(method, url, json=body, headers=world.admin)
        assert r.status_code == 200, r.text
        with world.client.websocket_connect("/api/v1/visitor/ws", headers=other["headers"]) as ows:
            ows.receive_json()
            views = _visitor_views_until(aws, other["visitor_id"])
        assert views.get(visitor["visitor_id"], {}).get("cobrowse") == {"available": False, "reason": reason}


@pytest.mark.parametrize("method", ["PATCH", "PUT"])
def test_a_policy_change_reaches_the_consoles_as_get_me_says_it(world: World, method: str) -> None:
    """The console opens the window the policy says (``agent_interface``) and shows navigation as
    it allows: it read them once, at sign-in, and kept them until a reload."""
    account = world.account()
    agent = world.agent(account)
    with world.client.websocket_connect("/api/v1/agent/ws", headers=agent["headers"]) as aws:
        assert aws.receive_json()["type"] == "hello"
        body = {"agent_interface": "tab", "agent_can_navigate": True}
        if method == "PUT":
            body["allowed_origins"] = [ORIGIN]
        url = f"/api/v1/accounts/{account['id']}/policy"
        assert world.client.request(method, url, json=body, headers=world.admin).status_code == 200
        message = _next(aws, "policy")
        me = world.client.get("/api/v1/me", headers=agent["headers"]).json()
        assert message["policy"] == me["policy"]
        policy = message["policy"]
        assert (policy["agent_interface"], policy["agent_can_navigate"]) == ("tab", True)


async def test_closing_a_socket_whose_client_went_first_is_not_an_error() -> None:
    """The close in a connection's cleanup finds the client gone: Starlette's test transport says
    so with anyio's ClosedResourceError, which escaped the cleanup task ("Task exception was never
    retrieved" in the log of whatever test ran when it was collected)."""
    from types import SimpleNamespace

    import anyio
    from starlette.websockets import WebSocketState

    from control_api.ws import Connection

    class GoneClient:
        application_state = client_state = WebSocketState.CONNECTED

        async def close(self, code: int, reason: str) -> None:
            raise anyio.ClosedResourceError

    api = SimpleNamespace(store=None, settings=SimpleNamespace(ws_rate_per_s=50))
    connection = Connection(api, GoneClient())  # type: ignore[arg-type]
    await connection._cleanup([], messages.CLOSE_NORMAL, "done")


@pytest.mark.parametrize("path", ["/api/v1/agent/ws", "/api/v1/visitor/ws"])
def test_a_socket_that_never_authenticates_is_closed(
    world: World, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    from control_api import ws as ws_module

    monkeypatch.setattr(ws_module, "AUTH_TIMEOUT_S", 0.2)
    with world.client.websocket_connect(path) as ws:
        assert _closed_with(ws) == messages.CLOSE_AUTH_TIMEOUT


async def test_a_reader_too_slow_for_its_events_is_told_to_reconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Events for a socket wait in a bounded queue: once it is full the socket is closed with
    1013 (reconnect and read the state afresh) rather than the API holding ever more for it, or
    silently skipping events."""
    from types import SimpleNamespace

    from control_api import ws as ws_module

    monkeypatch.setattr(ws_module, "QUEUE_SIZE", 3)
    sent: list[str] = []

    class Client:
        async def send_text(self, text: str) -> None:
            sent.append(text)

    api = SimpleNamespace(store=None, settings=SimpleNamespace(ws_rate_per_s=50))
    connection = ws_module.Connection(api, Client())  # type: ignore[arg-type]
    for n in range(3):
        connection.sink(json.dumps({"type": "scroll", "n": n}))
    assert not connection.overflow
    connection.sink(json.dumps({"type": "scroll", "n": 3}))  # one too many
    assert connection.overflow
    with pytest.raises(messages.ProtocolViolation) as closed:
        await connection.write_loop()
    assert closed.value.code == messages.CLOSE_TRY_AGAIN and sent == []


def test_sockets_opened_again_during_a_live_session_find_it_and_relay(world: World) -> None:
    """Every page change of the visitor, and a reloaded console, opens a new socket in the middle
    of a session: its hello names the live session and messages flow both ways at once."""
    account = world.account(consent="none")
    agent = world.agent(account)
    visitor = world.visitor(account)
    client = world.client
    with (
        client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as vws,
        client.websocket_connect("/api/v1/agent/ws", headers=agent["headers"]) as aws,
    ):
        vws.receive_json()
        aws.receive_json()
        sid = world.session(agent, visitor)["id"]
        assert _next(aws, "session")["to"] == "active"
    with client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as vws:
        hello = vws.receive_json()
        assert hello["type"] == "hello" and hello["session"]["id"] == sid, hello
        with client.websocket_connect("/api/v1/agent/ws", headers=agent["headers"]) as aws:
            hello = _next(aws, "hello")
            assert [s["id"] for s in hello["sessions"]] == [sid], hello
            vws.send_json({"type": "page", "url": ORIGIN + "/again", "title": "Again"})
            assert _next(aws, "page")["url"] == ORIGIN + "/again"
            aws.send_json({"type": "pointer", "session_id": sid, "x": 5, "y": 6})
            got = _next(vws, "pointer")
            assert (got["session_id"], got["x"], got["y"]) == (sid, 5, 6)


def _page_and_view(aws: Any, url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The relayed page at ``url`` and the first view of the visitor on it, in either order."""
    page: dict[str, Any] | None = None
    view: dict[str, Any] | None = None
    for _ in range(20):
        message = aws.receive_json()
        if message["type"] == "page" and message["url"] == url:
            page = message
        elif message["type"] == "visitor" and message["visitor"]["url"] == url and view is None:
            view = message["visitor"]
        if page is not None and view is not None:
            return page, view
    raise AssertionError(f"no page and view at {url}")


def test_page_and_viewport_are_relayed_with_the_revision_of_the_state_they_stored(world: World) -> None:
    """Views of the visitor are published by whichever socket changed something, so one read
    before a page was stored can reach an agent after that page's relay (the old page's socket
    closing as the visitor moves on): the revision of the stored state tells it apart."""
    with live_session(world) as (vws, aws, _, _):
        vws.send_json({"type": "page", "url": ORIGIN + "/a", "title": "A"})
        page_a, view_a = _page_and_view(aws, ORIGIN + "/a")
        assert page_a["rev"] == view_a["rev"] > 0  # stored, then relayed, then published
        vws.send_json({"type": "page", "url": ORIGIN + "/b", "title": "B"})
        page_b, view_b = _page_and_view(aws, ORIGIN + "/b")
        assert page_b["rev"] == view_b["rev"] > view_a["rev"]  # a view read on /a is older
        vws.send_json({"type": "viewport", "width": 800, "height": 600})
        assert _next(aws, "viewport")["rev"] > page_b["rev"]
        vws.send_json({"type": "page", "url": ORIGIN + "/c", "title": "C", "rev": 0})
        assert _page_and_view(aws, ORIGIN + "/c")[0]["rev"] > page_b["rev"]  # never the visitor's own


def _next_view(aws: Any, online: bool) -> dict[str, Any]:
    for _ in range(20):
        message = aws.receive_json()
        if message["type"] == "visitor" and message["visitor"]["online"] is online:
            return dict(message["visitor"])
    raise AssertionError(f"no view with online={online}")


def test_a_page_that_connects_or_closes_makes_a_newer_view_of_the_visitor(world: World) -> None:
    """As the visitor moves to a new page, the old page's socket closes (a view: offline) and the
    new one connects (a view: online). Published by two sockets, perhaps two API processes, they
    can reach an agent in either order: the one read after the other's change has the higher
    revision, so the agent keeps "online" rather than a late "offline"."""
    account = world.account()
    agent = world.agent(account)
    visitor = world.visitor(account)
    with world.client.websocket_connect("/api/v1/agent/ws") as aws:
        aws.send_json({"type": "auth", "token": agent["token"]})
        assert aws.receive_json()["type"] == "hello"
        revs = []
        for _ in range(2):  # the page before, then the new one
            with world.client.websocket_connect("/api/v1/visitor/ws") as vws:
                vws.send_json({"type": "auth", "token": visitor["token"]})
                assert vws.receive_json()["type"] == "hello"
                revs.append(_next_view(aws, online=True)["rev"])
            revs.append(_next_view(aws, online=False)["rev"])
        assert revs == sorted(set(revs)), revs  # every view newer than the one before


def test_the_visitor_list_and_hello_are_as_new_as_their_revision_says(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GET /visitors`` and the agent socket's hello read the visitors and the account. An
    administrator switching co-browse off between the two reads (and publishing the visitors'
    new views) must not leave a listed view with the new ``rev`` and the old availability: the
    console keeps the state of the highest ``rev``."""
    account = world.account()
    agent = world.agent(account)
    world.visitor(account)
    real = visitors.present
    switched: list[bool] = []

    async def present(store: Any, aid: str) -> list[visitors.Visitor]:
        if not switched:  # the administrator switches as the visitors are about to be read
            switched.append(True)
            await accounts.update(store, aid, cobrowse_enabled=False)
            await presence.publish_account(store, aid)
        return await real(store, aid)

    def listed_now() -> dict[str, Any]:
        r = world.client.get("/api/v1/visitors", headers=agent["headers"])
        assert r.status_code == 200, r.text
        (view,) = r.json()["visitors"]
        return dict(view)

    def hello_now() -> dict[str, Any]:
        with world.client.websocket_connect("/api/v1/agent/ws") as aws:
            aws.send_json({"type": "auth", "token": agent["token"]})
            hello = aws.receive_json()
            assert hello["type"] == "hello"
            (view,) = hello["visitors"]
            return dict(view)

    for read in (listed_now, hello_now):
        switched.clear()
        world.client.patch(
            f"/api/v1/accounts/{account['id']}", json={"cobrowse_enabled": True}, headers=world.admin
        ).raise_for_status()
        monkeypatch.setattr(visitors, "present", present)
        seen = read()
        monkeypatch.setattr(visitors, "present", real)
        assert switched
        after = listed_now()
        assert after["cobrowse"]["reason"] == "feature_disabled"
        assert seen["rev"] < after["rev"] or seen["cobrowse"] == after["cobrowse"], (read, seen, after)


@pytest.mark.timeout(30)  # a socket left open would keep the test waiting for its close
@pytest.mark.parametrize("auth", ["header", "message"])
@pytest.mark.parametrize("lost", ["everything", "the token", "the agent"])
def test_an_agent_socket_whose_token_the_store_lost_is_closed(
    world: World, monkeypatch: pytest.MonkeyPatch, lost: str, auth: str
) -> None:
    """A Redis restarted empty (or a replica behind that took over) publishes no revocation: the
    agent's socket, authenticated once, stayed open and the console looked signed in. It reads
    its token and its agent again now and then, and stays open while they are there."""
    import threading

    from control_api import keys, tokens, ws

    checked = threading.Event()
    checks: list[int] = []
    real_recheck = ws.AgentConnection.recheck

    async def counted(self: Any) -> None:
        checks.append(1)
        if len(checks) >= 3:
            checked.set()
        await real_recheck(self)

    monkeypatch.setattr(ws, "AGENT_RECHECK_S", 0.02)
    monkeypatch.setattr(ws.AgentConnection, "recheck", counted)
    account = world.account()
    agent = world.agent(account)
    headers = agent["headers"] if auth == "header" else {}
    with world.client.websocket_connect("/api/v1/agent/ws", headers=headers) as aws:
        if auth == "message":
            aws.send_json({"type": "auth", "token": agent["token"]})
        _next(aws, "hello")
        assert checked.wait(10)
        aws.send_json({"type": "ping"})
        assert _next(aws, "pong")  # three checks passed with everything in place
        store = world.store
        gone = {
            "the token": [keys.token(store, tokens.digest(agent["token"]))],
            "the agent": [keys.agent(store, agent["id"])],
            "everything": [keys.token(store, tokens.digest(agent["token"])), keys.agent(store, agent["id"])],
        }[lost]
        if lost == "everything":
            async def flush() -> None:
                found = [k async for k in store.redis.scan_iter(match=store.namespace + "*")]
                gone.extend(found)
                await store.redis.delete(*gone)

            world.client.portal.call(flush)  # type: ignore[union-attr]
        else:
            world.client.portal.call(store.redis.delete, *gone)  # type: ignore[union-attr]
        assert _closed_with(aws) == messages.CLOSE_UNAUTHORIZED


def test_the_socket_limit_counts_a_visitors_sockets_on_every_api_process(world: World) -> None:
    """The limit was counted in each API process alone: behind a load balancer with N processes, a
    visitor token held 16 x N sockets. The sockets other processes hold (their leases in the store)
    count too; a lease that lapsed (its process died) does not."""
    import time

    from control_api import keys
    from control_api.ws import MAX_SOCKETS_PER_VISITOR

    visitor = world.visitor(world.account())
    conns = keys.visitor_conns(world.store, visitor["visitor_id"])
    portal = world.client.portal  # type: ignore[union-attr]
    elsewhere = {f"other-process-{i}": time.time() + 60 for i in range(MAX_SOCKETS_PER_VISITOR)}
    portal.call(world.store.redis.zadd, conns, elsewhere)
    record = keys.visitor(world.store, visitor["visitor_id"])
    before = portal.call(world.store.redis.hgetall, record)
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as extra:
        assert _closed_on(extra) == messages.CLOSE_RATE_LIMITED
    assert portal.call(world.store.redis.zcard, conns) == MAX_SOCKETS_PER_VISITOR  # its claim undone
    # a socket refused tells no one: the visitor's record (its revision, last_seen) is as it was
    assert portal.call(world.store.redis.hgetall, record) == before
    portal.call(world.store.redis.zadd, conns, {name: time.time() - 1 for name in elsewhere})
    with world.client.websocket_connect("/api/v1/visitor/ws", headers=visitor["headers"]) as ws:
        assert ws.receive_json()["type"] == "hello"
