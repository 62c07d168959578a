"""Web users: registration with a site key, presence (with a grace period), page state, availability.

Presence: every open visitor WebSocket keeps a member in ``visitor:{vid}:conns`` whose score is the
time it stops counting (refreshed while open). A visitor is *online* while one member is in the
future, and *gone* once offline for longer than ``visitor_grace_s`` (the sweeper then ends its live
session with reason ``visitor_left``). Deadlines live in the store, so any API process sweeps them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from control_api import keys
from control_api.accounts import Account
from control_api.exceptions import ApiError
from control_api.store import Store, translate_errors
from control_api.tokens import digest, new_id, new_token, plausible_id

VISITOR_TTL_S = 24 * 3600
# A registration key names the visitor it made this long: a tab the page opened while the first
# registration was on its way copied the key (not yet the token), and registers with it soon after.
REGISTRATION_KEY_TTL_S = 120
MAX_TAB_TOKENS = 16  # tokens a visitor gets for such tabs (``_add_token``), at most
TAB_TOKEN = "token:"  # the prefix of their fields in the visitor's record
MAX_RETRIES = 20
MAX_PRESENT = 500  # visitors listed to an agent at most
UNSEEN_RANK_S = 3600.0  # a registration ranks as if last seen this long before it was made
STATE_FIELDS = ("url", "title", "viewport_w", "viewport_h", "scroll_x", "scroll_y", "bandwidth_kbps")

AVAILABLE = "available"
REASONS = (
    "available", "feature_disabled", "origin_not_allowed", "low_bandwidth", "visitor_offline",
    "request_pending", "session_live",
)
# every reason but ``available``, said to a person (the API's ``detail``; the code is ``error``)
UNAVAILABLE_DETAILS = {
    "feature_disabled": "co-browsing is not enabled for this account",
    "origin_not_allowed": "the visitor's site is no longer among the account's allowed origins",
    "low_bandwidth": "the visitor's bandwidth is not measured yet or is below the account's minimum",
    "visitor_offline": "the visitor is offline: no page of theirs is connected now",
    "request_pending": "another request to co-browse with the visitor is waiting for their answer",
    "session_live": "the visitor already has a live session",
}


@dataclass(frozen=True)
class Visitor:
    id: str
    account_id: str
    origin: str
    created_at: float
    last_seen: float
    online: bool
    live_session: str | None
    state: dict[str, Any]
    token_hash: str = ""  # its token's key lives as long as the visitor (``touch_connection``)
    tab_token_hashes: tuple[str, ...] = ()  # the tokens of tabs that joined it (``register``), the same
    live_state: str | None = None  # the live session's state: "pending" until the visitor answers
    # the revision of what a view of the visitor shows (``queue_rev``): views read before a change
    # (published by another socket of the visitor, or another API process) are told apart from
    # the ones after
    rev: int = 0

    @property
    def bandwidth_kbps(self) -> float | None:
        value = self.state.get("bandwidth_kbps")
        return float(value) if value is not None else None


async def register(
    store: Store, account: Account, origin: str, grace_s: float, registration_key: str | None = None
) -> tuple[Visitor, str]:
    """A new visitor and its token.

    With a ``registration_key`` (random, chosen by the banner and kept in the tab's
    sessionStorage before it asks): the visitor that key made for this account and origin within
    ``REGISTRATION_KEY_TTL_S``, with a token of its own. A tab the page opened while the first
    registration was on its way copied the key, not yet the identity: it is the same visitor.
    The key is stored only as SHA-256. Claiming it and making the visitor are one transaction
    (WATCH on the key): of two registrations with one key at once, one makes the visitor and the
    other, its transaction undone, reads the claim and joins that visitor; never two visitors.
    A key unknown or expired makes a new visitor and names it; a key of another account or origin
    names nothing here (a new visitor, the key left to its own).
    """
    reg_key = keys.registration(store, digest(registration_key)) if registration_key else None
    gone: str | None = None  # a visitor the key named that is gone: the key may name a new one
    with translate_errors():
        for _ in range(MAX_RETRIES):
            async with store.redis.pipeline(transaction=True) as pipe:
                try:
                    made = await _register_once(pipe, store, account, origin, grace_s, reg_key, gone)
                except WatchError:
                    continue
            if isinstance(made, tuple):
                return made
            joined = await _add_token(store, made, account.id)
            if joined is not None:
                return joined
            if await find(store, made) is None:
                gone = made
            else:
                reg_key = None  # it has all the tokens it may have: this tab is a visitor of its own
    raise ApiError(409, "conflict", "registrations with this key kept changing; try again")


async def _register_once(
    pipe: Any, store: Store, account: Account, origin: str, grace_s: float, reg_key: str | None,
    gone: str | None,
) -> tuple[Visitor, str] | str:
    """One try of ``register``: the new visitor and its token, or the id of the visitor the
    registration key named already."""
    vid = new_id("vis")
    if reg_key:
        await pipe.watch(reg_key)
        claimed = await pipe.get(reg_key)
        if claimed:
            claimed_account, claimed_origin, claimed_vid = (claimed.split(" ", 2) + ["", "", ""])[:3]
            if (claimed_account, claimed_origin) != (account.id, origin):
                reg_key = None  # another account's or origin's: it names nothing here
            elif claimed_vid != gone:
                return claimed_vid
        pipe.multi()
    token = new_token()
    token_hash = digest(token)
    now = time.time()
    if reg_key:
        pipe.set(reg_key, f"{account.id} {origin} {vid}", ex=REGISTRATION_KEY_TTL_S)
    pipe.hset(
        keys.visitor(store, vid),
        mapping={
            "id": vid,
            "account_id": account.id,
            "origin": origin,
            "created_at": repr(now),
            "last_seen": repr(now),
            "token_hash": token_hash,
        },
    )
    pipe.expire(keys.visitor(store, vid), VISITOR_TTL_S)
    pipe.hset(
        keys.token(store, token_hash),
        mapping={"kind": "visitor", "id": vid, "account_id": account.id},
    )
    pipe.expire(keys.token(store, token_hash), VISITOR_TTL_S)
    # ranked below every visitor seen in the last hour until its socket opens (``present``)
    pipe.zadd(keys.account_visitors(store, account.id), {vid: now - UNSEEN_RANK_S})
    pipe.zadd(keys.visitor_deadlines(store), {vid: now + grace_s})
    await pipe.execute()
    visitor = Visitor(vid, account.id, origin, now, now, False, None, {}, token_hash)
    return visitor, token


async def _add_token(store: Store, vid: str, account_id: str) -> tuple[Visitor, str] | None:
    """The visitor ``vid`` and a new token of its own for another tab, living as long as the
    visitor (``touch_connection``); None when the visitor is gone, of another account, or has
    ``MAX_TAB_TOKENS`` already. (A token of its own: tokens are kept only as SHA-256, so the first
    one cannot be given again.)"""
    if not plausible_id(vid):
        return None
    token = new_token()
    token_hash = digest(token)
    key = keys.visitor(store, vid)
    with translate_errors():
        for _ in range(MAX_RETRIES):
            async with store.redis.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(key)
                    record = await pipe.hgetall(key)
                    if record.get("id") != vid or record.get("account_id") != account_id:
                        return None
                    if sum(1 for name in record if name.startswith(TAB_TOKEN)) >= MAX_TAB_TOKENS:
                        return None
                    pipe.multi()
                    pipe.hset(key, TAB_TOKEN + token_hash, "1")
                    pipe.hset(
                        keys.token(store, token_hash),
                        mapping={"kind": "visitor", "id": vid, "account_id": account_id},
                    )
                    pipe.expire(keys.token(store, token_hash), VISITOR_TTL_S)
                    await pipe.execute()
                except WatchError:
                    continue
            visitor = await find(store, vid)
            return (visitor, token) if visitor is not None else None
    return None


# A new revision of the visitor's view: one more than the last, and at least the Redis server's
# clock in milliseconds. It only ever grows while the record lives, and a record restored from an
# older snapshot (or a replica promoted behind its primary) goes on from the clock, above anything
# an agent's client saw before, rather than from its old count (which the clients, keeping the
# highest they have seen, would ignore until it caught up).
# A record that expired gets none (0); one that a write made anew, without its fields (the
# record expired between a reader and the write), gets the expiry of a record, not none.
_NEXT_REV = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('TTL', KEYS[1]) == -1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rev = (tonumber(redis.call('HGET', KEYS[1], 'rev')) or 0) + 1
if now > rev then rev = now end
rev = string.format('%.0f', rev)
redis.call('HSET', KEYS[1], 'rev', rev)
return rev
"""


