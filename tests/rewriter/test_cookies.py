"""The cookie-jar model: Set-Cookie parsing, matching, the script view, script writes."""

from __future__ import annotations

import json

import pytest

from rewriter.cookies import (
    MAX_PER_DOMAIN,
    MAX_PER_JAR,
    CookieChange,
    CookieRecord,
    cookie_header,
    expired_keys,
    load_records,
    origin_script_view,
    over_limits,
    parse_script_write,
    parse_set_cookies,
    record_from_seed,
    script_view,
)
from rewriter.headers import site_of_host

NOW = 1_800_000_000.0
URL = "https://www.shop.example/account/orders"


def jar(*values: str, url: str = URL) -> list[CookieRecord]:
    return list(parse_set_cookies(values, url, now=NOW).upserts)


def one(value: str, url: str = URL) -> CookieRecord:
    records = jar(value, url=url)
    assert len(records) == 1, records
    return records[0]


# (Set-Cookie, expected fields)
PARSED = [
    ("sid=abc", {"domain": "www.shop.example", "host_only": True, "path": "/account", "secure": False}),
    ("sid=abc; Path=/", {"path": "/", "http_only": False, "same_site": None, "expires": None}),
    ("sid=abc; Domain=shop.example", {"domain": "shop.example", "host_only": False}),
    ("sid=abc; Domain=.shop.example", {"domain": "shop.example", "host_only": False}),
    ("sid=abc; Domain=WWW.Shop.Example", {"domain": "www.shop.example", "host_only": False}),
    ("sid=abc; HttpOnly", {"http_only": True}),
    ("sid=abc; httponly", {"http_only": True}),
    ("sid=abc; SameSite=Strict", {"same_site": "strict"}),
    ("sid=abc; samesite=none; Secure", {"same_site": "none", "secure": True}),
    ("sid=abc; SameSite=bogus", {"same_site": None}),
    ("sid=abc; Max-Age=60", {"expires": NOW + 60}),
    ("sid=abc; Expires=Wed, 01 Jan 2031 00:00:00 GMT", {"expires": 1924992000.0}),
    ("sid=a=b=c", {"name": "sid", "value": "a=b=c"}),
    ('sid="quoted value"', {"value": '"quoted value"'}),
    ("__Host-id=1; Secure; Path=/", {"name": "__Host-id", "secure": True}),
    ("__Secure-id=1; Secure", {"name": "__Secure-id"}),
]


@pytest.mark.parametrize(("header", "fields"), PARSED)
def test_parse(header: str, fields: dict[str, object]) -> None:
    record = one(header)
    for name, value in fields.items():
        assert getattr(record, name) == value, name


@pytest.mark.parametrize(
    ("header", "url"),
    [
        ("sid=abc; Domain=evil.example", URL),  # another site
        ("sid=abc; Domain=example", URL),  # a top-level domain
        ("sid=abc; Domain=.co.uk", "https://shop.co.uk/"),  # a public suffix
        # public suffixes of the Public Suffix List's private part: each name under them is a site
        ("sid=abc; Domain=github.io", "https://alice.github.io/"),
        ("sid=abc; Domain=herokuapp.com", "https://app.herokuapp.com/"),
        ("sid=abc; Domain=s3.amazonaws.com", "https://bucket.s3.amazonaws.com/"),
        ("sid=abc; Secure", "http://www.shop.example/"),  # Secure from an insecure origin
        ("__Secure-id=1", URL),  # prefix without Secure
        ("__Host-id=1; Secure; Path=/; Domain=shop.example", URL),  # __Host- with Domain
        ("__Host-id=1; Secure; Path=/account", URL),  # __Host- not at /
        ("__secure-id=1", URL),  # the prefixes are case-insensitive (RFC 6265bis, Chromium)
        ("__HOST-id=1; Secure; Path=/; Domain=shop.example", URL),
        ("__host-lower=1; Path=/", URL),
        ("novalue", URL),
        ("sid=abc; SameSite=None", URL),  # SameSite=None without Secure
        ("sid=" + "x" * 4094, URL),  # name and value over 4096 bytes
        ("sid=abc; Max-Age=abc", URL),
    ],
)
def test_refused(header: str, url: str) -> None:
    assert jar(header, url=url) == []


