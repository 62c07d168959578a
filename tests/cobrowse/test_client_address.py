"""The client's address behind trusted load balancers, and what a rate limit counts by."""

from __future__ import annotations

from cobrowse.client_address import client_ip, rate_subject


def test_the_forwarded_address_counts_only_behind_a_trusted_balancer() -> None:
    assert client_ip("198.51.100.7", ["203.0.113.9"], ()) == "198.51.100.7"
    assert client_ip("10.0.0.2", ["203.0.113.9, 10.0.0.3"], ("10.0.0.0/8",)) == "203.0.113.9"
    assert client_ip("::ffff:10.0.0.2", ["junk, 203.0.113.9"], ("10.0.0.0/8",)) == "203.0.113.9"
    assert client_ip("10.0.0.2", ["203.0.113.9, junk"], ("10.0.0.0/8",)) == "10.0.0.2"
    assert client_ip(None, [], ()) == "" and client_ip("testclient", [], ()) == ""


def test_an_ipv6_client_counts_by_its_64() -> None:
    """One host usually holds a whole /64: rotating through it must not reset a limit."""
    assert rate_subject("2001:db8::1") == rate_subject("2001:db8::ffff:1") == "2001:db8::/64"
    assert rate_subject("2001:db8:0:1::1") != rate_subject("2001:db8::1")
    assert rate_subject("198.51.100.7") == "198.51.100.7" and rate_subject("") == ""
