"""Host parsing as browsers do it (WHATWG URL): every form of an IPv4 number, IPv6, IDN, and the
hosts a browser refuses. What the egress check sees is what this returns, so an address written
in an unusual form must come out as the address it is."""

from __future__ import annotations

import pytest

from rewriter.exceptions import InvalidUrl
from rewriter.hosts import is_ldh, normalize_host


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1.", "127.0.0.1"),  # a trailing dot
        ("1.2.3.4.", "1.2.3.4"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),  # octal
        ("2130706433", "127.0.0.1"),
        ("0x.0x.0x.0x", "0.0.0.0"),  # "0x" alone is zero
        ("0", "0.0.0.0"),
        ("1.0x", "1.0.0.0"),
        ("0xA9.0xFE.0xA9.0xFE", "169.254.169.254"),  # the cloud metadata address, in hex
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("[0:0::1]", "::1"),
        ("::1", "::1"),
        ("EXAMPLE.com.", "example.com"),
        ("ex%41mple.com", "example.com"),  # percent-decoded
        ("\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com", "example.com"),  # full-width letters
        ("b\u00fccher.example", "xn--bcher-kva.example"),
        ("\u2603.net", "xn--n3h.net"),  # a symbol IDNA 2008 refuses and browsers accept
        ("a\u200b.com", "a.com"),  # a zero-width space is mapped away
        ("foo.0x1g", "foo.0x1g"),  # not hex after 0x: a name, not an address
    ],
)
def test_hosts_normalise_as_in_a_browser(host: str, expected: str) -> None:
    assert normalize_host(host) == expected


@pytest.mark.parametrize(
    "host",
    [
        "1.2.3.4.5",  # too many parts for an address that ends in a number
        "256.0.0.1",
        "1.2.3.256",
        "4294967296",
        "0x100000000",
        "a.1",  # ends in a number, so it must be an address, and "a" is none
        "foo.09",  # 09 is not octal
        "[fe80::1%25eth0]",  # zone ids have no place in URLs
        "[::1",
        "[zz::1]",
        "a..b",
        ".",
        "%2e",  # "." once decoded
        "%ff.com",  # not UTF-8 once decoded
        "a b.com",
        "a%00b.com",
        "a<b.com",
        "\udcff.com",  # a lone surrogate: no IDN of it
    ],
)
def test_hosts_a_browser_refuses_are_refused(host: str) -> None:
    with pytest.raises(InvalidUrl):
        normalize_host(host)


def test_ldh_hosts() -> None:
    assert is_ldh("shop.example") and is_ldh("xn--bcher-kva.example") and is_ldh("a-1.b2")
    assert not is_ldh("-a.example") and not is_ldh("a-.example") and not is_ldh("a_b.example")
