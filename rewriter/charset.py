"""Which encoding a document is in, as browsers decide it, and decoding it safely.

Order for HTML: BOM > Content-Type charset > ``<meta charset>`` in the first 1024 bytes > sniffing
(UTF-8 if it decodes, else windows-1252). For CSS: BOM > Content-Type charset > ``@charset`` >
UTF-8. Only the encodings of the WHATWG Encoding standard are accepted: a label that Python knows
but browsers do not (``base64``, ``rot13``, ``utf-7``, ...) is ignored like an unknown one.
Rewritten documents are written in UTF-8; the proxy sends a page in the legacy encoding it came
in (``in_page_encoding``).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

OUTPUT_CHARSET = "utf-8"
META_PRESCAN_BYTES = 1024

BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

# WHATWG label -> Python codec where Python's own lookup would pick a different table
LABEL_OVERRIDES = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "l1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "iso-8859-11": "cp874",
    "tis-620": "cp874",
    "windows-874": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "big5": "big5hkscs",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "euc-kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "x-mac-cyrillic": "mac-cyrillic",
    "macintosh": "mac-roman",
    "utf-16": "utf-16-le",
    "unicode": "utf-16-le",
}
# Python codec names (codecs.lookup(...).name) of the WHATWG encodings
WEB_CODECS = frozenset(
    {
        "utf-8", "utf-16-le", "utf-16-be", "cp866", "iso8859-2", "iso8859-3", "iso8859-4",
        "iso8859-5", "iso8859-6", "iso8859-7", "iso8859-8", "iso8859-10", "iso8859-13",
        "iso8859-14", "iso8859-15", "iso8859-16", "koi8-r", "koi8-u", "mac-roman", "mac-cyrillic",
        "cp874", "cp1250", "cp1251", "cp1252", "cp1253", "cp1254", "cp1255", "cp1256", "cp1257",
        "cp1258", "gb18030", "big5hkscs", "euc_jp", "iso2022_jp", "cp932", "cp949",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Decoded:
    """A document's text and where its encoding came from (``bom``, ``header``, ``meta``, ...)."""

    text: str
    encoding: str
    source: str


def codec_for_label(label: str | None) -> str | None:
    """The Python codec of a WHATWG encoding label, or None for an unknown or non-web label."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = LABEL_OVERRIDES.get(name, name)
    try:
        codec = codecs.lookup(name).name
    except (LookupError, ValueError):
        return None
    return codec if codec in WEB_CODECS else None


def charset_param(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type value, unquoted, or None."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HTTP_WS = " \t\r\n"


def _split_header_values(value: str) -> list[str]:
    """A header value split on commas outside quoted strings, backslash escapes honoured (Fetch:
    "getting, decoding, and splitting")."""
    out: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in value:
        if escaped:
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            out.append("".join(current))
            current = []
            continue
        current.append(ch)
    out.append("".join(current))
    return out


def _is_token(text: str) -> bool:
    return bool(text) and set(text) <= _TOKEN


def _parse_mime(value: str, lenient: bool = False) -> tuple[str, list[tuple[str, str]]] | None:
    """``(essence, parameters)`` of one Content-Type value (Fetch "parse a MIME type"), None if it
    is not one. Parameters are kept only in a form that no parser can read differently: a token,
    or a quoted string without quotes, backslashes or commas. ``lenient`` reads the type as
    Chromium's network stack does, up to the first space, ``;``, ``(`` or ``,``."""
    value = value.strip(_HTTP_WS)
    if lenient:
        cut = min((i for i in (value.find(c) for c in " ;(,\t") if i != -1), default=len(value))
        value = value[:cut]
    kind, slash, rest = value.partition("/")
    subtype, _, params_text = rest.partition(";")
    subtype = subtype.rstrip(_HTTP_WS)
    if not slash or not _is_token(kind) or not _is_token(subtype):
        return None
    params: list[tuple[str, str]] = []
    for part in params_text.split(";") if params_text else ():
        name, equals, raw = part.partition("=")
        name, raw = name.strip(_HTTP_WS).lower(), raw.strip(_HTTP_WS)
        if not equals or not _is_token(name) or any(n == name for n, _ in params):
            continue
        if _is_token(raw):
            params.append((name, raw))
        elif len(raw) >= 2 and raw[0] == raw[-1] == '"' and not set(raw[1:-1]) & set('"\\,'):
            params.append((name, raw))
    return f"{kind}/{subtype}".lower(), params


