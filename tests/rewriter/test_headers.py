"""Header rewriting: the response and request tables, Set-Cookie to the jar, hop-by-hop."""

from __future__ import annotations

import pytest
from rewrite_helpers import BLOCKED, EVIL, proxy

from rewriter.headers import (
    HOP_BY_HOP,
    REQUEST_RULES,
    RESPONSE_RULES,
    Action,
    confinement_policy,
    rewrite_request_headers,
    rewrite_response_headers,
    site_of_host,
)
from rewriter.urls import Origin, ProxyConfig, UrlMapper

URL = "https://shop.example/cart"
SHOP = proxy("s-shop-example", "/x")
SHOP_ORIGIN = proxy("s-shop-example", "")

# (header, value, expected value or None when dropped)
RESPONSE = [
    ("Location", "https://shop.example/x", SHOP),
    ("Location", "//shop.example/x", SHOP),
    ("Location", "/x", "/x"),
    ("Location", "https://shop.example:99999/", BLOCKED),  # never out as it is
    # forms a browser reads as another host (its base is the http proxy URL)
    ("Location", "/\\evil.example/x", EVIL),
    ("Location", "\\\\evil.example/x", EVIL),
    ("Location", "\\/evil.example/x", EVIL),
    ("Location", "https:\\\\evil.example/x", EVIL),
    ("Location", "https:evil.example/x", proxy("s-shop-example", "/evil.example/x")),
    ("Location", "http:evil.example/x", proxy("h-evil-example", "/x")),
    ("Location", "/\t/evil.example/x", EVIL),
    ("Location", "HTTPS://EVIL.EXAMPLE/x", EVIL),
    ("Location", "/\\evil.example:99999/x", BLOCKED),
    ("Refresh", "0;url=/\\evil.example/x", f"0;url={EVIL}"),
    ("Link", "</\\evil.example/x>; rel=preload", f"<{EVIL}>; rel=preload"),
    ("Content-Location", "\\\\evil.example/x", EVIL),
    ("Content-Location", "https://shop.example/x", SHOP),
    ("Refresh", "5; url=https://shop.example/x", f"5; url={SHOP}"),
    ("Refresh", "5", "5"),
    ("Link", "<https://shop.example/x>; rel=preload; as=style", f"<{SHOP}>; rel=preload; as=style"),
    (
        "Link",
        '</a.css>; rel=preload, <https://shop.example/x>; rel="preconnect", <//shop.example/x>; rel=next',
        f'</a.css>; rel=preload, <{SHOP}>; rel="preconnect", <{SHOP}>; rel=next',
    ),
    ("SourceMap", "https://shop.example/x", SHOP),
    ("Access-Control-Allow-Origin", "https://shop.example", SHOP_ORIGIN),
    ("Access-Control-Allow-Origin", "*", "*"),
    ("Access-Control-Allow-Origin", "null", "null"),
    ("Access-Control-Allow-Origin", "not an origin", None),
    ("Access-Control-Allow-Origin", "ftp://shop.example", None),
    # not as browsers serialise an origin: they would refuse it upstream, so the proxy does not fix it
    ("Access-Control-Allow-Origin", "HTTPS://SHOP.EXAMPLE", "HTTPS://SHOP.EXAMPLE"),
    ("Access-Control-Allow-Origin", "https://shop.example/path", "https://shop.example/path"),
    ("Access-Control-Allow-Origin", "https://shop.example:443", "https://shop.example:443"),
    (
        "Timing-Allow-Origin",
        "https://shop.example, https://cdn.example:8443",
        f"{SHOP_ORIGIN}, {proxy('s8443-cdn-example', '')}",
    ),
    ("Timing-Allow-Origin", "*", "*"),
    ("Content-Security-Policy", "default-src 'self'", None),
    ("content-security-policy-report-only", "default-src 'self'", None),
    ("X-Frame-Options", "DENY", None),
    ("Strict-Transport-Security", "max-age=31536000", None),
    ("Report-To", '{"group":"x"}', None),
    ("NEL", '{"report_to":"x"}', None),
    ("Cross-Origin-Embedder-Policy", "require-corp", None),
    ("Cross-Origin-Opener-Policy", "same-origin", None),
    ("Clear-Site-Data", '"cookies"', None),
    ("Alt-Svc", 'h3=":443"', None),
    ("Connection", "close", None),
    ("Keep-Alive", "timeout=5", None),
    ("Transfer-Encoding", "chunked", None),
    ("Upgrade", "h2c", None),
    ("Content-Type", "text/html; charset=utf-8", "text/html; charset=utf-8"),
    ("Cache-Control", "no-store", "no-store"),
    ("X-Custom", "https://shop.example/x", "https://shop.example/x"),
    # a redirect to a script or a data: document: no browser follows it, none is sent on
    ("Location", "javascript:alert(1)", None),
    ("Location", " JavaScript\t:alert(1)", None),
    ("Location", "data:text/html,<script>x</script>", None),
    ("Refresh", "0; url=javascript:alert(1)", None),
    ("Refresh", "0;URL='vbscript:x'", None),
    ("Location", "/javascript:x", "/javascript:x"),  # a path
]


