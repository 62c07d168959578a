"""The audit trail's time bounds and pages (control_api/audit.py)."""

from __future__ import annotations

from control_api.audit import AuditQuery, query
from control_api.store import Store

# (stream id, time): the id is the Redis server's clock, the time the API process's: they differ
ENTRIES = [("10000-0", "9.998"), ("10005-0", "10.003"), ("10006-0", "10.004"), ("20000-0", "20.0")]


async def _stream(store: Store) -> str:
    key = store.key("audit-test")
    for entry_id, time in ENTRIES:
        await store.redis.xadd(key, {"session_id": "s", "to": "x", "time": time}, id=entry_id)
    return key


async def _ids(store: Store, key: str, **bounds: float) -> list[str]:
    page = await query(store, key, AuditQuery(bounds.get("since"), bounds.get("until"), None, 100))
    return [e["id"] for e in page["entries"]]


async def test_since_and_until_bound_each_entrys_time_not_its_id(store: Store) -> None:
    """An entry written at 9.998 s by its API process got a stream id of 10.000 s from Redis:
    ``until=9.998`` left it out and ``since=9.999`` took it in."""
    key = await _stream(store)
    assert await _ids(store, key, until=9.998) == ["10000-0"]
    assert await _ids(store, key, since=9.999) == ["10005-0", "10006-0", "20000-0"]
    assert await _ids(store, key, since=10.003, until=10.003) == ["10005-0"]
    assert await _ids(store, key, since=0, until=30) == [i for i, _ in ENTRIES]


async def test_pages_within_bounds_hold_the_limit_and_end_with_no_cursor(store: Store) -> None:
    key = await _stream(store)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await query(store, key, AuditQuery(9.999, 25.0, cursor, 2))
        pages += 1
        seen += [e["id"] for e in page["entries"]]
        assert len(page["entries"]) == 2 or page["next_cursor"] is None
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["10005-0", "10006-0", "20000-0"] and pages == 2
