"""JSON text from clients (HTTP bodies, WebSocket messages): parsed, or refused as one ValueError."""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")


def loads(text: str | bytes) -> Any:
    """``json.loads``, with every way client text fails to be usable data raised as ``ValueError``:
    not JSON, not UTF-8, nested too deeply for the parser (``RecursionError``), or holding a lone
    UTF-16 surrogate (``"\\ud800"``), which parses but can be neither stored nor sent on as
    UTF-8 (a pair of them, one character, is fine)."""
    try:
        data = json.loads(text)
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
