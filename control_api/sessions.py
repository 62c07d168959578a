"""Sessions and their state machine (DESIGN.md "Session lifecycle").

    (none) -> pending -> active -> ended        pending -> refused | expired
    (none) -> active                             (policy consent: none)

Every transition is one optimistic transaction (WATCH the session, MULTI/EXEC): of two racing
callers exactly one wins and the other sees ``InvalidTransition``. The same transaction writes the
audit entries, the per-state counters and the deadline, and publishes the lifecycle event to both
sides (and the session id on ``session_ended_channel`` when the session leaves ``active``).
Deadlines (consent, session max, idle) live in a sorted set swept by every API process.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from control_api import audit, keys, presence, visitors
from control_api.accounts import Account
from control_api.agents import Agent
from control_api.exceptions import ApiError, InvalidTransition, not_found
from control_api.policy import default_policy
from control_api.store import Store, translate_errors
from control_api.tokens import new_session_id

LIVE = ("pending", "active")
TERMINAL = ("ended", "refused", "expired")
STATES = LIVE + TERMINAL
RETENTION_S = 7 * 24 * 3600
MAX_RETRIES = 50
SESSION_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


@dataclass(frozen=True)
class Actor:
    kind: str  # admin | agent | visitor | system
    id: str


SYSTEM = Actor("system", "system")


def valid_session_id(sid: str) -> bool:
    return len(sid) == 10 and sid[0].isalpha() and set(sid) <= SESSION_ID_CHARS


def public(record: dict[str, str]) -> dict[str, Any]:
    """The session as both sides and administrators see it."""

    def num(name: str) -> float | None:
        raw = record.get(name)
        return float(raw) if raw else None

    return {
        "id": record["id"],
        "state": record["state"],
        "account_id": record.get("account_id", ""),
        "agent_id": record.get("agent_id", ""),
        "agent_name": record.get("agent_name", ""),
        "visitor_id": record.get("visitor_id", ""),
        "consent": record.get("consent", "request"),
        "agent_interface": record.get("agent_interface", "popin"),
        "agent_can_navigate": record.get("agent_can_navigate") == "1",
        "seed_cookies": record.get("seed_cookies") == "1",
        # the masks the session was made under: the banner keeps their values in the browser
        "masked_selectors": json.loads(record.get("masked_selectors") or "[]"),
        "created_at": num("created_at"),
        "updated_at": num("updated_at"),
        "activated_at": num("activated_at"),
        "ended_at": num("ended_at"),
        "reason": record.get("reason") or None,
        "consent_deadline": num("consent_deadline"),
        "expires_at": num("expires_at") if record["state"] in LIVE else None,
        "idle_timeout_s": num("idle_timeout_s"),
    }


def policy_of(record: dict[str, str]) -> dict[str, Any]:
    """The policy keys a session keeps from its creation (``policy.narrows`` reads these)."""
    return {
        "masked_selectors": json.loads(record.get("masked_selectors") or "[]"),
        "allowed_origins": json.loads(record.get("allowed_origins") or "[]"),
        "agent_can_navigate": record.get("agent_can_navigate") == "1",
        "consent": record.get("consent", "request"),
        "seed_cookies": record.get("seed_cookies") == "1",
    }


def due(record: dict[str, str], last_activity: float | None, now: float) -> tuple[str, str] | None:
    """The transition a deadline forces now, if any: (to, reason)."""
    state = record.get("state")
    if state == "pending" and now >= float(record.get("consent_deadline") or 0):
        return "expired", "consent_timeout"
    if state == "active":
        if now >= float(record.get("expires_at") or 0):
            return "ended", "session_max"
        idle = float(record.get("idle_timeout_s") or 0)
        since = last_activity if last_activity is not None else float(record.get("activated_at") or 0)
        if idle and now >= since + idle:
            return "ended", "idle_timeout"
    return None


def next_deadline(record: dict[str, str], last_activity: float | None) -> float | None:
    state = record.get("state")
    if state == "pending":
        return float(record.get("consent_deadline") or 0)
    if state == "active":
        idle = float(record.get("idle_timeout_s") or 0)
        since = last_activity if last_activity is not None else float(record.get("activated_at") or 0)
        expires = float(record.get("expires_at") or 0)
        return min(expires, since + idle) if idle else expires
    return None


def _consent_outcome(from_state: str, to: str, reason: str) -> str | None:
    if from_state != "pending":
        return None
    if to == "active":
        return "accepted"
    if to == "refused":
        return "refused"
    return "timeout" if reason == "consent_timeout" else "cancelled"


def _queue_transition(
    pipe: Any,
    store: Store,
    record: dict[str, str],
    from_state: str,
    to: str,
    actor: Actor,
    reason: str,
    now: float,
) -> dict[str, str]:
    """Queue every write of one transition on ``pipe`` (already in MULTI); return the new record."""
    sid = record["id"]
    new = dict(record)
    new.update(state=to, updated_at=repr(now), reason=reason)
    if to == "pending":
        new["consent_deadline"] = repr(now + float(record["consent_timeout_s"]))
        new["expires_at"] = new["consent_deadline"]
        pipe.zadd(keys.session_deadlines(store), {sid: float(new["consent_deadline"])})
    elif to == "active":
        new["activated_at"] = repr(now)
        new["expires_at"] = repr(now + float(record["session_max_s"]))
        pipe.set(keys.session_activity(store, sid), repr(now), ex=int(float(record["session_max_s"])) + 60)
        pipe.zadd(
            keys.session_deadlines(store),
            {sid: min(float(new["expires_at"]), now + float(record["idle_timeout_s"]))},
        )
    else:
        new["ended_at"] = repr(now)
        pipe.zrem(keys.session_deadlines(store), sid)
        pipe.delete(keys.visitor_live(store, record["visitor_id"]))
        pipe.srem(keys.agent_live(store, record["agent_id"]), sid)
        pipe.srem(keys.account_live(store, record["account_id"]), sid)
        pipe.delete(keys.session_activity(store, sid))
    pipe.hset(keys.session(store, sid), mapping=new)
    # the visitor's availability changes (request_pending, session_live, available)
    visitors.queue_live_state(pipe, store, record["visitor_id"], to if to in LIVE else None)
    if to in TERMINAL:
        pipe.expire(keys.session(store, sid), RETENTION_S)
    if from_state == "active":
        pipe.delete(
            keys.session_cred(store, sid),
            keys.session_jar(store, sid),
            keys.session_agent_addresses(store, sid),
        )
        pipe.publish(keys.session_ended_channel(store), sid)
    if from_state != "none":
        pipe.hincrby(keys.stats(store, "sessions"), from_state, -1)
    pipe.hincrby(keys.stats(store, "sessions"), to, 1)
    outcome = _consent_outcome(from_state, to, reason)
    if outcome:
        pipe.hincrby(keys.stats(store, "consent"), outcome, 1)
    entry = {
        "session_id": sid,
        "account_id": record["account_id"],
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "from": from_state,
        "to": to,
        "reason": reason,
        "time": repr(now),
    }
    audit.add_to(pipe, store, entry)
    event = json.dumps(
        {
            "type": "session",
            "session_id": sid,
            "from": from_state,
            "to": to,
            "reason": reason,
            "actor": actor.kind,
            "session": public(new),
            "ts": now,
        }
    )
    pipe.publish(keys.agent_channel(store, record["agent_id"]), event)
    pipe.publish(keys.visitor_channel(store, record["visitor_id"]), event)
    return new


def _new_record(sid: str, account_id: str, agent: Agent, visitor_id: str, policy: dict[str, Any],
                now: float) -> dict[str, str]:
    return {
        "id": sid,
        "state": "none",
        "account_id": account_id,
        "agent_id": agent.id,
        "agent_name": agent.display_name,
        "visitor_id": visitor_id,
        "consent": policy["consent"],
        "agent_interface": policy["agent_interface"],
        "agent_can_navigate": "1" if policy["agent_can_navigate"] else "0",
        "seed_cookies": "1" if policy["seed_cookies"] else "0",
        "allowed_origins": json.dumps(policy["allowed_origins"]),
        "masked_selectors": json.dumps(policy["masked_selectors"]),
        "consent_timeout_s": str(policy["consent_timeout_s"]),
        "session_max_s": str(policy["session_max_s"]),
        "idle_timeout_s": str(policy["idle_timeout_s"]),
        "created_at": repr(now),
    }


async def create(
    store: Store, account: Account, agent: Agent, visitor_id: str, request_id: str | None = None
) -> dict[str, str]:
    """A new session for the visitor: pending (consent: request) or active (consent: none).

    It is made under the account's policy as stored when it commits (read inside the transaction,
    which watches the account): a policy an administrator changes meanwhile either applies to it,
    or finds it among the account's live sessions (``admin_api``: narrowing ends them).

    With a ``request_id`` (chosen by the agent's client), a request that already made a session
    returns that session (in whatever state it is now) instead of making another one."""
    sid = new_session_id()
    live_key = keys.visitor_live(store, visitor_id)
    account_key = keys.account(store, account.id)
    agent_key = keys.agent(store, agent.id)
    request_key = keys.agent_request(store, agent.id, request_id) if request_id else None
    with translate_errors():
        for _ in range(MAX_RETRIES):
            async with store.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(live_key, account_key, agent_key, *filter(None, [request_key]))
                    if request_key:
                        made = await pipe.get(request_key)
                        earlier = await pipe.hgetall(keys.session(store, made)) if made else {}
                        if earlier.get("id"):
                            return dict(earlier)
                    # read here, not only by the route: a request that read its agent before an
                    # administrator revoked it made a session after the revocation had ended
                    # the agent's live ones, and it stayed
                    agent_id, revoked = await pipe.hmget(agent_key, ["id", "revoked"])
                    if agent_id != agent.id or revoked == "1":
                        raise ApiError(401, "invalid_token", "the agent no longer exists")
                    stored, enabled = await pipe.hmget(account_key, ["policy", "cobrowse_enabled"])
                    if enabled != "1":
                        detail = visitors.UNAVAILABLE_DETAILS["feature_disabled"]
                        raise ApiError(403, "feature_disabled", detail)
                    policy = default_policy()
                    policy.update(json.loads(stored or "{}"))
                    now = time.time()
                    record = _new_record(sid, account.id, agent, visitor_id, policy, now)
                    to = "active" if policy["consent"] == "none" else "pending"
                    current = await pipe.get(live_key)
                    if current:
                        state = await pipe.hget(keys.session(store, current), "state")
                        if state in LIVE:  # as ``visitors.availability`` says it
                            if request_key and await pipe.get(request_key):
                                # a racing create of this very request made it since it was read
                                # above: the next round returns that session
                                continue
                            reason = "request_pending" if state == "pending" else "session_live"
                            raise ApiError(409, reason, visitors.UNAVAILABLE_DETAILS[reason])
                    pipe.multi()
                    pipe.set(live_key, sid)
                    if request_key:
                        pipe.set(request_key, sid, ex=RETENTION_S)
                    pipe.sadd(keys.agent_live(store, agent.id), sid)
                    pipe.sadd(keys.account_live(store, account.id), sid)
                    new = _queue_transition(
                        pipe, store, record, "none", to, Actor("agent", agent.id), "created", now
                    )
                    await pipe.execute()
                except WatchError:
                    continue
            # outside the transaction: its connection is back in the pool before this takes others
            await presence.publish_visitor(store, account.id, visitor_id)
            return new
    raise ApiError(409, "conflict", "the visitor's state kept changing; try again")


async def get_record(store: Store, sid: str) -> dict[str, str] | None:
    if not valid_session_id(sid):
        return None
    with translate_errors():
        record = await store.redis.hgetall(keys.session(store, sid))
    return record if record.get("id") else None


async def of_request(store: Store, agent_id: str, request_id: str) -> dict[str, str] | None:
    """The session the agent's request ``request_id`` made, if it made one."""
    with translate_errors():
        sid = await store.redis.get(keys.agent_request(store, agent_id, request_id))
    record = await get_record(store, sid) if sid else None
    return record if record is not None and record.get("agent_id") == agent_id else None


async def get(store: Store, sid: str) -> dict[str, str]:
    record = await get_record(store, sid)
    if record is None:
        raise not_found("session", sid)
    return record


async def transition(
    store: Store, sid: str, *, to: str, allowed_from: tuple[str, ...], actor: Actor, reason: str, action: str
) -> dict[str, str]:
    """Move the session to ``to`` if its state is in ``allowed_from``, atomically."""
    key = keys.session(store, sid)
    with translate_errors():
        for _ in range(MAX_RETRIES):
            async with store.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    record = await pipe.hgetall(key)
                    if not record.get("id"):
                        raise not_found("session", sid)
                    state = record["state"]
                    if state not in allowed_from:
                        raise InvalidTransition(sid, state, action)
                    pipe.multi()
                    new = _queue_transition(pipe, store, record, state, to, actor, reason, time.time())
                    await pipe.execute()
                except WatchError:
                    continue
            await presence.publish_visitor(store, record["account_id"], record["visitor_id"])
            return new
    raise ApiError(409, "conflict", "the session kept changing; try again")


async def accept(store: Store, sid: str, actor: Actor) -> dict[str, str]:
    return await transition(
        store, sid, to="active", allowed_from=("pending",), actor=actor, reason="accepted", action="accept"
    )


async def refuse(store: Store, sid: str, actor: Actor) -> dict[str, str]:
    return await transition(
        store, sid, to="refused", allowed_from=("pending",), actor=actor, reason="refused", action="refuse"
    )


async def end(store: Store, sid: str, actor: Actor, reason: str | None = None) -> dict[str, str]:
    """End a live session. A pending one becomes ``refused`` when the visitor ends it (that is a
    refusal) and ``expired`` otherwise (the request is withdrawn); an active one becomes ``ended``."""
    reason = reason or f"{actor.kind}_ended"
    with translate_errors():
        state = await store.redis.hget(keys.session(store, sid), "state")
    if state == "pending":
        to = "refused" if actor.kind == "visitor" else "expired"
        try:
            return await transition(
                store, sid, to=to, allowed_from=("pending",), actor=actor, reason=reason, action="end"
            )
        except InvalidTransition:
            pass  # it was accepted meanwhile: end the active session below
    return await transition(
        store, sid, to="ended", allowed_from=("active",), actor=actor, reason=reason, action="end"
    )


async def touch(store: Store, sid: str, now: float | None = None) -> None:
    """Record activity (pushes the idle deadline back; the sweeper reads it)."""
    with translate_errors():
        await store.redis.set(
            keys.session_activity(store, sid), repr(now or time.time()), xx=True, keepttl=True
        )


async def live_of_visitor(store: Store, vid: str) -> str | None:
    with translate_errors():
        return await store.redis.get(keys.visitor_live(store, vid))


async def live_of_agent(store: Store, agent_id: str) -> list[str]:
    with translate_errors():
        return sorted(await store.redis.smembers(keys.agent_live(store, agent_id)))


async def live_of_account(store: Store, aid: str) -> list[str]:
    with translate_errors():
        return sorted(await store.redis.smembers(keys.account_live(store, aid)))


async def enforce_deadline(store: Store, sid: str, now: float) -> str | None:
    """Apply a due deadline of one session, or reschedule it; returns the new state if it moved."""
    record = await get_record(store, sid)
    with translate_errors():
        if record is None or record["state"] not in LIVE:
            await store.redis.zrem(keys.session_deadlines(store), sid)
            return None
        raw = await store.redis.get(keys.session_activity(store, sid))
    activity = float(raw) if raw else None
    forced = due(record, activity, now)
    if forced is None:
        deadline = next_deadline(record, activity)
        if deadline is not None:
            with translate_errors():
                await store.redis.zadd(keys.session_deadlines(store), {sid: deadline})
        return None
    to, reason = forced
    try:
        await transition(
            store, sid, to=to, allowed_from=(record["state"],), actor=SYSTEM, reason=reason, action=reason
        )
    except InvalidTransition:
        return None  # another process (or a person) moved it first
    return to


async def due_sessions(store: Store, now: float, limit: int = 100) -> list[str]:
    with translate_errors():
        return list(
            await store.redis.zrangebyscore(keys.session_deadlines(store), "-inf", now, start=0, num=limit)
        )
