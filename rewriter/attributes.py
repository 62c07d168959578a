"""Which HTML attributes hold URLs, and how each kind of value is rewritten.

The table is the policy; ``rewriter/html.py`` walks it. Value rewriters take the attribute text
and return the new text (or the same object when nothing changes). ``srcset`` is split as the
HTML standard's "parse a srcset attribute" does, so commas inside URLs survive.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rewriter.css import rewrite_css_text
from rewriter.url_values import map_url, refresh_url_span, replace_spans, srcset_url_spans
from rewriter.urls import UrlMapper


class Kind(enum.Enum):
    URL = "url"  # one URL
    URL_LIST = "url-list"  # space-separated URLs (ping)
    URL_VALUES = "url-values"  # semicolon-separated values, some of them URLs (SVG animation)
    SRCSET = "srcset"  # image candidate list
    STYLE = "style"  # CSS declarations
    REFRESH = "refresh"  # meta refresh content: "5; url=..."
    DOCUMENT = "document"  # a whole HTML document (iframe srcdoc)
    DROP = "drop"  # removed (integrity: the bytes change)


ANY = None  # on every element


@dataclass(frozen=True)
class AttributeRule:
    kind: Kind
    tags: frozenset[str] | None  # local tag names, or ANY
    why: str


def _tags(*names: str) -> frozenset[str]:
    return frozenset(names)


XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

# attribute (lower-case; namespaced xlink as both spellings) -> rule
ATTRIBUTE_RULES: dict[str, AttributeRule] = {
    "href": AttributeRule(Kind.URL, ANY, "a, area, link, base, and SVG elements (a, use, image, ...)"),
    "xlink:href": AttributeRule(Kind.URL, ANY, "SVG 1.1 links in HTML documents"),
    XLINK_HREF: AttributeRule(Kind.URL, ANY, "SVG 1.1 links in XML documents"),
    "src": AttributeRule(
        Kind.URL, ANY, "img, script, iframe, frame, embed, source, track, audio, video, input"
    ),
    "action": AttributeRule(Kind.URL, _tags("form"), "form submission target"),
    "formaction": AttributeRule(Kind.URL, _tags("button", "input"), "per-button submission target"),
    "data": AttributeRule(Kind.URL, _tags("object"), "embedded resource"),
    "poster": AttributeRule(Kind.URL, _tags("video"), "poster image"),
    "background": AttributeRule(Kind.URL, ANY, "legacy background image (body, table, td)"),
    "cite": AttributeRule(Kind.URL, _tags("blockquote", "q", "del", "ins"), "source reference"),
    "longdesc": AttributeRule(Kind.URL, _tags("img", "frame", "iframe"), "legacy description link"),
    "manifest": AttributeRule(Kind.URL, _tags("html"), "legacy application cache manifest"),
    "codebase": AttributeRule(Kind.URL, _tags("object", "applet"), "legacy plug-in base"),
    "lowsrc": AttributeRule(Kind.URL, _tags("img"), "legacy low-resolution image"),
    "ping": AttributeRule(Kind.URL_LIST, _tags("a", "area"), "hyperlink auditing URLs"),
    "srcset": AttributeRule(Kind.SRCSET, _tags("img", "source"), "responsive image candidates"),
    # SVG animation can set an href (<set attributeName="href" to="...">); other values never
    # look absolute (numbers, colours, paths) and pass unchanged
    "to": AttributeRule(Kind.URL, _tags("set", "animate"), "value an animated href takes"),
    "from": AttributeRule(Kind.URL, _tags("animate"), "value an animated href starts from"),
    "values": AttributeRule(Kind.URL_VALUES, _tags("animate"), "values an animated href takes"),
    "imagesrcset": AttributeRule(Kind.SRCSET, _tags("link"), "preloaded responsive images"),
    "style": AttributeRule(Kind.STYLE, ANY, "url(), image-set() in declarations"),
    "srcdoc": AttributeRule(Kind.DOCUMENT, _tags("iframe"), "inline document: rewritten as one"),
    "integrity": AttributeRule(Kind.DROP, _tags("script", "link"), "rewritten bytes fail the hash"),
}

# <meta http-equiv> values whose element is removed, and why
DROPPED_HTTP_EQUIV = {
    "content-security-policy": "would block the proxy origins and the injected runtime",
    "content-security-policy-report-only": "reports would leak proxy URLs upstream",
    "content-type": "replaced by our own <meta charset>: the output is UTF-8",
    "x-dns-prefetch-control": "harmless, but prefetch hints name upstream hosts",
}


def is_visitor_banner(tag: str, src: str | None, site_key: str | None) -> bool:
    """Our own visitor banner tag (``<script src=".../banner.js" data-site-key=...>``), left out of
    the agent's copy: there it would only fail (its API origin is outside the session's scope)
    and, were it to load, register the agent as a visitor."""
    if tag != "script" or site_key is None:
        return False
    return (src or "").split("#", 1)[0].split("?", 1)[0].endswith("/banner.js")


def rewrite_value(kind: Kind, value: str, mapper: UrlMapper, base: str | None) -> str:
    """The rewritten text of one attribute value of ``kind`` (not DOCUMENT or DROP)."""
    if kind is Kind.URL:
        return map_url(mapper, value, base)
    if kind is Kind.SRCSET:
        return replace_spans(value, srcset_url_spans(value), lambda u: map_url(mapper, u, base))
    if kind is Kind.STYLE:
        return rewrite_css_text(value, mapper=mapper, base=base)
    if kind is Kind.URL_LIST:
        return " ".join(map_url(mapper, part, base) for part in value.split())
    if kind is Kind.URL_VALUES:
        return ";".join(map_url(mapper, part, base) for part in value.split(";"))
    if kind is Kind.REFRESH:
        span = refresh_url_span(value)
        return value if span is None else replace_spans(value, [span], lambda u: map_url(mapper, u, base))
    raise ValueError(f"{kind} is not a value kind")
