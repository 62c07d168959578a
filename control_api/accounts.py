"""Accounts: create/read/update/delete, the co-browse activation flag, site keys and the policy."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import WatchError

from control_api import keys
from control_api.exceptions import ApiError, not_found
from control_api.policy import default_policy, validate_policy
from control_api.store import Store, translate_errors
from control_api.tokens import new_id, new_token, plausible_id


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    cobrowse_enabled: bool
    site_key: str
    created_at: float
    policy: dict[str, Any]

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "cobrowse_enabled": self.cobrowse_enabled,
            "site_key": self.site_key,
            "created_at": self.created_at,
            "policy": self.policy,
        }

    @property
    def allowed_origins(self) -> list[str]:
        return list(self.policy.get("allowed_origins", []))


def _from_record(record: dict[str, str]) -> Account:
    policy = default_policy()
    policy.update(json.loads(record.get("policy") or "{}"))
    return Account(
        id=record["id"],
        name=record.get("name", ""),
        cobrowse_enabled=record.get("cobrowse_enabled") == "1",
        site_key=record.get("site_key", ""),
        created_at=float(record.get("created_at") or 0),
        policy=policy,
    )


async def create(store: Store, name: str, cobrowse_enabled: bool, policy: dict[str, Any] | None) -> Account:
    full_policy = validate_policy(policy or {})
    account = Account(new_id("acc"), name, cobrowse_enabled, "sk_" + new_token(), time.time(), full_policy)
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.account(store, account.id), mapping=_record(account))
            pipe.sadd(keys.accounts_index(store), account.id)
            pipe.set(keys.site_key(store, account.site_key), account.id)
            for origin in account.allowed_origins:
                pipe.sadd(keys.origin_accounts(store, origin), account.id)
            await pipe.execute()
    return account


def _record(account: Account) -> dict[str, str]:
    return {
        "id": account.id,
        "name": account.name,
        "cobrowse_enabled": "1" if account.cobrowse_enabled else "0",
        "site_key": account.site_key,
        "created_at": repr(account.created_at),
        "policy": json.dumps(account.policy),
    }


async def find(store: Store, aid: str) -> Account | None:
    if not plausible_id(aid):
        return None
    with translate_errors():
        record = await store.redis.hgetall(keys.account(store, aid))
    return _from_record(record) if record.get("id") else None


async def get(store: Store, aid: str) -> Account:
    account = await find(store, aid)
    if account is None:
        raise not_found("account", aid)
    return account


async def list_all(store: Store) -> list[Account]:
    with translate_errors():
        ids = sorted(await store.redis.smembers(keys.accounts_index(store)))
        async with store.redis.pipeline(transaction=False) as pipe:
            for aid in ids:
                pipe.hgetall(keys.account(store, aid))
            records = await pipe.execute()
    accounts = [_from_record(r) for r in records if r.get("id")]
    return sorted(accounts, key=lambda a: a.created_at)


async def by_site_key(store: Store, site_key: str) -> Account | None:
    if not site_key or len(site_key) > 128:
        return None
    with translate_errors():
        aid = await store.redis.get(keys.site_key(store, site_key))
    return await find(store, aid) if aid else None


async def update(
    store: Store, aid: str, *, name: str | None = None, cobrowse_enabled: bool | None = None
) -> Account:
    account = await get(store, aid)
    fields: dict[str, str] = {}
    if name is not None:
        fields["name"] = name
    if cobrowse_enabled is not None:
        fields["cobrowse_enabled"] = "1" if cobrowse_enabled else "0"
    if fields:
        with translate_errors():
            await store.redis.hset(keys.account(store, aid), mapping=fields)
    return await get(store, account.id)


class PolicyChanged(ApiError):
    """The stored policy is no longer the one a change was made from (another write came first)."""

    def __init__(self, aid: str) -> None:
        super().__init__(409, "conflict", f"the policy of account {aid} changed meanwhile; try again")


SET_POLICY_RETRIES = 20


async def set_policy(
    store: Store, aid: str, policy: dict[str, Any], *, base: dict[str, Any] | None = None
) -> Account:
    """Store a validated policy; keeps the origin index (used to answer CORS preflights) in step.

    With ``base`` (the policy the change was computed from, as a PATCH is), raises
    ``PolicyChanged`` instead of writing over a policy another write stored meanwhile. Without it
    (a PUT: the whole policy) the write is tried again when anything else wrote the account
    meanwhile (a rename, a site key), so the origin index follows the policy that was replaced."""
    key = keys.account(store, aid)
    with translate_errors():
        for _ in range(SET_POLICY_RETRIES):
            try:
                async with store.redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(key)
                    record = await pipe.hgetall(key)
                    if not record.get("id"):
                        raise not_found("account", aid)
                    current = _from_record(record)
                    if base is not None and current.policy != base:
                        raise PolicyChanged(aid)
                    old, new = set(current.allowed_origins), set(policy.get("allowed_origins", []))
                    pipe.multi()
                    pipe.hset(key, "policy", json.dumps(policy))
                    for origin in old - new:
                        pipe.srem(keys.origin_accounts(store, origin), aid)
                    for origin in new - old:
                        pipe.sadd(keys.origin_accounts(store, origin), aid)
                    await pipe.execute()
            except WatchError:
                # written meanwhile, or the connection was lost while the account was watched
                # (redis-py says WatchError for that too, from any command): read it again (a
                # PATCH may no longer apply). It was a 500 when a read while watching raised it.
                continue
            return await get(store, aid)
    raise PolicyChanged(aid)


async def rotate_site_key(store: Store, aid: str) -> Account:
    account = await get(store, aid)
    new_key = "sk_" + new_token()
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.site_key(store, account.site_key))
            pipe.set(keys.site_key(store, new_key), aid)
            pipe.hset(keys.account(store, aid), "site_key", new_key)
            await pipe.execute()
    return await get(store, aid)


async def delete(store: Store, aid: str) -> Account:
    """Remove the account's record, site key and origin index entries (sessions are ended by the caller)."""
    account = await get(store, aid)
    with translate_errors():
        async with store.redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.account(store, aid))
            pipe.srem(keys.accounts_index(store), aid)
            pipe.delete(keys.site_key(store, account.site_key))
            for origin in account.allowed_origins:
                pipe.srem(keys.origin_accounts(store, origin), aid)
            await pipe.execute()
    return account


async def origin_is_known(store: Store, origin: str) -> bool:
    """True when some account allows ``origin`` (answers CORS preflights, which carry no credentials)."""
    with translate_errors():
        return bool(await store.redis.scard(keys.origin_accounts(store, origin)))
