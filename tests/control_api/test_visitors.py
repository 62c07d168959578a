"""Availability of a visitor for co-browsing: the reasons in their order of precedence."""

from __future__ import annotations

from typing import Any

import pytest

from control_api.accounts import Account
from control_api.policy import default_policy
from control_api.visitors import AVAILABLE, REASONS, UNAVAILABLE_DETAILS, Visitor, availability


def _account(enabled: bool = True, **policy: Any) -> Account:
    return Account(
        "a1", "Shop", enabled, "sk", 0.0,
        {**default_policy(), "allowed_origins": ["https://shop.example"], **policy},
    )


def _visitor(
    online: bool = True, live: str | None = None, live_state: str | None = None, **state: Any
) -> Visitor:
    return Visitor("v1", "a1", "https://shop.example", 0.0, 0.0, online, live, state, live_state=live_state)


@pytest.mark.parametrize(
    ("account", "visitor", "reason"),
    [
        (_account(min_bandwidth_kbps=256), _visitor(bandwidth_kbps=256), "available"),  # the minimum: enough
        (_account(min_bandwidth_kbps=256), _visitor(bandwidth_kbps=255.9), "low_bandwidth"),
        (_account(min_bandwidth_kbps=256), _visitor(), "low_bandwidth"),  # not measured yet
        (_account(min_bandwidth_kbps=0), _visitor(), "available"),
        # the visitor's site taken out of the policy after they registered on it
        (_account(allowed_origins=["https://b.example"]), _visitor(bandwidth_kbps=1), "origin_not_allowed"),
        (_account(False, allowed_origins=[]), _visitor(), "feature_disabled"),
        (_account(False), _visitor(online=False), "feature_disabled"),
        (_account(), _visitor(online=False, live="s1", bandwidth_kbps=1), "visitor_offline"),
        (_account(), _visitor(live="s1", bandwidth_kbps=1), "session_live"),
        (_account(), _visitor(live="s1", live_state="active", bandwidth_kbps=1), "session_live"),
        (_account(), _visitor(live="s1", live_state="pending", bandwidth_kbps=1), "request_pending"),
        (_account(), _visitor(online=False, live="s1", live_state="pending"), "visitor_offline"),
    ],
)
def test_availability_reasons(account: Account, visitor: Visitor, reason: str) -> None:
    assert availability(account, visitor) == reason


def test_every_reason_not_to_co_browse_has_a_sentence_that_is_not_its_code() -> None:
    """POST /sessions says why in ``detail``: it said "...: visitor_offline", the code again."""
    assert set(UNAVAILABLE_DETAILS) == set(REASONS) - {AVAILABLE}
    for reason, detail in UNAVAILABLE_DETAILS.items():
        assert reason not in detail and " " in detail
