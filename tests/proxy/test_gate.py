"""The session gate: every state but active, and every request without the session's own
credential, gets a 403 page and nothing is fetched upstream."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import lxml.html
import pytest
import redis

from control_api import keys, proxy_access, sessions
from control_api.sessions import Actor
from proxy import session_gate
from rewriter.urls import Origin, encode_label
from tests.conftest import private_redis, wait_until
from tests.proxy.conftest import DOMAIN, Harness, OpenSession, Sites, make_settings


def _enter(harness: Harness, s: OpenSession, ticket: str, url: str) -> tuple[int, str, str]:
    query = urllib.parse.urlencode({"ticket": ticket, "url": url})
    r = harness.get(s, harness.host(s, s.origins[0]), f"/__cobrowse/enter?{query}")
    return r.status_code, r.headers.get("location", ""), r.headers.get("set-cookie", "")


def _assert_refused(harness: Harness, sites: Sites, s: OpenSession, credential: str | None,
                    page: str = "not_active", status: int = 403) -> None:
    r = harness.get(s, harness.host(s, sites.shop.origin), "/api/items", credential=credential,
                    headers={"sec-fetch-mode": "cors"})
    assert r.status_code == status
    assert r.json()["error"] == page
    nav = harness.get(s, harness.host(s, sites.shop.origin), "/", credential=credential,
                      headers={"sec-fetch-mode": "navigate", "accept": "text/html"})
    assert nav.status_code == status and nav.headers["content-type"].startswith("text/html")
    assert sites.shop.total == 0 and sites.cdn.total == 0


def test_active_session_with_its_credential_is_served(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    r = harness.get(s, harness.host(s, sites.shop.origin), "/api/items", credential=harness.credential(s))
    assert r.status_code == 200 and r.json()["items"] == ["mug", "tee"]
    assert sites.shop.hits["/api/items"] == 1


def test_ticket_is_redeemed_once_for_a_cookie_on_the_proxy_domain(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    ticket = harness.ticket(s)
    status, location, cookie = _enter(harness, s, ticket, sites.shop.origin + "/about?x=1")
    assert status == 303
    assert location == harness.url(s, sites.shop.origin + "/about?x=1")
    name_value, *attrs = [p.strip() for p in cookie.split(";")]
    assert name_value.startswith(f"__cb_{s.sid}=")
    assert {a.lower() for a in attrs} >= {f"domain={DOMAIN}", "path=/", "httponly", "samesite=lax"}
    credential = name_value.split("=", 1)[1]
    ok = harness.get(s, harness.host(s, sites.shop.origin), "/about", credential=credential)
    assert ok.status_code == 200
    # the same ticket again: refused
    again = _enter(harness, s, ticket, sites.shop.origin + "/")
    assert again[0] == 403 and again[2] == ""


def test_ticket_of_another_session_or_unknown_is_refused(harness: Harness, sites: Sites) -> None:
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    assert _enter(harness, a, harness.ticket(b), sites.shop.origin + "/")[0] == 403
    assert _enter(harness, a, "nonsense", sites.shop.origin + "/")[0] == 403
    assert _enter(harness, a, harness.ticket(a), "http://example.invalid/")[0] == 403
    assert sites.shop.total == 0


def test_a_ticket_opens_only_its_own_session_for_its_own_agent(harness: Harness, sites: Sites) -> None:
    """Two sessions of the same agent: the ticket of one does not open the other. A ticket for the
    session issued to another agent is refused too."""
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,), agent_of=a)
    assert (a.agent_id, a.account_id) == (b.agent_id, b.account_id) and a.sid != b.sid
    assert _enter(harness, a, harness.ticket(b), sites.shop.origin + "/")[::2] == (403, "")
    other = harness.open_session((sites.shop.origin,))
    foreign = harness.call(proxy_access.store_ticket(harness.store, a.sid, other.agent_id, 60))
    assert _enter(harness, a, foreign, sites.shop.origin + "/")[::2] == (403, "")
    assert _enter(harness, a, harness.ticket(a), sites.shop.origin + "/")[0] == 303
    assert sites.shop.total == 0


def test_enter_takes_get_or_head_only(harness: Harness, sites: Sites) -> None:
    """A POST to ``/__cobrowse/enter`` (a form of another site) redeems nothing."""
    s = harness.open_session((sites.shop.origin,))
    ticket = harness.ticket(s)
    query = urllib.parse.urlencode({"ticket": ticket, "url": sites.shop.origin + "/"})
    r = harness.get(s, harness.host(s, sites.shop.origin), f"/__cobrowse/enter?{query}", method="POST")
    assert r.status_code == 400 and "set-cookie" not in r.headers and "location" not in r.headers
    assert _enter(harness, s, ticket, sites.shop.origin + "/")[0] == 303  # the ticket was not used
    assert sites.shop.total == 0


def test_a_ticket_redeemed_just_after_consent_reads_the_state_afresh(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's cache may still hold "pending" from a request made before the visitor accepted:
    redeeming a ticket reads the session again, or the agent's first entry (its one-time ticket
    spent) would be refused."""
    monkeypatch.setattr(session_gate, "CACHE_TTL_S", 3600.0)  # whatever is cached stays cached
    s = harness.open_session((sites.shop.origin,), consent="request")
    early = harness.get(s, harness.host(s, sites.shop.origin), "/", credential="whatever")
    assert early.status_code == 403  # "pending", now in the cache
    harness.accept(s)
    status, location, cookie = _enter(harness, s, harness.ticket(s), sites.shop.origin + "/about")
    assert status == 303 and cookie.startswith(f"__cb_{s.sid}=")
    assert location == harness.url(s, sites.shop.origin + "/about")