@pytest.mark.parametrize(("name", "value", "expected"), RESPONSE)
def test_response_headers(name: str, value: str, expected: str | None, mapper: UrlMapper) -> None:
    result = rewrite_response_headers([(name, value)], url=URL, mapper=mapper)
    assert result.headers == (() if expected is None else ((name, expected),))
    assert result.set_cookies == ()
    assert (name.lower() in result.dropped) == (expected is None)


def test_set_cookie_goes_to_the_jar_never_to_the_browser(mapper: UrlMapper) -> None:
    result = rewrite_response_headers(
        [("Set-Cookie", "a=1; Path=/"), ("Content-Type", "text/html"), ("set-cookie", "b=2; HttpOnly")],
        url=URL,
        mapper=mapper,
    )
    assert result.set_cookies == ("a=1; Path=/", "b=2; HttpOnly")
    assert result.headers == (("Content-Type", "text/html"),)


def test_headers_named_by_connection_are_dropped(mapper: UrlMapper) -> None:
    result = rewrite_response_headers(
        [("Connection", "X-Private, close"), ("X-Private", "1"), ("X-Public", "2")], url=URL, mapper=mapper
    )
    assert result.headers == (("X-Public", "2"),)


def test_order_and_duplicates_are_kept(mapper: UrlMapper) -> None:
    headers = [("Vary", "Accept"), ("Link", "</a>; rel=x"), ("Vary", "Origin")]
    assert rewrite_response_headers(headers, url=URL, mapper=mapper).headers == tuple(headers)


def test_every_rule_says_why() -> None:
    for table in (RESPONSE_RULES, REQUEST_RULES):
        for name, rule in table.items():
            assert name == name.lower() and rule.why, name
    assert "set-cookie" in RESPONSE_RULES and RESPONSE_RULES["set-cookie"].action is Action.TO_JAR
    assert {"connection", "transfer-encoding", "upgrade"} <= HOP_BY_HOP


