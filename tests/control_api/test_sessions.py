"""The session state machine on a real Redis: transitions, audit, events, deadlines and races."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from control_api import accounts, agents, audit, keys, presence, proxy_access, sessions, sweeper, visitors
from control_api.exceptions import ApiError, InvalidTransition
from control_api.store import Store

VISITOR = sessions.Actor("visitor", "v")


async def _setup(store: Store, **policy: Any) -> tuple[accounts.Account, agents.Agent, visitors.Visitor]:
    policy.setdefault("allowed_origins", ["http://127.0.0.1:8002"])
    account = await accounts.create(store, "Shop", True, policy)
    agent, _ = await agents.create(store, account.id, "Alice")
    visitor, _ = await visitors.register(store, account, "http://127.0.0.1:8002", grace_s=30)
    return account, agent, visitor


async def test_request_then_accept_then_end(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store)
    record = await sessions.create(redis_store, account, agent, visitor.id)
    assert re.fullmatch(r"[a-z][a-z0-9]{9}", record["id"])
    assert record["state"] == "pending"
    sid = record["id"]
    assert (await sessions.accept(redis_store, sid, VISITOR))["state"] == "active"
    proxy = await proxy_access.get_proxy_session(redis_store, sid)
    assert (
        proxy is not None and proxy.state == "active" and proxy.allowed_origins == ("http://127.0.0.1:8002",)
    )
    cred = await proxy_access.issue_credential(redis_store, sid, agent.id)
    assert await proxy_access.check_credential(redis_store, sid, cred)
    await proxy_access.note_agent_address(redis_store, sid, "198.51.100.7")
    ended = await sessions.end(redis_store, sid, sessions.Actor("agent", agent.id))
    assert ended["state"] == "ended" and ended["reason"] == "agent_ended"
    assert not await proxy_access.check_credential(redis_store, sid, cred)
    assert await redis_store.redis.exists(keys.session_cred(redis_store, sid)) == 0
    assert await redis_store.redis.exists(keys.session_agent_addresses(redis_store, sid)) == 0
    assert await sessions.live_of_visitor(redis_store, visitor.id) is None
    page = await audit.query(
        redis_store, audit.session_stream(redis_store, sid), audit.AuditQuery(None, None, None, 10)
    )
    steps = [(e["from"], e["to"], e["actor_kind"], e["actor_id"]) for e in page["entries"]]
    assert steps == [
        ("none", "pending", "agent", agent.id),
        ("pending", "active", "visitor", VISITOR.id),
        ("active", "ended", "agent", agent.id),
    ]
    with pytest.raises(InvalidTransition):
        await sessions.accept(redis_store, sid, VISITOR)


async def test_a_session_is_made_under_the_policy_stored_when_it_commits(redis_store: Store) -> None:
    """The agent's request read the account before an administrator masked a field: the session
    still gets the mask (it is read again inside the transaction), so the administrator's ending
    of the account's live sessions, which ran before this one existed, misses nothing."""
    account, agent, visitor = await _setup(redis_store, consent="none")
    changed = {**account.policy, "masked_selectors": ["#card"], "consent": "request"}
    await accounts.set_policy(redis_store, account.id, changed)
    record = await sessions.create(redis_store, account, agent, visitor.id)  # the account as read before
    assert json.loads(record["masked_selectors"]) == ["#card"]
    assert record["state"] == "pending"  # consent is asked, as the stored policy says
    await accounts.update(redis_store, account.id, cobrowse_enabled=False)
    await sessions.end(redis_store, record["id"], sessions.Actor("agent", agent.id))
    with pytest.raises(ApiError) as refused:
        await sessions.create(redis_store, account, agent, visitor.id)
    assert refused.value.code == "feature_disabled"


@pytest.mark.parametrize("gone", ["revoked", "account_deleted"])
async def test_an_agent_revoked_or_deleted_after_its_request_read_it_makes_no_session(
    redis_store: Store, gone: str
) -> None:
    """The route read the agent before an administrator revoked it (or deleted it with its
    account), whose ending of the agent's live sessions then ran before this one existed: it was
    made all the same (consent none: active), and lived on for an agent whose token was gone."""
    account, agent, visitor = await _setup(redis_store, consent="none")
    if gone == "revoked":
        await agents.revoke(redis_store, account.id, agent.id)
    else:
        await agents.delete_all_for(redis_store, account.id)
    with pytest.raises(ApiError) as refused:
        await sessions.create(redis_store, account, agent, visitor.id)  # the agent as read before
    assert (refused.value.status, refused.value.code) == (401, "invalid_token")
    assert await sessions.live_of_agent(redis_store, agent.id) == []


