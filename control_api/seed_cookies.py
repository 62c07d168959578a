"""Seed cookies handed over by the banner at consent, turned into jar records.

The record format belongs to ``rewriter/cookies.py`` (``record_from_seed``): host-only, path ``/``,
not HttpOnly, a session cookie, on the host of the page's URL.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from control_api.exceptions import invalid
from control_api.policy import normalize_origin
from rewriter.cookies import record_from_seed

MAX_COOKIES = 200


@dataclass(frozen=True)
class SeedCookie:
    name: str
    value: str
    url: str


def _has_control(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def parse_seed_cookies(raw: Any, allowed_origins: Iterable[str]) -> list[SeedCookie]:
    """Validate the ``cookies`` of an accept; cookies for URLs outside the allowed origins are refused."""
    if raw is None:
        return []
    if not isinstance(raw, list) or len(raw) > MAX_COOKIES:
        raise invalid("cookies", f"must be a list of at most {MAX_COOKIES} cookies")
    allowed = set(allowed_origins)
    result = []
    for index, item in enumerate(raw):
        field = f"cookies[{index}]"
        if not isinstance(item, dict) or set(item) - {"name", "value", "url"}:
            raise invalid(field, "must be an object {name, value, url}")
        name, value, url = item.get("name"), item.get("value"), item.get("url")
        if not isinstance(name, str) or not name or len(name) > 256 or any(c in name for c in "=;, ") \
                or _has_control(name):
            raise invalid(f"{field}.name", "must be a cookie name")
        # (no browser makes a cookie of control characters: a NUL went on to the customer's site)
        if not isinstance(value, str) or len(value) > 4096 or ";" in value or _has_control(value):
            raise invalid(f"{field}.value", "must be a cookie value")
        if not isinstance(url, str) or len(url) > 4096:
            raise invalid(f"{field}.url", "must be an http(s) URL")
        try:  # urlsplit too refuses some ("http://[x")
            parts = urllib.parse.urlsplit(url)
            origin = normalize_origin(f"{parts.scheme}://{parts.netloc}")
        except ValueError as exc:
            raise invalid(f"{field}.url", "must be an http(s) URL") from exc
        if origin not in allowed:
            raise invalid(f"{field}.url", "is outside the account's allowed origins")
        result.append(SeedCookie(name, value, url))
    return result


def jar_records(cookies: Iterable[SeedCookie]) -> dict[str, str]:
    """Jar records (key -> JSON, the format of ``rewriter.cookies``) for the seed cookies."""
    return dict(record_from_seed(c.name, c.value, c.url) for c in cookies)
