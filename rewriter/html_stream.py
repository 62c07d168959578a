"""A token-stream HTML rewriter, for documents lxml cannot hold as a tree.

libxml2 stops building a tree at 2048 levels of nesting (even with ``huge_tree``) and drops the
rest of the document; a browser keeps every element (Chromium reparents past depth 512). For
such documents this rewriter walks the standard library's HTML tokenizer instead: start tags
whose attributes need rewriting are written anew, every other token is copied. It applies the
same attribute table as ``rewriter/html.py`` and leaves out the visitor banner tag as it does.
Masking needs a tree for CSS selectors: password inputs (and inputs whose ``autocomplete`` names
a secret) are masked here, any other masked selector makes the document ``UnrewritableDocument``.
Copying tokens keeps the agent's DOM the visitor's (``<span/>``, nested forms, raw text, stray end
tags all reach the agent's browser as they came); tokens written anew keep their spelling where it
counts (``&copy2`` is not ``&copy2;``). ``tests/rewriter/test_parse_parity_in_chromium.py`` checks
both rewriters against Chromium.
"""

from __future__ import annotations

import html
import html.parser
import re
from collections.abc import Callable

from rewriter.attributes import ATTRIBUTE_RULES, DROPPED_HTTP_EQUIV, Kind, is_visitor_banner, rewrite_value
from rewriter.charset import OUTPUT_CHARSET
from rewriter.css import might_hold_absolute_url, rewrite_css_text
from rewriter.exceptions import RewriteError
from rewriter.frames import confined_sandbox
from rewriter.import_maps import (
    is_module_load,
    map_keys,
    merged_map_text,
    module_routes,
    own_map_markup,
    parse_import_map,
)
from rewriter.masking import MASK, MASKED_ATTRIBUTE, SECRET_AUTOCOMPLETE
from rewriter.url_values import JSON_SCRIPT_MAPPERS, JsonMapper, map_json_text, map_url
from rewriter.urls import UrlMapper, join_url, parse_url

# elements whose content never runs (lxml and this tokenizer parse both as markup)
_INERT = frozenset({"template", "noscript"})
# start tags that may come before the injection point (it goes after <head>, or before the first
# other tag)
_BEFORE_INJECTION = frozenset({"html"})

_NEWLINE_RE = re.compile("\n")  # lines as the tokenizer counts them

SrcdocRewriter = Callable[[str], str]


def _attr_text(name: str, value: str | None) -> str:
    return name if value is None else f'{name}="{html.escape(value, quote=True)}"'



def _secret_input(attrs: list[tuple[str, str | None]]) -> bool:
    """A password input, or one whose autocomplete says it holds a secret (rewriter/masking.py)."""
    return any(n == "type" and (v or "").strip().lower() == "password" for n, v in attrs) or _secret(attrs)


def _secret(attrs: list[tuple[str, str | None]]) -> bool:
    """The field's autocomplete says it holds a secret (rewriter/masking.py)."""
    return any(
        n == "autocomplete" and SECRET_AUTOCOMPLETE & set((v or "").lower().split()) for n, v in attrs
    )