def test_deletion_by_max_age_and_past_expires() -> None:
    change = parse_set_cookies(
        ["a=; Max-Age=0; Path=/", "b=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=shop.example; Path=/"],
        URL,
        now=NOW,
    )
    assert change.upserts == ()
    assert set(change.deletes) == {"www.shop.example;/;a", "shop.example;/;b"}


def test_deletion_of_another_sites_cookie_is_ignored() -> None:
    change = parse_set_cookies(["a=; Max-Age=0; Domain=evil.example; Path=/"], URL, now=NOW)
    assert change == CookieChange()


def test_later_header_wins_within_one_response() -> None:
    change = parse_set_cookies(
        ["a=1; Path=/", "a=2; Path=/", "b=1; Path=/", "b=; Max-Age=0; Path=/"], URL, now=NOW
    )
    assert [(r.name, r.value) for r in change.upserts] == [("a", "2")]
    assert change.deletes == ("www.shop.example;/;b",)


def test_record_json_round_trip_and_key() -> None:
    record = one("sid=abc; Domain=shop.example; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=10")
    assert record.key == "shop.example;/;sid"
    assert CookieRecord.from_json(record.to_json()) == record
    assert json.loads(record.to_json())["same_site"] == "lax"
    with pytest.raises(ValueError):
        CookieRecord.from_json('{"name": "x"}')
    with pytest.raises(ValueError):
        CookieRecord.from_json("[]")


def test_load_records_skips_corrupt_entries() -> None:
    record = one("a=1; Path=/")
    assert load_records({record.key: record.to_json(), "bad": "{nope"}) == [record]


# (request URL, expected Cookie header) against one jar
JAR_HEADERS = [
    "host=1; Path=/",
    "dom=2; Domain=shop.example; Path=/",
    "acct=3; Path=/account",
    "deep=4; Path=/account/orders/",
    "sec=5; Secure; Path=/",
    "old=6; Path=/; Max-Age=-1",
    "soon=7; Path=/; Max-Age=5",
]
MATCHES = [
    ("https://www.shop.example/", "host=1; dom=2; sec=5; soon=7"),
    ("https://www.shop.example/account", "acct=3; host=1; dom=2; sec=5; soon=7"),
    ("https://www.shop.example/account/orders/1", "deep=4; acct=3; host=1; dom=2; sec=5; soon=7"),
    ("https://www.shop.example/accounting", "host=1; dom=2; sec=5; soon=7"),
    ("http://www.shop.example/account", "acct=3; host=1; dom=2; soon=7"),
    ("https://shop.example/", "dom=2"),
    ("https://img.shop.example/", "dom=2"),
    ("https://sub.www.shop.example/", "dom=2"),
    ("https://evilshop.example/", ""),
    ("wss://www.shop.example/socket", "host=1; dom=2; sec=5; soon=7"),
]


@pytest.mark.parametrize(("url", "expected"), MATCHES)
def test_cookie_header(url: str, expected: str) -> None:
    assert (
        cookie_header(jar(*JAR_HEADERS, url="https://www.shop.example/account/orders"), url, now=NOW)
        == expected
    )


def test_expiry_is_checked_at_request_time() -> None:
    records = jar("soon=7; Path=/; Max-Age=5")
    assert cookie_header(records, URL, now=NOW + 4) == "soon=7"
    assert cookie_header(records, URL, now=NOW + 6) == ""
    assert expired_keys(records, now=NOW + 6) == ("www.shop.example;/;soon",)


@pytest.mark.parametrize(
    ("same_site", "top_level", "expected"),
    [
        (True, False, "strict=1; lax=2; none=3; default=4"),
        (False, True, "lax=2; none=3; default=4"),
        (False, False, "none=3"),
    ],
)
def test_same_site(same_site: bool, top_level: bool, expected: str) -> None:
    records = jar(
        "strict=1; SameSite=Strict; Path=/",
        "lax=2; SameSite=Lax; Path=/",
        "none=3; SameSite=None; Secure; Path=/",
        "default=4; Path=/",
    )
    header = cookie_header(records, URL, same_site=same_site, top_level_navigation=top_level, now=NOW)
    assert header == expected


