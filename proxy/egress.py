"""Egress policy: which upstream origins and addresses the proxy may connect to.

An upstream must be one of the session's ``allowed_origins`` (http or https only), and every
address its host resolves to must be public: private, loopback, link-local, multicast, reserved
and cloud-metadata addresses are refused, in IPv4, IPv6 and IPv4-mapped/-embedded IPv6 form,
unless the origin is listed in ``settings.dev_allow_origins`` (tests and the demo). The caller pins
the connection to the address returned here, so DNS cannot change between check and connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.exceptions import EgressRefused, Refused
from rewriter.exceptions import RewriteError
from rewriter.urls import Origin

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Networks refused on top of everything Python does not call global (``is_global``).
BLOCKED_NETWORKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "this network"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("169.254.0.0/16", "link-local / cloud metadata"),
    ("100.100.100.200/32", "cloud metadata (Alibaba)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("198.18.0.0/15", "benchmarking"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("fc00::/7", "unique local (incl. fd00:ec2::254 metadata)"),
    ("fe80::/10", "link-local"),
    ("ff00::/8", "multicast"),
    ("64:ff9b::/96", "NAT64 (checked through its IPv4 form)"),
)
_BLOCKED = tuple((ipaddress.ip_network(net), why) for net, why in BLOCKED_NETWORKS)
ALLOWED_SCHEMES = frozenset({"http", "https"})


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96") or address in ipaddress.ip_network("::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not be fetched, or None when it is a public unicast address."""
    inner = _embedded_ipv4(address)
    if inner is not None:
        reason = forbidden_reason(inner)
        if reason is not None:
            return f"embedded IPv4: {reason}"
    for network, why in _BLOCKED:
        if address.version == network.version and address in network:
            return why
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified:
        return "unspecified"
    if not address.is_global:
        return "not a global address"
    return None


@dataclass(frozen=True)
class EgressTarget:
    """The checked upstream: its origin and the one address to connect to."""

    origin: Origin
    address: str


class EgressPolicy:
    """Checks an origin against a session's scope and resolves it to one permitted address."""

    def __init__(self, dev_allow_origins: Iterable[str] = (), resolve_timeout_s: float = 10.0) -> None:
        self.dev_allow = frozenset(Origin.parse(o) for o in dev_allow_origins)
        self.resolve_timeout_s = resolve_timeout_s

    def check_scope(self, origin: Origin, allowed_origins: Iterable[str]) -> None:
        if origin.scheme not in ALLOWED_SCHEMES:
            raise EgressRefused("scheme")
        allowed = set()
        for text in allowed_origins:
            try:
                allowed.add(Origin.parse(text))
            except RewriteError:
                continue
        if origin not in allowed:
            raise EgressRefused("origin not in allowed_origins")

    async def resolve(self, origin: Origin) -> EgressTarget:
        """The address to connect to; raises ``EgressRefused`` or ``Refused('upstream_unreachable')``."""
        try:
            literal: IPAddress | None = ipaddress.ip_address(origin.host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            addresses = await self._lookup(origin)
        if origin not in self.dev_allow:
            for address in addresses:
                reason = forbidden_reason(address)
                if reason is not None:
                    raise EgressRefused(reason)
        return EgressTarget(origin, str(addresses[0]))

    async def _lookup(self, origin: Origin) -> list[IPAddress]:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(origin.host, origin.port, type=socket.SOCK_STREAM),
                self.resolve_timeout_s,
            )
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise Refused("upstream_unreachable", "name resolution failed") from exc
        addresses: list[IPAddress] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            text = str(sockaddr[0]).split("%", 1)[0]
            address = ipaddress.ip_address(text)
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise Refused("upstream_unreachable", "no address")
        return addresses