def queue_rev(pipe: Any, store: Store, vid: str) -> None:
    """Queue on ``pipe`` a new revision of the visitor's view, in the transaction of the write
    that changes the view (its reply is the new ``rev``)."""
    pipe.eval(_NEXT_REV, 1, keys.visitor(store, vid), VISITOR_TTL_S)


def queue_live_state(pipe: Any, store: Store, vid: str, state: str | None) -> None:
    """Queue on ``pipe`` (in the MULTI of a session's transition) the state of the visitor's live
    session (None: it has none now), kept in the visitor's record so that one atomic read gives
    a view and its ``rev`` (``find_many``), and a new revision: their availability changes.

    The visitor's record may have expired meanwhile: the field alone is then a key no reader
    takes for a visitor (it has no ``id``), and it expires like a record (``_NEXT_REV``)."""
    key = keys.visitor(store, vid)
    if state is None:
        pipe.hdel(key, "live_state")
    else:
        pipe.hset(key, "live_state", state)
    queue_rev(pipe, store, vid)


def _parse(record: dict[str, str], conns_online: int, live: str | None) -> Visitor:
    state: dict[str, Any] = {}
    for name in STATE_FIELDS:
        raw = record.get(name)
        if raw is None:
            continue
        if name in ("url", "title"):
            state[name] = raw
        else:
            try:
                state[name] = float(raw)
            except ValueError:
                continue
    return Visitor(
        id=record["id"],
        account_id=record.get("account_id", ""),
        origin=record.get("origin", ""),
        created_at=float(record.get("created_at") or 0),
        last_seen=float(record.get("last_seen") or 0),
        online=conns_online > 0,
        live_session=live or None,
        state=state,
        token_hash=record.get("token_hash", ""),
        tab_token_hashes=tuple(sorted(k[len(TAB_TOKEN):] for k in record if k.startswith(TAB_TOKEN))),
        live_state=record.get("live_state") if live else None,
        rev=int(record["rev"]) if record.get("rev", "").isdigit() else 0,
    )


