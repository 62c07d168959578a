"""``proxy.foreign_cookies``: which cookies the proxy expires, for which paths (sans-IO)."""

from __future__ import annotations

import pytest

from proxy.foreign_cookies import MAX_NAMES, cookie_paths, expiries, foreign_names

SID = "abcdefghij"


def test_the_proxys_own_cookies_are_not_foreign() -> None:
    own = [f"__cb_{SID}=c", "__cb_zyxwvutsrq=other-session", f"__cbjs_{SID}=w", f"__cbjv_{SID}=v",
           f"__Host-cbjs_{SID}=w", f"__Host-cbjv_{SID}=v"]
    assert foreign_names(["; ".join(own)]) == []
    # names that only look like them are not the proxy's
    lookalikes = ["__cb_short=1", "__cb_ABCDEFGHIJ=1", f"__cbjx_{SID}=1", "__cbjs=1", f"x__cb_{SID}=1"]
    assert foreign_names(["; ".join(lookalikes)]) == [c.split("=")[0] for c in lookalikes]


def test_foreign_names_once_each_bounded_and_nameable() -> None:
    header = "a=1; a=2;b=3 ; nameless; =empty; bad name=1; bad,name=2; ok-name.1=4"
    assert foreign_names([header, "c=5"]) == ["a", "b", "ok-name.1", "c"]
    many = "; ".join(f"j{i}=v" for i in range(MAX_NAMES + 10))
    assert foreign_names([many]) == [f"j{i}" for i in range(MAX_NAMES)]


@pytest.mark.parametrize(
    ("path", "paths"),
    [
        ("/", ["/"]),
        ("/a", ["/", "/a"]),
        ("/a/", ["/", "/a", "/a/"]),
        ("/a/b?x=/c", ["/", "/a", "/a/", "/a/b"]),
        ("/a/b/c/d", ["/", "/a", "/a/", "/a/b", "/a/b/"]),  # two directories at most
        ("/a;b/c", ["/"]),  # no ";" in an attribute
        ("*", ["/"]),
    ],
)
def test_cookie_paths_are_those_a_sent_cookie_can_have(path: str, paths: list[str]) -> None:
    assert cookie_paths(path) == paths


def test_expiries_name_the_domain_and_leave_host_cookies() -> None:
    assert expiries(["j", "__Host-h", "__Secure-s"], "cobrowse.localhost", ["/", "/a"], secure=True) == [
        "j=; Max-Age=0; Domain=cobrowse.localhost; Path=/; Secure",
        "j=; Max-Age=0; Domain=cobrowse.localhost; Path=/a; Secure",
        "__Secure-s=; Max-Age=0; Domain=cobrowse.localhost; Path=/; Secure",
        "__Secure-s=; Max-Age=0; Domain=cobrowse.localhost; Path=/a; Secure",
    ]
    plain = expiries(["j"], "proxy.example", ["/"], secure=False)
    assert plain == ["j=; Max-Age=0; Domain=proxy.example; Path=/"]
    assert expiries(["j"], "proxy.example", ["/"], secure=None) == [
        "j=; Max-Age=0; Domain=proxy.example; Path=/",
        "j=; Max-Age=0; Domain=proxy.example; Path=/; Secure",
    ]
