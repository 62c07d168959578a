"""Shared helpers of the rewriter tests: one session's mapper on the default proxy."""

from __future__ import annotations

from rewriter.urls import ProxyConfig, UrlMapper

SID = "k3j9x2ab7q"
PROXY_SUFFIX = ".cobrowse.localhost:8001"


def proxy(label_body: str, path: str = "/") -> str:
    """The proxy URL for label ``{SID}{label_body}``, e.g. ``proxy("s-shop-example", "/a")``."""
    return f"http://{SID}{label_body}{PROXY_SUFFIX}{path}"


def make_mapper() -> UrlMapper:
    return UrlMapper(SID, ProxyConfig("cobrowse.localhost", 8001, "http"))


EVIL = proxy("s-evil-example", "/x")  # https://evil.example/x, mapped
BLOCKED = proxy("h-cobrowse--blocked-invalid", "/")  # where unmappable absolute URLs go
