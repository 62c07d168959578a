"""Egress policy: only the session's origins, never private/loopback/link-local/metadata addresses
(outside the explicit development list), pinned to the checked address."""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mitmproxy.proxy.server_hooks import ServerConnectionHookData
from mitmproxy.test import tflow
from starlette.requests import Request
from starlette.responses import HTMLResponse

from proxy import addons
from proxy.egress import EgressPolicy, forbidden_reason
from proxy.exceptions import EgressRefused, Refused
from rewriter.urls import Origin
from tests.conftest import free_port
from tests.proxy import fake_dns as dns
from tests.proxy.conftest import DOMAIN, Harness, Sites, make_settings
from tests.proxy.fake_dns import FakeDns
from tests.proxy.raw_upstream import RawUpstream
from tests.proxy.test_tls import serve_tls


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    return dns.install(monkeypatch)


def _rebound(conn: socket.socket) -> bool:
    body = b"<h1>rebound</h1>"
    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: "
                 + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n" + body)
    return True


def _allow_dev(harness: Harness, *origins: str) -> None:
    harness.proxy.ctx.egress = EgressPolicy((*harness.settings.dev_allow_origins, *origins))


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.1.2.3", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
        "100.100.100.200", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
        "fe80::1", "fc00::1", "fd00:ec2::254", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
        "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "::127.0.0.1",
        # Python 3.11 calls these IPv4-mapped forms global: only their IPv4 form refuses them
        "::ffff:100.100.100.200", "::ffff:100.64.0.1", "::ffff:224.0.0.1", "::ffff:169.254.169.254",
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


async def test_a_name_that_does_not_resolve_is_unreachable_not_an_error(
    fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No such name, no address at all, or a resolver that does not answer in time: the
    "unreachable" page (502), never a crash and never a wait past the resolve timeout."""
    fake_dns.answers["empty.test"] = [[]]
    real = fake_dns.getaddrinfo

    def resolver(host: object, port: object, *args: object, **kwargs: object) -> object:
        if host == "nxdomain.test":
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if host == "slow.test":
            time.sleep(1.0)  # a resolver that hangs (the lookup runs in the loop's executor)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    policy = EgressPolicy(resolve_timeout_s=0.2)
    for name, detail in (("nxdomain.test", "name resolution failed"), ("empty.test", "no address"),
                         ("slow.test", "name resolution failed")):
        with pytest.raises(Refused) as refused:
            await policy.resolve(Origin.parse(f"https://{name}"))
        assert (refused.value.page, refused.value.detail) == ("upstream_unreachable", detail), name


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


@pytest.mark.parametrize(
    "answer",
    [["93.184.216.34", "10.0.0.1"], ["2606:4700:4700::1111", "::1"], ["1.1.1.1", "::ffff:169.254.169.254"]],
)
async def test_a_name_is_refused_when_any_of_its_addresses_is_private(
    fake_dns: FakeDns, answer: list[str]
) -> None:
    fake_dns.answers["mixed.test"] = [answer]
    with pytest.raises(EgressRefused):
        await EgressPolicy().resolve(Origin.parse("http://mixed.test"))
    fake_dns.answers["public.test"] = [answer[:1]]
    target = await EgressPolicy().resolve(Origin.parse("http://public.test"))
    assert target.address == answer[0]


def test_the_upstream_connection_goes_to_the_checked_address(
    harness: Harness, sites: Sites, fake_dns: FakeDns
) -> None:
    # DNS rebinding: the name is checked as 127.0.0.1 (the shop), then answers 127.0.0.2, where
    # another server listens on the same port; the proxy must connect where it checked
    origin = f"http://rebind.test:{sites.shop.port}"
    fake_dns.answers["rebind.test"] = [["127.0.0.1"], ["127.0.0.2"]]
    rebound = RawUpstream({"/about": _rebound}, "127.0.0.2", sites.shop.port)
    try:
        _allow_dev(harness, origin)
        s, credential, host = harness.session_on(origin)
        r = harness.get(s, host, "/about", credential=credential)
        assert r.status_code == 200 and "rebound" not in r.text
        assert sites.shop.hits["/about"] == 1
        assert rebound.connections == 0
        assert fake_dns.lookups == ["rebind.test"]  # resolved once, by the egress check
    finally:
        rebound.close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, list[str]]]:
    """An HTTPS site (its certificate is not for the names used: tests skip verification); its
    port and the Host of every request it answered."""
    hosts: list[str] = []

    async def home(request: Request) -> HTMLResponse:
        hosts.append(request.headers["host"])
        return HTMLResponse(f"<h1>secure {request.headers['host']}</h1>")

    with serve_tls(tmp_path, home) as (port, _ca):
        yield port, hosts


def test_a_second_name_on_a_pinned_tls_connection_is_misdirected(
    sites: Sites, redis_url: str, namespace: str, fake_dns: FakeDns, tls_server: tuple[int, list[str]]
) -> None:
    # two names for one address and port on one client connection: the upstream TLS connection
    # already carries the first name (SNI), so the second is answered 421, never sent over it
    port, hosts = tls_server
    fake_dns.answers["one.test"] = [["127.0.0.1"]]
    fake_dns.answers["two.test"] = [["127.0.0.1"]]
    first, second = f"https://one.test:{port}", f"https://two.test:{port}"
    harness = Harness(
        make_settings(sites, dev_allow_origins=(first, second), insecure_upstream=True), redis_url, namespace
    )
    try:
        s = harness.open_session((first, second))
        cookie = f"__cb_{s.sid}={harness.credential(s)}"
        with harness.client() as client:
            one = client.get("/", headers={"host": harness.host(s, first), "cookie": cookie})
            assert one.status_code == 200 and f"secure one.test:{port}" in one.text
            two = client.get("/", headers={"host": harness.host(s, second), "cookie": cookie})
            assert two.status_code == 421 and "Misdirected request" in two.text
        assert hosts == [f"one.test:{port}"]
        # on a connection of its own, the second name is fetched (with its own SNI)
        r = harness.get(s, harness.host(s, second), "/", credential=harness.credential(s))
        assert r.status_code == 200 and f"secure two.test:{port}" in r.text
    finally:
        harness.close()


def test_only_pinned_addresses_are_connected_to() -> None:
    egress = addons.Egress(None)  # type: ignore[arg-type]  # server_connect reads no context
    dummy = tflow.tserver_conn()
    dummy.address = ("127.0.0.1", 1)  # the reverse-proxy target every unrouted request would get
    data = ServerConnectionHookData(client=tflow.tclient_conn(), server=dummy)
    egress.server_connect(data)
    assert data.server.error == "no upstream"
    pinned = tflow.tserver_conn()
    pinned.address = ("127.0.0.1", 8443)
    data = ServerConnectionHookData(client=tflow.tclient_conn(), server=pinned)
    egress.server_connect(data)
    assert data.server.error is None
