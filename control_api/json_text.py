"""JSON text from clients (HTTP bodies, WebSocket messages): parsed, or refused as one ValueError."""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"the name {json.dumps(key)[:80]} appears twice in one object")
            seen.add(key)
    return data


def loads(text: str | bytes) -> Any:
    """``json.loads``, with every way client text fails to be usable data raised as ``ValueError``:
    not JSON, not UTF-8, nested too deeply for the parser (``RecursionError``), holding a lone
    UTF-16 surrogate (``"\\ud800"``), which parses but can be neither stored nor sent on as
    UTF-8 (a pair of them, one character, is fine), or naming a member twice in one object
    (``{"a": 1, "a": 2}``: RFC 8259 leaves which one counts to each reader, so a client, a
    gateway and we could each act on a different one; we take neither)."""
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise ValueError("a string holds a lone UTF-16 surrogate")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return data
