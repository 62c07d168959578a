"""From a response's Content-Type (sniffed when missing or vague) to the rewriter that handles it.

HTML, SVG documents and CSS are rewritten; JavaScript (the client runtime's job), JSON, raster
images, fonts, media and everything else pass through untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rewriter.charset import (
    OUTPUT_CHARSET,
    bom_codec,
    css_in_document_encoding,
    html_codec,
    in_page_encoding,
    mime_type,
)
from rewriter.css import rewrite_css
from rewriter.html import rewrite_html
from rewriter.urls import UrlMapper

Kind = Literal["html", "svg", "css", "passthrough"]
SNIFF_BYTES = 1445  # WHATWG MIME Sniffing's "resource header": browsers look no further
SVG_TYPE = "image/svg+xml"

# MIME type -> kind (anything absent passes through)
MIME_KINDS: dict[str, Kind] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "image/svg+xml": "svg",  # as a document (iframe, object, a link) it loads its own links
    "text/css": "css",
}
# types that say nothing about the body: sniffed as browsers do (WHATWG MIME Sniffing 7.1)
UNKNOWN_TYPES = frozenset({"", "unknown/unknown", "application/unknown", "*/*"})
# HTML signatures (WHATWG MIME Sniffing 7.1), matched case-insensitively after leading whitespace,
# each followed by a space or ">"
HTML_SIGNATURES = (
    b"<!doctype html", b"<html", b"<head", b"<script", b"<iframe", b"<h1", b"<div", b"<font",
    b"<table", b"<a", b"<style", b"<title", b"<b", b"<body", b"<br", b"<p", b"<!--",
)  # fmt: skip
# bodies labelled text/html that are plainly something else: rewriting would corrupt them
BINARY_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"\xff\xd8\xff", b"%PDF-", b"PK\x03\x04",
    b"\x1f\x8b\x08", b"RIFF", b"\x00\x00\x01\x00", b"wOFF", b"wOF2", b"\x00asm", b"OggS",
)  # fmt: skip


def sniff_html(prefix: bytes) -> bool:
    """Whether a body without a useful type starts like HTML."""
    bom = bom_codec(prefix)
    head = prefix[bom[1] :] if bom else prefix
    head = head[:SNIFF_BYTES].lstrip(b" \t\n\r\f").lower()
    for signature in HTML_SIGNATURES:
        if head.startswith(signature) and head[len(signature) : len(signature) + 1] in (b" ", b">"):
            return True
    return False


def is_binary(prefix: bytes) -> bool:
    return prefix.startswith(BINARY_SIGNATURES)


# WHATWG MIME Sniffing's "binary data bytes": a resource header without any reads as text
_BINARY_DATA_BYTES = bytes([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x1B), *range(0x1C, 0x20)])


def sniffs_as_text(prefix: bytes) -> bool:
    """Whether an untyped body that is not HTML is one a browser shows as text (``text/plain``):
    a UTF-16 or UTF-8 byte order mark, or no known file signature (a PDF may well start with text
    only) and no binary data byte in its first ``SNIFF_BYTES`` (WHATWG MIME Sniffing, "rules for
    identifying an unknown MIME type")."""
    if prefix.startswith((b"\xfe\xff", b"\xff\xfe", b"\xef\xbb\xbf")):
        return True
    if is_binary(prefix) or prefix.startswith(b"%!PS-Adobe-"):  # the signatures are looked at first
        return False
    head = prefix[:SNIFF_BYTES]
    return head.translate(None, _BINARY_DATA_BYTES) == head


def kind_of(content_type: str | None, body_prefix: bytes = b"") -> Kind:
    """Which rewriter a response needs: ``html``, ``svg``, ``css`` or ``passthrough``."""
    mime = mime_type(content_type)
    if mime in UNKNOWN_TYPES:
        return "html" if sniff_html(body_prefix) else "passthrough"
    kind = MIME_KINDS.get(mime, "passthrough")
    if kind != "passthrough" and is_binary(body_prefix):
        return "passthrough"
    return kind


@dataclass(frozen=True)
class Rewritten:
    """A rewritten body and the Content-Type to send with it; ``encoding``: the content coding
    the proxy then applied to ``body`` for the browser ("" for none)."""

    body: bytes
    content_type: str | None
    kind: Kind
    encoding: str = ""


def rewrite_body(
    body: bytes,
    *,
    url: str,
    mapper: UrlMapper,
    content_type: str | None,
    inject: str = "",
    mask_selectors: Sequence[str] = (),
    kind: Kind | None = None,
    document: bool = True,
) -> Rewritten:
    """Rewrite ``body`` with the rewriter its type (or ``kind``) calls for; others unchanged.
    ``document`` False: HTML a script reads (``rewrite_html``), not a page."""
    kind = kind or kind_of(content_type, body[:SNIFF_BYTES])
    if kind == "passthrough":
        return Rewritten(body, content_type, kind)
    mime = mime_type(content_type)
    if kind in ("html", "svg"):
        as_type = content_type if kind == "html" or mime == SVG_TYPE else SVG_TYPE
        picked = html_codec(body, as_type)  # once: for an undeclared page, a UTF-8 check of it all
        out = rewrite_html(
            body,
            url=url,
            mapper=mapper,
            content_type=as_type,
            inject=inject if kind == "html" else "",  # no runtime in SVG documents (yet)
            mask_selectors=mask_selectors,
            document=document,
            picked=picked,
        )
        mime = mime if MIME_KINDS.get(mime) == kind else "text/html" if kind == "html" else SVG_TYPE
        if mime == "text/html":  # (XML documents declare their encoding themselves: UTF-8)
            out, charset = in_page_encoding(out, picked[0], document=document)
            return Rewritten(out, f"{mime}; charset={charset}", kind)
    else:
        unknown = css_in_document_encoding(body, content_type)
        out = rewrite_css(body, url=url, mapper=mapper, content_type=content_type, keep_bytes=unknown)
        mime = "text/css"
        if unknown:  # no charset: the browser reads it in its document's encoding
            return Rewritten(out, mime, kind)
    return Rewritten(out, f"{mime}; charset={OUTPUT_CHARSET}", kind)
