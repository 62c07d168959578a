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


# An entry's ``time`` is the clock of the API process that wrote it, its stream id the Redis
# server's: ``since``/``until`` bound ``time`` (inclusive), and the ids are read this much wider.
CLOCK_SKEW_MS = 5_000
MAX_BATCHES = 20  # read for one page at most (then the page ends there, with a cursor)


def _entry(entry_id: str, fields: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": entry_id}
    for name in FIELDS:
        item[name] = fields.get(name, "")
    item["time"] = float(item["time"] or 0)
    item["reason"] = item["reason"] or None
    return item


async def query(store: Store, stream_key: str, q: AuditQuery) -> dict[str, Any]:
    """One page of entries in id order: at most ``q.limit``, whose ``time`` is within
    ``since``/``until``; ``next_cursor`` is the id to read on from, or None when nothing is left."""
    if q.cursor:
        start = f"({q.cursor}"
    else:
        start = str(max(0, _ms(q.since) - CLOCK_SKEW_MS)) if q.since is not None else "-"
    end = str(_ms(q.until) + CLOCK_SKEW_MS) if q.until is not None else "+"
    entries: list[dict[str, Any]] = []
    for _ in range(MAX_BATCHES):
        with translate_errors():
            rows = await store.redis.xrange(stream_key, min=start, max=end, count=q.limit + 1)
        for entry_id, fields in rows:
            item = _entry(entry_id, fields)
            if (q.since is not None and item["time"] < q.since) or (
                q.until is not None and item["time"] > q.until
            ):
                continue
            if len(entries) == q.limit:  # one more there is: the page ends at the last one
                return {"entries": entries, "next_cursor": entries[-1]["id"]}
            entries.append(item)
        if len(rows) <= q.limit:
            return {"entries": entries, "next_cursor": None}
        start = f"({rows[-1][0]}"
    # a long run of entries outside the bounds (their clocks): the page ends where reading stopped
    return {"entries": entries, "next_cursor": start[1:]}


def account_stream(store: Store, aid: str) -> str:
    return keys.account_audit(store, aid)


def session_stream(store: Store, sid: str) -> str:
    return keys.session_audit(store, sid)
