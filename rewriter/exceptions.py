"""Errors of the rewriter.

    RewriteError                 base: anything the rewriter refuses
     ├── UnsupportedScheme       a URL whose scheme is not http, https, ws or wss where an origin is needed
     ├── InvalidUrl              a URL (or host, port) that cannot be parsed the way a browser would
     ├── BadLabel                a proxy host label (or session id) that is not canonical or not ours
     ├── UnknownOrigin           an ``x`` label whose origin is not among the known origins
     ├── InvalidSelector         a masking CSS selector that cssselect cannot compile
     └── UnrewritableDocument    a document from which nothing sensible can be produced

A caller that needs only "refuse this" catches ``RewriteError``; the subclasses exist where callers
branch (the proxy answers ``UnknownOrigin`` as "outside the co-browse scope", ``BadLabel`` as 404).
"""

from __future__ import annotations


class RewriteError(Exception):
    """Base of every error the rewriter raises."""


class UnsupportedScheme(RewriteError):
    """The URL's scheme cannot be proxied (only http, https, ws and wss can)."""


class InvalidUrl(RewriteError):
    """The URL, host or port is malformed."""


class BadLabel(RewriteError):
    """The proxy host label or session id is malformed, not canonical, or of another session."""


class UnknownOrigin(RewriteError):
    """A hashed (``x``) label names none of the known origins."""


class InvalidSelector(RewriteError):
    """A masking selector is not valid CSS."""


class UnrewritableDocument(RewriteError):
    """Nothing sensible can be produced from this document."""
