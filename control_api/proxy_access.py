"""What the proxy asks the store (docs/ARCHITECTURE.md, "What the proxy asks the store").

The proxy serves a session only while ``get_proxy_session(...).state == "active"``; it learns that a
session left ``active`` from ``session_ended_channel`` (message: the session id). Tickets and
credentials are stored as SHA-256 only.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from control_api import keys
from control_api.store import Store, translate_errors
from control_api.tokens import digest, new_token

# Credentials of a session live at most this long past its deadline (they are dropped at the end).
_CRED_MARGIN_S = 60


@dataclass(frozen=True)
class ProxySession:
    session_id: str
    state: str
    account_id: str
    agent_id: str
    visitor_id: str
    allowed_origins: tuple[str, ...]
    masked_selectors: tuple[str, ...]
    expires_at: float


@dataclass(frozen=True)
class TicketGrant:
    session_id: str
    agent_id: str


def _tuple(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    value = json.loads(raw)
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


async def get_proxy_session(store: Store, session_id: str) -> ProxySession | None:
    """The session as the proxy needs it, or None when unknown."""
    with translate_errors():
        record = await store.redis.hgetall(keys.session(store, session_id))
    if not record or "state" not in record:
        return None
    return ProxySession(
        session_id=session_id,
        state=record["state"],
        account_id=record.get("account_id", ""),
        agent_id=record.get("agent_id", ""),
        visitor_id=record.get("visitor_id", ""),
        allowed_origins=_tuple(record.get("allowed_origins")),
        masked_selectors=_tuple(record.get("masked_selectors")),
        expires_at=float(record.get("expires_at") or 0),
    )


async def store_ticket(store: Store, session_id: str, agent_id: str, ttl_s: int) -> str:
    """Create a one-time ticket for the session's agent (used by the API's proxy-ticket route)."""
    ticket = new_token()
    value = json.dumps({"session_id": session_id, "agent_id": agent_id})
    with translate_errors():
        await store.redis.set(keys.ticket(store, digest(ticket)), value, ex=max(1, min(ttl_s, 60)))
    return ticket


async def redeem_ticket(store: Store, ticket: str) -> TicketGrant | None:
    """Exchange a ticket once (GETDEL); None when unknown, expired or already used."""
    if not ticket or len(ticket) > 256:
        return None
    with translate_errors():
        raw = await store.redis.getdel(keys.ticket(store, digest(ticket)))
    if raw is None:
        return None
    data = json.loads(raw)
    return TicketGrant(session_id=str(data["session_id"]), agent_id=str(data["agent_id"]))


async def issue_credential(store: Store, session_id: str, agent_id: str) -> str:
    """A random credential for the session's proxy cookie; its SHA-256 is kept until the session ends."""
    credential = new_token()
    cred_key = keys.session_cred(store, session_id)
    with translate_errors():
        expires_at = await store.redis.hget(keys.session(store, session_id), "expires_at")
        ttl = int(max(float(expires_at or 0) - time.time(), 0)) + _CRED_MARGIN_S
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(cred_key, digest(credential))
            pipe.expire(cred_key, ttl)
            await pipe.execute()
    return credential


async def check_credential(store: Store, session_id: str, credential: str) -> bool:
    """True only for a credential issued for this session while the session is active."""
    if not credential or len(credential) > 256:
        return False
    with translate_errors():
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.sismember(keys.session_cred(store, session_id), digest(credential))
            pipe.hget(keys.session(store, session_id), "state")
            is_member, state = await pipe.execute()
    return bool(is_member) and state == "active"


async def note_agent_address(store: Store, session_id: str, address: str) -> None:
    """Remember that the session's credential was presented from ``address`` (an IP address)."""
    key = keys.session_agent_addresses(store, session_id)
    with translate_errors():
        expires_at = await store.redis.hget(keys.session(store, session_id), "expires_at")
        ttl = int(max(float(expires_at or 0) - time.time(), 0)) + _CRED_MARGIN_S
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, address)
            pipe.expire(key, ttl)
            await pipe.execute()


async def is_agent_address(store: Store, session_id: str, address: str) -> bool:
    """True when the session is active and its credential has been presented from ``address``."""
    with translate_errors():
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.sismember(keys.session_agent_addresses(store, session_id), address)
            pipe.hget(keys.session(store, session_id), "state")
            is_member, state = await pipe.execute()
    return bool(is_member) and state == "active"


def session_ended_channel(store: Store) -> str:
    return keys.session_ended_channel(store)


async def jar_load(store: Store, session_id: str) -> dict[str, str]:
    """The session's cookie jar: cookie key -> JSON record (meaning owned by rewriter/cookies.py)."""
    with translate_errors():
        return dict(await store.redis.hgetall(keys.session_jar(store, session_id)))


async def jar_update(store: Store, session_id: str, upserts: dict[str, str], deletes: Iterable[str]) -> None:
    """Upsert and delete jar records in one transaction; the jar expires with the session."""
    jar_key = keys.session_jar(store, session_id)
    deletes = [d for d in deletes if d not in upserts]
    with translate_errors():
        expires_at = await store.redis.hget(keys.session(store, session_id), "expires_at")
        ttl = int(max(float(expires_at or 0) - time.time(), 0)) + _CRED_MARGIN_S
        async with store.redis.pipeline(transaction=True) as pipe:
            if deletes:
                pipe.hdel(jar_key, *deletes)
            if upserts:
                pipe.hset(jar_key, mapping=upserts)
            pipe.expire(jar_key, ttl)
            await pipe.execute()