def test_pending_session_is_refused(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,), consent="request")
    _assert_refused(harness, sites, s, "whatever")
    status, _, cookie = _enter(harness, s, harness.ticket(s), sites.shop.origin + "/")
    assert status == 403 and cookie == ""


def test_refused_session_is_refused(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,), consent="request")
    harness.refuse(s)
    _assert_refused(harness, sites, s, "whatever")


def test_expired_session_is_refused(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,), consent="request")
    harness.end(s)  # a pending request withdrawn by the agent expires
    _assert_refused(harness, sites, s, "whatever")


def test_ended_session_is_refused_even_with_its_credential(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    harness.end(s)
    _assert_refused(harness, sites, s, credential)


def test_unknown_session_is_refused(harness: Harness, sites: Sites) -> None:
    s = OpenSession("zzzzzzzzz9", "agt", "acc", (sites.shop.origin,))
    _assert_refused(harness, sites, s, "whatever")


def test_an_active_session_past_its_deadline_is_refused(harness: Harness, sites: Sites) -> None:
    """Its state still says active (the sweep that ends it has not run yet): the deadline holds."""
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    past = repr(time.time() - 1)
    harness.call(harness.store.redis.hset(keys.session(harness.store, s.sid), "expires_at", past))
    _assert_refused(harness, sites, s, credential)


def test_a_state_change_whose_message_is_lost_is_refused_within_a_second(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's caches answer for ``CACHE_TTL_S`` only: an end the gate is never told of (the
    pub/sub message lost) is refused a second later all the same."""
    now = [1000.0]
    monkeypatch.setattr(harness.proxy.ctx.gate, "_clock", lambda: now[0])
    s, credential, shop = harness.session_on(sites.shop.origin)
    assert harness.get(s, shop, "/api/items", credential=credential).status_code == 200
    harness.call(harness.store.redis.hset(keys.session(harness.store, s.sid), "state", "ended"))
    # nothing published: still served from the cache
    assert harness.get(s, shop, "/api/items", credential=credential).status_code == 200
    now[0] += 1.0
    r = harness.get(s, shop, "/api/items", credential=credential, headers={"sec-fetch-mode": "cors"})
    assert r.status_code == 403 and r.json()["error"] == "not_active"
    assert sites.shop.hits["/api/items"] == 2


def test_a_credential_checked_for_one_session_opens_no_other(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate caches a credential's check for its session only: B's credential, just accepted
    for B, named as A's cookie on A's host is refused (the clock stands still: still cached)."""
    monkeypatch.setattr(harness.proxy.ctx.gate, "_clock", lambda: 1000.0)
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    cred_b = harness.credential(b)
    served = harness.get(b, harness.host(b, sites.shop.origin), "/api/items", credential=cred_b)
    assert served.status_code == 200
    r = harness.get(a, harness.host(a, sites.shop.origin), "/api/items", credential=cred_b,
                    headers={"sec-fetch-mode": "cors"})
    assert r.status_code == 403 and r.json()["error"] == "no_credential"
    assert sites.shop.hits["/api/items"] == 1


def test_a_refused_credential_does_not_open_its_address_to_anonymous_requests(
    harness: Harness, sites: Sites
) -> None:
    """Only an accepted credential notes the address it came from: a bogus ``__cb_{sid}`` cookie
    must not let that address's same-origin requests without cookies pass."""
    s = harness.open_session((sites.shop.origin,))
    shop = harness.host(s, sites.shop.origin)
    assert harness.get(s, shop, "/api/items", credential="bogus").status_code == 403
    r = _cors(harness, shop, "/api/items", "", mode="no-cors", site="same-origin")
    assert r.status_code == 403 and r.json()["error"] == "no_credential"
    assert sites.shop.total == 0


def test_missing_or_foreign_credential_is_refused(harness: Harness, sites: Sites) -> None:
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    cred_b = harness.credential(b)
    _assert_refused(harness, sites, a, None, page="no_credential")
    _assert_refused(harness, sites, a, cred_b, page="no_credential")  # b's credential named as a's
    r = harness.get(a, harness.host(a, sites.shop.origin), "/", headers={"cookie": f"__cb_{b.sid}={cred_b}"})
    assert r.status_code == 403
    assert sites.shop.total == 0


@pytest.mark.parametrize(
    "host",
    ["cobrowse.localhost", "nonsense.cobrowse.localhost", "a.b.cobrowse.localhost", "example.com",
     "k3j9x2ab7qq-what.cobrowse.localhost", "k3j9x2ab7qs443-shop-example-com.cobrowse.localhost",
     "k3j9x2ab7qxshort.cobrowse.localhost"],
)
def test_unknown_or_undecodable_host_is_404(harness: Harness, sites: Sites, host: str) -> None:
    r = harness.get(None, f"{host}:{harness.port}", "/")
    assert r.status_code == 404
    assert "Unknown address" in r.text
    assert sites.shop.total == 0


def test_the_health_path_of_a_proxied_origin_is_the_sites_and_gated(harness: Harness, sites: Sites) -> None:
    """``/healthz`` is the proxy's own only on a host that is no proxied origin; on a session's
    origin it is the site's path like any other, behind the gate."""
    s = harness.open_session((sites.shop.origin,))
    host = harness.host(s, sites.shop.origin)
    refused = harness.get(s, host, "/healthz")
    assert refused.status_code == 403
    assert sites.shop.total == 0
    served = harness.get(s, host, "/healthz", credential=harness.credential(s))
    assert served.status_code == 404  # the fixture site has no such page: its answer, not ours
    assert sites.shop.hits["/healthz"] == 1


def test_reserved_paths_other_than_ours_are_404(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    host = harness.host(s, sites.shop.origin)
    r = harness.get(s, host, "/__cobrowse/whatever", credential=harness.credential(s))
    assert r.status_code == 404
    assert sites.shop.total == 0


def _raw_request(port: int, host: str, path: str, cookie: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\n\r\n").encode()


def _read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_session_end_closes_open_connections_and_refuses_within_a_second(
    harness: Harness, sites: Sites
) -> None:
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    host = harness.host(s, sites.shop.origin)
    cookie = f"__cb_{s.sid}={credential}"
    with socket.create_connection(("127.0.0.1", harness.port)) as sock:
        sock.sendall(_raw_request(harness.port, host, "/api/items", cookie))
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        ended_at = time.monotonic()
        harness.end(s)
        sock.settimeout(1.0)
        assert sock.recv(1024) == b""  # closed by the proxy
        assert time.monotonic() - ended_at < 1.0
    r = harness.get(s, host, "/api/items", credential=credential)
    assert r.status_code == 403
    assert sites.shop.hits["/api/items"] == 1


def test_label_of_an_origin_outside_the_scope_is_refused(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    host = f"{encode_label(s.sid, Origin.parse(sites.cdn.origin))}.{DOMAIN}:{harness.port}"
    r = harness.get(s, host, "/img/logo.png", credential=credential)
    assert r.status_code == 403 and "Outside co-browse scope" in r.text
    assert sites.cdn.total == 0


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "/\\evil.example/", "http://evil.example/", "/x\r\nSet-Cookie: a=b",
     # not a web URL at all: nothing the view could be sent to
     "javascript:alert(1)", "data:text/html,<h1>x</h1>", "mailto:a@example.com", "http://[x/",
     "ftp://127.0.0.1/"],
)
def test_enter_never_redirects_out_of_the_session(harness: Harness, sites: Sites, target: str) -> None:
    s = harness.open_session((sites.shop.origin,))
    ticket = harness.ticket(s)
    status, location, cookie = _enter(harness, s, ticket, target)
    assert status in (400, 403) and location == "" and cookie == ""
    assert _enter(harness, s, ticket, "/")[0] == 303  # the refused target did not use the ticket up


def test_enter_without_a_target_goes_to_the_start_page(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    status, location, cookie = _enter(harness, s, harness.ticket(s), "")
    assert (status, location) == (303, "/") and cookie.startswith(f"__cb_{s.sid}=")


def _cors(harness: Harness, host: str, path: str, origin: str, source: str = "127.0.0.1",
          mode: str = "cors", forwarded: str = "", site: str = "", referer: str = "") -> httpx.Response:
    """What a page's fetch sends by default to another origin: no cookie at all."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=f"http://127.0.0.1:{harness.port}", transport=transport, timeout=20) as c:
        headers = {"host": host, "sec-fetch-mode": mode}
        if site:
            headers["sec-fetch-site"] = site
        if origin:
            headers["origin"] = origin
        if referer:
            headers["referer"] = referer
        if forwarded:
            headers["x-forwarded-for"] = forwarded
        return c.get(path, headers=headers)


def test_a_cors_request_of_the_session_passes_without_cookies_and_takes_none(
    harness: Harness, sites: Sites
) -> None:
    """The browser sends a page's CORS requests to another origin without cookies (fetch's default,
    module scripts, fonts, preflights): the proxy credential is not on them. From the address the
    agent's credential came from, with an Origin of the same session, they pass, and go upstream
    as the browser would send them: no jar cookie, and what they set is not kept."""
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    credential = harness.credential(s)
    shop, cdn_page = harness.host(s, sites.shop.origin), "http://" + harness.host(s, sites.cdn.origin)
    assert harness.get(s, shop, "/about", credential=credential).status_code == 200  # the agent's page
    assert _cors(harness, shop, "/set-cookie", cdn_page).status_code == 200
    echoed = harness.get(s, shop, "/echo-headers", credential=credential).json()
    assert "server_c" not in echoed.get("cookie", "")  # not kept from the uncredentialed answer
    assert harness.get(s, shop, "/set-cookie", credential=credential).status_code == 200
    r = _cors(harness, shop, "/echo-headers", cdn_page)
    assert r.status_code == 200 and "cookie" not in r.json()  # the jar holds server_c now, unsent
    assert r.json()["origin"] == sites.cdn.origin


def test_a_cors_request_without_cookies_is_refused_from_elsewhere(harness: Harness, sites: Sites) -> None:
    a = harness.open_session((sites.shop.origin, sites.cdn.origin))
    b = harness.open_session((sites.shop.origin, sites.cdn.origin))
    shop = harness.host(a, sites.shop.origin)
    assert harness.get(a, shop, "/about", credential=harness.credential(a)).status_code == 200
    hits = sites.shop.total
    refused = [
        _cors(harness, shop, "/api/items", "http://" + harness.host(b, sites.cdn.origin)),  # another session
        _cors(harness, shop, "/api/items", ""),  # no Origin
        _cors(harness, shop, "/api/items", "http://" + harness.host(a, sites.cdn.origin), mode="navigate"),
        _cors(harness, shop, "/api/items", "http://elsewhere.example"),
        # the session's own Origin, from an address the agent's credential never came from
        _cors(harness, shop, "/api/items", "http://" + harness.host(a, sites.cdn.origin), source="127.0.0.2"),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert sites.shop.total == hits
    harness.end(a)  # refused within a second (the gate's caches live 0.5 s unless told at once)
    deadline = time.monotonic() + 2
    while (ended := _cors(harness, shop, "/api/items", "http://" + harness.host(a, sites.cdn.origin))):
        if ended.status_code == 403 or time.monotonic() > deadline:
            break
    assert ended.status_code == 403


def test_a_same_origin_request_without_credentials_passes_from_the_agents_address(
    harness: Harness, sites: Sites
) -> None:
    """``fetch(own, {credentials: "omit"})``: no cookie, ``Sec-Fetch-Site: same-origin`` (which a
    page of another origin cannot make the browser send). From the agent's address it passes
    anonymously; a navigation, a WebSocket, a same-site or cross-site request, or another address
    does not."""
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    credential = harness.credential(s)
    shop = harness.host(s, sites.shop.origin)
    assert harness.get(s, shop, "/about", credential=credential).status_code == 200  # the agent's page
    assert _cors(harness, shop, "/set-cookie", "", mode="cors", site="same-origin").status_code == 200
    echoed = harness.get(s, shop, "/echo-headers", credential=credential).json()
    assert "server_c" not in echoed.get("cookie", "")  # not kept from the uncredentialed answer
    assert harness.get(s, shop, "/set-cookie", credential=credential).status_code == 200  # jar: server_c
    for mode in ("cors", "no-cors", "same-origin"):
        r = _cors(harness, shop, "/echo-headers", "", mode=mode, site="same-origin")
        assert r.status_code == 200 and "cookie" not in r.json()
    hits = sites.shop.total
    refused = [
        _cors(harness, shop, "/echo-headers", "", mode="navigate", site="same-origin"),
        _cors(harness, shop, "/echo-headers", "", mode="websocket", site="same-origin"),
        _cors(harness, shop, "/echo-headers", "", mode="no-cors", site="same-site"),
        _cors(harness, shop, "/echo-headers", "", mode="no-cors", site="cross-site"),
        _cors(harness, shop, "/echo-headers", "", mode="cors", site="same-origin", source="127.0.0.2"),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert sites.shop.total == hits


def test_the_runtime_is_served_without_the_credential_while_the_session_is_active(
    harness: Harness, sites: Sites
) -> None:
    """A frame sandboxed without ``allow-same-origin`` has an opaque origin: its requests carry no
    proxy credential and name no initiator. Its runtime must still load, or nothing maps its
    ``window.open`` and links to pop-ups (top-level navigations, which the confinement policy does
    not cover: they would load the upstream directly). The asset is static: it is served to any
    request while the session is active, never for an ended or unknown one, and nothing goes
    upstream."""
    s = harness.open_session((sites.shop.origin,))
    shop = harness.host(s, sites.shop.origin)
    hits = sites.shop.total
    r = _cors(harness, shop, "/__cobrowse/runtime.js", "", mode="no-cors", site="cross-site")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert "__cobrowse" in r.text
    other = harness.open_session((sites.shop.origin,))
    harness.end(other)
    ended = _cors(harness, harness.host(other, sites.shop.origin), "/__cobrowse/runtime.js", "",
                  mode="no-cors", site="cross-site")
    assert ended.status_code == 403
    unknown = _cors(harness, harness.host(s, sites.shop.origin).replace(s.sid, "zz" + s.sid[2:]),
                    "/__cobrowse/runtime.js", "", mode="no-cors", site="cross-site")
    assert unknown.status_code == 403
    assert sites.shop.total == hits


def test_a_no_cors_request_of_the_session_without_credentials_passes_by_its_referer(
    harness: Harness, sites: Sites
) -> None:
    """``fetch(shop, {mode: "no-cors"})`` from a page of the session on another origin: no cookie,
    no ``Origin``, but the page as ``Referer``, which no page elsewhere can make its browser send.
    From the agent's address it passes anonymously; without a Referer, with another session's or
    another site's, as a navigation, or from another address, it does not."""
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    other = harness.open_session((sites.shop.origin, sites.cdn.origin))
    shop = harness.host(s, sites.shop.origin)
    assert harness.get(s, shop, "/about", credential=harness.credential(s)).status_code == 200  # the agent
    page = f"http://{harness.host(s, sites.cdn.origin)}/frame"

    def ping(referer: str, site: str = "same-site", mode: str = "no-cors", source: str = "127.0.0.1") -> int:
        r = _cors(harness, shop, "/echo-headers", "", mode=mode, site=site, referer=referer, source=source)
        assert r.status_code != 200 or "cookie" not in r.json()  # anonymous: no jar cookie
        return r.status_code

    assert ping(page) == 200
    hits = sites.shop.total
    assert ping("") == 403
    assert ping(f"http://{harness.host(other, sites.cdn.origin)}/frame") == 403
    assert ping(page, site="cross-site") == 403
    assert ping("https://evil.example/") == 403
    assert ping(page, mode="navigate") == 403
    assert ping(page, source="127.0.0.2") == 403
    assert sites.shop.total == hits


def test_behind_a_trusted_balancer_the_forwarded_address_is_the_agents(
    sites: Sites, redis_url: str, namespace: str
) -> None:
    """Behind an HTTP load balancer every connection comes from the balancer: with
    ``trusted_proxies`` the address checked is the one it forwards, so another client behind the
    same balancer does not pass for the agent."""
    harness = Harness(make_settings(sites, trusted_proxies=("127.0.0.1/32",)), redis_url, namespace)
    try:
        s = harness.open_session((sites.shop.origin, sites.cdn.origin))
        shop, cdn_page = harness.host(s, sites.shop.origin), "http://" + harness.host(s, sites.cdn.origin)
        agent = harness.get(s, shop, "/about", credential=harness.credential(s),
                            headers={"x-forwarded-for": "198.51.100.7"})
        assert agent.status_code == 200
        assert _cors(harness, shop, "/api/items", cdn_page, forwarded="198.51.100.7").status_code == 200
        assert _cors(harness, shop, "/api/items", cdn_page, forwarded="198.51.100.8").status_code == 403
        assert _cors(harness, shop, "/api/items", cdn_page).status_code == 403  # the balancer itself
    finally:
        harness.close()


def test_a_url_the_page_echoes_back_stays_in_its_session(harness: Harness, sites: Sites) -> None:
    """A server echoes a URL the runtime gave it (``?return=`` + ``location.href``, a proxy URL):
    one of this session is kept as it is, in a link and in a redirect; one of another session of
    the same agent becomes a URL of this session outside its scope, refused (a redirect to it
    too) without reaching the other session or upstream."""
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,), agent_of=a)
    cookies = f"__cb_{a.sid}={harness.credential(a)}; __cb_{b.sid}={harness.credential(b)}"
    host = harness.host(a, sites.shop.origin)

    def echoed(to: str, **redirect: int) -> httpx.Response:
        query = urllib.parse.urlencode({"to": to, **redirect})
        return harness.get(None, host, f"/return?{query}", headers={"cookie": cookies})

    def link(to: str) -> str:
        r = echoed(to)
        assert r.status_code == 200
        return str(lxml.html.fromstring(r.text).get_element_by_id("back").get("href"))

    own = harness.url(a, sites.shop.origin + "/about?x=1#top")
    assert link(own) == own
    r = echoed(own, redirect=1)
    assert (r.status_code, r.headers["location"]) == (303, own)

    theirs = harness.url(b, sites.shop.origin + "/api/items")
    href = link(theirs)
    assert href.startswith(f"http://{a.sid}x")
    parts = urllib.parse.urlsplit(href)
    r = harness.get(None, parts.netloc, parts.path, headers={"cookie": cookies, "sec-fetch-mode": "cors"})
    assert r.status_code == 403 and r.json()["error"] == "outside_scope"
    r = echoed(theirs, redirect=1)
    assert r.status_code == 403 and "location" not in r.headers
    assert sites.shop.hits["/api/items"] == 0


