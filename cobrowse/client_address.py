"""The browser's IP address behind trusted load balancers (``--trusted-proxies``): used by the
proxy (the agent's address for uncredentialed requests) and the API (rate limits)."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted)


def parse_address(text: str) -> IPAddress | None:
    """An IP address (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_ip(peer: str | None, forwarded_for: Iterable[str], trusted: tuple[str, ...]) -> str:
    """The connection's ``peer``, or, when that peer is a trusted load balancer, the last address
    in ``X-Forwarded-For`` (all its values, in order) that is not one; "" without a peer."""
    address = parse_address(peer) if peer else None
    if address is None:
        return ""
    networks = _networks(trusted)
    if not any(address in network for network in networks):
        return str(address)
    hops = ",".join(forwarded_for).split(",")
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:
            break  # a malformed hop: nothing before it can be trusted either
        if not any(hop_address in network for network in networks):
            return str(hop_address)
    return str(address)


def rate_subject(address: str) -> str:
    """What a per-client limit counts by: the address, or for IPv6 its /64 (one host usually
    holds a whole /64 and could rotate through it)."""
    parsed = parse_address(address) if address else None
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return address
