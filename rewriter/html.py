"""HTML rewriting with lxml: map absolute URLs to the proxy, inject the runtime, mask, re-encode.

One walk over the elements rewrites the URL-bearing attributes (by the table in
``rewriter/attributes.py``) whose value has a colon, two slashes, a backslash, a tab or a newline:
relative URLs need no work. Inline scripts are never touched (the client runtime
handles JavaScript); comments, conditional comments and the doctype are kept. The output is
UTF-8 and says so. Our own visitor banner tag (a ``<script>`` with ``data-site-key`` loading
``.../banner.js``) is left out: the agent's copy must not run it. libxml2 is not an HTML5 parser:
the markup it reads unlike a browser and that can be mended cheaply is mended before it parses
and in the tree it builds (``rewriter/html_parity.py``; a page with a stray ``</p>`` or a second
``<body>`` tag, or past libxml2's 100 reported errors, is parsed twice) and as it serialises (raw
text, space after ``</html>``), so that the agent's browser builds the visitor's DOM from the output.
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Sequence

from lxml import etree

from rewriter.attributes import ATTRIBUTE_RULES, DROPPED_HTTP_EQUIV, Kind, is_visitor_banner, rewrite_value
from rewriter.charset import LEGACY_LABELS, OUTPUT_CHARSET, html_to_utf8, mime_type
from rewriter.css import MIGHT_ESCAPE_RE, might_hold_absolute_url, rewrite_css_text
from rewriter.exceptions import RewriteError, UnrewritableDocument
from rewriter.frames import confined_sandbox
from rewriter.html_parity import (
    RAW_TEXT_TAGS,
    ParityMarks,
    browser_parse_fixups,
    mend_tree,
    parity_errors,
    quirks_tables_possible,
    raw_text_end_re,
)
from rewriter.html_stream import rewrite_html_stream
from rewriter.import_maps import (
    is_module_load,
    map_keys,
    merged_map_text,
    module_routes,
    own_map_markup,
    parse_import_map,
)
from rewriter.masking import apply_masks, compile_selectors
from rewriter.url_values import (
    JSON_SCRIPT_MAPPERS,
    JsonMapper,
    map_json_text,
    map_url,
    replace_spans,
    srcset_url_spans,
)
from rewriter.urls import UrlMapper, join_url, parse_url

XHTML_NS = "http://www.w3.org/1999/xhtml"
XML_TYPES = frozenset({"application/xhtml+xml", "image/svg+xml"})
SVG_TYPE = "image/svg+xml"
MAX_SRCDOC_DEPTH = 4
DOCTYPE_SCAN_BYTES = 8192  # the doctype comes first, after whitespace and comments
# how a document starts, unlike a fragment (``<p>x</p>`` fetched by a script): after whitespace
# and comments, a doctype or one of the three elements a fragment never has
_DOCUMENT_START_RE = re.compile(
    rb"(?:\s|<!--.*?-->)*<(?:!doctype|html|head|body)[\s/>]", re.IGNORECASE | re.DOTALL
)

# what any absolute or protocol-relative URL in an attribute value contains: a scheme's colon
# (``https:x``, ``https:\\\\x``), two slashes, a backslash (``/\\x``, ``\\/x``, CSS escapes), or a
# tab or newline, which a browser removes first (``/<TAB>/x``); values without any need no work
_URL_MIGHT_ESCAPE_RE = re.compile(r"//|[:\\\t\n\r]")
# attribute -> (rule, quick test that is None when the value cannot hold an absolute URL, the
# kind's name as a cheap memo key), for the attributes whose values are rewritten (integrity and
# srcdoc are handled with the special elements)
_VALUE_RULES = {
    name: (
        rule,
        MIGHT_ESCAPE_RE.search if rule.kind is Kind.STYLE else _URL_MIGHT_ESCAPE_RE.search,
        rule.kind.value,
    )
    for name, rule in ATTRIBUTE_RULES.items()
    if rule.kind not in (Kind.DROP, Kind.DOCUMENT)
}
_URL, _SRCSET = Kind.URL, Kind.SRCSET
_MEMO_SIZE = 256  # rewritten style/srcset/... values remembered per document
# elements handled whatever their attribute values: <meta> (CSP, charset, refresh), integrity
# holders, srcdoc frames
_SPECIAL_TAGS = tuple(
    name for tag in ("meta", "script", "link", "iframe") for name in (tag, f"{{{XHTML_NS}}}{tag}")
)
_SPECIAL_ATTRIBUTES = ("http-equiv", "charset", "integrity", "srcdoc", "src")


class _TooDeep(Exception):
    """libxml2 gave up on the nesting depth: the tree lacks the rest of the document."""


_STYLE_TAGS = ("style", f"{{{XHTML_NS}}}style", "{http://www.w3.org/2000/svg}style")


def _html_parse(data: bytes) -> tuple[etree._Element | None, tuple[bool, bool, bool]]:
    """libxml2's tree of ``data``, and what its error log says (``html_parity.parity_errors``)."""
    parser = etree.HTMLParser(encoding="utf-8", huge_tree=True, no_network=True)
    try:
        root = etree.fromstring(data or b"<html></html>", parser)
    except (etree.LxmlError, ValueError) as exc:
        raise UnrewritableDocument(f"cannot parse document: {exc}") from exc
    return root, parity_errors(parser.error_log)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


