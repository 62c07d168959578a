"""The cookies a visitor's page hands over at consent: what is refused, and which field says so.
They end up in the ``Cookie`` header the proxy sends upstream, so nothing that could split it."""

from __future__ import annotations

from typing import Any

import pytest

from control_api.exceptions import ApiError
from control_api.seed_cookies import MAX_COOKIES, SeedCookie, parse_seed_cookies

ORIGIN = "https://shop.example"
GOOD = {"name": "cart", "value": "42", "url": ORIGIN + "/cart"}


def test_good_cookies_pass_and_none_is_no_cookies() -> None:
    assert parse_seed_cookies([GOOD], [ORIGIN]) == [SeedCookie("cart", "42", ORIGIN + "/cart")]
    assert parse_seed_cookies(None, [ORIGIN]) == []
    assert len(parse_seed_cookies([GOOD] * MAX_COOKIES, [ORIGIN])) == MAX_COOKIES


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": "a"}, "cookies"),  # not a list
        ("cart=42", "cookies"),
        ([GOOD] * (MAX_COOKIES + 1), "cookies"),
        (["cart=42"], "cookies[0]"),
        ([{**GOOD, "domain": ".example"}], "cookies[0]"),  # a key of its own
        ([GOOD, {**GOOD, "name": ""}], "cookies[1].name"),
        ([{**GOOD, "name": "a=b"}], "cookies[0].name"),
        ([{**GOOD, "name": "a;b"}], "cookies[0].name"),
        ([{**GOOD, "name": "a b"}], "cookies[0].name"),
        ([{**GOOD, "name": "a\r\nX-Evil: 1"}], "cookies[0].name"),
        ([{**GOOD, "name": "n" * 257}], "cookies[0].name"),
        ([{**GOOD, "name": 1}], "cookies[0].name"),
        ([{**GOOD, "value": "1; Domain=evil.example"}], "cookies[0].value"),
        ([{**GOOD, "value": "1\r\nX-Evil: 1"}], "cookies[0].value"),
        ([{**GOOD, "value": "a\u0000b"}], "cookies[0].value"),  # (a NUL went on to the site)
        ([{**GOOD, "value": "a\u007fb"}], "cookies[0].value"),
        ([{**GOOD, "name": "a\u0001"}], "cookies[0].name"),
        ([{**GOOD, "value": "v" * 4097}], "cookies[0].value"),
        ([{**GOOD, "value": None}], "cookies[0].value"),
        ([{**GOOD, "url": 7}], "cookies[0].url"),
        ([{**GOOD, "url": ORIGIN + "/" + "p" * 4096}], "cookies[0].url"),
        ([{**GOOD, "url": "http://[::1"}], "cookies[0].url"),
        ([{**GOOD, "url": "https://elsewhere.example/"}], "cookies[0].url"),
        ([{**GOOD, "url": "javascript:alert(1)"}], "cookies[0].url"),
    ],
)
def test_what_is_refused_names_its_field(raw: Any, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_seed_cookies(raw, [ORIGIN])
    assert (caught.value.status, caught.value.code) == (422, "invalid_request")
    assert caught.value.field == field