async def find_many(store: Store, vids: list[str]) -> list[Visitor]:
    now = time.time()
    with translate_errors():
        # one transaction: a view is what the store held at its ``rev``, no write of another
        # client between its parts (a later view with the same ``rev`` shows the same)
        async with store.redis.pipeline(transaction=True) as pipe:
            for vid in vids:
                pipe.hgetall(keys.visitor(store, vid))
                pipe.zcount(keys.visitor_conns(store, vid), f"({now}", "+inf")
                pipe.get(keys.visitor_live(store, vid))
            replies = await pipe.execute()
    result = []
    for i in range(0, len(replies), 3):
        record, online, live = replies[i : i + 3]
        if record.get("id"):
            result.append(_parse(record, int(online), live))
    live = [v for v in result if v.live_session and v.live_state is None]
    if not live:
        return result
    # a record stored before ``live_state`` was kept in it: its session says (a pending request
    # is told apart from a session: another agent's console says which)
    with translate_errors():
        async with store.redis.pipeline(transaction=False) as pipe:
            for visitor in live:
                pipe.hget(keys.session(store, visitor.live_session or ""), "state")
            states = dict(zip((v.id for v in live), await pipe.execute(), strict=True))
    return [dataclasses.replace(v, live_state=states[v.id]) if v.id in states else v for v in result]


async def find(store: Store, vid: str) -> Visitor | None:
    if not plausible_id(vid):
        return None
    found = await find_many(store, [vid])
    return found[0] if found else None


async def present_ids(store: Store, account_id: str) -> list[str]:
    """The ids of ``present``'s visitors, in its order."""
    with translate_errors():
        key = keys.account_visitors(store, account_id)
        return list(await store.redis.zrange(key, 0, MAX_PRESENT - 1, desc=True))