_ENTITY_REFERENCE_RE = re.compile(r"&([A-Za-z_:][\w.:-]*);")


def _without_entities(tree: etree._ElementTree) -> str | None:
    """The DOCTYPE of an XML document with masked elements, when its internal subset declares an
    entity that only masked content used: without that declaration, which would show the masked
    text in the page's source. None: the DOCTYPE as it is. The subset written again holds only
    the entities still used (attribute defaults and other declarations are lost with it)."""
    docinfo = tree.docinfo
    subset = docinfo.internalDTD
    declared = {d.name: d for d in subset.iterentities()} if subset is not None else {}
    if not declared:
        return None
    # what the document still refers to, in text or in attribute values (which keep their
    # references as written)
    wanted = _ENTITY_REFERENCE_RE.findall(etree.tostring(tree.getroot(), encoding="unicode"))
    used: set[str] = set()
    while wanted:  # (an entity's value may use others)
        name = wanted.pop()
        if name in used or name not in declared:
            continue
        used.add(name)
        wanted.extend(_ENTITY_REFERENCE_RE.findall(declared[name].orig or ""))
    kept = [d for d in declared.values() if d.name in used or d.system_url]
    if len(kept) == len(declared):
        return None
    lines = []
    for decl in kept:
        if decl.system_url:
            lines.append(f'<!ENTITY {decl.name} SYSTEM "{decl.system_url}">')
        else:
            value = decl.orig or ""
            quote = "'" if '"' in value else '"'
            lines.append(f"<!ENTITY {decl.name} {quote}{value}{quote}>")
    name, public_id, system_url = docinfo.root_name or "html", docinfo.public_id, docinfo.system_url
    quote = "'" if system_url and '"' in system_url else '"'
    if public_id:
        head = f'<!DOCTYPE {name} PUBLIC "{public_id}" {quote}{system_url or ""}{quote}'
    elif system_url:
        head = f"<!DOCTYPE {name} SYSTEM {quote}{system_url}{quote}"
    else:
        head = f"<!DOCTYPE {name}"
    return head + (" [\n" + "\n".join(lines) + "\n]>" if lines else ">")


def _doctype_prefix(text: str) -> str | None:
    """The document's own ``<!DOCTYPE ...>`` text, read past leading whitespace and comments."""
    pos, n = 0, len(text)
    while pos < n:
        if text[pos] in " \t\n\r\f":
            pos += 1
        elif text.startswith("<!--", pos):
            end = text.find("-->", pos + 4)
            if end == -1:
                return None
            pos = end + 3
        elif text[pos : pos + 9].lower() == "<!doctype":
            end = text.find(">", pos)
            return None if end == -1 else text[pos : end + 1]
        else:
            return None
    return None