def extract_content_type(values: list[str]) -> str | None:
    """The Content-Type a browser acts on, from all of a response's Content-Type header values
    (Fetch "extract a MIME type": the last valid one that is not ``*/*``, keeping an earlier
    charset for the same type), rebuilt so that every browser reads it as the proxy did: a
    lower-case type, a charset only if it names a known encoding, other parameters only in a safe
    form. When no value is valid (``text/html charset=utf-8``, ``text/html (x)``), the type is read
    as Chromium does (``text/html``); None when there is no type at all (the body is sniffed)."""
    for lenient in (False, True):
        essence: str | None = None
        params: list[tuple[str, str]] = []
        charset: str | None = None
        for header in values:
            for value in _split_header_values(header):
                parsed = _parse_mime(value, lenient)
                if parsed is None or parsed[0] == "*/*":
                    continue
                new_charset = next((v.strip('"') for n, v in parsed[1] if n == "charset"), None)
                known = new_charset is not None and _is_token(new_charset) and codec_for_label(new_charset)
                if not known:
                    new_charset = None  # none, or an unknown encoding: browsers ignore it
                if parsed[0] != essence:
                    charset = new_charset
                elif new_charset is not None:
                    charset = new_charset
                essence, params = parsed[0], [(n, v) for n, v in parsed[1] if n != "charset"]
        if essence is not None:
            tail = "".join(f"; {n}={v}" for n, v in params)
            return f"{essence}{f'; charset={charset}' if charset else ''}{tail}"
    return None


def mime_type(content_type: str | None) -> str:
    """The lower-case ``type/subtype`` of a Content-Type value ('' when absent)."""
    return (content_type or "").split(";")[0].strip().lower()


def bom_codec(body: bytes) -> tuple[str, int] | None:
    for bom, codec in BOMS:
        if body.startswith(bom):
            return codec, len(bom)
    return None


def _meta_charset(body: bytes) -> str | None:
    """The charset declared by a ``<meta>`` in the first 1024 bytes (parsed, not pattern-matched)."""
    head = body[:META_PRESCAN_BYTES]
    if b"<meta" not in head.lower():
        return None
    from lxml import etree  # only documents that need the prescan pay for lxml here

    parser = etree.HTMLParser(encoding="iso-8859-1", no_network=True)
    try:
        root = etree.fromstring(head, parser)
    except etree.LxmlError:
        return None
    if root is None:
        return None
    for meta in root.iter("meta"):
        codec = codec_for_label(meta.get("charset"))
        if codec is None and (meta.get("http-equiv") or "").strip().lower() == "content-type":
            codec = codec_for_label(charset_param(meta.get("content")))
        if codec is not None:
            # a <meta> cannot declare UTF-16: the bytes it was read from were ASCII-compatible
            return "utf-8" if codec.startswith("utf-16") else codec
    return None


def _decode(body: bytes, codec: str) -> str:
    return body.decode(codec, errors="replace")


