"""Markup that libxml2 parses unlike a browser, made to parse alike (before lxml and after it).

libxml2's HTML parser is not an HTML5 parser: for some markup the tree it builds, and so the
markup we send, parses in the agent's browser into another DOM than the visitor's (another
layout, element paths that name other elements, a masked element whose content lands outside
it). ``browser_parse_fixups`` rewrites, before lxml reads them, the few tokens whose browser
meaning is known from the tokens alone:

- ``<span/>``, ``<div class="x"/>``, ``<a href="/"/>``, ``<script src="x"/>``: a browser ignores
  the ``/`` of a non-void HTML element (the element stays open), libxml2 closes it; inside
  ``<svg>`` and ``<math>`` (not in ``<foreignObject>``) a browser honours it, and it is kept;
- ``</br>``: a browser makes a ``<br>`` of it, libxml2 drops it;
- a ``<form>`` start tag while another form is open (its ``</form>`` not seen, outside
  ``<template>``): a browser ignores it, libxml2 closes the first form and opens a second;
- ``</body>`` or ``</html>`` followed by more content: a browser puts the content in the body,
  libxml2 drops what follows ``</html>`` and puts what follows ``</body>`` beside the body (the
  comments right after them are marked, and ``mend_tree`` puts them back where a browser does:
  after the body, or after ``</html>`` after the ``<html>`` element);
- a NUL in text: a browser drops it, libxml2 makes U+FFFD of it (in attribute values, comments,
  raw text, ``<noscript>`` and ``<svg>``/``<math>`` both make U+FFFD: it is kept there);
- a ``<template>`` or ``<noscript>`` before the body with no ``<head>`` tag before it: a browser
  keeps it in the head, libxml2 starts the body at it (a ``<head>`` is put before it).

After libxml2 has parsed, ``mend_tree`` mends what its error log names (``ParityMarks``):
- a stray ``</p>`` (no ``<p>`` open): a browser makes an empty ``<p>`` of it, libxml2 drops it.
  The page is parsed again with a marker comment before each ``</p>``; a marker with no ``<p>``
  around it (in the body or a template) becomes an empty ``<p>``;
- a second ``<body>`` tag: a browser adds its attributes that the body lacks, libxml2 drops it.
  The page is parsed again with a marker comment before each ``<body>`` tag: only a tag whose
  marker libxml2 read as a comment lends its attributes (not one in an attribute value).
A marker libxml2 read as no comment (in an attribute value) is taken out of the value.
A page without a doctype (quirks mode) with a ``<table>`` after a ``<p>`` has each ``<table>``
marked: a browser keeps the ``<p>`` open around a table there, libxml2 closes it; the table and
what follows it go back into the ``<p>``, up to its ``</p>`` or a start tag that closes a ``<p>``.

Comments, and the raw text of ``<script>``, ``<style>``, ``<textarea>``, ``<title>``, ``<xmp>``,
``<iframe>``, ``<noembed>``, ``<noframes>`` and ``<plaintext>``, are skipped as a browser skips
them; attribute values are read as a browser reads them (``class=a/>`` is the value ``a/``).
Only the bytes of the tokens above change. ``RAW_TEXT_TAGS`` are the elements whose text
libxml2 keeps raw but its serialiser escapes (``rewriter/html.py`` writes it back raw).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

from lxml import etree

# elements a browser never gives content: their ``/>`` is harmless, and libxml2 agrees
_VOID = (
    "area|base|basefont|bgsound|br|col|embed|frame|hr|image|img|input|keygen|link|meta|param|source|"
    "track|wbr"
)
# raw text in a browser (scripting on); ``<noscript>`` is left out: libxml2 parses it as markup,
# and its markup is what the rewriter maps
_RAW = "script|style|textarea|title|xmp|iframe|noembed|noframes|plaintext"
# the attributes of a start tag as a browser's tokenizer reads them (atomic: no backtracking)
_ATTRS = rb"""(?>(?:\s+|/(?!>)|[^\s/>][^\s/>=]*+(?:\s*=\s*+(?:"[^"]*+"|'[^']*+'|[^\s>]*+))?)*+)"""
_NAMES = _RAW + "|svg|math|foreignobject|form|template|noscript|body"
# the tags the fix-ups act on or must skip, found in the lower-cased document by regexes that start
# with a literal (fast; one regex of every token, or of every tag, cost a third of a rewrite)
_START_RE = re.compile(rb"<(?:" + _NAMES.encode() + rb")[\s/>]")
_END_RE = re.compile(rb"</(?P<name>" + _NAMES.encode() + rb"|br|body|html)[\s/>]")
_START_TAG_RE = re.compile(rb"<(?P<name>[a-z][^\s/>]*+)" + _ATTRS + rb"(?P<slash>/)?>", re.IGNORECASE)
_VOID_RE = re.compile(rb"<(?:" + _VOID.encode() + rb")[\s/>]", re.IGNORECASE)
_SELF_CLOSING_RE = re.compile(rb"/>")
_MAYBE_ACTED_ON_RE = re.compile(rb"<(?:/(?:br|body|html)|/?form)[\s/>]", re.IGNORECASE)
# SVG and MathML elements pages self-close by the hundred (icons): alone, they need no scan
_FOREIGN_NAME_RE = re.compile(
    rb"(?:path|circle|rect|line|polyline|polygon|ellipse|use|stop|g|image|feblend|fecolormatrix|"
    rb"feoffset|fegaussianblur|femergenode|mi|mo|mn|mspace|mprescripts|none)[\s/>]",
    re.IGNORECASE,
)
_END_TAG_CLOSE = frozenset(b" \t\n\r\f/>")
# what may follow ``</body>`` or ``</html>`` and stay where libxml2 puts it (atomic: a comment
# never stretches over text to a later "-->")
_TRAILER_RE = re.compile(rb"(?>\s+|<!--.*?-->|</(?:body|html)\s*>)*+\Z", re.DOTALL | re.IGNORECASE)
# fields masked whatever the selectors (rewriter/masking.py)
_FIELD_RE = re.compile(rb"<(?:input|textarea|select)[\s/>]")
_ENDS = (b"body", b"html")
_END_P_RE = re.compile(rb"</(?P<name>p)[\s/>]")
_TABLE_RE = re.compile(rb"<table[\s/>]")
_P_START_RE = re.compile(rb"<p[\s/>]", re.IGNORECASE)
_TABLE_START_RE = re.compile(rb"<table[\s/>]", re.IGNORECASE)
# start tags that close an open <p> in a browser (``<table>`` too, but not in quirks mode)
_CLOSES_P = frozenset(
    "address article aside blockquote center details dialog dir div dl fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr li dd dt listing main menu nav ol p plaintext pre "
    "search section summary ul xmp".split()
)
_COMMENT, _SLASH, _START, _END, _NUL = range(5)
# an attribute name lxml can set (a page's body may carry one it cannot: it is left out)
_XML_NAME_RE = re.compile(r"[A-Za-z_][\w.\-]*")

_RAW_NAMES = frozenset(_RAW.encode().split(b"|"))
RAW_TEXT_TAGS = ("xmp", "iframe", "noembed", "noframes", "plaintext")


def _positions(data: bytes, needle: bytes) -> list[int]:
    found, at = [], data.find(needle)
    while at >= 0:
        found.append(at)
        at = data.find(needle, at + len(needle))
    return found


def _raw_text_end(lower: bytes, name: bytes, pos: int) -> int:
    """Where the raw text of ``name`` that starts at ``pos`` ends (its end tag, or the end)."""
    needle = b"</" + name
    while True:
        at = lower.find(needle, pos)
        if at < 0:
            return len(lower)
        after = at + len(needle)
        if after >= len(lower) or lower[after] in _END_TAG_CLOSE:
            return at
        pos = after


def _comment_end(lower: bytes, at: int) -> int:
    if lower.startswith((b"<!-->", b"<!--->"), at):
        return lower.index(b">", at) + 1
    end = lower.find(b"-->", at + 4)
    end = len(lower) if end < 0 else end + 3
    bang = lower.find(b"--!>", at + 4, end)  # ends it too
    return end if bang < 0 else bang + 4


class _TagStarts:
    """The start tags read so far at each "<", and the last "<" seen, for ``_self_closed_start``
    (called in the order of the document): every "/>" of a long quoted value goes back to the same
    "<", and read again for each (or looked for again) the page's time grew with the square of
    its size."""

    def __init__(self) -> None:
        self.tags: dict[int, re.Match[bytes] | None] = {}
        self.scanned = 0  # the last "<" before it is ``last_lt``
        self.last_lt = -1

    def last_before(self, data: bytes, end: int) -> int:
        if end < self.scanned:
            return data.rfind(b"<", 0, end)
        lt = data.rfind(b"<", self.scanned, end)
        self.scanned, self.last_lt = end, (lt if lt >= 0 else self.last_lt)
        return self.last_lt

    def read(self, data: bytes, lt: int) -> re.Match[bytes] | None:
        if lt not in self.tags:
            self.tags[lt] = _START_TAG_RE.match(data, lt)
        return self.tags[lt]


def _self_closed_start(data: bytes, slash: int, starts: _TagStarts) -> int:
    """Where the non-void start tag the "/>" at ``slash`` ends starts, -1 when it ends none (it
    is text, an attribute value, a void element's). The tag starts at the first "<" after the
    last ">" before it (a ">" in a quoted value may mislead that: then at the last "<")."""
    gt = data.rfind(b">", 0, slash)
    lt = data.find(b"<", gt + 1, slash)
    if lt < 0:
        lt = starts.last_before(data, slash)
        if lt < 0:
            return -1
    tag = starts.read(data, lt)
    if tag is None or tag.end() != slash + 2 or tag.group("slash") is None or _VOID_RE.match(data, lt):
        return -1
    return lt


_IN_TAG_LOOKBACK = 2048


def _in_a_tag(data: bytes, at: int) -> bool:
    """Whether ``at`` is inside a tag (an attribute value) rather than in text: the last "<"
    before it comes after the last ">". A tag longer than ``_IN_TAG_LOOKBACK`` counts as one (the
    fix-up is left out: never a change inside an attribute value); a ">" in an earlier quoted value
    of the same tag may hide one (the token is then read as a tag, as before)."""
    start = max(0, at - _IN_TAG_LOOKBACK)
    lt, gt = data.rfind(b"<", start, at), data.rfind(b">", start, at)
    if lt < 0 and gt < 0:
        return start > 0
    return lt > gt


# tokens a fix-up changes that ``_Tokens`` makes sure of (a <form> taken out is, below)
_CHECKED = (b"</br",)


class _Tokens:
    """The page read forward as a browser's tokenizer reads it, once, up to the tokens some fix-ups
    take out (only then: it costs): ``_in_a_tag``'s look-back takes a value with markup before the
    token (``title="<b>x</b><form>"``) for text, and the real ``<form class=pay>`` after it was
    taken out: the selector ``form.pay input`` matched nothing and a masked field reached the
    agent. (A ``</body>`` read so is still taken out of the value: it changes no element.)"""

    def __init__(self) -> None:
        self.pos = 0  # data[:pos] is read: it ends in text

    def starts_token(self, lower: bytes, at: int) -> bool:
        """Whether a token starts at ``at`` (not in a tag, a comment or raw text before it)."""
        while self.pos <= at:
            lt = lower.find(b"<", self.pos, at + 1)
            if lt < 0:
                self.pos = at
                return False  # (no "<" at ``at``: never an event)
            if lt == at:
                return True
            if lower.startswith(b"<!--", lt):
                self.pos = _comment_end(lower, lt)
            elif lower.startswith((b"<!", b"<?", b"</"), lt):
                gt = lower.find(b">", lt + 2)
                self.pos = len(lower) if gt < 0 else gt + 1
            elif lt + 1 < len(lower) and lower[lt + 1 : lt + 2].isalpha():
                tag = _START_TAG_RE.match(lower, lt)
                if tag is None:
                    self.pos = len(lower)  # no ">": the rest is the tag's
                else:
                    name = tag.group("name")
                    self.pos = tag.end()
                    if name == b"plaintext":
                        self.pos = len(lower)
                    elif name in _RAW_NAMES:
                        self.pos = _raw_text_end(lower, name, self.pos)
            else:
                self.pos = lt + 1  # a "<" in text
        return False


# what a browser keeps in the head before the body starts (a <noscript> too: scripting is on)
_HEAD_CONTENT = frozenset(b"html base basefont bgsound link meta noframes script style title".split())
_HEAD_RAW_END = {
    name: re.compile(rb"</" + name + rb"[\s/>]", re.IGNORECASE)
    for name in (b"script", b"style", b"title", b"noframes")
}
_HEAD_END_TAG_RE = re.compile(rb"</([a-z][^\s/>]*+)[^>]*+>", re.IGNORECASE)


def _head_insertion(data: bytes) -> int:
    """Where a ``<head>`` must go for libxml2 to keep a ``<template>`` or ``<noscript>`` in the
    head, as a browser does (-1: nowhere). Only the tokens before the body are read: the scan
    ends at the first ``<head>`` tag (libxml2 then agrees), text, or any tag that starts the body."""
    pos = 0
    while True:
        lt = data.find(b"<", pos)
        if lt < 0 or not _spaces(data, pos, lt):
            return -1
        if data.startswith(b"<!--", lt):
            pos = _comment_end(data, lt)
            continue
        if data.startswith((b"<!", b"<?"), lt):
            gt = data.find(b">", lt)
            if gt < 0:
                return -1
            pos = gt + 1
            continue
        end_tag = _HEAD_END_TAG_RE.match(data, lt)
        if end_tag is not None:
            if end_tag.group(1).lower() in (b"head", b"body", b"html", b"br"):
                return -1  # after the head, or the body
            pos = end_tag.end()  # a browser ignores any other end tag here
            continue
        tag = _START_TAG_RE.match(data, lt)
        if tag is None:
            return -1
        name = tag.group("name").lower()
        if name in (b"template", b"noscript"):
            return lt
        if name not in _HEAD_CONTENT:
            return -1  # <head> (libxml2 keeps it), <body>, or body content
        pos = tag.end()
        if name in _HEAD_RAW_END:  # raw text in a browser, "/>" or not
            raw_end = _HEAD_RAW_END[name].search(data, pos)
            pos = len(data) if raw_end is None else raw_end.start()


def _acted_on_tokens(data: bytes) -> bool:
    """A ``</br>``, a ``<form>`` while another is open, or content after the first ``</body>`` or
    ``</html>`` (read without context: a gate). The first, not the last: content between two
    ``</body></html>`` was dropped when the page ended with them."""
    form_open, ends_seen = False, set()
    for found in _MAYBE_ACTED_ON_RE.finditer(data):
        token = found.group().lower()
        if token.startswith(b"</b") or token.startswith(b"</h"):
            if token[2] == ord("b") and token[3] == ord("r"):
                return True
            if token[2:6] in ends_seen:
                continue
            ends_seen.add(token[2:6])
            close = data.find(b">", found.end() - 1)
            if close >= 0 and _TRAILER_RE.match(data, close + 1) is None:
                return True
        elif token.startswith(b"</"):
            form_open = False
        elif form_open:
            return True
        else:
            form_open = True
    return False


@dataclass
class ParityMarks:
    """What ``browser_parse_fixups`` and ``mend_tree`` share for one document: a marker no page
    can guess, whether to mark each ``</p>`` (the page had a stray one), and what was found."""

    marker: str = field(default_factory=lambda: f"cobrowse-parity-{secrets.token_hex(8)}")
    end_p: bool = False
    read_all: bool = False  # read the page past the gate (to find its <body> tags)
    quirks_tables: bool = False  # mark each <table> (a quirks-mode page: a <p> holds a table)
    body_tags: list[bytes] = field(default_factory=list)  # the <body> start tags, in order
    moved_comments: bool = False  # comments marked to leave the body
    inserted: int = 0  # markers the last pre-pass put in (those libxml2 read as no comment: text)

    def comment(self, kind: str) -> bytes:
        self.inserted += 1
        return f"{self.marker}{kind}".encode()


def browser_parse_fixups(
    data: bytes, *, masked_selectors: bool = False, marks: ParityMarks | None = None
) -> bytes:
    """``data`` (UTF-8 or any ASCII-compatible encoding) with the tokens libxml2 would parse
    unlike a browser rewritten as the browser reads them (the module docstring lists them).

    A self-closed raw text element (``<script src="x"/>``, ``<textarea/>``) is left closed when
    ``masked_selectors`` (the page has masks) or when what a browser would read as its text holds
    a form field: that text could hold masked content, which the tree masks as elements and
    would send as text. The agent then sees the markup the visitor's browser did not parse.
    With ``marks``, the comments a browser puts after the body are marked for ``mend_tree``,
    and with ``marks.end_p`` each ``</p>`` too (the page is read whatever the gate says)."""
    if marks is not None:
        marks.inserted = 0
    head_at = _head_insertion(data)
    if head_at >= 0:
        data = data[:head_at] + b"<head>" + data[head_at:]
    read = _TagStarts()
    tokens = _Tokens()
    # where the open form's <form> is, and whether ``tokens`` read a tag there (None: not asked;
    # asked before any later position: it reads forward only)
    form_at, form_real = 0, None
    starts = {m.start(): _self_closed_start(data, m.start(), read) for m in _SELF_CLOSING_RE.finditer(data)}
    slashes = [at for at, start in starts.items() if start >= 0]
    end_p = marks is not None and marks.end_p
    quirks_tables = marks is not None and marks.quirks_tables
    if not (
        (marks is not None and (marks.read_all or marks.quirks_tables))
        or any(_FOREIGN_NAME_RE.match(data, starts[at] + 1) is None for at in slashes)
        or b"\0" in data
        or _acted_on_tokens(data)
    ):
        return data  # most documents: nothing to do, nothing more scanned
    lower = data.lower()  # one byte for one byte: offsets hold
    events: list[tuple[int, int, re.Match[bytes] | None]] = [
        *((at, _COMMENT, None) for at in _positions(lower, b"<!--")),
        *((at, _SLASH, None) for at in slashes),
        *((at, _NUL, None) for at in _positions(data, b"\0")),
        *((m.start(), _START, m) for m in _START_RE.finditer(lower)),
        *((m.start(), _END, m) for m in _END_RE.finditer(lower)),
        *((m.start(), _END, m) for m in (_END_P_RE.finditer(lower) if end_p else ())),
        *((m.start(), _START, m) for m in (_TABLE_RE.finditer(lower) if quirks_tables else ())),
    ]
    events.sort(key=lambda event: event[0])
    out: list[bytes] = []
    done = 0  # data[:done] is in out
    skip = 0  # events before it are inside a comment or raw text
    foreign: list[bytes] = []  # open <svg>/<math> (and b"html" for a <foreignObject> in them)
    templates = 0
    form_open = False
    noscript_end = 0  # a NUL before it is in a <noscript>'s raw text (the browser's reading)
    # after a dropped </body> ("h") or </html> ("d"), read up to ``after_end_at``: a comment
    # there (only spaces between) goes after the body, or after the <html> element
    after_end, after_end_at = "", 0
    for at, kind, found in events:
        if at < skip:
            continue
        if kind != _SLASH and _in_a_tag(data, at):
            continue  # an attribute value's text (title="</body>", value="<form>", "<svg>", "<!--")
        if kind in (_START, _END) and lower.startswith(_CHECKED, at):
            if form_open and form_real is None:
                form_real = tokens.starts_token(lower, form_at)
            if not tokens.starts_token(lower, at):
                continue  # the same, with markup before it in the value
        html_context = not foreign or foreign[-1] == b"html"
        if after_end and not (
            _spaces(lower, after_end_at, at)
            and (kind == _COMMENT or (kind == _END and found is not None and found.group("name") in _ENDS))
        ):
            after_end = ""  # content: the browser is in the body again
        if kind == _COMMENT:
            skip = _comment_end(lower, at)
            if after_end and marks is not None:
                out.append(data[done : at + 4])
                out.append(marks.comment(after_end))
                done = at + 4
                if lower.startswith((b"<!-->", b"<!--->"), at):  # empty: "-->" ends it after the marker
                    out.append(b"-->")
                    done = skip
                marks.moved_comments = True
            after_end_at = skip
            continue
        if kind == _NUL:
            if html_context and at >= noscript_end:
                out.append(data[done:at])
                done = at + 1
            continue
        if kind == _SLASH:
            if html_context:
                out.append(data[done:at])
                done = at + 1
            continue
        assert found is not None
        if kind == _END:
            name = found.group("name")
            close = lower.find(b">", found.end() - 1)
            end = len(lower) if close < 0 else close + 1
            if name == b"br":
                out.append(data[done:at])
                out.append(b"<br>")
                done = end
            elif name == b"p":
                if html_context and marks is not None:
                    out.append(data[done:at])
                    out.append(b"<!--" + marks.comment("p") + b"-->")
                    done = at
            elif name in (b"body", b"html"):
                if _TRAILER_RE.match(lower, end) is None:
                    out.append(data[done:at])
                    done = end
                    after_end = "d" if name == b"html" or after_end == "d" else "h"
                after_end_at = end
            elif name in (b"svg", b"math", b"foreignobject"):
                wanted = b"html" if name == b"foreignobject" else name
                if wanted in foreign:
                    del foreign[len(foreign) - 1 - foreign[::-1].index(wanted) :]
            elif name == b"template":
                templates = max(0, templates - 1)
            elif name == b"form" and not templates:
                form_open = False
            continue
        tag = _START_TAG_RE.match(lower, at)
        if tag is None:
            continue  # not a tag a browser reads (no ">")
        name, slash, end = tag.group("name"), tag.group("slash") is not None, tag.end()
        skip = end
        if name in (b"svg", b"math"):
            if html_context and not slash:
                foreign.append(name)
            continue
        if name == b"foreignobject":
            if foreign and foreign[-1] == b"svg" and not slash:
                foreign.append(b"html")
            continue
        if not html_context:
            continue  # an SVG <style>/<script>/<title>: markup, and its "/>" counts
        if name == b"table":
            if marks is not None:
                out.append(data[done:at])
                out.append(b"<!--" + marks.comment("t") + b"-->")
                done = at
            continue
        if name == b"body":
            if marks is not None and not templates:
                marks.body_tags.append(data[at:end])
                if marks.read_all:  # marked: only a tag libxml2 reads as one lends its attributes
                    out.append(data[done:at])
                    out.append(b"<!--" + marks.comment(f"b{len(marks.body_tags) - 1}") + b"-->")
                    done = at
            continue
        if name == b"noscript":
            noscript_end = _raw_text_end(lower, name, end)
            continue
        if name == b"form" and not templates:
            if form_open:
                if form_real is None:
                    form_real = tokens.starts_token(lower, form_at)
                if not tokens.starts_token(lower, at):
                    continue  # an attribute value's text after markup in it
                if form_real:
                    out.append(data[done:at])  # a browser ignores it: attributes and all
                    done = end
                    continue
            form_open, form_at, form_real = True, at, None
        elif name == b"template":
            templates += 1
        raw = name in _RAW_NAMES
        text_end = 0
        if raw:
            text_end = len(data) if name == b"plaintext" else _raw_text_end(lower, name, end)
            skip = text_end
            if slash and (masked_selectors or _FIELD_RE.search(lower, end, text_end)):
                continue  # libxml2 closes it: what it would swallow as text stays masked
        if slash:
            out.append(data[done : end - 2])
            done = end - 1
    if not out:
        return data
    out.append(data[done:])
    return b"".join(out)


def _spaces(lower: bytes, start: int, end: int) -> bool:
    return start >= end or not lower[start:end].strip(b" \t\n\r\f")


_END_P_ERROR = "Unexpected end tag : p"
_ERRORS_REPORTED = 100
_MISPLACED_BODY_ERROR = "htmlParseStartTag: misplaced <body> tag"
# attributes a body gets at most from its other <body> tags (libxml2 looks an attribute up in a
# list: 20,000 <body> tags of one new attribute each took 6.5 s)
_BODY_ATTRIBUTES = 1000


def parity_errors(error_log: etree._ListErrorLog) -> tuple[bool, bool, bool]:
    """What libxml2's error log says of a parse: (it gave up on the nesting depth, a ``</p>`` was
    stray, a ``<body>`` tag was dropped)."""
    # libxml2 reports at most 100 errors (fatal ones beside): past that, either may be left out
    too_deep = False
    stray_p = second_body = len(error_log) >= _ERRORS_REPORTED
    resource_limit, mismatch = etree.ErrorTypes.ERR_RESOURCE_LIMIT, etree.ErrorTypes.ERR_TAG_NAME_MISMATCH
    for error in error_log:
        kind = error.type
        if kind == resource_limit:
            too_deep = True
        elif kind == mismatch and error.message == _END_P_ERROR:
            stray_p = True
        elif error.message == _MISPLACED_BODY_ERROR:
            second_body = True
    return too_deep, stray_p, second_body


def mend_tree(root: etree._Element, marks: ParityMarks) -> None:
    """Mend the tree libxml2 built from the pre-pass's output as the module docstring says."""
    body = root.find("body")
    if not (marks.end_p or marks.moved_comments or marks.quirks_tables or marks.body_tags):
        return
    marker = marks.marker
    around = [*root.itersiblings(preceding=True), *root.itersiblings()]  # before and after <html>
    found = [
        c for c in (*around, *root.iter(etree.Comment))
        if isinstance(c, etree._Comment) and (c.text or "").startswith(marker)
    ]
    if len(found) < marks.inserted:
        _unmark_values(root, marker)
    # a <body> tag whose marker is a comment in the tree was a tag to libxml2 too ("<b>x</b><body
    # onload=...>" in an attribute value is not: its "<" hid from the pre-pass's look-back)
    tags = [marks.body_tags[int(c.text[len(marker) + 1 :])] for c in found if c.text[len(marker)] == "b"]
    if body is not None:
        has = set(body.attrib)
        for tag in tags:
            for name, value in _attributes_of(tag).items():
                if name not in has and len(has) < _BODY_ATTRIBUTES:
                    try:
                        body.set(name, value)
                    except ValueError:
                        continue  # a control character lxml refuses (libxml2 let it through): left out
                    has.add(name)
    # (a set: a list's "in" made a quirks page of 16,000 "<p>x<table></table></p>" take seconds)
    consumed = {_table_in_p(c, marker) for c in found if c.text == marker + "t"}
    after_body, after_root = body, root
    ancestry: dict[etree._Element, tuple[bool, bool]] = {}
    for comment in found:
        if comment in consumed:
            continue  # the </p> of a p that holds a table (quirks mode): taken out already
        kind, text = comment.text[len(marker)], comment.text[len(marker) + 1 :]
        if kind in "ptb" and comment.getparent() is None:  # before <html>: a </p> there is ignored
            root.append(comment)  # (a sibling of the root element cannot be removed where it is)
            root.remove(comment)
        elif kind in "tb":
            _take_out(comment)
        elif kind == "p":
            _end_p(comment, ancestry)
        elif body is not None:
            _take_out(comment)
            comment.text = text
            anchor = after_body if kind == "h" else after_root
            anchor.addnext(comment)
            if kind == "h":
                after_body = comment
            else:
                after_root = comment
        else:
            comment.text = text


def _table_in_p(marker: etree._Element, prefix: str) -> etree._Element | None:
    """A ``<table>`` marker last in a ``<p>`` (libxml2 closed the p at the table; a quirks-mode
    browser does not): the table and what follows it go into the p, up to a ``</p>`` marker (which
    it ends: taken out) or to a start tag that closes a p in a browser."""
    p = marker.getparent()
    if p is None or p.tag != "p" or marker.getnext() is not None:
        return None
    moving = []
    for node in p.itersiblings():
        if isinstance(node, etree._Comment) and node.text == prefix + "p":
            moving.append(node)  # consumed below: the p's own end tag
            break
        if isinstance(node.tag, str) and node.tag in _CLOSES_P:
            break
        moving.append(node)
    if not any(isinstance(node.tag, str) and node.tag == "table" for node in moving):
        return None
    if p.tail:  # (none: the table came right after the marker; kept in place all the same)
        marker.tail = (marker.tail or "") + p.tail
        p.tail = None
    for node in moving:
        if isinstance(node, etree._Comment) and node.text == prefix + "p":
            p.tail = node.tail
            node.tail = None
            node.getparent().remove(node)
            return node
        p.append(node)
    return None


def quirks_tables_possible(data: bytes) -> bool:
    """A ``<table>`` after a ``<p>`` (a page in quirks mode then needs its tables marked)."""
    p = _P_START_RE.search(data)
    return p is not None and _TABLE_START_RE.search(data, p.end()) is not None


def _end_p(marker: etree._Element, ancestry: dict[etree._Element, tuple[bool, bool]]) -> None:
    """A ``</p>`` marker: with no ``<p>`` around it (libxml2 dropped the end tag), in the body or
    a template (a browser ignores it in the head), an empty ``<p>`` takes its place."""
    parent = marker.getparent()
    in_p, in_body = _ancestry(parent, ancestry)
    stray = not in_p
    if parent is not None and parent.tag == "template" and not any(
        isinstance(node.tag, str) for node in marker.itersiblings(preceding=True)
    ):
        stray = False  # before any element in a template (its "in template" mode): a browser ignores it
    if stray and in_body:
        p = marker.makeelement("p")
        p.tail = marker.tail
        marker.addnext(p)  # (addnext moves the tail along: it is set again)
        p.tail = marker.tail
        marker.tail = None
        marker.getparent().remove(marker)
        return
    _take_out(marker)


def _ancestry(
    element: etree._Element | None, known: dict[etree._Element, tuple[bool, bool]]
) -> tuple[bool, bool]:
    """(a ``<p>`` is ``element`` or an ancestor, a ``<body>`` or ``<template>`` is one below the
    nearest such ``<p>``), remembered for each element on the way: each marker read every
    ancestor, and a page of stray ``</p>`` 1,000 elements deep took seconds per 100 KB."""
    chain = []
    while element is not None and element not in known:
        chain.append(element)
        element = element.getparent()
    in_p, in_body = known[element] if element is not None else (False, False)
    for node in reversed(chain):
        name = node.tag if isinstance(node.tag, str) else ""
        if name == "p":
            in_p, in_body = True, False
        elif name in ("body", "template"):
            in_body = True
        known[node] = (in_p, in_body)
    return in_p, in_body


def _unmark_values(root: etree._Element, marker: str) -> None:
    """Markers libxml2 read as no comment (the pre-pass took an attribute value, or a comment, for
    markup) taken out of attribute values, comments and raw text, which are the page's again."""
    whole = re.compile(rf"<!--{marker}(?:[pt]|b\d+)-->")
    opening = f"<!--{marker}"

    def unmarked(value: str) -> str:
        return whole.sub("", value).replace(opening + "h", "<!--").replace(opening + "d", "<!--")

    for node in root.iter():
        if isinstance(node.tag, str):
            for name, value in node.items():
                if marker in value:
                    node.set(name, unmarked(value))
        if node.text and marker in node.text:
            node.text = unmarked(node.text)


def _take_out(node: etree._Element) -> None:
    """Remove ``node`` from its parent, its tail text left in place."""
    parent = node.getparent()
    if parent is None:
        return
    if node.tail:
        previous = node.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + node.tail
        else:
            parent.text = (parent.text or "") + node.tail
        node.tail = None
    parent.remove(node)


def _attributes_of(tag: bytes) -> dict[str, str]:
    """The attributes of a ``<body ...>`` start tag, read by libxml2 (as it read the first)."""
    parser = etree.HTMLParser(encoding="utf-8", no_network=True)
    root = etree.fromstring(b"<html>" + tag + b"</html>", parser)
    body = root.find("body") if root is not None else None
    if body is None:
        return {}
    return {name: value for name, value in body.items() if _XML_NAME_RE.fullmatch(name)}


def raw_text_end_re(tag: str) -> re.Pattern[str]:
    """What ends the raw text of ``tag`` in a browser (its end tag, any case)."""
    return re.compile(rf"</{tag}[\s/>]", re.IGNORECASE)


__all__ = [
    "RAW_TEXT_TAGS",
    "ParityMarks",
    "browser_parse_fixups",
    "mend_tree",
    "parity_errors",
    "quirks_tables_possible",
    "raw_text_end_re",
]
