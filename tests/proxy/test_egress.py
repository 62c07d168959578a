"""Egress policy: only the session's origins, never private/loopback/link-local/metadata addresses
(outside the explicit development list), pinned to the checked address."""

from __future__ import annotations

import ipaddress

import pytest

from proxy.egress import EgressPolicy, forbidden_reason
from proxy.exceptions import EgressRefused
from rewriter.urls import Origin
from tests.conftest import free_port
from tests.proxy.conftest import DOMAIN, Harness, Sites


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "100.100.100.200", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
        "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::127.0.0.1",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:1.1.1.1"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


async def test_scope_is_the_sessions_origins_only() -> None:
    policy = EgressPolicy()
    policy.check_scope(Origin.parse("https://shop.example"), ("https://shop.example",))
    with pytest.raises(EgressRefused):
        policy.check_scope(Origin.parse("https://other.example"), ("https://shop.example",))
    with pytest.raises(EgressRefused):
        policy.check_scope(Origin.parse("http://shop.example"), ("https://shop.example",))


async def test_names_resolving_to_loopback_are_refused_unless_listed() -> None:
    with pytest.raises(EgressRefused):
        await EgressPolicy().resolve(Origin.parse("http://localhost:8000"))
    target = await EgressPolicy(["http://localhost:8000"]).resolve(Origin.parse("http://localhost:8000"))
    assert ipaddress.ip_address(target.address).is_loopback


async def test_resolves_to_one_pinned_address() -> None:
    target = await EgressPolicy(["http://127.0.0.1:8000"]).resolve(Origin.parse("http://127.0.0.1:8000"))
    assert target.address == "127.0.0.1"


def test_ssrf_targets_in_a_sessions_scope_are_still_refused(harness: Harness, sites: Sites) -> None:
    unlisted_loopback = f"http://127.0.0.1:{free_port()}"
    targets = [
        unlisted_loopback,
        f"http://localhost:{sites.shop.port}",
        f"http://[::ffff:127.0.0.1]:{sites.shop.port}",
        f"http://[::1]:{sites.shop.port}",
        "http://169.254.169.254",
        "http://10.0.0.1",
        "http://[fd00:ec2::254]",
    ]
    s = harness.open_session(tuple([sites.shop.origin, *targets]))
    credential = harness.credential(s)
    for target in targets:
        r = harness.get(s, harness.host(s, target), "/latest/meta-data/", credential=credential)
        assert r.status_code == 403, target
        assert "Outside co-browse scope" in r.text
    assert sites.shop.total == 0


def test_redirect_outside_the_scope_gets_the_scope_page(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,))
    credential = harness.credential(s)
    host = harness.host(s, sites.shop.origin)
    r = harness.get(s, host, "/redirect-out", credential=credential)
    assert r.status_code == 403 and "Outside co-browse scope" in r.text
    assert "example.invalid" not in r.text and "location" not in r.headers
    inside = harness.get(s, host, "/redirect-in", credential=credential)
    assert inside.status_code == 302
    assert inside.headers["location"] == harness.url(s, sites.shop.origin + "/about")
    assert sites.shop.hits["/about"] == 0  # redirects are mapped, not followed


def test_upstream_unreachable_is_a_502_page_without_details(harness: Harness, sites: Sites) -> None:
    port = free_port()
    dead = f"http://127.0.0.1:{port}"
    settings = harness.settings.replace(dev_allow_origins=(*harness.settings.dev_allow_origins, dead))
    harness.proxy.ctx.egress = EgressPolicy(settings.dev_allow_origins)
    s = harness.open_session((dead,))
    r = harness.get(s, harness.host(s, dead), "/", credential=harness.credential(s))
    assert r.status_code == 502
    assert "Site unreachable" in r.text
    for detail in (str(port), "127.0.0.1", "refused", "Errno", "mitmproxy", DOMAIN):
        assert detail not in r.text