def test_script_view_hides_http_only() -> None:
    records = jar(
        "a=1; Path=/", "b=2; Path=/; HttpOnly", "c=3; Path=/; SameSite=Strict", "d=4; Path=/account"
    )
    assert script_view(records, URL, now=NOW) == [  # longest path first, as browsers show them
        {"name": "d", "value": "4", "path": "/account"},
        {"name": "a", "value": "1", "path": "/"},
        {"name": "c", "value": "3", "path": "/"},
    ]


def test_the_script_views_carry_the_time_a_cookie_expires() -> None:
    """The runtime drops a cookie from ``document.cookie`` at that time, as a browser does (it
    showed until the proxy's next answer brought a new view)."""
    records = jar("a=1; Path=/; Max-Age=90", "b=2; Path=/")
    assert script_view(records, URL, now=NOW) == [
        {"name": "a", "value": "1", "path": "/", "expires": int(NOW) + 90},
        {"name": "b", "value": "2", "path": "/"},
    ]
    assert origin_script_view(records, URL, now=NOW) == [("a", "1", "/", int(NOW) + 90), ("b", "2", "/")]


def test_script_write() -> None:
    existing = jar("locked=1; Path=/; HttpOnly", "open=1; Path=/")
    change = parse_script_write("open=2; path=/", URL, existing, now=NOW)
    assert [(r.name, r.value, r.http_only) for r in change.upserts] == [("open", "2", False)]
    assert parse_script_write("locked=2; path=/", URL, existing, now=NOW) == CookieChange()
    assert parse_script_write("locked=; path=/; max-age=0", URL, existing, now=NOW) == CookieChange()
    assert parse_script_write("new=1; HttpOnly", URL, existing, now=NOW) == CookieChange()
    deleted = parse_script_write(
        "open=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT", URL, existing, now=NOW
    )
    assert deleted.deletes == ("www.shop.example;/;open",)
    stored = {r.key: r for r in existing}
    assert parse_script_write("locked=3; path=/", URL, stored, now=NOW) == CookieChange()


def test_store_update_form() -> None:
    change = parse_set_cookies(["a=1; Path=/", "b=; Max-Age=0; Path=/"], URL, now=NOW)
    upserts, deletes = change.as_store_update()
    assert list(upserts) == ["www.shop.example;/;a"]
    assert CookieRecord.from_json(upserts["www.shop.example;/;a"]).value == "1"
    assert deletes == ("www.shop.example;/;b",)


def test_record_from_seed() -> None:
    key, text = record_from_seed("theme", "dark", "https://www.shop.example/page", now=NOW)
    record = CookieRecord.from_json(text)
    assert key == record.key == "www.shop.example;/;theme"
    assert (record.host_only, record.secure, record.http_only) == (True, True, False)
    assert cookie_header([record], "https://www.shop.example/x", now=NOW) == "theme=dark"


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8002", "http://localhost:8002", "http://[::1]:8002"])
def test_loopback_is_a_secure_context_as_in_browsers(origin: str) -> None:
    records = jar("s=1; Secure; Path=/", "__Secure-p=2; Secure; Path=/", url=f"{origin}/login")
    assert [r.name for r in records] == ["s", "__Secure-p"]
    assert cookie_header(records, f"{origin}/cart", now=NOW) == "s=1; __Secure-p=2"
    assert cookie_header(records, "http://www.shop.example/cart", now=NOW) == ""


def test_loopback_upstream() -> None:
    records = jar("a=1", url="http://127.0.0.1:8002/shop/cart")
    assert records[0].domain == "127.0.0.1" and records[0].path == "/shop"
    assert cookie_header(records, "http://127.0.0.1:8002/shop/x", now=NOW) == "a=1"
    records = jar("a=1", url="http://localhost:8002/")
    assert records[0].domain == "localhost"