ORIGIN = Origin.parse("https://shop.example")
REQUEST = [
    ("Host", "k3j9x2ab7qs-shop-example.cobrowse.localhost:8001", "shop.example"),
    ("Origin", SHOP_ORIGIN, "https://shop.example"),
    ("Origin", "null", "null"),
    # another origin (the console, another session): one the upstream does not trust, never none,
    # which some servers take for a same-origin request
    ("Origin", "http://cobrowse.localhost:8000", "null"),
    ("Origin", proxy("s-other-example", "").replace("k3j9x2ab7q", "abcdefghij"), "null"),
    ("Origin", "https://evil.example", "null"),
    ("Referer", proxy("s-shop-example", "/a?b=1"), "https://shop.example/a?b=1"),
    ("Referer", "http://cobrowse.localhost:8000/console", None),
    ("Cookie", "__cb_k3j9x2ab7q=secret; a=1", None),
    ("Connection", "keep-alive", None),
    ("Proxy-Authorization", "Basic x", None),
    ("X-Forwarded-For", "10.0.0.1", None),
    ("Forwarded", "for=10.0.0.1;host=cobrowse.localhost;proto=http", None),
    ("X-Forwarded-Host", "cobrowse.localhost", None),
    ("X-Forwarded-Proto", "http", None),
    # what load balancers add with the agent's address
    ("X-Real-IP", "203.0.113.7", None),
    ("True-Client-IP", "203.0.113.7", None),
    ("CF-Connecting-IP", "203.0.113.7", None),
    ("X-Client-IP", "203.0.113.7", None),
    ("Via", "1.1 lb.internal", None),
    ("X-Forwarded-Port", "443", None),
    # Sec-Fetch-Site in upstream terms: without an initiator of this session, cross-site
    ("Sec-Fetch-Site", "same-site", "cross-site"),
    ("Sec-Fetch-Site", "same-origin", "same-origin"),
    ("Sec-Fetch-Site", "none", "none"),
    ("Sec-Fetch-Site", "cross-site", "cross-site"),
    ("Accept", "text/html", "text/html"),
    ("User-Agent", "Mozilla/5.0", "Mozilla/5.0"),
]


@pytest.mark.parametrize(("name", "value", "expected"), REQUEST)
def test_request_headers(name: str, value: str, expected: str | None, mapper: UrlMapper) -> None:
    result = rewrite_request_headers([(name, value)], mapper=mapper, origin=ORIGIN)
    assert result == (() if expected is None else ((name, expected),))


def test_host_keeps_a_non_default_port(mapper: UrlMapper) -> None:
    origin = Origin.parse("http://127.0.0.1:8002")
    assert rewrite_request_headers([("Host", "x")], mapper=mapper, origin=origin) == (
        ("Host", "127.0.0.1:8002"),
    )


def test_a_connection_header_cannot_take_away_host_or_content_length(mapper: UrlMapper) -> None:
    headers = [("Host", "x"), ("Connection", "close, host, content-length, x-private"),
               ("Content-Length", "5"), ("X-Private", "1")]
    assert rewrite_request_headers(headers, mapper=mapper, origin=ORIGIN) == (
        ("Host", "shop.example"), ("Content-Length", "5"),
    )


@pytest.mark.parametrize(
    ("proxy_config", "hosts"),
    [
        (ProxyConfig("cobrowse.localhost", 8001, "http"), "http://*.cobrowse.localhost:8001 ws://*.cobrowse.localhost:8001"),
        (ProxyConfig("proxy.example", 443, "https"), "https://*.proxy.example wss://*.proxy.example"),
        (ProxyConfig("proxy.example", 80, "http"), "http://*.proxy.example ws://*.proxy.example"),
    ],
)
def test_the_confinement_policy_names_only_proxy_origins(proxy_config: ProxyConfig, hosts: str) -> None:
    policy = confinement_policy(proxy_config)
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives == {
        "default-src": f"{hosts} data: blob: 'unsafe-inline' 'unsafe-eval' 'wasm-unsafe-eval'",
        "form-action": hosts.split(" ")[0] + " javascript: mailto: tel:",
    }


@pytest.mark.parametrize(
    ("initiator", "expected"),
    [
        (("Origin", SHOP_ORIGIN), "same-origin"),
        (("Origin", proxy("s-static-shop-example", "")), "same-site"),
        (("Referer", proxy("s-static-shop-example", "/p")), "same-site"),
        (("Origin", proxy("s-cdn-example", "")), "cross-site"),
        (("Origin", proxy("h-shop-example", "")), "cross-site"),  # http: another scheme, another site
        (("Origin", proxy("s-shop-example", "").replace("k3j9x2ab7q", "abcdefghij")), "cross-site"),
        (("Referer", "http://cobrowse.localhost:8000/console"), "cross-site"),
        (("Origin", "null"), "cross-site"),
    ],
)
def test_sec_fetch_site_is_the_upstream_relation(
    initiator: tuple[str, str], expected: str, mapper: UrlMapper
) -> None:
    """Every proxy origin is on the proxy's site: the browser says same-site between any two,
    of this session or another. The upstream hears the relation of the upstream origins."""
    headers = [("Sec-Fetch-Site", "same-site"), initiator]
    result = dict(rewrite_request_headers(headers, mapper=mapper, origin=ORIGIN))
    assert result["Sec-Fetch-Site"] == expected


