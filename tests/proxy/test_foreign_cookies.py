"""``proxy.foreign_cookies``: which cookies the proxy expires, for which paths (sans-IO)."""

from __future__ import annotations

import pytest

from proxy.addons import flood_expiries
from proxy.foreign_cookies import (
    FLOOD_BYTES,
    MAX_EXPIRY_BYTES,
    MAX_NAMES,
    cookie_paths,
    expiries,
    flood_names,
    is_own,
)
from rewriter.urls import ProxyConfig

SID = "abcdefghij"
CREDENTIAL = "A" * 42 + "_"  # control_api.tokens.new_token: 43 URL-safe characters
OWN = frozenset({f"__Host-cbjs_{SID}", f"__Host-cbjv_{SID}"})
BIG = "v" * 4100  # four of them (16 KiB) make a flood


def test_the_proxys_own_cookies_are_not_foreign() -> None:
    assert is_own(f"__cb_{SID}", CREDENTIAL, OWN)
    assert is_own("__cb_zyxwvutsrq", CREDENTIAL, OWN)  # another of the agent's sessions
    assert is_own(f"__Host-cbjv_{SID}", BIG, OWN)
    # the shape of a credential's name, not of its value: planted (a flood of them weighs more)
    assert not is_own("__cb_a000000001", BIG, OWN)
    # another session's script cookies never reach this origin unplanted (host-only), nor do the
    # unprefixed names where the proxy uses __Host- ones
    assert not is_own("__Host-cbjv_zyxwvutsrq", "x", OWN)
    assert not is_own(f"__cbjs_{SID}", "x", OWN)
    assert not is_own("__cb_short", CREDENTIAL, OWN)


def test_only_a_flood_is_expired() -> None:
    """Cookies of a parent domain (analytics, consent) reach every proxy origin and no expiry of
    the proxy's removes them: a few are left alone; a flood is the proxy domain's."""
    few = f"__cb_{SID}={CREDENTIAL}; _ga=GA1.2.3; consent=yes"
    assert flood_names([few], OWN) == []
    flood = "; ".join(f"j{i}={BIG}" for i in range(4))
    # the heaviest first: small cookies of a parent domain (no expiry removes them) never take
    # the places of the flood's
    assert flood_names([few + "; " + flood], OWN) == ["j0", "j1", "j2", "j3", "_ga", "consent"]
    crowd = "; ".join(f"p{i}=1" for i in range(MAX_NAMES + 5))
    assert flood_names([crowd + "; " + flood], OWN)[:4] == ["j0", "j1", "j2", "j3"]
    assert sum(len(f"j{i}") + len(BIG) for i in range(4)) >= FLOOD_BYTES
    # planted under the proxy's own names (with a value a credential never has): still a flood
    fake = "; ".join(f"__cb_a00000000{i}={BIG}" for i in range(4))
    assert flood_names([fake], OWN) == [f"__cb_a00000000{i}" for i in range(4)]


def test_names_are_given_back_as_they_came_bounded_host_ones_last() -> None:
    odd = ["x(1)", "x:0", "ünï", "a b"]
    header = "; ".join(f"{name}={BIG}" for name in odd) + "; nameless; =empty; bad;name=1"
    assert flood_names([header], OWN) == [*odd, "name"]
    host = "; ".join(f"__Host-h{i}={BIG}" for i in range(40))
    domain_wide = "; ".join(f"j{i}={BIG}" for i in range(MAX_NAMES + 10))
    # __Host- ones cannot be the whole domain's: they never take the domain's flood's places
    picked = flood_names([host + "; " + domain_wide], OWN)
    assert len(picked) == MAX_NAMES and not [n for n in picked if n.startswith("__Host-")]
    assert len(flood_names([host], OWN)) == MAX_NAMES


@pytest.mark.parametrize(
    ("path", "paths"),
    [
        ("/", ["/"]),
        ("/a", ["/", "/a"]),
        ("/a/", ["/", "/a", "/a/"]),
        ("/a/b?x=/c", ["/", "/a", "/a/", "/a/b"]),
        ("/a/b/c/d/e", ["/", "/a", "/a/", "/a/b", "/a/b/", "/a/b/c", "/a/b/c/"]),  # three at most
        ("/a;b/c", ["/"]),  # no ";" in an attribute
        ("*", ["/"]),
    ],
)
def test_cookie_paths_are_those_a_sent_cookie_can_have(path: str, paths: list[str]) -> None:
    assert cookie_paths(path) == paths


def test_expiries_for_secure_contexts_and_plain_http() -> None:
    secure = expiries(["j", "__Host-h"], "cobrowse.localhost", ["/", "/a"], secure=True)
    assert secure == [  # "/" first
        "j=; Max-Age=0; Domain=cobrowse.localhost; Path=/; Secure",
        "j=; Max-Age=0; Domain=cobrowse.localhost; Path=/; Secure; Partitioned",
        "__Host-h=; Max-Age=0; Path=/; Secure",  # host-only: on the origin it was sent to
        "__Host-h=; Max-Age=0; Path=/; Secure; Partitioned",
        "j=; Max-Age=0; Domain=cobrowse.localhost; Path=/a; Secure",
        "j=; Max-Age=0; Domain=cobrowse.localhost; Path=/a; Secure; Partitioned",
    ]
    plain = expiries(["j", "__Host-h"], "proxy.example", ["/"], secure=False)
    assert plain == ["j=; Max-Age=0; Domain=proxy.example; Path=/"]  # no __Host- cookie over http


def test_flood_expiries_know_the_requests_own_session() -> None:
    public = ProxyConfig("cobrowse.localhost", 8001, "http")
    host = f"{SID}h8000-127-0-0-1.cobrowse.localhost:8001"
    own = f"__cb_{SID}={CREDENTIAL}; __Host-cbjs_{SID}={BIG}; __Host-cbjv_{SID}={BIG}"
    assert flood_expiries(public, host, "/", [own + f"; x={BIG}; y={BIG}"]) == []  # 8 KB foreign
    # the same cookies sent to another session's origin: planted there (host-only ones never are)
    other = "zyxwvutsrqh8000-127-0-0-1.cobrowse.localhost:8001"
    expired = flood_expiries(public, other, "/", [own + f"; x={BIG}; y={BIG}"])
    assert {v.split("=", 1)[0] for v in expired} == {f"__Host-cbjs_{SID}", f"__Host-cbjv_{SID}", "x", "y"}


def test_an_answer_holds_a_bounded_number_of_expiries() -> None:
    """Long names on a deep path would make an answer over the 256 KiB a browser takes, and the
    flood would stay: the expiries stop at ``MAX_EXPIRY_BYTES``, those of ``/`` first."""
    names = [f"{i:02d}" + "n" * 4000 for i in range(16)]
    out = expiries(names, "cobrowse.localhost", cookie_paths("/a/b/c/d"), secure=True)
    assert MAX_EXPIRY_BYTES - 8200 < sum(len(v) for v in out) <= MAX_EXPIRY_BYTES
    assert all("Path=/;" in v for v in out)  # the budget went to "/", the path of every request


def test_a_client_cannot_make_the_count_expensive() -> None:
    """64 KiB of tiny cookies (no browser sends them: 180 per domain) are read no further than
    ``MAX_COOKIES``; under ``FLOOD_BYTES`` of headers, nothing is read."""
    assert flood_names(["a=b; " * 13000], OWN) == []  # 400 cookies read: 1.2 KB, no flood
    assert flood_names(["x=" + "v" * 100], OWN) == []