def _remove(element: etree._Element) -> None:
    """Remove ``element`` but keep its tail text in place."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


class _Rewrite:
    """One document's rewrite: parse, mask, map URLs, inject, serialise."""

    def __init__(
        self,
        data: bytes,
        url: str,
        mapper: UrlMapper,
        inject: str,
        selectors: tuple[etree.XPath, ...],
        xml: bool,
        depth: int,
        svg: bool = False,
        document: bool = True,
    ) -> None:
        self.data = data
        self.document = document  # False: markup a script reads (fetch, XHR), not a page
        # a page in a legacy encoding (it goes out in it: rewriter.charset.in_page_encoding)
        self.query_codec: str | None = None
        self.masked = 0  # elements masked (``apply_masks``)
        self.url = url
        self.mapper = mapper
        self.inject = inject
        self.import_map = ""  # injected after the runtime when the page has no import map of its own
        self.selectors = selectors
        self.xml = xml
        self.svg = svg
        self.depth = depth
        self.base = url

    def parse(self) -> etree._ElementTree:
        data = self.data
        marks = ParityMarks()
        html_fixups = not self.xml  # (an XHTML page read with the HTML parser is not told otherwise)
        if html_fixups and self.document:  # no doctype: quirks mode (its gate first: it reads 8 KiB)
            head = data[:DOCTYPE_SCAN_BYTES].decode(OUTPUT_CHARSET, errors="replace")
            marks.quirks_tables = _doctype_prefix(head) is None and quirks_tables_possible(data)
        if html_fixups:  # a browser parses it as HTML (XML keeps <span/> empty): libxml2 is told how
            data = browser_parse_fixups(data, masked_selectors=bool(self.selectors), marks=marks)
        if self.xml:
            xml_parser = etree.XMLParser(
                encoding="utf-8", huge_tree=True, resolve_entities=False, no_network=True, recover=False
            )
            try:
                return etree.fromstring(data, xml_parser).getroottree()
            except etree.XMLSyntaxError as exc:
                if self.svg:  # browsers render no broken SVG; an HTML parse would make HTML of it
                    raise UnrewritableDocument(f"SVG document is not well-formed: {exc}") from exc
                self.xml = False  # browsers would show an error page; an HTML parse is kinder
        root, (too_deep, stray_p, second_body) = _html_parse(data)
        if too_deep:
            raise _TooDeep()
        if html_fixups and (stray_p or second_body):  # read again: each </p> and <body> tag marked
            marks.end_p, marks.read_all, marks.body_tags = stray_p, True, []
            data = browser_parse_fixups(self.data, masked_selectors=bool(self.selectors), marks=marks)
            root = None  # (freed before the second tree is built: one tree at a time)
            root, (too_deep, _, _) = _html_parse(data)
            if too_deep:
                raise _TooDeep()
        if root is None:
            root = etree.fromstring(b"<html></html>", etree.HTMLParser(encoding="utf-8"))
        mend_tree(root, marks)
        return root.getroottree()

    def run(self) -> bytes:
        try:
            tree = self.parse()
        except _TooDeep:
            return self._stream()
        root = tree.getroot()
        self.masked = apply_masks(root, self.selectors, xml=self.xml)
        self._find_base(root)
        special = [e for e in root.iter(*_SPECIAL_TAGS) if not _drop_if_banner(e)]
        self._attributes(root)
        for element in special:
            for name in _SPECIAL_ATTRIBUTES:
                value = element.get(name)
                if value is not None:
                    self._special(element, name, value)
        modules: list[tuple[str, etree._Element]] = []  # import maps and module loads, in order
        for element in special:
            tag = _local(element.tag)
            if tag == "script":
                script_type = (element.get("type") or "").strip().lower()
                json_mapper = JSON_SCRIPT_MAPPERS.get(script_type)
                if json_mapper is not None:
                    self._json_script(element, json_mapper)
                if script_type == "importmap" and not _inert(element):
                    modules.append((script_type, element))
            if is_module_load(tag, dict(element.attrib)) and not _inert(element):
                modules.append(("module", element))
        if self.inject and self.document and not self.svg:  # HTML and XHTML (SVG has no import maps)
            self._route_modules(modules)
        for style in root.iter(*_STYLE_TAGS):
            if style.text and might_hold_absolute_url(style.text):
                style.text = rewrite_css_text(style.text, mapper=self.mapper, base=self.base)
        if self.query_codec is not None and not self.xml:
            _queries_in(root, self.query_codec)
        raw = [] if self.xml else _hold_raw_text(root)
        if not self.document:
            if self.xml or _DOCUMENT_START_RE.match(self.data) or _has_document_attributes(root):
                return _restore_raw_text(self._serialize(tree, None), raw)
            lead = len(self.data) - len(self.data.lstrip())  # libxml2 drops a fragment's first spaces
            return _restore_raw_text(self.data[:lead] + _fragment(root), raw)
        placeholder = self._inject(root)
        return _restore_raw_text(self._serialize(tree, placeholder), raw)

    def _find_base(self, root: etree._Element) -> None:
        for element in root.iter("base", f"{{{XHTML_NS}}}base"):
            href = element.get("href")
            if href is not None:
                try:
                    self.base = parse_url(join_url(self.url, href)).serialize()
                except RewriteError:
                    self.base = self.url  # an unparsable (or non-http) <base href> is ignored
                return

    def _attributes(self, root: etree._Element) -> None:
        """Rewrite every URL-bearing attribute (by the table) whose value may hold an absolute URL.

        Equal ``style``/``srcset``/... values are rewritten once per document (pages repeat their
        inline styles); single URLs need no memo (the mapper caches origins).
        """
        rules, xml, mapper, base = _VALUE_RULES, self.xml, self.mapper, self.base
        to_proxy = mapper.to_proxy
        done: dict[tuple[str, str], str] = {}

        def one_url(value: str) -> str:  # map_url, without its call layers (the hot path)
            try:
                return to_proxy(value, base)
            except RewriteError:
                return mapper.blocked_url()

        for element in root.iter(etree.Element):
            tag = None
            for name, value in element.items():
                entry = rules.get(name.lower() if xml else name)  # the HTML parser lower-cases names
                if entry is None:
                    continue
                rule, may_hold_absolute, kind_key = entry
                if may_hold_absolute(value) is None:
                    continue  # relative: resolves right on the proxy origin
                if rule.tags is not None:
                    if tag is None:
                        tag = _local(element.tag)
                    if tag not in rule.tags:
                        continue
                kind = rule.kind
                if kind is _URL:
                    new = one_url(value)
                else:
                    key = (kind_key, value)
                    memo = done.get(key)
                    if memo is None:
                        if len(done) >= _MEMO_SIZE:
                            done.clear()
                        if kind is _SRCSET:
                            memo = replace_spans(value, srcset_url_spans(value), one_url)
                        else:
                            memo = rewrite_value(kind, value, mapper, base)
                        done[key] = memo
                    new = memo
                if new != value:
                    element.set(name, new)

    def _special(self, element: etree._Element, name: str, value: str) -> None:
        tag = _local(element.tag)
        if name == "http-equiv":
            self._meta(element, value.strip().lower())
        elif name == "charset" and tag == "meta":
            _remove(element)
        elif name == "integrity" and tag in ("script", "link"):
            del element.attrib[name]
        elif name == "srcdoc" and tag == "iframe":
            element.set(name, self._srcdoc(value))
        elif name == "src" and tag == "iframe":
            sandbox = confined_sandbox(value, element.get("sandbox"))
            if sandbox is not None:
                element.set("sandbox", sandbox)

    def _json_script(self, element: etree._Element, json_mapper: JsonMapper) -> None:
        """Map the URLs of an import map or speculation rules (JSON the browser reads, not JavaScript)."""
        text = element.text or ""
        if might_hold_absolute_url(text):
            element.text = map_json_text(text, json_mapper, lambda url: map_url(self.mapper, url, self.base))

    def _route_modules(self, modules: list[tuple[str, etree._Element]]) -> None:
        """Route absolute module specifiers through an import map (``rewriter/import_maps.py``)."""
        routes = module_routes(self.mapper)
        if not routes:
            return
        page_maps = [(e, parse_import_map(e.text)) for kind, e in modules if kind == "importmap"]
        first_kind = modules[0][0] if modules else None
        if first_kind == "importmap" and page_maps[0][1] is not None:
            element, data = page_maps[0]
            assert data is not None
            element.text = merged_map_text(data, routes)
            return
        self.import_map = own_map_markup(routes, {key for _, data in page_maps for key in map_keys(data)})

    def _meta(self, element: etree._Element, equiv: str) -> None:
        if _local(element.tag) != "meta":
            return
        if equiv in DROPPED_HTTP_EQUIV:
            _remove(element)
        elif equiv == "refresh":
            content = element.get("content")
            if content is not None:
                new = rewrite_value(Kind.REFRESH, content, self.mapper, self.base)
                if new != content:
                    element.set("content", new)

    def _srcdoc(self, value: str) -> str:
        if self.depth >= MAX_SRCDOC_DEPTH:
            return ""  # nested beyond reason: an empty frame rather than an unrewritten one
        data = value.encode(OUTPUT_CHARSET, errors="replace")
        # an about:srcdoc document's base URL is its parent's
        inner = _Rewrite(data, self.base, self.mapper, self.inject, self.selectors, False, self.depth + 1)
        return inner.run().decode(OUTPUT_CHARSET)

    def _stream(self) -> bytes:
        if self.selectors:  # CSS selectors need a tree (password inputs do not)
            raise UnrewritableDocument("document nested too deeply to apply the masked selectors")
        text = self.data.decode(OUTPUT_CHARSET, errors="replace")
        return rewrite_html_stream(
            text, url=self.url, mapper=self.mapper, inject=self.inject, srcdoc=self._srcdoc,
            document=self.document,
        )

    def _head(self, root: etree._Element) -> etree._Element:
        ns = f"{{{XHTML_NS}}}" if self.xml and root.tag.startswith(f"{{{XHTML_NS}}}") else ""
        for child in root:
            if _local(child.tag) == "head":
                return child
        head = etree.Element(f"{ns}head")
        root.insert(0, head)
        return head

    def _inject(self, root: etree._Element) -> str | None:
        if _local(root.tag) != "html":
            return None
        head = self._head(root)
        ns = head.tag[: -len("head")]
        meta = etree.Element(f"{ns}meta")
        meta.set("charset", OUTPUT_CHARSET)
        head.insert(0, meta)
        if not self.inject:
            return None
        if not self.xml:
            # parsed into the tree: one serialisation, no copy of the output to splice it in
            markup = f"<html><head>{self.inject}{self.import_map}</head></html>"
            holder = etree.fromstring(
                markup.encode(OUTPUT_CHARSET, errors="replace"),
                etree.HTMLParser(encoding=OUTPUT_CHARSET, no_network=True),
            )
            anchor = meta
            for node in list(holder.find("head") if holder.find("head") is not None else ()):
                node.tail = None
                anchor.addnext(node)
                anchor = node
            return None
        placeholder = f"cobrowse-inject-{secrets.token_hex(8)}"  # XML: the markup need not be XML
        meta.addnext(etree.Comment(placeholder))
        return f"<!--{placeholder}-->"

    def _serialize(self, tree: etree._ElementTree, placeholder: str | None) -> bytes:
        method = "xml" if self.xml else "html"
        doctype = _doctype_prefix(self.data[:DOCTYPE_SCAN_BYTES].decode(OUTPUT_CHARSET, errors="replace"))
        if self.xml:
            xml_doctype = _without_entities(tree) if self.masked else None
            out = etree.tostring(
                tree, encoding=OUTPUT_CHARSET, method=method, xml_declaration=True, doctype=xml_doctype
            )
        else:
            trailing = _TRAILING_SPACE_RE.search(self.data, max(0, len(self.data) - DOCTYPE_SCAN_BYTES))
            if trailing is not None:  # libxml2 drops it; a browser puts it at the end of the body
                _end_body_with(tree.getroot(), trailing.group(1).decode("ascii"))
            out = etree.tostring(tree, encoding=OUTPUT_CHARSET, method=method, doctype=doctype or "")
            if doctype is None and out.startswith(b"\n"):
                out = out[1:]
        if placeholder is not None:
            markup = self.inject + self.import_map
            out = out.replace(placeholder.encode(), markup.encode(OUTPUT_CHARSET, errors="replace"), 1)
        return out