def test_a_store_outage_refuses_every_request_with_503_and_fetches_nothing(
    sites: Sites, tmp_path: Path
) -> None:
    """Without Redis the proxy cannot tell an active session from an ended one: it refuses (after
    at most its short cache of session states), never serves on a guess."""
    with private_redis(tmp_path) as (proc, port):
        h = Harness(make_settings(sites), f"redis://127.0.0.1:{port}/0", "outage:")
        try:
            s = h.open_session((sites.shop.origin,))
            credential = h.credential(s)
            other = h.open_session((sites.shop.origin,))  # never seen by the proxy before the outage
            other_credential = h.credential(other)
            host = h.host(s, sites.shop.origin)
            assert h.get(s, host, "/api/items", credential=credential).status_code == 200
            proc.terminate()
            proc.wait(10)

            def refused() -> bool:
                r = h.get(s, host, "/api/items", credential=credential, headers={"sec-fetch-mode": "cors"})
                return r.status_code == 503 and r.json()["error"] == "store_unavailable"

            wait_until(refused, "a request refused during the outage", 15)
            hits = sites.shop.total
            nav = h.get(s, host, "/", credential=credential,
                        headers={"sec-fetch-mode": "navigate", "accept": "text/html"})
            assert nav.status_code == 503 and "Co-browsing is temporarily unavailable." in nav.text
            assert str(port) not in nav.text and "redis" not in nav.text.lower()  # no internal detail
            fresh = h.get(other, h.host(other, sites.shop.origin), "/api/items",
                          credential=other_credential, headers={"sec-fetch-mode": "cors"})
            assert fresh.status_code == 503 and fresh.json()["error"] == "store_unavailable"
            assert sites.shop.total == hits
        finally:
            h.close()


