"""The server-side cookie jar and the request/response header fix-ups, over HTTP."""

from __future__ import annotations

import html
import json
import urllib.parse

import httpx
import pytest

from control_api import keys, proxy_access
from proxy import cookie_sync
from rewriter.cookies import MAX_PER_DOMAIN
from rewriter.headers import confinement_policy
from rewriter.urls import ProxyConfig
from tests.proxy.conftest import DOMAIN, Harness, OpenSession, Sites


def _echo(
    harness: Harness, s: OpenSession, sites: Sites, credential: str, **kwargs: object
) -> dict[str, str]:
    r = harness.get(s, harness.host(s, sites.shop.origin), "/echo-headers", credential=credential, **kwargs)
    assert r.status_code == 200
    return dict(r.json())


def _cookies(header: str) -> dict[str, str]:
    return dict(p.strip().split("=", 1) for p in header.split(";") if "=" in p)


def test_upstream_cookies_live_in_the_jar_never_in_the_browser(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    r = harness.get(s, host, "/set-cookie", credential=credential)
    assert r.status_code == 200
    # the browser gets only the proxy's own: the jar's script view for the runtime
    assert [c.split("=", 1)[0] for c in r.headers.get_list("set-cookie")] == [f"__Host-cbjv_{s.sid}"]
    assert "server_c" not in r.headers["set-cookie"]  # HttpOnly: not even in the view
    sent = _cookies(_echo(harness, s, sites, credential).get("cookie", ""))
    assert sent == {"server_c": "s1", "visible_c": "v1"}  # and no __cb_* credential


def test_an_upstream_logout_deletes_its_cookies_from_the_jar(harness: Harness, sites: Sites) -> None:
    """Deleted by Max-Age=0 or a past Expires: gone from the jar, from what goes upstream and from
    the script view; a cookie for another site's domain, and a nameless one, are never kept."""
    s, credential, host = harness.session_on(sites.shop.origin)
    assert harness.get(s, host, "/set-cookie", credential=credential).status_code == 200
    assert _cookies(_echo(harness, s, sites, credential)["cookie"]) == {"server_c": "s1", "visible_c": "v1"}
    r = harness.get(s, host, "/forget-cookies", credential=credential)
    assert r.status_code == 200 and r.text == "bye"
    view = [c for c in r.headers.get_list("set-cookie") if c.startswith(f"__Host-cbjv_{s.sid}=")]
    assert len(view) == 1 and "visible_c" not in urllib.parse.unquote(view[0])  # scripts see it go
    assert "cookie" not in _echo(harness, s, sites, credential)
    assert harness.call(proxy_access.jar_load(harness.store, s.sid)) == {}


def test_a_script_deletes_a_cookie_through_document_cookie(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    for writes in (["js_c=hello; path=/", "keep=1; path=/"], ["js_c=; max-age=0; path=/"]):
        value = urllib.parse.quote(json.dumps(writes))
        harness.get(s, host, "/echo-headers", credential=credential,
                    headers={"cookie": f"__Host-cbjs_{s.sid}={value}"})
    assert _cookies(_echo(harness, s, sites, credential)["cookie"]) == {"keep": "1"}


def test_proxy_cookies_never_go_upstream(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    cookie = "__cb_other=x; __cbjs_x=y; __Host-cbjs_x=z; mine=1"
    echoed = _echo(harness, s, sites, credential, headers={"cookie": cookie})
    assert "cookie" not in echoed


def test_script_writes_in_cbjs_are_merged_at_once_and_expired(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    writes = urllib.parse.quote(json.dumps(["js_c=hello; path=/", "bad=1; HttpOnly"]))
    r = harness.get(s, harness.host(s, sites.shop.origin), "/echo-headers", credential=credential,
                    headers={"cookie": f"__Host-cbjs_{s.sid}={writes}"})
    assert _cookies(r.json()["cookie"]) == {"js_c": "hello"}  # a script cannot set HttpOnly
    assert r.headers["set-cookie"].startswith(f"__Host-cbjs_{s.sid}=; Max-Age=0")
    assert _cookies(_echo(harness, s, sites, credential)["cookie"]) == {"js_c": "hello"}


def test_script_writes_under_another_name_are_not_merged(harness: Harness, sites: Sites) -> None:
    """A page can set a cookie for the whole proxy domain (with a cookie setter of a blob: frame,
    where the runtime is not), which the browser sends to every session's origins: under a name
    shared by all sessions, one session's page put cookies into another's jar (checked in
    Chromium: the other session's upstream got them)."""
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    planted = urllib.parse.quote(json.dumps(["sid=attacker; path=/"]))
    # the bare name, another session's, and this session's without the __Host- prefix (a page
    # knows its own session id and can plant that one for the whole domain, so for the
    # session's other origins: the browser refuses a __Host- cookie with a Domain)
    for name in ("__cbjs", "__Host-cbjs_" + "x" * 10, f"__cbjs_{s.sid}"):
        r = harness.get(s, harness.host(s, sites.shop.origin), "/echo-headers", credential=credential,
                        headers={"cookie": f"{name}={planted}"})
        assert "sid=attacker" not in r.json().get("cookie", "")
    assert "cookie" not in _echo(harness, s, sites, credential)


def test_cookie_post_from_the_runtime(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    body = {"url": sites.shop.origin + "/cart", "cookies": ["cart=3; path=/"]}
    r = harness.get(s, host, "/__cobrowse/cookies", credential=credential, method="POST", json=body)
    assert r.status_code == 200
    assert {"name": "cart", "value": "3", "path": "/"} in r.json()["cookies"]
    as_proxy_url = {"url": harness.url(s, sites.shop.origin + "/"), "cookies": ["size=m"]}
    r = harness.get(s, host, "/__cobrowse/cookies", credential=credential, method="POST", json=as_proxy_url)
    assert r.status_code == 200
    assert _cookies(_echo(harness, s, sites, credential)["cookie"]) == {"cart": "3", "size": "m"}
    other = {"url": sites.cdn.origin + "/", "cookies": ["x=1"]}
    r = harness.get(s, host, "/__cobrowse/cookies", credential=credential, method="POST", json=other)
    assert r.status_code == 403
    bad = harness.get(s, host, "/__cobrowse/cookies", credential=credential, method="POST", content=b"{")
    assert bad.status_code == 400
    lone = b'{"url": "' + sites.shop.origin.encode() + b'/", "cookies": ["a=\\ud800"]}'
    for unusable in (b"[" * 100_000, lone):  # too deep for the parser; a lone surrogate
        r = harness.get(s, host, "/__cobrowse/cookies", credential=credential, method="POST",
                        content=unusable)
        assert r.status_code == 400
    assert sites.shop.hits["/__cobrowse/cookies"] == 0


def test_two_sessions_on_one_site_keep_separate_jars(harness: Harness, sites: Sites) -> None:
    a = harness.open_session((sites.shop.origin,))
    b = harness.open_session((sites.shop.origin,))
    cred_a, cred_b = harness.credential(a), harness.credential(b)
    harness.get(a, harness.host(a, sites.shop.origin), "/set-cookie", credential=cred_a)
    assert "cookie" not in _echo(harness, b, sites, cred_b)
    assert "server_c" in _echo(harness, a, sites, cred_a)["cookie"]


def test_runtime_config_shows_only_non_httponly_cookies(harness: Harness, sites: Sites) -> None:
    s, credential, host = harness.session_on(sites.shop.origin)
    harness.get(s, host, "/set-cookie", credential=credential)
    page = harness.get(s, host, "/about", credential=credential).text
    start = page.index("data-cobrowse-config=") + len("data-cobrowse-config=")
    quote = page[start]
    config = json.loads(html.unescape(page[start + 1 : page.index(quote, start + 1)]))
    assert config["sid"] == s.sid and config["origin"] == sites.shop.origin
    assert config["cookies"] == [{"name": "visible_c", "value": "v1", "path": "/"}]
    assert config["publicDomains"] == []  # no cookie Domain may name one (an address has none)


def test_request_headers_are_mapped_back_to_upstream(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    credential = harness.credential(s)
    cdn_proxy = harness.url(s, sites.cdn.origin + "/page?q=1")
    echoed = _echo(harness, s, sites, credential, headers={
        "origin": harness.url(s, sites.cdn.origin + "/").rstrip("/"),
        "referer": cdn_proxy,
        "x-forwarded-for": "10.0.0.1",
        "forwarded": "for=10.0.0.1;host=shop.example;proto=http",
        "x-forwarded-host": "shop.example",
        "x-forwarded-proto": "http",
        "keep-alive": "timeout=5",
        "accept-encoding": "gzip, br, zstd, sdch",
    })
    assert echoed["host"] == f"127.0.0.1:{sites.shop.port}"
    assert echoed["origin"] == sites.cdn.origin
    assert echoed["referer"] == sites.cdn.origin + "/page?q=1"
    assert "x-forwarded-for" not in echoed and "keep-alive" not in echoed
    assert not {"forwarded", "x-forwarded-host", "x-forwarded-proto"} & set(echoed)
    assert echoed["accept-encoding"] == "gzip, br, zstd"  # the browser's, less what the proxy cannot decode
    foreign = _echo(harness, s, sites, credential, headers={"referer": "http://elsewhere.example/x"})
    assert "referer" not in foreign


def test_every_proxied_answer_carries_the_confinement_policy(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin, sites.cdn.origin))
    credential = harness.credential(s)
    policy = confinement_policy(ProxyConfig(DOMAIN, harness.port, "http"))
    shop, cdn = harness.host(s, sites.shop.origin), harness.host(s, sites.cdn.origin)
    answers = [
        harness.get(s, shop, "/", credential=credential),  # rewritten HTML
        harness.get(s, cdn, "/img/logo.png", credential=credential),  # streamed untouched
        harness.get(s, shop, "/api/items", credential=credential),  # JSON
        harness.get(s, shop, "/redirect-in", credential=credential, follow_redirects=False),
    ]
    for answer in answers:
        assert answer.headers.get_list("content-security-policy") == [policy], answer.url
    # the proxy's own answers are no documents a framing page could fetch anything from
    own = [
        harness.get(s, shop, "/__cobrowse/runtime.js", credential=credential),
        harness.get(s, shop, "/__cobrowse/nothing-here", credential=credential),  # an error page
        harness.get(None, f"nothing.{DOMAIN}", "/healthz"),
    ]
    for answer in own:
        (value,) = answer.headers.get_list("content-security-policy")
        assert value.startswith("default-src 'none'"), answer.url


def test_cookies_handed_over_at_consent_go_upstream(harness: Harness, sites: Sites) -> None:
    from control_api import proxy_access
    from control_api.seed_cookies import SeedCookie, jar_records

    s = harness.open_session((sites.shop.origin,), consent="request")
    records = jar_records([SeedCookie("cart", "2", sites.shop.origin + "/checkout")])
    harness.call(proxy_access.jar_update(harness.store, s.sid, records, ()))
    harness.accept(s)
    assert _cookies(_echo(harness, s, sites, harness.credential(s))["cookie"]) == {"cart": "2"}


def test_worker_scripts_get_the_runtime_in_front_and_nothing_else_does(
    harness: Harness, sites: Sites
) -> None:
    from rewriter.runtime import runtime_js

    s, credential, shop = harness.session_on(sites.shop.origin)

    def fetch(dest: str) -> httpx.Response:
        headers = {"sec-fetch-dest": dest}
        return harness.get(s, shop, "/static/shared.js", credential=credential, headers=headers)

    script = fetch("script")
    for dest in ("worker", "sharedworker"):
        worker = fetch(dest)
        prelude = b"\n;" + runtime_js()
        assert worker.content.startswith(prelude) and worker.content.endswith(script.content), dest
        init = worker.content[len(prelude) : -len(script.content)].decode()
        assert f'"base":"{sites.shop.origin}/static/shared.js"' in init and f'"sid":"{s.sid}"' in init
        assert int(worker.headers["content-length"]) == len(worker.content)
        # a revalidation with these could keep a copy without the runtime
        assert "etag" not in worker.headers and "last-modified" not in worker.headers, dest
    assert not script.content.startswith(runtime_js()[:100])
    assert script.headers["etag"] == '"v1"' and "last-modified" in script.headers


def test_request_bodies_go_upstream_framed_whatever_the_client_sent(harness: Harness, sites: Sites) -> None:
    """A chunked body (mitmproxy reads it whole) goes with its Content-Length; without one the
    upstream would read the body as the start of another request, one the client wrote whole
    (any Host, any cookie). A Connection header cannot take Host or Content-Length away. The
    browser's ``Connection: close`` holds: the proxy closes after the answer."""
    s, credential, host = harness.session_on(sites.shop.origin)
    head = f"Host: {host}\r\nCookie: __cb_{s.sid}={credential}\r\nConnection: close\r\n"
    smuggled = "GET /smuggled HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n"
    chunked = f"POST /echo-body HTTP/1.1\r\n{head}Transfer-Encoding: chunked\r\n\r\n" \
              f"{len(smuggled):x}\r\n{smuggled}\r\n0\r\n\r\n"
    answer = harness.raw_exchange(chunked.encode())
    assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower()
    echoed = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert echoed == {"body": smuggled, "content-length": str(len(smuggled)), "transfer-encoding": None}
    named = f"POST /echo-body HTTP/1.1\r\nHost: {host}\r\nCookie: __cb_{s.sid}={credential}\r\n" \
            f"Connection: close, host, content-length\r\nContent-Length: 5\r\n\r\nhello"
    answer = harness.raw_exchange(named.encode())
    assert answer.startswith(b"HTTP/1.1 200")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["body"] == "hello"
    assert sites.shop.hits["/smuggled"] == 0


def test_an_upstream_cannot_grow_the_jar_past_a_browsers_limits(harness: Harness, sites: Sites) -> None:
    """300 cookies in one answer: the jar keeps 180 for the site (Chromium's limit, the last set),
    and the next request carries those."""
    s, credential, host = harness.session_on(sites.shop.origin)
    assert harness.get(s, host, "/many-cookies?n=300", credential=credential).status_code == 200
    stored = harness.call(harness.store.redis.hlen(keys.session_jar(harness.store, s.sid)))
    assert stored == MAX_PER_DOMAIN
    sent = harness.get(s, host, "/echo-headers", credential=credential).json()["cookie"]
    names = {pair.split("=", 1)[0] for pair in sent.split("; ")}
    assert len(names) == MAX_PER_DOMAIN and "many299" in names and "many0" not in names


@pytest.mark.parametrize(
    ("scheme", "domain", "names"),
    [
        ("https", "proxy.example", ("__Host-cbjs_abcdefghij", "__Host-cbjv_abcdefghij", "; Secure")),
        ("http", "localhost", ("__Host-cbjs_abcdefghij", "__Host-cbjv_abcdefghij", "; Secure")),
        ("http", "cobrowse.localhost", ("__Host-cbjs_abcdefghij", "__Host-cbjv_abcdefghij", "; Secure")),
        # plain http elsewhere (development): a browser drops a Secure cookie there, so no __Host-
        ("http", "proxy.example", ("__cbjs_abcdefghij", "__cbjv_abcdefghij", "")),
        ("http", "notlocalhost", ("__cbjs_abcdefghij", "__cbjv_abcdefghij", "")),
    ],
)
def test_script_cookie_names_are_host_only_where_browsers_keep_them(
    scheme: str, domain: str, names: tuple[str, str, str]
) -> None:
    public = ProxyConfig(domain, 443 if scheme == "https" else 80, scheme)
    sid = "abcdefghij"
    script, view = cookie_sync.script_cookie_name(sid, public), cookie_sync.view_cookie_name(sid, public)
    assert (script, view) == names[:2]
    assert cookie_sync._attributes(public).endswith("SameSite=Lax" + names[2])
    assert len(cookie_sync.view_cookie_name(sid, public)) <= cookie_sync.VIEW_NAME_BYTES