_ESCAPED_URL_ATTRIBUTES = ("href", "src", "action")
_TRAILING_SPACE_RE = re.compile(rb"</html\s*>([ \t\n\r\f]+)\Z", re.IGNORECASE)
_ESCAPED_CHARACTERS_RE = re.compile("[<>&]")
_RAW_TEXT_ENDS = {tag: raw_text_end_re(tag) for tag in RAW_TEXT_TAGS if tag != "plaintext"}


def _end_body_with(root: etree._Element, text: str) -> None:
    """Put ``text`` at the end of the ``<body>`` (in the tree: appending it to the output copied it)."""
    body = root.find("body")
    if body is None:
        return
    if len(body):
        body[-1].tail = (body[-1].tail or "") + text
    else:
        body.text = (body.text or "") + text


def _hold_raw_text(root: etree._Element) -> list[tuple[bytes, bytes, bool]]:
    """Put a placeholder for the text of each ``<xmp>``, ``<iframe>``, ``<noembed>``,
    ``<noframes>`` and ``<plaintext>``: libxml2 keeps it raw, as a browser does, but its serialiser
    escapes it (``<b>`` came out as ``&lt;b&gt;``, shown literally). Text that holds the element's
    end tag (the browser would end it there) stays escaped. Each: (placeholder, text, plaintext)."""
    held: list[tuple[bytes, bytes, bool]] = []
    for element in root.iter(*RAW_TEXT_TAGS):
        if _in_foreign_content(element):
            # in <svg> or <math> a browser reads its text as markup (a <div> in it even leaves the
            # <svg>): raw, masked content libxml2 read as text would reach the agent as elements
            continue
        text = element.text
        plaintext = element.tag == "plaintext"  # it has no end tag
        if not _ESCAPED_CHARACTERS_RE.search(text or "") or len(element):
            continue  # (text without "<", ">" or "&" goes out as it came)
        if not plaintext and _RAW_TEXT_ENDS[element.tag].search(text):
            continue
        placeholder = f"cobrowse-raw-{secrets.token_hex(8)}"
        held.append((placeholder.encode(), text.encode(OUTPUT_CHARSET, errors="replace"), plaintext))
        element.text = placeholder
        if plaintext:
            break  # a browser reads everything after it as its text
    return held