def test_a_store_that_does_not_answer_is_waited_for_once_per_request(
    sites: Sites, tmp_path: Path
) -> None:
    """A hung Redis (no answer, no refusal) costs a request one wait for the store, then a 503: the
    head's credential check and the gate each waited out the store's timeout (10 s, not 5)."""
    with private_redis(tmp_path) as (proc, port):
        h = Harness(make_settings(sites), f"redis://127.0.0.1:{port}/0", "hung:")
        try:
            s = h.open_session((sites.shop.origin,))  # never seen by the proxy: nothing cached
            credential = h.credential(s)
            gate = h.proxy.ctx.gate
            checks: list[str] = []
            real_check = gate.check

            async def counted(sid: str, *args: Any, **kwargs: Any) -> Any:
                checks.append(sid)
                return await real_check(sid, *args, **kwargs)

            gate.check = counted  # type: ignore[method-assign]
            proc.send_signal(signal.SIGSTOP)
            try:
                r = h.get(s, h.host(s, sites.shop.origin), "/api/items", credential=credential,
                          headers={"sec-fetch-mode": "cors"})
            finally:
                proc.send_signal(signal.SIGCONT)
            assert r.status_code == 503 and r.json()["error"] == "store_unavailable"
            assert checks == [s.sid]
            assert sites.shop.hits["/api/items"] == 0
        finally:
            h.close()


