"""CSS rewriting: absolute and protocol-relative URLs in ``url()``, ``@import`` and ``image-set()``.

A small tokenizer (comments, strings, ``url(`` tokens, functions, parentheses) finds the places
that hold URLs; everything else, plain strings included (``content: "http://..."``), is copied
as it is. It never fails: what it does not recognise passes through unchanged.
"""

from __future__ import annotations

import re

from rewriter.charset import OUTPUT_CHARSET, decode_css
from rewriter.url_values import map_url
from rewriter.urls import UrlMapper

# functions whose string arguments are URLs (``url("...")`` is a function when quoted)
URL_FUNCTIONS = frozenset({"url", "src"})
# functions whose direct string arguments are image URLs
IMAGE_SET_FUNCTIONS = frozenset({"image-set", "-webkit-image-set"})

# an escape, a name character and an identifier, CSS Syntax 4.3 (escapes count: ``\\75 rl(`` is
# ``url(``, ``@\\69mport`` is ``@import``)
_ESC = r"\\(?:[0-9A-Fa-f]{1,6}(?:\r\n|[ \t\n\r\f])?|[^\n\r\f0-9A-Fa-f])"
_NAME_CHAR = rf"(?:[A-Za-z0-9_\-]|[^\x00-\x7f]|{_ESC})"
_IDENT = rf"(?:--|-?(?:[A-Za-z_]|[^\x00-\x7f]|{_ESC})){_NAME_CHAR}*"


def _letter(ch: str) -> str:
    """One letter of a name, plain or escaped (for letters that are not hex digits)."""
    codes = f"{ord(ch.lower()):x}|{ord(ch.upper()):x}"
    return rf"(?:{ch}|\\0{{0,4}}(?:{codes})(?:\r\n|[ \t\n\r\f])?|\\{ch})"


_URL_NAME = _letter("u") + _letter("r") + _letter("l")
_TOKEN_RE = re.compile(
    rf"""
    (?P<comment>/\*.*?(?:\*/|\Z))
  | (?P<string>"(?:[^"\\\n]|\\.)*(?:"|(?=\n)|\Z)|'(?:[^'\\\n]|\\.)*(?:'|(?=\n)|\Z))
  | (?P<url>{_URL_NAME}\(\s*(?P<raw>(?:[^"'()\\\s]|{_ESC}|\\.)+)\s*\))
  | (?P<func>{_IDENT}\()
  | (?P<at>@{_IDENT})
  | (?P<open>\()
  | (?P<close>\))
  | (?P<end>[;{{}}])
    """,
    re.VERBOSE | re.DOTALL | re.IGNORECASE,
)
# at-rules whose prelude strings and url()s are URLs (@import) or names never fetched (@namespace)
URL_AT_RULES = frozenset({"@import", "@namespace"})
_ESCAPE_RE = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})[ \t\n]?|(\n)|(.))", re.DOTALL)


# what any absolute or protocol-relative URL in CSS text contains: two slashes, a scheme (``https:x``
# is absolute on an http proxy page), or a backslash or tab hiding them (CSS escapes, and a browser
# drops tabs from URLs: "/<TAB>/host")
MIGHT_ESCAPE_RE = re.compile(r"//|\\|\t|(?:https?|wss?):", re.IGNORECASE)


def might_hold_absolute_url(text: str) -> bool:
    """Cheap test: False when no URL in ``text`` can be absolute or protocol-relative."""
    return MIGHT_ESCAPE_RE.search(text) is not None


