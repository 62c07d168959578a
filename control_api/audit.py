"""The audit trail: one Redis stream per account and one per session, queried by time range and paged.

Entries are written inside the transaction that makes the state change (``add_to``), so there is
never a transition without its entry, nor an entry without its transition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control_api import keys
from control_api.store import Store, translate_errors

ACCOUNT_STREAM_MAXLEN = 100_000
SESSION_STREAM_TTL_S = 30 * 24 * 3600
FIELDS = ("session_id", "account_id", "actor_kind", "actor_id", "from", "to", "reason", "time")


@dataclass(frozen=True)
class AuditQuery:
    since: float | None
    until: float | None
    cursor: str | None
    limit: int


def add_to(pipe: Any, store: Store, entry: dict[str, str]) -> None:
    """Queue the XADDs of one entry on a pipeline (inside the caller's MULTI)."""
    pipe.xadd(
        keys.account_audit(store, entry["account_id"]), entry, maxlen=ACCOUNT_STREAM_MAXLEN, approximate=True
    )
    pipe.xadd(keys.session_audit(store, entry["session_id"]), entry)
    pipe.expire(keys.session_audit(store, entry["session_id"]), SESSION_STREAM_TTL_S)


def _ms(t: float) -> int:
    return max(0, int(t * 1000))


async def query(store: Store, stream_key: str, q: AuditQuery) -> dict[str, Any]:
    start = f"({q.cursor}" if q.cursor else (str(_ms(q.since)) if q.since is not None else "-")
    end = str(_ms(q.until)) if q.until is not None else "+"
    with translate_errors():
        rows = await store.redis.xrange(stream_key, min=start, max=end, count=q.limit + 1)
    entries = []
    for entry_id, fields in rows[: q.limit]:
        item: dict[str, Any] = {"id": entry_id}
        for name in FIELDS:
            item[name] = fields.get(name, "")
        item["time"] = float(item["time"] or 0)
        item["reason"] = item["reason"] or None
        entries.append(item)
    next_cursor = rows[q.limit - 1][0] if len(rows) > q.limit else None
    return {"entries": entries, "next_cursor": next_cursor}


def account_stream(store: Store, aid: str) -> str:
    return keys.account_audit(store, aid)


def session_stream(store: Store, sid: str) -> str:
    return keys.session_audit(store, sid)