def test_the_proxy_hears_session_ends_again_after_its_subscription_is_cut(
    sites: Sites, tmp_path: Path
) -> None:
    """A Redis restart or a failover cuts the proxy's pub/sub connection: it subscribes again, so a
    session that ends afterwards still has its open connections closed at once."""
    with private_redis(tmp_path) as (_, port):
        h = Harness(make_settings(sites), f"redis://127.0.0.1:{port}/0", "resub:")
        client = redis.Redis(port=port)
        try:
            channel = proxy_access.session_ended_channel(h.store)

            def subscribers() -> int:
                return int(client.pubsub_numsub(channel)[0][1])

            wait_until(lambda: subscribers() == 1, "the proxy's subscription", 10)
            assert client.client_kill_filter(_type="pubsub") == 1
            wait_until(lambda: subscribers() == 1, "the proxy's subscription, again", 10)
            s = h.open_session((sites.shop.origin,))
            host = h.host(s, sites.shop.origin)
            with socket.create_connection(("127.0.0.1", h.port)) as sock:
                sock.sendall(_raw_request(h.port, host, "/api/items", f"__cb_{s.sid}={h.credential(s)}"))
                assert _read_response(sock).startswith(b"HTTP/1.1 200")
                h.end(s)
                sock.settimeout(1.0)
                assert sock.recv(1024) == b""  # closed by the proxy on hearing the end
        finally:
            client.close()
            h.close()