class _StreamRewriter(html.parser.HTMLParser):
    def __init__(
        self, url: str, mapper: UrlMapper, inject: str, srcdoc: SrcdocRewriter, document: bool = True
    ) -> None:
        super().__init__(convert_charrefs=False)
        self.mapper = mapper
        self.base: str = url
        self.inject = inject
        self.srcdoc = srcdoc
        self.out: list[str] = []
        self.injected = not document  # markup a script reads gets no charset and no runtime
        self.in_style = False
        self.json_mapper: JsonMapper | None = None  # inside an import map or speculation rules
        self.base_seen = False
        self.in_banner = False  # inside our visitor banner's <script>, which is left out
        # module specifiers: the routes, where our own import map goes (an index of ``out``), and
        # what the page's maps and module loads decide (``rewriter/import_maps.py``)
        self.routes = module_routes(mapper) if inject else {}
        self.map_slot: int | None = None
        self.module_seen = False  # an import map or a module load came already
        self.merged = False  # the routes went into the page's first import map
        self.taken: set[str] = set()  # keys the page's maps set
        self.inert = 0  # depth inside <template>/<noscript>
        self.map_text: list[str] | None = None  # the text of the page import map being read
        # inside a <textarea>/<select> whose autocomplete names a secret: its content is left out
        self.masked_tag = ""
        self.masked_depth = 0
        self.text = ""  # the whole text fed (once)
        self.line_starts: list[int] | None = None  # where each line of ``text`` starts, when needed

    # -- injection

    def _inject_at(self, index: int) -> None:
        """Put the charset, the runtime and the slot of our import map at ``index`` of ``out``."""
        self.injected = True
        self.out[index:index] = [f'<meta charset="{OUTPUT_CHARSET}">{self.inject}', ""]
        self.map_slot = index + 1

    def _before_content(self) -> None:
        if not self.injected:
            self._inject_at(len(self.out))

    def finish(self) -> str:
        if not self.injected:
            self._inject_at(0)
        if self.routes and not self.merged and self.map_slot is not None:
            self.out[self.map_slot] = own_map_markup(self.routes, self.taken)
        return "".join(self.out)

    def _end_import_map(self, complete: bool = True) -> None:
        """A page import map is read: its addresses mapped and, when the document closed it
        (browsers read no other), the routes merged into it if it is valid and nothing
        module-related came before it."""
        text = "".join(self.map_text or ())
        self.map_text = None
        if might_hold_absolute_url(text):
            mapper, base = self.mapper, self.base
            text = map_json_text(text, JSON_SCRIPT_MAPPERS["importmap"], lambda u: map_url(mapper, u, base))
        if complete:
            data = parse_import_map(text)
            if self.routes and not self.module_seen and data is not None:
                text = merged_map_text(data, self.routes)
                self.merged = True
            self.taken |= map_keys(data)
            self.module_seen = True
        self.out.append(text)

    # -- tags

    def _attrs(self, tag: str, attrs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]] | None:
        """The new attribute list, None to drop the whole tag; the same list when nothing changes."""
        if tag == "meta":
            names = {name: value for name, value in attrs}
            equiv = (names.get("http-equiv") or "").strip().lower()
            if "charset" in names or equiv in DROPPED_HTTP_EQUIV:
                return None
        if tag == "input" and _secret_input(attrs):
            kept = [
                (n, MASK if n == "value" else v)
                for n, v in attrs
                if n in ("id", "class", "name", "type", "autocomplete")
            ]
            return [*kept, ("value", MASK), (MASKED_ATTRIBUTE, "")]
        if tag == "base":
            href = dict(attrs).get("href")
            if href and not self.base_seen:  # only the first <base href> counts
                self.base_seen = True
                try:
                    self.base = parse_url(join_url(self.base, href)).serialize()
                except RewriteError:
                    pass  # an unparsable (or non-http) <base href> is ignored
        new: list[tuple[str, str | None]] = []
        is_refresh = tag == "meta" and any(
            n == "http-equiv" and (v or "").strip().lower() == "refresh" for n, v in attrs
        )
        for name, value in attrs:
            rule = ATTRIBUTE_RULES.get(name)
            if value is None:
                new.append((name, value))
            elif is_refresh and name == "content":
                new.append((name, rewrite_value(Kind.REFRESH, value, self.mapper, self.base)))
            elif rule is None or (rule.tags is not None and tag not in rule.tags):
                new.append((name, value))
            elif rule.kind is Kind.DROP:
                continue
            elif rule.kind is Kind.DOCUMENT:
                new.append((name, self.srcdoc(value)))
            else:
                new.append((name, rewrite_value(rule.kind, value, self.mapper, self.base)))
        if tag == "iframe":
            values = dict(new)
            src = values.get("src")
            sandbox = confined_sandbox(src, values.get("sandbox")) if src is not None else None
            if sandbox is not None:
                new = [(n, v) for n, v in new if n != "sandbox"] + [("sandbox", sandbox)]
        return new

    def _tag(self, tag: str, attrs: list[tuple[str, str | None]], closing: str) -> None:
        if tag == "head" and not self.injected:
            self.out.append(self.get_starttag_text() or f"<{tag}>")
            self._inject_at(len(self.out))
            return
        if tag not in _BEFORE_INJECTION:
            self._before_content()
        if tag == "script":
            named = dict(attrs)
            site_key = (named.get("data-site-key") or "") if "data-site-key" in named else None
            if is_visitor_banner(tag, named.get("src"), site_key):
                self.in_banner = not closing
                return
        if tag in _INERT and not closing:
            self.inert += 1
        new = self._attrs(tag, attrs)
        if new is None:
            return
        if not self.inert and is_module_load(tag, dict(attrs)):
            self.module_seen = True
        if new == attrs:
            self.out.append(self.get_starttag_text() or f"<{tag}{closing}>")
        else:
            parts = " ".join(_attr_text(n, v) for n, v in new)
            self.out.append(f"<{tag}{' ' if parts else ''}{parts}{closing}>")
        self.in_style = tag == "style" and not closing
        script_type = (dict(attrs).get("type") or "").strip().lower() if tag == "script" else ""
        self.json_mapper = JSON_SCRIPT_MAPPERS.get(script_type) if not closing else None
        if script_type == "importmap" and not closing and not self.inert:
            self.map_text, self.json_mapper = [], None  # read whole, handled at its end tag

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.masked_depth:
            if tag == self.masked_tag:
                self.masked_depth += 1
            return
        if tag in ("textarea", "select") and _secret(attrs):
            self._before_content()
            kept = [(n, v) for n, v in attrs if n in ("id", "class", "name", "autocomplete", "disabled")]
            parts = " ".join(_attr_text(n, v) for n, v in [*kept, (MASKED_ATTRIBUTE, "")])
            self.out.append(f"<{tag} {parts}>{MASK}")
            self.masked_tag, self.masked_depth = tag, 1
            return
        self._tag(tag, attrs, "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.masked_depth:
            return
        self._tag(tag, attrs, " /")

    def handle_endtag(self, tag: str) -> None:
        if self.masked_depth:
            if tag == self.masked_tag:
                self.masked_depth -= 1
                if not self.masked_depth:
                    self.out.append(f"</{tag}>")
            return
        if self.in_banner and tag == "script":
            self.in_banner = False
            return
        if self.map_text is not None and tag == "script":
            self._end_import_map()
        if tag in _INERT and self.inert:
            self.inert -= 1
        self.in_style = False
        self.json_mapper = None
        self.out.append(f"</{tag}>")

    # -- everything else is copied

    def handle_data(self, data: str) -> None:
        if self.in_banner or self.masked_depth:
            return
        if self.map_text is not None:
            self.map_text.append(data)
            return
        if data.strip():
            self._before_content()
        if self.in_style and might_hold_absolute_url(data):
            data = rewrite_css_text(data, mapper=self.mapper, base=self.base)
        elif self.json_mapper is not None and might_hold_absolute_url(data):
            data = map_json_text(data, self.json_mapper, lambda url: map_url(self.mapper, url, self.base))
        self.out.append(data)

    def handle_entityref(self, name: str) -> None:
        if self.masked_depth:
            return
        self._before_content()
        # as it came: ``&copy2`` is ``©2`` to a browser, ``&copy2;`` is ``©2;``
        self.out.append(f"&{name};" if self._semicolon_after(name) else f"&{name}")

    def _semicolon_after(self, name: str) -> bool:
        """The entity reference ``&name`` the tokenizer is at ends with ``;`` in the text."""
        if self.line_starts is None:
            self.line_starts = [0, *(m.end() for m in _NEWLINE_RE.finditer(self.text))]
        lineno, offset = self.getpos()
        # the tokenizer's text is the fed text less what it consumed before this call
        at = self.line_starts[lineno - 1] + offset - (len(self.text) - len(self.rawdata))
        return self.rawdata.startswith(f"&{name};", at)

    def handle_charref(self, name: str) -> None:
        if self.masked_depth:
            return
        self._before_content()
        self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        if self.masked_depth:
            return
        self.out.append(f"<!--{data}-->")

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        self.out.append(f"<![{data}]>")


def rewrite_html_stream(
    text: str, *, url: str, mapper: UrlMapper, inject: str, srcdoc: SrcdocRewriter, document: bool = True
) -> bytes:
    """Rewrite ``text`` token by token (no tree, no depth limit); UTF-8 out. ``document`` False:
    markup a script reads (``fetch``), which gets neither ``<meta charset>`` nor ``inject``."""
    rewriter = _StreamRewriter(url, mapper, inject if document else "", srcdoc, document)
    rewriter.text = text
    rewriter.feed(text)
    rewriter.close()
    if getattr(rewriter, "cdata_elem", None) and rewriter.rawdata:
        # the tokenizer keeps the text of a <style> or <script> left open at the end; a browser
        # applies such a style (and never runs such a script or import map): copy it on
        rewriter.handle_data(rewriter.rawdata)
        rewriter.rawdata = ""
    if rewriter.map_text is not None:  # an import map left open: browsers never read it
        rewriter._end_import_map(complete=False)
    return rewriter.finish().encode(OUTPUT_CHARSET, errors="replace")
