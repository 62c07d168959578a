"""Which jar cookies a request carries by its site (SameSite, schemeful), which page a script's
cookie write belongs to, and the limits on script writes: in the functions, and over HTTP on
made-up names (a fake resolver) so that two sites are two registrable domains."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from proxy import cookie_sync
from proxy.egress import EgressPolicy
from rewriter.urls import Origin, ProxyConfig, UrlMapper
from tests.proxy import fake_dns as dns
from tests.proxy.conftest import Harness, OpenSession, Sites
from tests.proxy.fake_dns import FakeDns

SID = "k3j9x2ab7q"
SHOP = Origin.parse("https://shop.example")
SAME_SITE = Origin.parse("https://www.shop.example")
OTHER_SITE = Origin.parse("https://evil.example")
PLAIN_HTTP = Origin.parse("http://shop.example")  # same registrable domain, other scheme
MAPPER = UrlMapper(SID, ProxyConfig(), [SHOP, SAME_SITE, OTHER_SITE, PLAIN_HTTP])


def _proxy(origin: Origin, path: str = "") -> str:
    return MAPPER.proxy_origin(origin) + path


def _flow(headers: dict[str, str], path: str = "/cart/add") -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request = http.Request.make("POST", f"http://127.0.0.1:1{path}", b"", headers)
    return flow


@pytest.mark.parametrize(
    ("headers", "same_site"),
    [
        ({}, True),  # no Fetch Metadata (an old browser): as before SameSite existed
        ({"sec-fetch-site": "none"}, True),
        ({"sec-fetch-site": "same-origin"}, True),
        # the browser's "cross-site" is about proxy hosts; the upstream sites decide
        ({"sec-fetch-site": "cross-site", "origin": _proxy(SAME_SITE)}, True),
        ({"sec-fetch-site": "cross-site", "referer": _proxy(SAME_SITE, "/p?q=1")}, True),
        ({"sec-fetch-site": "cross-site", "origin": _proxy(OTHER_SITE)}, False),
        ({"sec-fetch-site": "cross-site", "referer": _proxy(OTHER_SITE, "/p")}, False),
        ({"sec-fetch-site": "same-site", "origin": _proxy(OTHER_SITE)}, False),
        # schemeful: http and https of one registrable domain are two sites
        ({"sec-fetch-site": "same-site", "origin": _proxy(PLAIN_HTTP)}, False),
        ({"sec-fetch-site": "cross-site", "referer": _proxy(PLAIN_HTTP, "/")}, False),
        # no initiator, or an opaque one, is cross-site
        ({"sec-fetch-site": "cross-site"}, False),
        ({"sec-fetch-site": "same-site"}, False),
        ({"sec-fetch-site": "cross-site", "origin": "", "referer": ""}, False),
        ({"sec-fetch-site": "same-site", "origin": "null"}, False),
        ({"sec-fetch-site": "cross-site", "origin": "null", "referer": _proxy(SAME_SITE, "/")}, False),
        # an initiator that is no page of this session
        ({"sec-fetch-site": "cross-site", "origin": "https://www.shop.example"}, False),
    ],
)
def test_same_site_in_upstream_terms(headers: dict[str, str], same_site: bool) -> None:
    assert cookie_sync._same_site(_flow(headers), MAPPER, SHOP) is same_site


@pytest.mark.parametrize(
    ("referer", "page"),
    [
        (_proxy(SHOP, "/deep/dir/page?x=1"), "https://shop.example/deep/dir/page?x=1"),
        (None, "https://shop.example/cart/add"),
        # a page of another origin cannot be where this origin's cookie was written
        (_proxy(SAME_SITE, "/deep/dir/page"), "https://shop.example/cart/add"),
        (_proxy(OTHER_SITE, "/deep/dir/page"), "https://shop.example/cart/add"),
        (_proxy(PLAIN_HTTP, "/deep/dir/page"), "https://shop.example/cart/add"),
        ("https://shop.example/deep/dir/page", "https://shop.example/cart/add"),  # no page of the proxy
        ("not a url", "https://shop.example/cart/add"),
    ],
)
def test_the_page_of_a_script_write_is_a_page_of_the_requests_origin(referer: str | None, page: str) -> None:
    flow = _flow({"referer": referer} if referer else {})
    assert cookie_sync._page_url(flow, MAPPER, SHOP) == page


def test_script_writes_are_capped() -> None:
    writes = [f"c{i}=1" for i in range(cookie_sync.MAX_SCRIPT_WRITES + 5)]
    raw = urllib.parse.quote(json.dumps(writes))
    assert cookie_sync._script_writes(raw) == writes[: cookie_sync.MAX_SCRIPT_WRITES]


# -- over HTTP: shop.one.test and www.one.test are one site, evil.two.test another; the fake
# resolver sends all three to the shop fixture on 127.0.0.1


@pytest.fixture
def named(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> tuple[OpenSession, str, dict[str, str]]:
    fake: FakeDns = dns.install(monkeypatch)
    origins = {
        "shop": f"http://shop.one.test:{sites.shop.port}",
        "www": f"http://www.one.test:{sites.shop.port}",
        "evil": f"http://evil.two.test:{sites.shop.port}",
    }
    for origin in origins.values():
        fake.answers[Origin.parse(origin).host] = [["127.0.0.1"]]
    harness.proxy.ctx.egress = EgressPolicy(origins.values())
    s = harness.open_session(tuple(origins.values()))
    return s, harness.credential(s), origins


def _echo_cookies(
    harness: Harness, s: OpenSession, credential: str, origin: str, headers: dict[str, str],
    method: str = "GET",
) -> dict[str, str]:
    r = harness.get(s, harness.host(s, origin), "/echo-headers", credential=credential, headers=headers,
                    method=method)
    assert r.status_code == 200, r.text
    header = r.json().get("cookie", "")
    return dict(p.strip().split("=", 1) for p in header.split(";") if "=" in p)


def _write(harness: Harness, s: OpenSession, credential: str, origin: str, writes: list[str],
           headers: dict[str, str] | None = None) -> dict[str, str]:
    cbjs = urllib.parse.quote(json.dumps(writes))
    cookie = f"__Host-cbjs_{s.sid}={cbjs}"
    return _echo_cookies(harness, s, credential, origin, {"cookie": cookie, **(headers or {})})


def test_a_cross_site_request_carries_no_lax_or_strict_cookie(
    harness: Harness, named: tuple[OpenSession, str, dict[str, str]]
) -> None:
    s, credential, origins = named
    shop = origins["shop"]
    _write(harness, s, credential, shop, ["lax=1; SameSite=Lax", "strict=1; SameSite=Strict", "plain=1"])
    everything = {"lax": "1", "strict": "1", "plain": "1"}

    def fetch(initiator: str, mode: str = "cors", site: str = "cross-site", method: str = "GET",
              ) -> dict[str, str]:
        proxy_initiator = f"http://{harness.host(s, initiator)}"
        headers = {"sec-fetch-site": site, "sec-fetch-mode": mode, "origin": proxy_initiator,
                   "referer": proxy_initiator + "/page"}
        return _echo_cookies(harness, s, credential, shop, headers, method)

    assert fetch(origins["www"]) == everything  # another proxy host, the same upstream site
    assert fetch(origins["evil"]) == {}
    # a top-level navigation from another site carries Lax cookies (and those without SameSite)
    assert fetch(origins["evil"], mode="navigate") == {"lax": "1", "plain": "1"}
    # ...by a safe method only: a cross-site form post carries none (the site's CSRF defence)
    assert fetch(origins["evil"], mode="navigate", method="POST") == {}
    assert fetch(origins["www"], mode="navigate", method="POST") == everything


def test_the_upstream_hears_its_own_sites_in_sec_fetch_site(
    harness: Harness, named: tuple[OpenSession, str, dict[str, str]]
) -> None:
    """Every proxy origin is on the proxy's site, so the browser says same-site between any two
    of them: the upstream hears the relation of the upstream origins instead."""
    s, credential, origins = named

    def heard(initiator: str | None) -> str:
        headers = {"sec-fetch-site": "same-site", "sec-fetch-mode": "cors"}
        if initiator is not None:
            headers["origin"] = f"http://{harness.host(s, initiator)}"
        r = harness.get(s, harness.host(s, origins["shop"]), "/echo-headers", credential=credential,
                        headers=headers)
        return str(r.json()["sec-fetch-site"])

    assert heard(origins["www"]) == "same-site"
    assert heard(origins["evil"]) == "cross-site"
    assert heard(None) == "cross-site"  # no initiator of this session: nothing says it is the site's


def test_a_script_write_belongs_to_the_requests_origin_whatever_the_referer(
    harness: Harness, named: tuple[OpenSession, str, dict[str, str]]
) -> None:
    s, credential, origins = named
    shop, evil = origins["shop"], origins["evil"]
    # a shop request whose Referer is a page of the other site: the write is the shop's, on path /
    referer = f"http://{harness.host(s, evil)}/deep/dir/page"
    assert _write(harness, s, credential, shop, ["w=1"], {"referer": referer}) == {"w": "1"}
    assert _echo_cookies(harness, s, credential, evil, {}) == {}
    # from a page of the shop itself, the write takes that page's default path
    shop_page = f"http://{harness.host(s, shop)}/deep/dir/page"
    assert _write(harness, s, credential, shop, ["d=1"], {"referer": shop_page}) == {"w": "1"}
    view = harness.get(s, harness.host(s, shop), "/__cobrowse/cookies", credential=credential, method="POST",
                       json={"url": shop + "/deep/dir/page", "cookies": []})
    assert [(c["name"], c["path"]) for c in view.json()["cookies"]] == [("d", "/deep/dir"), ("w", "/")]


def test_the_cookie_post_is_held_to_its_size_and_number_of_writes(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    limit = 200
    monkeypatch.setattr(cookie_sync, "MAX_POST_BYTES", limit)
    monkeypatch.setattr(cookie_sync, "MAX_SCRIPT_WRITES", 3)

    def post(content: bytes) -> Any:
        return harness.get(s, host, "/__cobrowse/cookies", credential=credential, method="POST",
                           content=content)

    writes = ["a=1", "b=1", "c=1", "d=1", "e=1"]
    body = json.dumps({"url": sites.shop.origin + "/", "cookies": writes}).encode()
    at_limit = body + b" " * (limit - len(body))  # JSON allows trailing white space
    ok = post(at_limit)
    assert ok.status_code == 200
    assert [c["name"] for c in ok.json()["cookies"]] == ["a", "b", "c"]  # the first writes only
    over = post(at_limit + b" ")
    assert over.status_code == 400 and "Bad request" in over.text
    # in __cbjs_{sid} too
    cbjs = urllib.parse.quote(json.dumps(["f=1", "g=1", "h=1", "i=1"]))
    cookie = {"cookie": f"__Host-cbjs_{s.sid}={cbjs}"}
    r = harness.get(s, host, "/echo-headers", credential=credential, headers=cookie)
    sent = {p.strip().split("=", 1)[0] for p in r.json()["cookie"].split(";")}
    assert sent == {"a", "b", "c", "f", "g", "h"}