def _valid_utf8(body: bytes, chunk: int = 1 << 14) -> bool:
    """Whether ``body`` is valid UTF-8, checked in chunks (no full-size copy)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(body)
    try:
        for start in range(0, len(body), chunk):
            decoder.decode(view[start : start + chunk])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _to_utf8(body: bytes, codec: str) -> bytes:
    if codec == "utf-8" and _valid_utf8(body):
        return body
    return _decode(body, codec).encode("utf-8", errors="replace")


@dataclass(frozen=True)
class Transcoded:
    """A document re-encoded as UTF-8, and which encoding it was read in and why."""

    data: bytes
    encoding: str
    source: str  # bom, header, meta, sniffed


def html_codec(body: bytes, content_type: str | None = None) -> tuple[str, str]:
    """(codec, source) of an HTML document, picked the way a browser picks it; never raises."""
    bom = bom_codec(body)
    if bom is not None:
        return bom[0], "bom"
    codec = codec_for_label(charset_param(content_type))
    if codec is not None:
        return codec, "header"
    codec = _meta_charset(body)
    if codec is not None:
        return codec, "meta"
    return ("utf-8" if _valid_utf8(body) else "cp1252"), "sniffed"


def html_to_utf8(
    body: bytes, content_type: str | None = None, picked: tuple[str, str] | None = None
) -> Transcoded:
    """An HTML document in UTF-8, its encoding picked the way a browser picks it; never raises.
    ``picked``: what ``html_codec`` said of this body and type, when the caller has it already
    (for an undeclared page that is a UTF-8 check over the whole body, not done twice)."""
    bom = bom_codec(body)
    if bom is not None:
        return Transcoded(_to_utf8(body[bom[1] :], bom[0]), bom[0], "bom")
    codec, source = picked or html_codec(body, content_type)
    if source == "sniffed" and codec == "utf-8":
        return Transcoded(body, codec, source)  # (valid: html_codec read it all)
    return Transcoded(_to_utf8(body, codec), codec, source)


# The WHATWG name of each legacy codec a page may come in (what the browser's Content-Type and
# <meta charset> say back): a rewritten page goes out in the encoding it came in, so that the
# browser encodes what is sent from it (form fields, query strings of links) as the site expects,
# and decodes the page's scripts and style sheets that state no charset as the site's (they fall
# back to the document's encoding). UTF-16 pages go out in UTF-8 (forms from them are sent in
# UTF-8 anyway).
LEGACY_LABELS = {
    "cp866": "ibm866", "iso8859-2": "iso-8859-2", "iso8859-3": "iso-8859-3", "iso8859-4": "iso-8859-4",
    "iso8859-5": "iso-8859-5", "iso8859-6": "iso-8859-6", "iso8859-7": "iso-8859-7",
    "iso8859-8": "iso-8859-8", "iso8859-10": "iso-8859-10", "iso8859-13": "iso-8859-13",
    "iso8859-14": "iso-8859-14", "iso8859-15": "iso-8859-15", "iso8859-16": "iso-8859-16",
    "koi8-r": "koi8-r", "koi8-u": "koi8-u", "mac-roman": "macintosh", "mac-cyrillic": "x-mac-cyrillic",
    "cp874": "windows-874", "cp1250": "windows-1250", "cp1251": "windows-1251", "cp1252": "windows-1252",
    "cp1253": "windows-1253", "cp1254": "windows-1254", "cp1255": "windows-1255", "cp1256": "windows-1256",
    "cp1257": "windows-1257", "cp1258": "windows-1258", "gb18030": "gb18030", "big5hkscs": "big5",
    "euc_jp": "euc-jp", "iso2022_jp": "iso-2022-jp", "cp932": "shift_jis", "cp949": "euc-kr",
}  # fmt: skip


def in_page_encoding(out: bytes, codec: str, *, document: bool = True) -> tuple[bytes, str]:
    """A rewritten page (UTF-8, with the rewriter's ``<meta charset="utf-8">`` first in its head
    when ``document``; markup a script reads has none) in the legacy encoding ``codec`` it came
    in, and that encoding's name; (``out``, "utf-8") for UTF-8 and UTF-16 pages. What the
    encoding cannot hold (the rewriter adds ASCII only; a U+FFFD for bytes that were not valid)
    becomes a numeric character reference."""
    label = LEGACY_LABELS.get(codec)
    if label is None:
        return out, OUTPUT_CHARSET
    if document:
        meta = f'<meta charset="{OUTPUT_CHARSET}">'.encode()
        out = out.replace(meta, f'<meta charset="{label}">'.encode(), 1)
    text = out.decode(OUTPUT_CHARSET, errors="replace")
    return text.encode(codec, errors="xmlcharrefreplace"), label


def _css_charset_rule(body: bytes) -> str | None:
    prefix = b'@charset "'
    if not body.startswith(prefix):
        return None
    end = body.find(b'";', len(prefix), 200)
    return None if end == -1 else body[len(prefix) : end].decode("ascii", errors="replace")


def css_in_document_encoding(body: bytes, content_type: str | None = None) -> bool:
    """Whether a style sheet says nothing of its encoding (no BOM, no charset, no ``@charset``)
    and is not UTF-8: the browser reads it in the encoding of the document that linked it, which
    the proxy does not know (a Shift_JIS page's ``font-family: "ＭＳ Ｐゴシック"``)."""
    if bom_codec(body) is not None:
        return False
    if codec_for_label(charset_param(content_type)) or codec_for_label(_css_charset_rule(body)):
        return False
    return not _valid_utf8(body)


def decode_css(body: bytes, content_type: str | None = None, fallback: str | None = None) -> Decoded:
    """Decode a style sheet: BOM > Content-Type charset > ``@charset`` > fallback > UTF-8."""
    bom = bom_codec(body)
    if bom is not None:
        return Decoded(_decode(body[bom[1] :], bom[0]), bom[0], "bom")
    for source, label in (("header", charset_param(content_type)), ("rule", _css_charset_rule(body))):
        codec = codec_for_label(label)
        if codec is not None:
            if source == "rule" and codec.startswith("utf-16"):
                codec = "utf-8"
            return Decoded(_decode(body, codec), codec, source)
    codec = codec_for_label(fallback) or "utf-8"
    return Decoded(_decode(body, codec), codec, "default")