async def present(store: Store, account_id: str) -> list[Visitor]:
    """Visitors of the account not yet gone (online, or offline within the grace period), the
    most recently seen first (an open socket is seen every few seconds; a registration whose
    socket has not opened ranks below every visitor seen in the last hour), at most
    ``MAX_PRESENT``: registrations that never connect cannot push a visitor who is online off
    the list, however many and however fast."""
    return await find_many(store, await present_ids(store, account_id))


async def update_state(store: Store, vid: str, fields: dict[str, Any]) -> int:
    """Store the visitor's reported state; the state's new revision (``Visitor.rev``)."""
    values = {
        k: (v if isinstance(v, str) else repr(float(v))) for k, v in fields.items() if k in STATE_FIELDS
    }
    if not values:
        return 0
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.visitor(store, vid), mapping=values)
            queue_rev(pipe, store, vid)
            _, rev = await pipe.execute()
    return int(rev)


async def claim_connection(store: Store, visitor: Visitor, conn_id: str, hold_s: float, most: int) -> bool:
    """List one more open WebSocket of the visitor, unless ``most`` are open already on every API
    process together (their leases in ``visitor_conns``; a process that died lets its go when they
    lapse). False, and nothing listed, when full."""
    now = time.time()
    key = keys.visitor_conns(store, visitor.id)
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, "-inf", now)
            pipe.zadd(key, {conn_id: now + hold_s})
            pipe.zcard(key)
            pipe.expire(key, int(hold_s) + 60)
            *_, count, _ = await pipe.execute()
        if int(count) <= most:
            return True
        await store.redis.zrem(key, conn_id)
    return False


async def touch_connection(
    store: Store, visitor: Visitor, conn_id: str, hold_s: float, grace_s: float
) -> None:
    """Mark one WebSocket of the visitor as open for ``hold_s`` more seconds."""
    now = time.time()
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(keys.visitor_conns(store, visitor.id), {conn_id: now + hold_s})
            pipe.zremrangebyscore(keys.visitor_conns(store, visitor.id), "-inf", now)
            pipe.expire(keys.visitor_conns(store, visitor.id), int(hold_s + grace_s) + 60)
            pipe.hset(keys.visitor(store, visitor.id), "last_seen", repr(now))
            queue_rev(pipe, store, visitor.id)  # ``online`` may change
            pipe.expire(keys.visitor(store, visitor.id), VISITOR_TTL_S)
            if visitor.token_hash:
                # as long as the visitor: a token that lapsed 24 hours after registration, with
                # the socket open all along, made the visitor's End a 401 while the agent still
                # saw the page (its socket, authenticated once, went on relaying)
                pipe.expire(keys.token(store, visitor.token_hash), VISITOR_TTL_S)
            for token_hash in visitor.tab_token_hashes:  # (those of tabs that joined it)
                pipe.expire(keys.token(store, token_hash), VISITOR_TTL_S)
            pipe.zadd(keys.account_visitors(store, visitor.account_id), {visitor.id: now})
            # due when this hold lapses (a process that died closes nothing: ``settle``)
            pipe.zadd(keys.visitor_deadlines(store), {visitor.id: now + hold_s})
            await pipe.execute()


async def drop_connection(store: Store, visitor: Visitor, conn_id: str, grace_s: float) -> None:
    now = time.time()
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.visitor_conns(store, visitor.id), conn_id)
            pipe.hset(keys.visitor(store, visitor.id), "last_seen", repr(now))
            queue_rev(pipe, store, visitor.id)  # ``online`` may change
            pipe.zadd(keys.visitor_deadlines(store), {visitor.id: now + grace_s})
            await pipe.execute()