async def test_consent_none_starts_active_at_once(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store, consent="none")
    record = await sessions.create(redis_store, account, agent, visitor.id)
    assert record["state"] == "active"


async def test_one_live_session_per_visitor(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store)
    first = await sessions.create(redis_store, account, agent, visitor.id)
    with pytest.raises(ApiError) as info:
        await sessions.create(redis_store, account, agent, visitor.id)
    assert info.value.code == "request_pending"  # the visitor has not answered the first yet
    await sessions.refuse(redis_store, first["id"], VISITOR)
    second = await sessions.create(redis_store, account, agent, visitor.id)
    assert second["id"] != first["id"]


async def test_a_visitor_in_an_active_session_is_session_live(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store, consent="none")
    await sessions.create(redis_store, account, agent, visitor.id)
    with pytest.raises(ApiError) as info:
        await sessions.create(redis_store, account, agent, visitor.id)
    assert info.value.code == "session_live"


async def test_racing_creates_make_one_session(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store)
    results = await asyncio.gather(
        *(sessions.create(redis_store, account, agent, visitor.id) for _ in range(8)), return_exceptions=True
    )
    made = [r for r in results if isinstance(r, dict)]
    assert len(made) == 1
    assert all(
        isinstance(r, ApiError) and r.code == "request_pending" for r in results if not isinstance(r, dict)
    )


async def test_a_request_sent_again_gets_its_session_on_either_store(store: Store) -> None:
    account, agent, visitor = await _setup(store)
    first = await sessions.create(store, account, agent, visitor.id, request_id="q" * 16)
    again = await sessions.create(store, account, agent, visitor.id, request_id="q" * 16)
    assert again == first
    with pytest.raises(ApiError) as info:  # a new request for a visitor who is busy
        await sessions.create(store, account, agent, visitor.id, request_id="p" * 16)
    assert info.value.code == "request_pending"
    await sessions.refuse(store, first["id"], VISITOR)
    late = await sessions.create(store, account, agent, visitor.id, request_id="q" * 16)
    assert (late["id"], late["state"]) == (first["id"], "refused")
    assert int(await store.redis.ttl(keys.agent_request(store, agent.id, "q" * 16))) > 0


async def test_racing_creates_of_one_request_all_get_its_session(redis_store: Store) -> None:
    """The console and its window may send one request at once: one session, and both get it."""
    account, agent, visitor = await _setup(redis_store)
    rid = "r" * 16
    results = await asyncio.gather(
        *(sessions.create(redis_store, account, agent, visitor.id, request_id=rid) for _ in range(8))
    )
    assert len({r["id"] for r in results}) == 1
    assert await sessions.live_of_agent(redis_store, agent.id) == [results[0]["id"]]
    assert (await sessions.of_request(redis_store, agent.id, rid) or {}).get("id") == results[0]["id"]
    other, _ = await agents.create(redis_store, account.id, "Bob")
    assert await sessions.of_request(redis_store, other.id, rid) is None