def _in_foreign_content(element: etree._Element) -> bool:
    """Inside ``<svg>`` or ``<math>`` (and not in an HTML integration point of them)."""
    for parent in element.iterancestors():
        name = _local(parent.tag)
        if name in ("foreignobject", "desc", "annotation-xml"):
            return False
        if name in ("svg", "math"):
            return True
    return False


def _restore_raw_text(out: bytes, held: list[tuple[bytes, bytes, bool]]) -> bytes:
    """``out`` with the placeholders of ``_hold_raw_text`` replaced by the raw text; nothing
    follows a ``<plaintext>``'s (a browser would read it as more of that text)."""
    for placeholder, text, plaintext in held:
        before, found, after = out.partition(placeholder)
        if found:
            out = before + text + (b"" if plaintext else after)
    return out


def _queries_in(root: etree._Element, codec: str) -> None:
    """Percent-encode the non-ASCII characters of the queries of the URLs libxml2's serialiser
    escapes (``href``, ``src``, ``action``) in ``codec``, as a browser encodes a query in its
    document's encoding: the serialiser escapes them in UTF-8, and a Shift_JIS page's link
    ``?q=日本`` reached the site as ``%E6%97%A5...`` where it reads ``%93%FA%96%7B``. The path and
    the fragment are UTF-8 in a browser too, and are left to the serialiser."""
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue
        for name in _ESCAPED_URL_ATTRIBUTES:
            value = element.get(name)
            if value is None or value.isascii():
                continue
            head, hash_, fragment = value.partition("#")
            path, mark, query = head.partition("?")
            if mark and not query.isascii():
                encoded = "".join(ch if ch.isascii() else _query_char(ch, codec) for ch in query)
                element.set(name, f"{path}?{encoded}{hash_}{fragment}")


