"""Routing: the request's Host names a session and an upstream origin (docs/ARCHITECTURE.md).

``http://{label}.{proxy_domain}:{port}{path}?{query}`` -> session id + upstream origin, with the
path and query unchanged. A host that is not ``{label}.{proxy_domain}`` or whose label does not
decode is unknown (404); an ``x`` label of an origin outside the session's scope is refused (403).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from proxy.exceptions import Refused
from rewriter.exceptions import BadLabel, RewriteError, UnknownOrigin
from rewriter.urls import Origin, ProxyConfig, UrlMapper, decode_label

_SID_RE = re.compile(r"[a-z][a-z0-9]{9}")


@dataclass(frozen=True)
class Route:
    """Where a proxy request goes: its session, its label and (once known) its upstream origin."""

    sid: str
    label: str


def label_of_host(host: str, proxy_domain: str) -> str | None:
    """The single label in front of ``proxy_domain`` in a Host header value, else None."""
    name = host.strip().lower()
    if name.startswith("["):
        return None
    if ":" in name:
        name, _, port = name.rpartition(":")
        if not (port.isascii() and port.isdigit() and len(port) <= 5):
            return None  # "host:8001@x", "host:80x": no Host a browser sends
    name = name.rstrip(".")
    suffix = "." + proxy_domain.lower()
    if not name.endswith(suffix):
        return None
    label = name[: -len(suffix)]
    return label if label and "." not in label else None


def route_of_host(host: str | None, proxy_domain: str) -> Route:
    """The session of a Host header; raises ``Refused('unknown_host')``."""
    label = label_of_host(host or "", proxy_domain)
    if label is None or len(label) < 12 or not _SID_RE.fullmatch(label[:10]):
        raise Refused("unknown_host")
    try:
        decode_label(label, ())
    except UnknownOrigin:
        pass  # a hashed label: decodable only against the session's origins, checked later
    except BadLabel as exc:
        raise Refused("unknown_host") from exc
    return Route(label[:10], label)


@functools.lru_cache(maxsize=1024)
def _origins(allowed_origins: tuple[str, ...]) -> tuple[Origin, ...]:
    """The parsable origins of a session's scope (cached: every request of a session asks)."""
    known = []
    for text in allowed_origins:
        try:
            known.append(Origin.parse(text))
        except RewriteError:
            continue
    return tuple(known)


def upstream_origin(route: Route, allowed_origins: tuple[str, ...]) -> Origin:
    """Decode the label's origin; ``x`` labels only among ``allowed_origins``."""
    try:
        sid, origin = decode_label(route.label, _origins(tuple(allowed_origins)))
    except UnknownOrigin as exc:
        raise Refused("outside_scope") from exc
    except BadLabel as exc:
        raise Refused("unknown_host") from exc
    if sid != route.sid:  # pragma: no cover - decode_label returns the label's own sid
        raise Refused("unknown_host")
    return origin


def mapper_for(sid: str, proxy: ProxyConfig, allowed_origins: tuple[str, ...]) -> UrlMapper:
    """The session's URL mapper; one per (session, proxy, scope), so its caches outlive a request."""
    return _mapper(sid, proxy, tuple(allowed_origins))


@functools.lru_cache(maxsize=1024)
def _mapper(sid: str, proxy: ProxyConfig, allowed_origins: tuple[str, ...]) -> UrlMapper:
    return UrlMapper(sid, proxy, _origins(allowed_origins))