def test_an_end_heard_while_a_request_awaits_the_store_is_not_served(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request has found the session active and its credential good, and the end is heard while
    it still awaits the store (noting the agent's address): the end closed the session's
    connections before this one was tracked, so it must be refused, or a download or WebSocket
    opened as the session ends would stream on for ever."""
    s, credential, shop = harness.session_on(sites.shop.origin)
    heard = asyncio.Event()
    harness.proxy.ctx.gate.on_ended(lambda sid: heard.set() if sid == s.sid else None)
    real_note = proxy_access.note_agent_address

    async def note_then_end(store: object, sid: str, address: str) -> None:
        await real_note(store, sid, address)  # type: ignore[arg-type]
        if sid == s.sid:  # the session ends, and the proxy hears it, meanwhile
            await sessions.end(harness.store, s.sid, Actor("agent", s.agent_id))
            await asyncio.wait_for(heard.wait(), 10)

    monkeypatch.setattr(proxy_access, "note_agent_address", note_then_end)
    with socket.create_connection(("127.0.0.1", harness.port)) as sock:
        sock.sendall(_raw_request(harness.port, shop, "/api/items", f"__cb_{s.sid}={credential}"))
        sock.settimeout(5)
        assert _read_response(sock).startswith(b"HTTP/1.1 403")
    assert heard.is_set()
    assert sites.shop.total == 0


def test_an_end_whose_message_is_lost_still_closes_open_connections(harness: Harness, sites: Sites) -> None:
    """The end of a session is published while the proxy is not subscribed (a network blip: redis-py
    reconnects and subscribes again by itself, silently; a failover; a Redis restart): nothing
    announces it, yet the session's open connections (a download, a WebSocket) must not stream
    on. The proxy reads the sessions it has open connections of again, every second."""
    s, credential, shop = harness.session_on(sites.shop.origin)
    with socket.create_connection(("127.0.0.1", harness.port)) as sock:
        sock.sendall(_raw_request(harness.port, shop, "/api/items", f"__cb_{s.sid}={credential}"))
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        # the end as stored, its message lost
        harness.call(harness.store.redis.hset(keys.session(harness.store, s.sid), "state", "ended"))
        sock.settimeout(10.0)  # (a bound for a loaded machine, not a measure: the recheck is 1 s)
        assert sock.recv(1024) == b""  # closed by the proxy


def test_the_gates_caches_stay_bounded_whatever_a_client_sends(
    harness: Harness, sites: Sites, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anyone can send made-up session labels and credentials: each answer is cached briefly, but
    the caches never grow past their bound, and the session's own credential still passes."""
    from proxy.exceptions import Refused

    s = harness.open_session((sites.shop.origin,))
    good = harness.credential(s)

    async def check_credential(store: object, sid: str, credential: str) -> bool:
        return credential == good

    real_session = proxy_access.get_proxy_session

    async def get_proxy_session(store: object, sid: str) -> object:
        # a made-up label is unknown to the store (answered here without 10,000 round trips)
        return await real_session(store, sid) if sid == s.sid else None  # type: ignore[arg-type]

    monkeypatch.setattr(proxy_access, "get_proxy_session", get_proxy_session)
    monkeypatch.setattr(proxy_access, "check_credential", check_credential)
    gate = harness.proxy.ctx.gate
    bound = 10_000

    async def flood() -> tuple[int, int]:
        largest = [0, 0]
        for i in range(bound + 50):
            for sid, credential in ((f"made{i:06d}", "x"), (s.sid, f"made-up-{i}")):
                try:
                    await gate.check(sid, credential)
                except Refused:
                    pass
            largest = [max(largest[0], len(gate._sessions)), max(largest[1], len(gate._credentials))]
        await gate.check(s.sid, good)  # still passes
        return largest[0], largest[1]

    sessions, credentials = harness.call(flood(), timeout=120)
    assert sessions <= bound + 1 and credentials <= bound + 1