def _query_char(ch: str, codec: str) -> str:
    """A character of a query as a browser sends it from a page in ``codec`` (URL Standard: one
    the encoding cannot hold goes as ``&#N;``, percent-encoded)."""
    try:
        return "".join(f"%{b:02X}" for b in ch.encode(codec))
    except UnicodeEncodeError:
        return f"%26%23{ord(ch)}%3B"


def _has_document_attributes(root: etree._Element) -> bool:
    """``<body class=x>`` further in: the markup names its elements, which a fragment cannot keep."""
    sections = [e for e in root if isinstance(e.tag, str) and _local(e.tag) in ("head", "body")]
    return bool(root.attrib) or any(section.attrib for section in sections)


def _fragment(root: etree._Element) -> bytes:
    """Serialise markup that had no ``<html>``, ``<head>`` or ``<body>`` as it came: without the
    three elements the parser put around it (a script inserts it into a page of its own)."""
    parts: list[bytes] = [
        etree.tostring(node, method="html", encoding=OUTPUT_CHARSET, with_tail=False)
        for node in reversed(list(root.itersiblings(preceding=True)))
    ]
    if root.text:
        parts.append(html.escape(root.text, quote=False).encode(OUTPUT_CHARSET))
    for section in root:
        if not isinstance(section.tag, str) or _local(section.tag) not in ("head", "body"):
            parts.append(etree.tostring(section, method="html", encoding=OUTPUT_CHARSET, with_tail=True))
            continue
        if section.text:
            parts.append(html.escape(section.text, quote=False).encode(OUTPUT_CHARSET))
        parts.extend(
            etree.tostring(child, method="html", encoding=OUTPUT_CHARSET, with_tail=True) for child in section
        )
        if section.tail:
            parts.append(html.escape(section.tail, quote=False).encode(OUTPUT_CHARSET))
    parts.extend(
        etree.tostring(node, method="html", encoding=OUTPUT_CHARSET, with_tail=False)
        for node in root.itersiblings()
    )
    return b"".join(parts)