def _unescape(value: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match.group(1):
            code = int(match.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return "" if match.group(2) else match.group(3)

    return _ESCAPE_RE.sub(one, value) if "\\" in value else value


def _quote(value: str, quote: str) -> str:
    escaped = value.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\a ")
    return f"{quote}{escaped}{quote}"


def _map(mapper: UrlMapper, value: str, base: str | None) -> str | None:
    """The proxy URL of ``value``, or None when it stays as it is (relative, other scheme)."""
    mapped = map_url(mapper, value, base)
    return None if mapped == value else mapped


def _rewrite_string(token: str, mapper: UrlMapper, base: str | None) -> str:
    quote = token[0]
    inner = token[1:-1] if len(token) > 1 and token[-1] == quote else token[1:]
    mapped = _map(mapper, _unescape(inner), base)
    return token if mapped is None else _quote(mapped, quote)


def _rewrite_url_token(raw: str, mapper: UrlMapper, base: str | None) -> str | None:
    mapped = _map(mapper, _unescape(raw), base)
    if mapped is None:
        return None
    if any(ch in mapped for ch in "\"'()\\ \t\n"):
        return f"url({_quote(mapped, chr(34))})"
    return f"url({mapped})"


def rewrite_css_text(text: str, *, mapper: UrlMapper, base: str | None) -> str:
    """Rewrite the URLs of a style sheet, a ``<style>`` text or a ``style`` attribute value."""
    if not might_hold_absolute_url(text):
        return text
    out: list[str] = []
    pos = 0
    stack: list[str] = []  # lower-case names of the open functions ("" for a bare parenthesis)
    prelude = ""  # "@import" or "@namespace" until ; or {: @namespace URLs are names, never fetched
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        replacement: str | None = None
        if prelude == "@namespace" and kind in ("string", "url"):
            pass
        elif kind == "string":
            top = stack[-1] if stack else None
            if top in URL_FUNCTIONS or top in IMAGE_SET_FUNCTIONS or (prelude and not stack):
                replacement = _rewrite_string(match.group(0), mapper, base)
        elif kind == "url":
            replacement = _rewrite_url_token(match.group("raw"), mapper, base)
        elif kind == "func":
            stack.append(_unescape(match.group(0)[:-1]).lower())
        elif kind == "open":
            stack.append("")
        elif kind == "close":
            if stack:
                stack.pop()
        elif kind == "at":
            name = _unescape(match.group(0)).lower()
            if name in URL_AT_RULES:
                prelude = name
        elif kind == "end":
            prelude = ""
            if match.group(0) in "{}":
                stack.clear()
        if replacement is not None and replacement != match.group(0):
            out.append(text[pos : match.start()])
            out.append(replacement)
            pos = match.end()
    if pos == 0:
        return text
    out.append(text[pos:])
    return "".join(out)


def _declare_utf8(text: str) -> str:
    if text.startswith('@charset "'):
        end = text.find('";', 10)
        if end != -1:
            return f'@charset "{OUTPUT_CHARSET}"' + text[end + 1 :]
    return text


def rewrite_css(
    body: bytes,
    *,
    url: str,
    mapper: UrlMapper,
    content_type: str | None = None,
    fallback_charset: str | None = None,
    keep_bytes: bool = False,
) -> bytes:
    """Rewrite a style sheet fetched from ``url``; the result is UTF-8 (``@charset`` updated).

    ``keep_bytes``: a sheet in an encoding the proxy does not know (``css_in_document_encoding``)
    is read byte for byte and its bytes go back as they came, but for the URLs mapped: the browser
    then reads it in its document's encoding, as on the site. Single-byte encodings keep every
    ASCII byte as ASCII; in Shift_JIS, Big5 or GBK a character's second byte may be a backslash or a
    quote, and a URL after such a string may then be left unmapped (the confinement policy then
    refuses its fetch: a missing image, never a request outside the proxy)."""
    if keep_bytes:
        text = rewrite_css_text(body.decode("latin-1"), mapper=mapper, base=url)
        return text.encode("latin-1", errors="replace")
    decoded = decode_css(body, content_type, fallback_charset)
    text = rewrite_css_text(decoded.text, mapper=mapper, base=url)
    return _declare_utf8(text).encode(OUTPUT_CHARSET, errors="replace")
