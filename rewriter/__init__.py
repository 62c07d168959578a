"""Sans-IO rewriting of HTML, CSS and headers for the co-browsing proxy: bytes in, bytes out.

The URL codec, errors, headers and cookie-jar model are imported eagerly (stdlib and idna only);
the document rewriters, which need lxml, load on first use of their names.
"""

from __future__ import annotations

import importlib
from typing import Any

from rewriter.cookies import (
    CookieChange,
    CookieRecord,
    cookie_header,
    parse_script_write,
    parse_set_cookies,
    script_view,
)
from rewriter.exceptions import (
    BadLabel,
    InvalidSelector,
    InvalidUrl,
    RewriteError,
    UnknownOrigin,
    UnrewritableDocument,
    UnsupportedScheme,
)
from rewriter.headers import ResponseHeaders, rewrite_request_headers, rewrite_response_headers
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

# public name -> module, imported on first access (they pull in lxml)
_LAZY = {
    "rewrite_html": "rewriter.html",
    "rewrite_css": "rewriter.css",
    "rewrite_css_text": "rewriter.css",
    "kind_of": "rewriter.dispatch",
    "rewrite_body": "rewriter.dispatch",
    "Rewritten": "rewriter.dispatch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rewriter' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "BadLabel",
    "CookieChange",
    "CookieRecord",
    "InvalidSelector",
    "InvalidUrl",
    "Origin",
    "ParsedUrl",
    "ProxyConfig",
    "ResponseHeaders",
    "RewriteError",
    "Rewritten",
    "UnknownOrigin",
    "UnrewritableDocument",
    "UnsupportedScheme",
    "UrlMapper",
    "cookie_header",
    "decode_label",
    "encode_label",
    "kind_of",
    "normalize_url",
    "parse_script_write",
    "parse_set_cookies",
    "parse_url",
    "rewrite_body",
    "rewrite_css",
    "rewrite_css_text",
    "rewrite_html",
    "rewrite_request_headers",
    "rewrite_response_headers",
    "script_view",
]