def _inert(element: etree._Element) -> bool:
    """Inside ``<template>`` or ``<noscript>``: never run (lxml parses both as markup)."""
    return any(_local(parent.tag) in ("template", "noscript") for parent in element.iterancestors())


def _drop_if_banner(element: etree._Element) -> bool:
    """Remove the visitor banner from the agent's copy (``attributes.is_visitor_banner``)."""
    banner = is_visitor_banner(_local(element.tag), element.get("src"), element.get("data-site-key"))
    if not banner or element.getparent() is None:
        return False
    _remove(element)
    return True


def rewrite_html(
    body: bytes,
    *,
    url: str,
    mapper: UrlMapper,
    content_type: str | None = None,
    inject: str = "",
    mask_selectors: Sequence[str] = (),
    document: bool = True,
    picked: tuple[str, str] | None = None,
) -> bytes:
    """Rewrite an HTML (or XHTML, or SVG) document fetched from ``url`` for the proxy; UTF-8 out.

    Absolute and protocol-relative URLs in URL-bearing attributes, ``<style>`` and ``style=``
    become proxy URLs (``<base href>`` included); ``integrity`` and CSP ``<meta>`` are removed;
    ``inject`` (the runtime's ``<script>`` markup) goes first in ``<head>`` after
    ``<meta charset="utf-8">``; elements matching ``mask_selectors`` and password inputs are
    masked. ``document`` False is markup a script reads (``fetch``, ``XMLHttpRequest``: htmx,
    Turbo, templates): URLs are mapped and masks applied as in a page, but nothing is added (no
    ``<meta charset>``, no ``inject`` but in ``srcdoc`` documents) and a fragment stays a
    fragment. Raises ``InvalidSelector`` for a bad selector, ``UnrewritableDocument`` only when
    nothing sensible can be produced. ``picked``: ``rewriter.charset.html_codec(body,
    content_type)`` when the caller has it already.
    """
    selectors = compile_selectors(mask_selectors)
    transcoded = html_to_utf8(body, content_type, picked)
    mime = mime_type(content_type)
    xml = mime in XML_TYPES
    try:
        rewrite = _Rewrite(
            transcoded.data, url, mapper, inject, selectors, xml, 0, svg=mime == SVG_TYPE,
            document=document,
        )
        if transcoded.encoding in LEGACY_LABELS:
            rewrite.query_codec = transcoded.encoding
        return rewrite.run()
    except RewriteError:
        raise
    except (etree.LxmlError, ValueError, RecursionError) as exc:
        raise UnrewritableDocument(f"cannot rewrite document: {exc}") from exc


__all__ = ["rewrite_html"]
