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
  libxml2 drops what follows ``</html>`` and puts what follows ``</body>`` beside the body.

Comments, and the raw text of ``<script>``, ``<style>``, ``<textarea>``, ``<title>``, ``<xmp>``,
``<iframe>``, ``<noembed>``, ``<noframes>`` and ``<plaintext>``, are skipped as a browser skips
them; attribute values are read as a browser reads them (``class=a/>`` is the value ``a/``).
Only the bytes of the tokens above change. ``RAW_TEXT_TAGS`` are the elements whose text
libxml2 keeps raw but its serialiser escapes (``rewriter/html.py`` writes it back raw).
"""

from __future__ import annotations

import re

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
_NAMES = _RAW + "|svg|math|foreignobject|form|template"
# the tags the fix-ups act on or must skip, found in the lower-cased document by regexes that start
# with a literal (fast; one regex of every token, or of every tag, cost a third of a rewrite)
_START_RE = re.compile(rb"<(?:" + _NAMES.encode() + rb")[\s/>]")
_END_RE = re.compile(rb"</(?P<name>" + _NAMES.encode() + rb"|br|body|html)[\s/>]")
_START_TAG_RE = re.compile(rb"<(?P<name>[a-z][^\s/>]*+)" + _ATTRS + rb"(?P<slash>/)?>", re.IGNORECASE)
_VOID_RE = re.compile(rb"<(?:" + _VOID.encode() + rb")[\s/>]", re.IGNORECASE)
_SELF_CLOSING_RE = re.compile(rb"/>")
_MAYBE_ACTED_ON_RE = re.compile(rb"<(?:/br|/?form)[\s/>]", re.IGNORECASE)
# SVG and MathML elements pages self-close by the hundred (icons): alone, they need no scan
_FOREIGN_NAME_RE = re.compile(
    rb"(?:path|circle|rect|line|polyline|polygon|ellipse|use|stop|g|image|feblend|fecolormatrix|"
    rb"feoffset|fegaussianblur|femergenode|mi|mo|mn|mspace|mprescripts|none)[\s/>]",
    re.IGNORECASE,
)
_DOCUMENT_END_RE = re.compile(rb"</(?:body|html)", re.IGNORECASE)
_END_SCAN_BYTES = 4096
_END_TAG_CLOSE = frozenset(b" \t\n\r\f/>")
# what may follow ``</body>`` or ``</html>`` and stay where libxml2 puts it (atomic: a comment
# never stretches over text to a later "-->")
_TRAILER_RE = re.compile(rb"(?>\s+|<!--.*?-->|</(?:body|html)\s*>)*+\Z", re.DOTALL | re.IGNORECASE)
# fields masked whatever the selectors (rewriter/masking.py)
_FIELD_RE = re.compile(rb"<(?:input|textarea|select)[\s/>]")
_COMMENT, _SLASH, _START, _END = range(4)

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


def _end_br_or_forms(data: bytes) -> bool:
    """A ``</br>``, or a ``<form>`` while another is open (read without context: a gate)."""
    form_open = False
    for found in _MAYBE_ACTED_ON_RE.finditer(data):
        token = found.group().lower()
        if token.startswith(b"</b"):
            return True
        if token.startswith(b"</"):
            form_open = False
        elif form_open:
            return True
        else:
            form_open = True
    return False


def _content_after_end(data: bytes) -> bool:
    """The last ``</body>`` or the last ``</html>`` has content after it (not only spaces and
    comments). Pages end with them: they are looked for in the last bytes first."""
    tail_start = max(0, len(data) - _END_SCAN_BYTES)
    tail = data[tail_start:].lower()
    for name in (b"</body", b"</html"):
        at = tail.rfind(name)
        if at >= 0:
            at += tail_start
        else:
            found = [m.start() for m in _DOCUMENT_END_RE.finditer(data, 0, tail_start + len(name))]
            at = next((f for f in reversed(found) if data[f : f + len(name)].lower() == name), -1)
        close = data.find(b">", at) if at >= 0 else -1
        if close >= 0 and _TRAILER_RE.match(data, close + 1) is None:
            return True
    return False


def browser_parse_fixups(data: bytes, *, masked_selectors: bool = False) -> bytes:
    """``data`` (UTF-8 or any ASCII-compatible encoding) with the tokens libxml2 would parse
    unlike a browser rewritten as the browser reads them (the module docstring lists them).

    A self-closed raw text element (``<script src="x"/>``, ``<textarea/>``) is left closed when
    ``masked_selectors`` (the page has masks) or when what a browser would read as its text holds
    a form field: that text could hold masked content, which the tree masks as elements and
    would send as text. The agent then sees the markup the visitor's browser did not parse."""
    read = _TagStarts()
    starts = {m.start(): _self_closed_start(data, m.start(), read) for m in _SELF_CLOSING_RE.finditer(data)}
    slashes = [at for at, start in starts.items() if start >= 0]
    if not (
        any(_FOREIGN_NAME_RE.match(data, starts[at] + 1) is None for at in slashes)
        or _end_br_or_forms(data)
        or _content_after_end(data)
    ):
        return data  # most documents: nothing to do, nothing more scanned
    lower = data.lower()  # one byte for one byte: offsets hold
    events: list[tuple[int, int, re.Match[bytes] | None]] = [
        *((at, _COMMENT, None) for at in _positions(lower, b"<!--")),
        *((at, _SLASH, None) for at in slashes),
        *((m.start(), _START, m) for m in _START_RE.finditer(lower)),
        *((m.start(), _END, m) for m in _END_RE.finditer(lower)),
    ]
    events.sort(key=lambda event: event[0])
    out: list[bytes] = []
    done = 0  # data[:done] is in out
    skip = 0  # events before it are inside a comment or raw text
    foreign: list[bytes] = []  # open <svg>/<math> (and b"html" for a <foreignObject> in them)
    templates = 0
    form_open = False
    for at, kind, found in events:
        if at < skip:
            continue
        if kind != _SLASH and _in_a_tag(data, at):
            continue  # an attribute value's text (title="</body>", value="<form>", "<svg>", "<!--")
        html_context = not foreign or foreign[-1] == b"html"
        if kind == _COMMENT:
            skip = _comment_end(lower, at)
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
            elif name in (b"body", b"html"):
                if _TRAILER_RE.match(lower, end) is None:
                    out.append(data[done:at])
                    done = end
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
        if name == b"form" and not templates:
            if form_open:
                out.append(data[done:at])  # a browser ignores it: attributes and all
                done = end
                continue
            form_open = True
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


def raw_text_end_re(tag: str) -> re.Pattern[str]:
    """What ends the raw text of ``tag`` in a browser (its end tag, any case)."""
    return re.compile(rf"</{tag}[\s/>]", re.IGNORECASE)


__all__ = ["RAW_TEXT_TAGS", "browser_parse_fixups", "raw_text_end_re"]