@pytest.mark.parametrize(
    ("value", "passed", "clears"),
    [
        ('"cookies"', None, True),
        ('"cache", "cookies", "storage"', '"cache", "storage"', True),
        ('"storage"', '"storage"', False),
        ('"*"', '"cache", "storage", "executionContexts", "clientHints", "prefetchCache", "prerenderCache"',
         True),
        ('"nonsense"', None, False),
    ],
)
def test_clear_site_data_clears_the_jar_and_passes_the_rest(
    value: str, passed: str | None, clears: bool, mapper: UrlMapper
) -> None:
    """"cookies" would clear every proxy cookie of the proxy's site in the browser (every
    session's credential): it clears the jar instead. The other types are the proxy origin's own."""
    result = rewrite_response_headers([("Clear-Site-Data", value)], url=URL, mapper=mapper)
    assert result.clear_cookies is clears
    assert dict(result.headers).get("Clear-Site-Data") == passed


def test_headers_that_would_fetch_or_block_outside_the_rewriting_are_dropped(mapper: UrlMapper) -> None:
    headers = [
        ("Speculation-Rules", '"https://shop.example/rules.json"'),  # prefetches straight upstream
        ("Integrity-Policy", "blocked-destinations=(script)"),  # would block the runtime
        ("Integrity-Policy-Report-Only", "blocked-destinations=(script)"),
        ("X-Kept", "1"),
    ]
    assert rewrite_response_headers(headers, url=URL, mapper=mapper).headers == (("X-Kept", "1"),)


def test_a_link_header_imagesrcset_is_mapped(mapper: UrlMapper) -> None:
    value = (
        '</a.png>; rel=preload; as=image; imagesrcset="https://cdn.example/a.png 1x, '
        'https://cdn.example/a@2x.png 2x"; imagesizes="50vw", <https://cdn.example/b.png>; rel=preload; '
        "imagesrcset=https://shop.example/b.png"
    )
    result = rewrite_response_headers([("Link", value)], url=URL, mapper=mapper)
    assert dict(result.headers)["Link"] == (
        f'</a.png>; rel=preload; as=image; imagesrcset="{proxy("s-cdn-example", "/a.png")} 1x, '
        f'{proxy("s-cdn-example", "/a@2x.png")} 2x"; imagesizes="50vw", '
        f'<{proxy("s-cdn-example", "/b.png")}>; rel=preload; '
        f'imagesrcset="{proxy("s-shop-example", "/b.png")}"'
    )


def test_clear_site_data_only_from_a_trustworthy_origin(mapper: UrlMapper) -> None:
    """Browsers ignore it from plain http (but loopback): so does the proxy."""
    value = '"cookies", "storage"'
    plain = rewrite_response_headers([("Clear-Site-Data", value)], url="http://shop.example/x", mapper=mapper)
    assert plain.clear_cookies is False and plain.headers == ()
    loopback = rewrite_response_headers(
        [("Clear-Site-Data", value)], url="http://127.0.0.1:8002/", mapper=mapper
    )
    assert loopback.clear_cookies is True


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("shop.example", "shop.example"),
        ("www.shop.example", "shop.example"),
        ("www.shop.example.co.uk", "example.co.uk"),  # not every .co.uk a single site
        ("a.b.example.com.au", "example.com.au"),
        ("shop.de", "shop.de"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_the_site_of_a_host(host: str, site: str) -> None:
    assert site_of_host(host) == site
