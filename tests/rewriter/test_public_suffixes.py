"""The public suffixes above a host: what the runtime's document.cookie refuses as a Domain."""

from __future__ import annotations

import pytest

from rewriter.cookies import parse_set_cookies
from rewriter.public_suffixes import public_ancestors


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("alice.github.io", ["github.io", "io"]),
        ("www.shop.example", ["example"]),
        ("www.bbc.co.uk", ["co.uk", "uk"]),
        ("github.io", ["io"]),  # a suffix's own host: its own name is not above it
        ("WWW.Shop.Example.", ["example"]),
        ("127.0.0.1", []),
        ("::1", []),
        ("", []),
    ],
)
def test_public_ancestors(host: str, expected: list[str]) -> None:
    assert public_ancestors(host) == expected


@pytest.mark.parametrize(
    "host", ["alice.github.io", "www.shop.example", "www.bbc.co.uk", "github.io", "a.b.compute.amazonaws.com"]
)
def test_the_runtime_refuses_the_domains_the_jar_refuses(host: str) -> None:
    """The runtime's rule (rewriter/assets/runtime.js, document.cookie): a Domain other than the
    host that is one of these. The same as the server's jar for the host and every domain above."""
    labels = host.split(".")
    for domain in (".".join(labels[i:]) for i in range(len(labels))):
        kept = bool(parse_set_cookies([f"a=1; Domain={domain}"], f"https://{host}/").upserts)
        assert kept == (domain == host or domain not in public_ancestors(host)), domain
