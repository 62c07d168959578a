"""The policy table: every key of DESIGN.md with its default, and 422s that name the field."""

from __future__ import annotations

from typing import Any

import pytest

from control_api.exceptions import ApiError
from control_api.policy import POLICY_KEYS, PolicyKey, default_policy, normalize_origin, validate_policy

DESIGN_DEFAULTS = {
    "consent": "request",
    "agent_interface": "popin",
    "allowed_origins": [],
    "masked_selectors": [],
    "seed_cookies": True,
    "agent_can_navigate": False,
    "consent_timeout_s": 60,
    "session_max_s": 3600,
    "idle_timeout_s": 600,
    "min_bandwidth_kbps": 256,
}


def test_defaults_are_design_md() -> None:
    assert default_policy() == DESIGN_DEFAULTS
    assert {k.name for k in POLICY_KEYS} == set(DESIGN_DEFAULTS)


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"consent": "maybe"}, "consent"),
        ({"agent_interface": "window"}, "agent_interface"),
        ({"seed_cookies": 1}, "seed_cookies"),
        ({"agent_can_navigate": "yes"}, "agent_can_navigate"),
        ({"consent_timeout_s": 1.5}, "consent_timeout_s"),
        ({"consent_timeout_s": True}, "consent_timeout_s"),
        ({"session_max_s": 10}, "session_max_s"),
        ({"idle_timeout_s": "600"}, "idle_timeout_s"),
        ({"min_bandwidth_kbps": -1}, "min_bandwidth_kbps"),
        ({"min_bandwidth_kbps": 10**400}, "min_bandwidth_kbps"),  # past float range: was a 500
        ({"allowed_origins": "https://a.example"}, "allowed_origins"),
        ({"allowed_origins": ["https://a.example", "https://a.example/path"]}, "allowed_origins[1]"),
        ({"allowed_origins": ["ftp://a.example"]}, "allowed_origins[0]"),
        ({"allowed_origins": ["https://user@a.example"]}, "allowed_origins[0]"),
        ({"masked_selectors": ["#ok", "[[["]}, "masked_selectors[1]"),
        ({"masked_selectors": ["input:nth-child(x)"]}, "masked_selectors[0]"),
        ({"masked_selectors": [""]}, "masked_selectors[0]"),
        ({"masked_selectors": [3]}, "masked_selectors[0]"),
        # cssselect takes these, browsers do not: the banner could not tell which fields they name
        ({"masked_selectors": ["form input[name=card], #1abc"]}, "masked_selectors[0]"),
        ({"masked_selectors": ["#ok", "#-1a"]}, "masked_selectors[1]"),
        ({"masked_selectors": ['p:contains("card")']}, "masked_selectors[0]"),
        ({"masked_selectors": ["ns|input"]}, "masked_selectors[0]"),
        ({"allowed_origins": ["https://*.shop.example"]}, "allowed_origins[0]"),
    ],
)
def test_invalid_values_name_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(ApiError) as info:
        validate_policy(patch)
    assert info.value.status == 422
    assert info.value.field == field
    assert field in info.value.detail


def test_selectors_browsers_take_are_kept() -> None:
    """What looks like the refused forms but is CSS: an escaped id, ``|=``, a quoted ``#1``."""
    kept = ["#\\31 abc", "[lang|=en]", '[href="#1"]', "a[title='x|y']", "#card-number"]
    assert validate_policy({"masked_selectors": kept})["masked_selectors"] == kept


def test_list_keys_take_up_to_their_limit_and_no_more() -> None:
    origins = [f"https://s{i}.example" for i in range(51)]
    assert len(validate_policy({"allowed_origins": origins[:50]})["allowed_origins"]) == 50
    selectors = [f"#f{i}" for i in range(101)]
    assert len(validate_policy({"masked_selectors": selectors[:100]})["masked_selectors"]) == 100
    for patch, field in (({"allowed_origins": origins}, "allowed_origins"),
                         ({"masked_selectors": selectors}, "masked_selectors")):
        with pytest.raises(ApiError) as info:
            validate_policy(patch)
        assert (info.value.status, info.value.field) == (422, field)


@pytest.mark.parametrize(
    "key", [k for k in POLICY_KEYS if k.schema.get("type") in ("integer", "number")], ids=lambda k: k.name
)
def test_number_keys_take_both_ends_of_their_range_and_nothing_past_them(key: PolicyKey) -> None:
    """Each end of the range the schema publishes is valid; one past either end is a 422 naming
    the key (only the schema and the error message said where the ranges start)."""
    low, high = key.schema["minimum"], key.schema["maximum"]
    step = 1 if key.schema["type"] == "integer" else 0.001
    for value in (low, high):
        assert validate_policy({key.name: value})[key.name] == value
    for value in (low - step, high + step):
        with pytest.raises(ApiError) as info:
            validate_policy({key.name: value})
        assert (info.value.status, info.value.field) == (422, key.name)


def test_patch_merges_over_base_and_normalises() -> None:
    base = validate_policy({"consent": "none"})
    merged = validate_policy(
        {
            "allowed_origins": ["HTTPS://Shop.Example:443/", "http://127.0.0.1:8002"],
            "masked_selectors": [" #card "],
        },
        base=base,
    )
    assert merged["consent"] == "none"
    assert merged["allowed_origins"] == ["https://shop.example", "http://127.0.0.1:8002"]
    assert merged["masked_selectors"] == ["#card"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://shop.example", "https://shop.example"),
        ("http://Shop.Example:80", "http://shop.example"),
        ("http://127.0.0.1:8002", "http://127.0.0.1:8002"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_normalize_origin(text: str, expected: str) -> None:
    assert normalize_origin(text) == expected


@pytest.mark.parametrize(
    "text", ["", "shop.example", "https://", "https://a.example/x", "https://a.example?q", "javascript:x"]
)
def test_normalize_origin_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_origin(text)