def test_the_jar_keeps_within_a_browsers_limits() -> None:
    """At most MAX_PER_DOMAIN cookies per domain and MAX_PER_JAR in all: expired ones go first,
    then the oldest; of equal age, the last set stays."""
    def record(name: str, domain: str, created: float, expires: float | None = None) -> CookieRecord:
        return CookieRecord(name, "v", domain, True, "/", False, False, None, expires, created)

    small = [record(f"c{i}", "shop.example", NOW) for i in range(MAX_PER_DOMAIN)]
    assert over_limits(small, now=NOW) == ()
    one_site = [record(f"c{i}", "shop.example", NOW + (i < 5)) for i in range(MAX_PER_DOMAIN + 20)]
    dropped = over_limits([*one_site, record("old", "shop.example", NOW, expires=NOW - 1)], now=NOW)
    assert dropped[0] == "shop.example;/;old"  # expired first
    # then the 20 oldest: c0..c4 are the newest (created NOW + 1); of the rest, the first set go
    assert set(dropped[1:]) == {f"shop.example;/;c{i}" for i in range(5, 25)}
    many = [record(f"c{i}", f"s{i % 10}.example", NOW + i) for i in range(MAX_PER_JAR + 7)]
    assert set(over_limits(many, now=NOW)) == {r.key for r in many[:7]}


def _domain_record(domain: str) -> CookieRecord:
    return CookieRecord("a", "1", domain, False, "/", False, False, None, None, NOW)


@pytest.mark.parametrize(
    ("domain", "url"),
    [
        ("0.1", "http://10.0.0.1/"),
        ("0.0.1", "http://10.0.0.1:8080/"),
        ("3.4", "http://1.2.3.4/"),
        ("0.1", "http://[::ffff:10.0.0.1]/"),
        ("1", "http://[::ffff:10.0.0.1]/"),
    ],
)
def test_domain_cookies_never_match_an_ip_address_by_suffix(domain: str, url: str) -> None:
    # a jar record of a domain (however it got there) is not sent to an IP host it is a suffix of
    assert cookie_header([_domain_record(domain)], url, now=NOW) == ""
    # and an IP host cannot set one: Domain must then be the address itself (RFC 6265 5.1.3)
    assert jar(f"b=2; Domain={domain}; Path=/", url=url) == []


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://1.2.3.4:8080/"])
def test_an_ip_host_keeps_a_cookie_of_its_own_address(url: str) -> None:
    host = url.split("/")[2].split(":")[0]
    record = one(f"b=2; Domain={host}; Path=/", url=url)
    assert record.domain == host
    assert cookie_header([record], url, now=NOW) == "b=2"
    assert cookie_header([_domain_record(host)], url, now=NOW) == "a=1"


@pytest.mark.parametrize(
    ("header", "url"),
    [
        ("sid=abc; Domain=alice.github.io", "https://www.alice.github.io/"),
        ("sid=abc; Domain=example.co.uk", "https://shop.example.co.uk/"),
        ("sid=abc; Domain=shop.example", "https://www.shop.example/"),
    ],
)
def test_a_domain_under_a_public_suffix_is_taken(header: str, url: str) -> None:
    assert [r.name for r in jar(header, url=url)] == ["sid"]


def test_a_public_suffix_domain_from_that_host_itself_is_host_only() -> None:
    """A cookie ``github.io`` sets with ``Domain=github.io`` must not reach ``alice.github.io``."""
    (record,) = jar("sid=abc; Domain=github.io", url="https://github.io/")
    assert (record.domain, record.host_only) == ("github.io", True)
    assert cookie_header([record], "https://alice.github.io/") == ""
    assert cookie_header([record], "https://github.io/") == "sid=abc"


@pytest.mark.parametrize(
    ("host", "site"),
    [
        ("alice.github.io", "alice.github.io"),
        ("www.alice.github.io", "alice.github.io"),
        ("shop.example.co.uk", "example.co.uk"),
        ("a.b.example", "b.example"),
        ("x.cobrowse.localhost", "cobrowse.localhost"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
    ],
)
def test_a_site_is_a_public_suffix_and_one_label(host: str, site: str) -> None:
    """SameSite is decided by site: ``alice.github.io`` and ``bob.github.io`` are two."""
    assert site_of_host(host) == site
