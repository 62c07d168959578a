"""Account policy as data: one table of keys with their type, default and validator (DESIGN.md "Policy").

``validate_policy(data, base)`` returns a complete policy dict or raises a 422 ``ApiError`` naming
the offending field. PUT validates against the defaults, PATCH against the current policy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cssselect import GenericTranslator, SelectorError

from control_api.exceptions import ApiError
from rewriter.exceptions import RewriteError
from rewriter.urls import Origin

MAX_ORIGINS = 50
MAX_SELECTORS = 100
MAX_SELECTOR_LEN = 500


def _policy_error(field: str, detail: str) -> ApiError:
    return ApiError(422, "invalid_policy", f"{field}: {detail}", field=field)


def _choice(*values: str) -> Callable[[str, Any], Any]:
    def check(field: str, value: Any) -> Any:
        if value not in values:
            raise _policy_error(field, f"must be one of {', '.join(values)}")
        return value

    return check


def _bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _policy_error(field, "must be a boolean")
    return value


def _int_range(low: int, high: int) -> Callable[[str, Any], int]:
    def check(field: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _policy_error(field, "must be an integer")
        if not low <= value <= high:
            raise _policy_error(field, f"must be between {low} and {high}")
        return value

    return check


def _number_range(low: float, high: float) -> Callable[[str, Any], float | int]:
    def check(field: str, value: Any) -> float | int:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _policy_error(field, "must be a number")
        # isfinite only for floats: an integer past float range (10**400) makes it raise
        if isinstance(value, float) and not math.isfinite(value):
            raise _policy_error(field, "must be a number")
        if not low <= value <= high:
            raise _policy_error(field, f"must be between {low} and {high}")
        return value

    return check


def normalize_origin(text: str) -> str:
    """``https://Shop.Example:443`` -> ``https://shop.example``; ValueError for anything but an origin."""
    if not isinstance(text, str) or not text or len(text) > 300:
        raise ValueError("must be an origin such as https://shop.example")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    host_port = rest[:-1] if rest.endswith("/") else rest
    if not host_port or any(c in host_port for c in "/?#@\\ \t\r\n"):
        raise ValueError("must be scheme://host[:port] with no path, query or user")
    if "*" in host_port:  # (no browser sends it as an Origin: it could never match)
        raise ValueError("wildcards are not supported: list each origin (https://www.shop.example)")
    try:
        return Origin.parse(text.rstrip("/")).serialize()
    except RewriteError as exc:
        raise ValueError(str(exc) or "not a valid origin") from exc


def _origins(field: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _policy_error(field, "must be a list of origins")
    if len(value) > MAX_ORIGINS:
        raise _policy_error(field, f"at most {MAX_ORIGINS} origins")
    result: list[str] = []
    for index, item in enumerate(value):
        try:
            origin = normalize_origin(item)
        except ValueError as exc:
            raise _policy_error(f"{field}[{index}]", str(exc)) from exc
        if origin not in result:
            result.append(origin)
    return result


_TRANSLATOR = GenericTranslator()


# What cssselect takes and browsers refuse (``querySelector`` throws, and the visitor's banner
# could not tell which fields the rule names): an id that does not start as a name does (``#1a``,
# ``#-1a``), cssselect's own ``:contains()``, a namespace (``ns|a``; ``|=`` in brackets is CSS).
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)
_NOT_IN_BROWSERS = (
    (re.compile(r"#-?[0-9]"), "an id must not start with a digit (escape it: #\\31 ...)"),
    (re.compile(r":contains\(", re.I), ":contains() is not CSS"),
    (re.compile(r"\|(?!=)"), "namespaces are not supported"),
)


def check_selector(selector: str) -> None:
    """ValueError unless ``selector`` is a CSS selector cssselect can compile (the server masks
    with it) and browsers parse too (the banner and the runtime mask with them)."""
    try:
        _TRANSLATOR.css_to_xpath(selector)
    except (SelectorError, ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"invalid CSS selector {selector!r}") from exc
    bare = _QUOTED.sub('""', selector)
    for pattern, why in _NOT_IN_BROWSERS:
        if pattern.search(bare):
            raise ValueError(f"invalid CSS selector {selector!r}: {why}")


