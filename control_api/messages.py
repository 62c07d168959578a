"""The WebSocket protocol as data: every client message type, per side, with its fields' checks.

``parse(side, text, max_bytes)`` returns a ``ClientMessage`` holding only validated fields, or
raises ``ProtocolViolation`` carrying the close code the connection is closed with. The table is
the reference of docs/PROTOCOL.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from control_api import json_text

# Close codes (4000-4999 are the application's own).
CLOSE_NORMAL = 1000
CLOSE_TOO_BIG = 1009
CLOSE_SERVER_ERROR = 1011
CLOSE_TRY_AGAIN = 1013
CLOSE_INVALID = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_AUTH_TIMEOUT = 4408
# a visitor whose account was deleted: its site key is gone too, so registering again cannot work
CLOSE_GONE = 4410
CLOSE_RATE_LIMITED = 4429

MAX_COORD = 10_000_000
MAX_URL = 4096
MAX_TEXT = 1024
MAX_SELECTOR = 1000
MAX_VALUE = 10_000
MAX_POINTS = 1000


class ProtocolViolation(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class ClientMessage:
    type: str
    data: Mapping[str, Any]


Check = Callable[[Any], Any]


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a number")
    # compared before isfinite: an integer past float range (JSON allows 10**400) makes it raise
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > MAX_COORD:
        raise ValueError("out of range")
    return value


def _nonneg(value: Any) -> float:
    value = _num(value)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _text(limit: int) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit:
            raise ValueError(f"must be a string of at most {limit} characters")
        return value

    return check


def _nonempty_text(limit: int) -> Check:
    inner = _text(limit)

    def check(value: Any) -> str:
        value = inner(value)
        if not value:
            raise ValueError("must not be empty")
        return value

    return check


def _url(value: Any) -> str:
    value = _nonempty_text(MAX_URL)(value)
    if not value[:8].lower().startswith(("http://", "https://")):  # (a scheme has no case)
        raise ValueError("must be an absolute http(s) URL")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be a boolean")
    return value


def _session_id(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 10 or not value.isalnum() or not value.islower():
        raise ValueError("must be a session id")
    return value


def _anchor(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("must be an object {selector, offset}")
    return {
        "selector": _nonempty_text(MAX_SELECTOR)(value.get("selector")),
        "offset": _num(value.get("offset")),
    }


def _attrs(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > 20:
        raise ValueError("must be an object of at most 20 string attributes")
    result = {}
    for name, item in value.items():
        if (
            not isinstance(name, str)
            or not name
            or len(name) > 64
            or not isinstance(item, str)
            or len(item) > 500
        ):
            raise ValueError("attribute names and values must be short strings")
        result[name] = item
    return result


def _points(value: Any) -> list[list[float]]:
    if not isinstance(value, list) or not value or len(value) > MAX_POINTS:
        raise ValueError(f"must be a list of 1 to {MAX_POINTS} [x, y] points")
    points = []
    for point in value:
        if not isinstance(point, list) or len(point) != 2:
            raise ValueError("each point must be [x, y]")
        points.append([_num(point[0]), _num(point[1])])
    return points


@dataclass(frozen=True)
class FieldSpec:
    check: Check
    required: bool = True


def req(check: Check) -> FieldSpec:
    return FieldSpec(check, True)


def opt(check: Check) -> FieldSpec:
    return FieldSpec(check, False)


@dataclass(frozen=True)
class MessageSpec:
    fields: Mapping[str, FieldSpec]
    forward: bool  # relayed to the other side of the session
    description: str


SID = {"session_id": req(_session_id)}
SID_OPT = {"session_id": opt(_session_id)}

VISITOR_MESSAGES: Mapping[str, MessageSpec] = {
    "ping": MessageSpec({}, False, "keep-alive; answered with pong"),
    "page": MessageSpec(
        {**SID_OPT, "url": req(_url), "title": opt(_text(MAX_TEXT))},
        True,
        "the visitor's page changed (load or client-side navigation)",
    ),
    "scroll": MessageSpec(
        {**SID_OPT, "x": req(_num), "y": req(_num), "anchor": opt(_anchor),
         "target": opt(_nonempty_text(MAX_SELECTOR))},
        True,
        "the visitor scrolled the page (document coordinates, CSS px), or the element `target` names",
    ),
    "viewport": MessageSpec(
        {**SID_OPT, "width": req(_nonneg), "height": req(_nonneg)}, True, "the visitor's viewport size"
    ),
    "bandwidth": MessageSpec({"kbps": req(_nonneg)}, False, "measured download bandwidth"),
    "field": MessageSpec(
        {
            **SID_OPT,
            "selector": req(_nonempty_text(MAX_SELECTOR)),
            "input_type": req(_text(64)),
            "value": opt(_text(MAX_VALUE)),
            "checked": opt(_bool),
            "tag": opt(_text(64)),
            "attrs": opt(_attrs),
        },
        True,
        "a form field's value changed (dropped when masked)",
    ),
    "pointer": MessageSpec({**SID_OPT, "x": req(_num), "y": req(_num)}, True, "the visitor's pointer"),
}

AGENT_MESSAGES: Mapping[str, MessageSpec] = {
    "ping": MessageSpec({}, False, "keep-alive; answered with pong"),
    "pointer": MessageSpec({**SID, "x": req(_num), "y": req(_num)}, True, "the agent's pointer"),
    "highlight": MessageSpec(
        {**SID, "selector": req(_nonempty_text(MAX_SELECTOR))},
        True,
        "highlight an element on the visitor's page",
    ),
    "draw": MessageSpec(
        {**SID, "points": req(_points), "color": opt(_text(32)), "width": opt(_nonneg)},
        True,
        "a stroke drawn over the visitor's page",
    ),
    "clear": MessageSpec(SID, True, "remove highlights and drawings"),
    "resync": MessageSpec(
        SID, True, "ask the visitor to report page, viewport, scroll and fields again (a view just connected)"
    ),
    "navigate": MessageSpec(
        {**SID, "url": req(_url)}, True, "navigate the visitor (only with policy agent_can_navigate)"
    ),
    "active": MessageSpec(
        SID, False, "the agent is using the view (clicks, keys, wheel): session activity, not relayed"
    ),
}

MESSAGES: Mapping[str, Mapping[str, MessageSpec]] = {"visitor": VISITOR_MESSAGES, "agent": AGENT_MESSAGES}


def decode(text: str | bytes, max_bytes: int) -> dict[str, Any]:
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text)
    if size > max_bytes:
        raise ProtocolViolation(CLOSE_TOO_BIG, f"message larger than {max_bytes} bytes")
    try:
        data = json_text.loads(text)
    except ValueError as exc:  # UnicodeDecodeError too
        raise ProtocolViolation(CLOSE_INVALID, "message is not usable JSON") from exc
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolViolation(CLOSE_INVALID, "message must be a JSON object with a string type")
    return data


def parse(side: str, text: str | bytes, max_bytes: int) -> ClientMessage:
    data = decode(text, max_bytes)
    spec = MESSAGES[side].get(data["type"])
    if spec is None:
        raise ProtocolViolation(CLOSE_INVALID, f"unknown message type {data['type'][:40]!r}")
    clean: dict[str, Any] = {}
    for name, field in spec.fields.items():
        if name not in data or data[name] is None:
            if field.required:
                raise ProtocolViolation(CLOSE_INVALID, f"{data['type']}: {name} is required")
            continue
        try:
            clean[name] = field.check(data[name])
        except ValueError as exc:
            raise ProtocolViolation(CLOSE_INVALID, f"{data['type']}: {name} {exc}") from exc
    return ClientMessage(data["type"], clean)