def availability(account: Account | None, visitor: Visitor) -> str:
    """Why the visitor can (``available``) or cannot be co-browsed now, in order of precedence."""
    if account is None or not account.cobrowse_enabled:
        return "feature_disabled"
    # (an origin taken out of the policy after the visitor registered on it)
    if visitor.origin not in account.allowed_origins:
        return "origin_not_allowed"
    if not visitor.online:
        return "visitor_offline"
    if visitor.live_session:
        return "request_pending" if visitor.live_state == "pending" else "session_live"
    minimum = float(account.policy.get("min_bandwidth_kbps", 0))
    bandwidth = visitor.bandwidth_kbps
    if minimum > 0 and (bandwidth is None or bandwidth < minimum):
        return "low_bandwidth"
    return AVAILABLE


def view(account: Account | None, visitor: Visitor) -> dict[str, Any]:
    """What an agent sees of a visitor."""
    reason = availability(account, visitor)
    return {
        "id": visitor.id,
        "online": visitor.online,
        "last_seen": visitor.last_seen,
        "url": visitor.state.get("url"),
        "title": visitor.state.get("title"),
        "bandwidth_kbps": visitor.bandwidth_kbps,
        "viewport": (
            {"width": visitor.state["viewport_w"], "height": visitor.state["viewport_h"]}
            if "viewport_w" in visitor.state and "viewport_h" in visitor.state
            else None
        ),
        "live_session": visitor.live_session,
        "cobrowse": {"available": reason == AVAILABLE, "reason": reason},
        # url, title, viewport, bandwidth and online as of this revision: a view with a lower one
        # than a client has seen (in a view or a relayed page or viewport) was read before, is stale
        "rev": visitor.rev,
    }


async def due_for_sweep(store: Store, now: float, limit: int = 100) -> list[str]:
    with translate_errors():
        return list(
            await store.redis.zrangebyscore(keys.visitor_deadlines(store), "-inf", now, start=0, num=limit)
        )


async def settle(store: Store, vid: str, grace_s: float) -> tuple[Visitor | None, bool]:
    """For a due visitor: (the Visitor when it is gone now, else None; whether it went offline
    since its last view was published).

    A socket that closes says it is gone (``drop_connection``; its handler publishes the view).
    One whose API process died says nothing: its hold lapses, and the view published at its last
    beat said ``online``. So a visitor is due when its newest hold lapses as well as when its
    grace period ends, and the sweeper tells the lapse (a new revision, a view). A gone visitor
    stays due until ``forget`` (so a sweep that fails half-way is done again).
    """
    now = time.time()
    visitor = await find(store, vid)
    with translate_errors():
        if visitor is None:
            await store.redis.zrem(keys.visitor_deadlines(store), vid)
            return None, False
        latest = await store.redis.zrange(keys.visitor_conns(store, vid), -1, -1, withscores=True)
        held_until = float(latest[0][1]) if latest else None
        if held_until is not None and (visitor.online or held_until > now):  # (or came back just now)
            await store.redis.zadd(keys.visitor_deadlines(store), {vid: max(held_until, now)})
            return None, False
        # offline since its last close, or since its newest hold lapsed if that came later
        lapsed = held_until is not None and visitor.last_seen < held_until <= now
        offline_since = max(visitor.last_seen, held_until or 0.0) if lapsed else visitor.last_seen
        if now < offline_since + grace_s:
            # (told once: the next time it is due is the end of its grace period)
            await store.redis.zadd(keys.visitor_deadlines(store), {vid: offline_since + grace_s})
            return None, lapsed
    return visitor, False


async def close_all_for(store: Store, account_id: str) -> None:
    """Close the open sockets of a deleted account's visitors (``control_api.ws``). Called once the
    account is gone: a socket that lists itself after this read finds no account (its setup reads
    the account again after listing itself)."""
    with translate_errors():
        vids = await store.redis.zrange(keys.account_visitors(store, account_id), 0, -1)
        async with store.redis.pipeline(transaction=False) as pipe:
            for vid in vids:
                pipe.publish(keys.visitor_channel(store, vid), json.dumps({"type": "revoked"}))
            await pipe.execute()


async def forget(store: Store, visitor: Visitor) -> bool:
    """Drop a gone visitor from its account's present list; False if another process did first."""
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.visitor_deadlines(store), visitor.id)
            pipe.zrem(keys.account_visitors(store, visitor.account_id), visitor.id)
            removed = (await pipe.execute())[0]
    return bool(removed)