def _selectors(field: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _policy_error(field, "must be a list of CSS selectors")
    if len(value) > MAX_SELECTORS:
        raise _policy_error(field, f"at most {MAX_SELECTORS} selectors")
    result: list[str] = []
    for index, item in enumerate(value):
        name = f"{field}[{index}]"
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_SELECTOR_LEN:
            raise _policy_error(name, f"must be a non-empty string of at most {MAX_SELECTOR_LEN} characters")
        try:
            check_selector(item.strip())
        except ValueError as exc:
            raise _policy_error(name, str(exc)) from exc
        result.append(item.strip())
    return result


@dataclass(frozen=True)
class PolicyKey:
    name: str
    default: Any
    check: Callable[[str, Any], Any]
    schema: Mapping[str, Any]
    description: str


POLICY_KEYS: tuple[PolicyKey, ...] = (
    PolicyKey(
        "consent",
        "request",
        _choice("request", "none"),
        {"type": "string", "enum": ["request", "none"]},
        "ask the visitor first, or start at once",
    ),
    PolicyKey(
        "agent_interface",
        "popin",
        _choice("popin", "tab"),
        {"type": "string", "enum": ["popin", "tab"]},
        "virtual browser in a pop-in window or a tab",
    ),
    PolicyKey(
        "allowed_origins",
        [],
        _origins,
        {"type": "array", "maxItems": MAX_ORIGINS, "items": {"type": "string", "format": "uri"}},
        "origins that may be co-browsed (and may embed the banner)",
    ),
    PolicyKey(
        "masked_selectors",
        [],
        _selectors,
        {
            "type": "array",
            "maxItems": MAX_SELECTORS,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_SELECTOR_LEN},
        },
        "CSS selectors whose values never leave the visitor's browser",
    ),
    PolicyKey(
        "seed_cookies",
        True,
        _bool,
        {"type": "boolean"},
        "at consent, the banner hands the page's non-HttpOnly cookies to the session's jar",
    ),
    PolicyKey("agent_can_navigate", False, _bool, {"type": "boolean"}, "the agent may navigate the visitor"),
    PolicyKey(
        "consent_timeout_s",
        60,
        _int_range(5, 3600),
        {"type": "integer", "minimum": 5, "maximum": 3600},
        "seconds the visitor has to answer",
    ),
    PolicyKey(
        "session_max_s",
        3600,
        _int_range(60, 86400),
        {"type": "integer", "minimum": 60, "maximum": 86400},
        "longest session, seconds",
    ),
    PolicyKey(
        "idle_timeout_s",
        600,
        _int_range(30, 86400),
        {"type": "integer", "minimum": 30, "maximum": 86400},
        "seconds without activity before a session ends",
    ),
    PolicyKey(
        "min_bandwidth_kbps",
        256,
        _number_range(0, 10_000_000),
        {"type": "number", "minimum": 0, "maximum": 10_000_000},
        "visitors below this cannot be co-browsed",
    ),
)
POLICY_BY_NAME = {key.name: key for key in POLICY_KEYS}


def default_policy() -> dict[str, Any]:
    return {
        key.name: (list(key.default) if isinstance(key.default, list) else key.default) for key in POLICY_KEYS
    }


def narrows(old: Mapping[str, Any], new: Mapping[str, Any], *, pending: bool = False) -> bool:
    """True when ``new`` lets a session made under ``old`` show or do less: a masked selector
    added, an allowed origin removed, navigation by the agent taken away, consent required where
    it was not, or (for a session still ``pending``, whose consent would hand them over) the
    visitor's cookies no longer seeded. A live session keeps the policy it was made under, so such
    a change ends it (an administrator who masks a field means it to stop reaching agents now)."""
    return bool(
        set(new["masked_selectors"]) - set(old["masked_selectors"])
        or set(old["allowed_origins"]) - set(new["allowed_origins"])
        or (old["agent_can_navigate"] and not new["agent_can_navigate"])
        or (old["consent"] == "none" and new["consent"] != "none")
        or (pending and old["seed_cookies"] and not new["seed_cookies"])
    )


def validate_policy(data: Any, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge ``data`` over ``base`` (defaults when None), checking every given key."""
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_policy", "the policy must be a JSON object", field="policy")
    result = dict(base) if base is not None else default_policy()
    for name, value in data.items():
        key = POLICY_BY_NAME.get(name)
        if key is None:
            raise _policy_error(str(name), "unknown policy key")
        result[name] = key.check(name, value)
    return result


def policy_schema(required: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            k.name: {**k.schema, "description": k.description, "default": k.default} for k in POLICY_KEYS
        },
    }
    if required:
        schema["required"] = [k.name for k in POLICY_KEYS]
    return schema


# What an agent's console knows of its account's policy (``GET /me``, and the agent socket's
# ``policy`` message when an administrator changes it).
AGENT_POLICY_KEYS = ("agent_interface", "agent_can_navigate", "consent", "min_bandwidth_kbps")


def agent_view(policy: Mapping[str, Any]) -> dict[str, Any]:
    return {key: policy[key] for key in AGENT_POLICY_KEYS if key in policy}
