"""Errors of the proxy.

    ProxyError                   base
     ├── Refused(page)           the request is answered with the error page ``page`` (a key of
     │    │                      ``error_pages.PAGES``) and nothing is fetched upstream
     │    └── EgressRefused      the upstream address is not one the proxy may connect to
     ├── BodyTooLarge            a body exceeds a size limit (rewriting or decompression)
     └── ContentDecodingError    a compressed body cannot be decoded

Foreign errors (rewriter, store, DNS) are translated at the boundary with ``raise ... from exc``.
"""

from __future__ import annotations


class ProxyError(Exception):
    """Base of every error the proxy raises."""


class Refused(ProxyError):
    """The request gets the error page named ``page`` instead of an upstream response."""

    def __init__(self, page: str, detail: str = "") -> None:
        super().__init__(f"{page}: {detail}" if detail else page)
        self.page = page
        self.detail = detail


class EgressRefused(Refused):
    """The upstream resolves to an address the egress policy forbids."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("outside_scope", detail)


class BodyTooLarge(ProxyError):
    """A body is larger than the limit that applies to it."""


class ContentDecodingError(ProxyError):
    """A ``Content-Encoding`` the proxy cannot decode, or a corrupt compressed body."""
