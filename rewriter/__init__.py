"""Sans-IO rewriting of HTML, CSS and headers for the co-browsing proxy: bytes in, bytes out."""

from rewriter.exceptions import (
    BadLabel,
    InvalidSelector,
    InvalidUrl,
    RewriteError,
    UnknownOrigin,
    UnrewritableDocument,
    UnsupportedScheme,
)
from rewriter.urls import (
    Origin,
    ParsedUrl,
    ProxyConfig,
    UrlMapper,
    decode_label,
    encode_label,
    normalize_url,
    parse_url,
)

__all__ = [
    "BadLabel",
    "InvalidSelector",
    "InvalidUrl",
    "Origin",
    "ParsedUrl",
    "ProxyConfig",
    "RewriteError",
    "UnknownOrigin",
    "UnrewritableDocument",
    "UnsupportedScheme",
    "UrlMapper",
    "decode_label",
    "encode_label",
    "normalize_url",
    "parse_url",
]
