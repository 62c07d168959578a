"""Agents of an account: created with a token shown once (stored as SHA-256), listed, revoked."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from control_api import keys
from control_api.exceptions import not_found
from control_api.store import Store, translate_errors
from control_api.tokens import digest, new_id, new_token, plausible_id


@dataclass(frozen=True)
class Agent:
    id: str
    account_id: str
    display_name: str
    created_at: float
    revoked: bool

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "display_name": self.display_name,
            "created_at": self.created_at,
            "revoked": self.revoked,
        }


def _from_record(record: dict[str, str]) -> Agent:
    return Agent(
        id=record["id"],
        account_id=record.get("account_id", ""),
        display_name=record.get("display_name", ""),
        created_at=float(record.get("created_at") or 0),
        revoked=record.get("revoked") == "1",
    )


async def create(store: Store, account_id: str, display_name: str) -> tuple[Agent, str]:
    """A new agent and its token (the only time the token is visible)."""
    agent = Agent(new_id("agt"), account_id, display_name, time.time(), False)
    token = new_token()
    token_hash = digest(token)
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                keys.agent(store, agent.id),
                mapping={
                    "id": agent.id,
                    "account_id": account_id,
                    "display_name": display_name,
                    "created_at": repr(agent.created_at),
                    "revoked": "0",
                    "token_hash": token_hash,
                },
            )
            pipe.sadd(keys.account_agents(store, account_id), agent.id)
            pipe.hset(
                keys.token(store, token_hash),
                mapping={"kind": "agent", "id": agent.id, "account_id": account_id},
            )
            await pipe.execute()
    return agent, token


async def find(store: Store, agent_id: str) -> Agent | None:
    if not plausible_id(agent_id):
        return None
    with translate_errors():
        record = await store.redis.hgetall(keys.agent(store, agent_id))
    return _from_record(record) if record.get("id") else None


async def list_for(store: Store, account_id: str) -> list[Agent]:
    with translate_errors():
        ids = sorted(await store.redis.smembers(keys.account_agents(store, account_id)))
        async with store.redis.pipeline(transaction=False) as pipe:
            for agent_id in ids:
                pipe.hgetall(keys.agent(store, agent_id))
            records = await pipe.execute()
    return sorted((_from_record(r) for r in records if r.get("id")), key=lambda a: a.created_at)


async def revoke(store: Store, account_id: str, agent_id: str) -> Agent:
    """Revoke an agent's token; its live sessions are ended by the caller."""
    if not plausible_id(agent_id):
        raise not_found("agent", agent_id)
    with translate_errors():
        record = await store.redis.hgetall(keys.agent(store, agent_id))
        if not record.get("id") or record.get("account_id") != account_id:
            raise not_found("agent", agent_id)
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.agent(store, agent_id), "revoked", "1")
            if record.get("token_hash"):
                pipe.delete(keys.token(store, record["token_hash"]))
            # open consoles of this agent close themselves (control_api.ws)
            pipe.publish(keys.agent_channel(store, agent_id), json.dumps({"type": "revoked"}))
            await pipe.execute()
    return _from_record({**record, "revoked": "1"})


async def delete_all_for(store: Store, account_id: str) -> list[str]:
    """Revoke and forget every agent of a deleted account (their open sockets close, as on
    ``revoke``); returns their ids."""
    agents = await list_for(store, account_id)
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            for agent in agents:
                token_hash = await store.redis.hget(keys.agent(store, agent.id), "token_hash")
                if token_hash:
                    pipe.delete(keys.token(store, token_hash))
                pipe.delete(keys.agent(store, agent.id))
                # as for ``revoke``: an open console would go on hearing the account's visitors
                pipe.publish(keys.agent_channel(store, agent.id), json.dumps({"type": "revoked"}))
            pipe.delete(keys.account_agents(store, account_id))
            await pipe.execute()
    return [a.id for a in agents]