async def test_two_accepts_make_exactly_one_transition(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store)
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    results = await asyncio.gather(
        *(sessions.accept(redis_store, sid, VISITOR) for _ in range(6)), return_exceptions=True
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    assert all(isinstance(r, InvalidTransition) for r in results if not isinstance(r, dict))
    page = await audit.query(
        redis_store, audit.session_stream(redis_store, sid), audit.AuditQuery(None, None, None, 10)
    )
    assert [e["to"] for e in page["entries"]] == ["pending", "active"]


async def test_end_racing_accept(redis_store: Store) -> None:
    for _ in range(5):
        account, agent, visitor = await _setup(redis_store)
        sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
        results = await asyncio.gather(
            sessions.accept(redis_store, sid, VISITOR),
            sessions.end(redis_store, sid, sessions.Actor("agent", agent.id)),
            return_exceptions=True,
        )
        final = await sessions.get(redis_store, sid)
        page = await audit.query(
            redis_store, audit.session_stream(redis_store, sid), audit.AuditQuery(None, None, None, 10)
        )
        path = [e["to"] for e in page["entries"]]
        # either the withdrawal won (accept refused) or the accept won and the end ended it
        assert path in (["pending", "expired"], ["pending", "active", "ended"]), path
        assert final["state"] == path[-1]
        if path[-1] == "expired":
            assert isinstance(results[0], InvalidTransition)


async def test_a_pending_session_ended_by_the_visitor_is_refused_and_by_the_agent_withdrawn(
    redis_store: Store,
) -> None:
    account, agent, visitor = await _setup(redis_store)
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    ended = await sessions.end(redis_store, sid, VISITOR)
    assert (ended["state"], ended["reason"]) == ("refused", "visitor_ended")
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    ended = await sessions.end(redis_store, sid, sessions.Actor("agent", agent.id))
    assert (ended["state"], ended["reason"]) == ("expired", "agent_ended")


async def test_accept_racing_consent_timeout(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store, consent_timeout_s=5)
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    deadline = float((await sessions.get(redis_store, sid))["consent_deadline"])
    results = await asyncio.gather(
        sessions.accept(redis_store, sid, VISITOR),
        sessions.enforce_deadline(redis_store, sid, deadline + 0.01),
        return_exceptions=True,
    )
    final = (await sessions.get(redis_store, sid))["state"]
    assert final in ("active", "expired")
    if final == "active":
        assert results[1] is None
    else:
        assert isinstance(results[0], InvalidTransition) and results[1] == "expired"
    page = await audit.query(
        redis_store, audit.session_stream(redis_store, sid), audit.AuditQuery(None, None, None, 10)
    )
    assert len(page["entries"]) == 2


async def test_deadlines_are_swept_from_the_store(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store, consent_timeout_s=5)
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    score = await redis_store.redis.zscore(keys.session_deadlines(redis_store), sid)
    assert score == pytest.approx(time.time() + 5, abs=2)
    # a deadline already past, as if this process had been down: any sweeper applies it
    await redis_store.redis.hset(keys.session(redis_store, sid), "consent_deadline", repr(time.time() - 1))
    await redis_store.redis.zadd(keys.session_deadlines(redis_store), {sid: time.time() - 1})
    assert await sweeper.sweep_once(redis_store, grace_s=30) >= 1
    record = await sessions.get(redis_store, sid)
    assert (record["state"], record["reason"]) == ("expired", "consent_timeout")
    assert await redis_store.redis.zscore(keys.session_deadlines(redis_store), sid) is None


@pytest.mark.parametrize(
    ("field", "reason"), [("expires_at", "session_max"), ("activated_at", "idle_timeout")]
)
async def test_active_deadlines(redis_store: Store, field: str, reason: str) -> None:
    account, agent, visitor = await _setup(redis_store, consent="none", idle_timeout_s=30, session_max_s=60)
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    assert await sessions.enforce_deadline(redis_store, sid, time.time()) is None  # nothing due: rescheduled
    past = time.time() - 3600
    await redis_store.redis.hset(keys.session(redis_store, sid), field, repr(past))
    await redis_store.redis.delete(keys.session_activity(redis_store, sid))
    assert await sessions.enforce_deadline(redis_store, sid, time.time()) == "ended"
    assert (await sessions.get(redis_store, sid))["reason"] == reason


async def test_activity_postpones_idle_timeout() -> None:
    record = {"state": "active", "activated_at": "0", "idle_timeout_s": "30", "expires_at": "1000"}
    assert sessions.due(record, None, 31) == ("ended", "idle_timeout")
    assert sessions.due(record, 20.0, 31) is None
    assert sessions.next_deadline(record, 20.0) == 50
    assert sessions.due(record, 20.0, 1000) == ("ended", "session_max")


async def test_transition_publishes_to_both_sides_and_the_proxy(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store, consent="none")
    pubsub = redis_store.redis.pubsub()
    await pubsub.subscribe(
        keys.agent_channel(redis_store, agent.id),
        keys.visitor_channel(redis_store, visitor.id),
        proxy_access.session_ended_channel(redis_store),
    )
    for _ in range(3):
        await pubsub.get_message(timeout=1)
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    await sessions.end(redis_store, sid, sessions.Actor("admin", "admin"))
    got: list[tuple[str, str]] = []
    while len(got) < 5:
        message = await pubsub.get_message(timeout=2, ignore_subscribe_messages=True)
        assert message is not None, got
        got.append((message["channel"], message["data"]))
    await pubsub.aclose()
    ended = [data for channel, data in got if channel == proxy_access.session_ended_channel(redis_store)]
    assert ended == [sid]
    agent_events = [json.loads(d)["to"] for c, d in got if c == keys.agent_channel(redis_store, agent.id)]
    visitor_events = [
        json.loads(d)["to"] for c, d in got if c == keys.visitor_channel(redis_store, visitor.id)
    ]
    assert agent_events == visitor_events == ["active", "ended"]


async def test_visitor_gone_ends_live_session(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store, consent="none")
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    await visitors.touch_connection(redis_store, visitor, "c1", hold_s=3, grace_s=0.2)
    await visitors.drop_connection(redis_store, visitor, "c1", grace_s=0.2)
    assert await sweeper.sweep_once(redis_store, grace_s=0.2) == 0  # within the grace period
    await asyncio.sleep(0.4)
    assert await sweeper.sweep_once(redis_store, grace_s=0.2) >= 1
    record = await sessions.get(redis_store, sid)
    assert (record["state"], record["reason"]) == ("ended", "visitor_left")
    assert [v.id for v in await visitors.present(redis_store, account.id)] == []


async def test_a_visitor_whose_socket_lapses_is_shown_offline_at_once_and_gone_a_grace_period_later(
    redis_store: Store,
) -> None:
    """A page's socket whose API process died closes nothing: its hold lapses. The sweeper tells
    the account's consoles then (a view with a new revision, once), not only when the grace period
    ends; and the visitor is gone a grace period after the lapse, not after its last beat. (Time is
    moved by writing the stored times back, as they would stand that long after the last beat.)"""
    account, agent, visitor = await _setup(redis_store)
    hold, grace = 15.0, 30.0
    await visitors.touch_connection(redis_store, visitor, "c1", hold_s=hold, grace_s=grace)
    beat = await visitors.find(redis_store, visitor.id)
    assert beat is not None and beat.online
    pubsub = redis_store.redis.pubsub()
    await pubsub.subscribe(keys.account_channel(redis_store, account.id))
    await pubsub.get_message(timeout=1)  # (the subscription's own)

    async def told() -> list[dict[str, Any]]:
        out = []
        while (message := await pubsub.get_message(timeout=0.2, ignore_subscribe_messages=True)):
            out.append(json.loads(message["data"]))
        return out

    async def last_beat_was(seconds_ago: float) -> float:
        """The stored times as they stand ``seconds_ago`` after the last beat; the lapse's time."""
        at = time.time() - seconds_ago
        await redis_store.redis.zadd(keys.visitor_conns(redis_store, visitor.id), {"c1": at + hold})
        await redis_store.redis.hset(keys.visitor(redis_store, visitor.id), "last_seen", repr(at))
        deadlines = keys.visitor_deadlines(redis_store)
        if await redis_store.redis.zscore(deadlines, visitor.id) is not None:
            await redis_store.redis.zadd(deadlines, {visitor.id: min(at + hold, time.time())})
        return at + hold

    assert await sweeper.sweep_once(redis_store, grace_s=grace) == 0
    assert await told() == []  # held: nothing due
    lapse = await last_beat_was(hold + 1)
    assert await sweeper.sweep_once(redis_store, grace_s=grace) == 0  # offline, not gone
    (view,) = [m["visitor"] for m in await told()]
    assert (view["id"], view["online"], view["cobrowse"]["reason"]) == (visitor.id, False, "visitor_offline")
    assert view["rev"] > beat.rev
    # due again a grace period after the lapse (not after the last beat, 15 s sooner)
    due = await redis_store.redis.zscore(keys.visitor_deadlines(redis_store), visitor.id)
    assert due == pytest.approx(lapse + grace, abs=0.01)
    assert await sweeper.sweep_once(redis_store, grace_s=grace) == 0
    assert await told() == []  # once
    assert [v.id for v in await visitors.present(redis_store, account.id)] == [visitor.id]
    await last_beat_was(hold + grace + 1)
    assert await sweeper.sweep_once(redis_store, grace_s=grace) == 1  # gone
    assert [m["type"] for m in await told()] == ["visitor_left"]
    await pubsub.aclose()


async def test_a_sweep_that_fails_to_end_the_session_is_done_again(
    redis_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The visitor is forgotten only once its session has ended: a store error in between loses nothing."""
    from control_api.exceptions import StoreUnavailable

    account, agent, visitor = await _setup(redis_store, consent="none")
    sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
    await visitors.touch_connection(redis_store, visitor, "c1", hold_s=3, grace_s=0)
    await visitors.drop_connection(redis_store, visitor, "c1", grace_s=0)  # gone at once
    real_end = sessions.end

    async def store_goes_away(*args: Any, **kwargs: Any) -> dict[str, str]:
        raise StoreUnavailable()

    monkeypatch.setattr(sessions, "end", store_goes_away)
    with pytest.raises(StoreUnavailable):
        await sweeper.sweep_once(redis_store, grace_s=0)
    assert (await sessions.get(redis_store, sid))["state"] == "active"
    monkeypatch.setattr(sessions, "end", real_end)
    assert await sweeper.sweep_once(redis_store, grace_s=0) == 1
    record = await sessions.get(redis_store, sid)
    assert (record["state"], record["reason"]) == ("ended", "visitor_left")
    assert await visitors.present(redis_store, account.id) == []


async def test_audit_is_paged_and_filtered_by_time(redis_store: Store) -> None:
    account, agent, visitor = await _setup(redis_store)
    for _ in range(3):
        sid = (await sessions.create(redis_store, account, agent, visitor.id))["id"]
        await sessions.refuse(redis_store, sid, VISITOR)
    stream = audit.account_stream(redis_store, account.id)
    first = await audit.query(redis_store, stream, audit.AuditQuery(None, None, None, 4))
    assert len(first["entries"]) == 4 and first["next_cursor"]
    rest = await audit.query(redis_store, stream, audit.AuditQuery(None, None, first["next_cursor"], 4))
    assert len(rest["entries"]) == 2 and rest["next_cursor"] is None
    ids = [e["id"] for e in first["entries"] + rest["entries"]]
    assert len(set(ids)) == 6
    future = await audit.query(redis_store, stream, audit.AuditQuery(time.time() + 60, None, None, 10))
    assert future["entries"] == []
    past = await audit.query(redis_store, stream, audit.AuditQuery(None, time.time() - 3600, None, 10))
    assert past["entries"] == []


async def test_a_policy_change_never_writes_over_one_stored_meanwhile(redis_store: Store) -> None:
    """A PATCH is computed from the policy it read: stored over another administrator's change, it
    would undo it (a mask put back, an origin removed again) without anyone asking."""
    account, _, _ = await _setup(redis_store)
    read = account.policy
    await accounts.set_policy(redis_store, account.id, {**read, "masked_selectors": ["#ssn"]})
    with pytest.raises(accounts.PolicyChanged):
        await accounts.set_policy(redis_store, account.id, {**read, "idle_timeout_s": 300}, base=read)
    stored = (await accounts.get(redis_store, account.id)).policy
    assert stored["masked_selectors"] == ["#ssn"] and stored["idle_timeout_s"] == read["idle_timeout_s"]
    fresh = stored
    updated = await accounts.set_policy(redis_store, account.id, {**fresh, "idle_timeout_s": 300}, base=fresh)
    assert updated.policy["masked_selectors"] == ["#ssn"] and updated.policy["idle_timeout_s"] == 300


async def test_a_policy_stored_while_the_account_is_written_is_stored(
    redis_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rename (or a site key, or another policy) lands between the read and the write of a PUT:
    the PUT reads again and stores its policy (no 500); a PATCH made from the old policy is told."""
    import redis.asyncio.client

    account, _, _ = await _setup(redis_store)
    original = redis.asyncio.client.Pipeline.hgetall
    writes = ["name", "policy"]

    async def read_then_someone_writes(self: Any, name: str) -> Any:
        record = await original(self, name)
        if writes:
            field = writes.pop(0)
            value = "Renamed" if field == "name" else json.dumps({**account.policy, "idle_timeout_s": 301})
            await redis_store.redis.hset(name, field, value)
        return record

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "hgetall", read_then_someone_writes)
    stored = await accounts.set_policy(redis_store, account.id, {**account.policy, "idle_timeout_s": 300})
    assert stored.policy["idle_timeout_s"] == 300 and stored.name == "Renamed"
    writes.append("policy")
    with pytest.raises(accounts.PolicyChanged) as told:
        await accounts.set_policy(
            redis_store, account.id, {**stored.policy, "consent": "none"}, base=stored.policy
        )
    assert (told.value.status, told.value.code) == (409, "conflict")


async def _rev(store: Store, vid: str) -> int:
    found = await visitors.find(store, vid)
    assert found is not None
    return found.rev


async def test_each_step_of_a_session_makes_a_newer_view_of_the_visitor(store: Store) -> None:
    """A session made, accepted or ended changes the visitor's availability (request_pending,
    session_live, available) with no write of the visitor's own. Each step bumps the visitor's
    ``rev``, so a view of the visitor read before it is older than one read after it (and the
    agent's console drops it if it comes second)."""
    account, agent, visitor = await _setup(store)
    revs = [await _rev(store, visitor.id)]
    sid = (await sessions.create(store, account, agent, visitor.id))["id"]
    revs.append(await _rev(store, visitor.id))
    await sessions.accept(store, sid, VISITOR)
    revs.append(await _rev(store, visitor.id))
    await sessions.end(store, sid, sessions.Actor("agent", agent.id))
    revs.append(await _rev(store, visitor.id))
    assert revs == sorted(set(revs)), revs
    assert 0 < await store.redis.ttl(keys.visitor(store, visitor.id)) <= visitors.VISITOR_TTL_S


async def test_writes_after_a_visitors_record_expired_leave_no_key_without_expiry(store: Store) -> None:
    """A session step, a page's close or a report that comes after the visitor's record expired
    writes to a key that is no longer there: what it makes is no visitor, and it expires too."""
    account, agent, visitor = await _setup(store)
    key = keys.visitor(store, visitor.id)
    sid = (await sessions.create(store, account, agent, visitor.id))["id"]
    await store.redis.delete(key)  # (as its expiry would)
    await sessions.end(store, sid, sessions.Actor("agent", agent.id))
    assert await store.redis.ttl(key) == -2  # nothing made
    await visitors.drop_connection(store, visitor, "c1", 30)  # (it writes ``last_seen``)
    assert await visitors.find(store, visitor.id) is None
    assert 0 < await store.redis.ttl(key) <= visitors.VISITOR_TTL_S
    await store.redis.delete(key)
    await visitors.update_state(store, visitor.id, {"url": "http://127.0.0.1:8002/late"})
    assert await visitors.find(store, visitor.id) is None
    assert 0 < await store.redis.ttl(key) <= visitors.VISITOR_TTL_S


async def test_a_visitor_restored_with_an_older_revision_goes_on_above_the_last_one_seen(
    store: Store,
) -> None:
    """Redis restarted from an older snapshot, or a replica behind its primary took over: the
    visitor's record is back with a ``rev`` below what agents' clients have seen, and they drop
    every view and page below that. The next write goes on from Redis's clock (ms), above it."""
    _, _, visitor = await _setup(store)
    seen = await visitors.update_state(store, visitor.id, {"url": "http://127.0.0.1:8002/a"})
    seconds, micros = await store.redis.time()
    assert seen >= seconds * 1000 + micros // 1000 - 60_000  # (the clock, give or take)
    assert await visitors.update_state(store, visitor.id, {"url": "http://127.0.0.1:8002/b"}) > seen
    await store.redis.hset(keys.visitor(store, visitor.id), "rev", "7")  # (the restore)
    after = await visitors.update_state(store, visitor.id, {"url": "http://127.0.0.1:8002/c"})
    assert after > seen
    assert (await visitors.find(store, visitor.id)).rev == after  # type: ignore[union-attr]


async def test_a_view_is_read_whole_at_its_revision(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A view whose parts were read in two steps, with the visitor accepting between them, said
    "session live" at the revision of "request pending"; an older view of that revision coming
    second then took it back. Here every read of the store after the first one, while the view is
    read, comes after the visitor accepted."""
    account, agent, visitor = await _setup(store)
    sid = (await sessions.create(store, account, agent, visitor.id))["id"]
    real_pipeline = store.redis.pipeline
    opened: list[bool] = []

    @contextlib.asynccontextmanager
    async def pipeline(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        opened.append(True)
        if len(opened) == 2:  # the view's second read: the visitor accepts first
            monkeypatch.setattr(store.redis, "pipeline", real_pipeline)
            await sessions.accept(store, sid, VISITOR)
        async with real_pipeline(*args, **kwargs) as pipe:
            yield pipe

    monkeypatch.setattr(store.redis, "pipeline", pipeline)
    read = await visitors.find(store, visitor.id)
    monkeypatch.setattr(store.redis, "pipeline", real_pipeline)
    assert read is not None and read.live_state == "pending"
    if len(opened) < 2:
        await sessions.accept(store, sid, VISITOR)
    now = await visitors.find(store, visitor.id)
    assert now is not None and now.live_state == "active" and now.rev > read.rev


async def test_a_view_read_across_an_account_change_is_never_newer_than_its_own_views(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An administrator switching co-browse off publishes every present visitor's view again. A
    view that one of the visitor's sockets publishes at the same moment (read before the switch,
    or half before and half after) can reach the agent after those: it must then be the older
    one, or already say what the switch made true."""
    account, _, visitor = await _setup(store)
    channel = keys.account_channel(store, account.id)
    pubsub = store.redis.pubsub()
    await pubsub.subscribe(channel)
    assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"

    async def views(n: int) -> list[dict[str, Any]]:
        seen = []
        while len(seen) < n:
            message = await pubsub.get_message(timeout=2, ignore_subscribe_messages=True)
            assert message is not None, seen
            seen.append(json.loads(message["data"])["visitor"])
        return seen

    try:
        await presence.publish_visitor(store, account.id, visitor.id)  # read wholly before
        (before,) = await views(1)
        assert before["cobrowse"]["reason"] == "visitor_offline"
        # Then a view whose two reads (the visitor, the account) have the switch between them.
        real = {"visitors": visitors.find, "accounts": accounts.find}
        switched: list[bool] = []

        def read_then_switch(name: str) -> Any:
            async def read(*args: Any) -> Any:
                found = await real[name](*args)
                if not switched:  # the first of the two reads: the administrator switches now
                    switched.append(True)
                    await accounts.update(store, account.id, cobrowse_enabled=False)
                    await presence.publish_account(store, account.id)
                return found

            return read

        monkeypatch.setattr(visitors, "find", read_then_switch("visitors"))
        monkeypatch.setattr(accounts, "find", read_then_switch("accounts"))
        await presence.publish_visitor(store, account.id, visitor.id)
        switch_view, straddling = await views(2)
    finally:
        await pubsub.aclose()
    assert switch_view["cobrowse"]["reason"] == "feature_disabled"
    assert before["rev"] < switch_view["rev"]
    assert straddling["rev"] < switch_view["rev"] or straddling["cobrowse"]["reason"] == "feature_disabled"


@pytest.mark.parametrize("when", ["before", "after"])
async def test_two_account_changes_at_once_leave_the_newest_view_saying_what_the_account_says(
    store: Store, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    """Administrator 1 switches co-browse off, and administrator 2 switches it on again (and
    publishes) while 1's views are being published, before or after they read the visitors: the
    newest view of the visitor, the one agents keep, says "on"."""
    account, _, visitor = await _setup(store)
    pubsub = store.redis.pubsub()
    await pubsub.subscribe(keys.account_channel(store, account.id))
    assert (await pubsub.get_message(timeout=2))["type"] == "subscribe"
    real = visitors.find_many
    switched: list[bool] = []

    async def switch_on() -> None:
        switched.append(True)
        await accounts.update(store, account.id, cobrowse_enabled=True)
        await presence.publish_account(store, account.id)

    async def find_many(*args: Any) -> list[visitors.Visitor]:
        if when == "before" and not switched:
            await switch_on()
        found = await real(*args)
        if when == "after" and not switched:
            await switch_on()
        return found

    await accounts.update(store, account.id, cobrowse_enabled=False)
    monkeypatch.setattr(visitors, "find_many", find_many)
    try:
        await presence.publish_account(store, account.id)
        views = []
        while message := await pubsub.get_message(timeout=0.5, ignore_subscribe_messages=True):
            views.append(json.loads(message["data"])["visitor"])
    finally:
        await pubsub.aclose()
    assert switched and len(views) == 2
    # the one kept: of the highest ``rev``, and of those the last to arrive (clients take equals)
    _, newest = max(enumerate(views), key=lambda seen: (seen[1]["rev"], seen[0]))
    assert newest["cobrowse"]["reason"] == "visitor_offline", views  # not feature_disabled
