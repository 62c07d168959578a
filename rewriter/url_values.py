"""Where the URLs are inside attribute and header values: srcset lists and refresh directives.

Pure string scanners (no lxml), shared by the HTML rewriter and the header rewriter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from rewriter.exceptions import RewriteError
from rewriter.urls import UrlMapper


def _whitespace(ch: str) -> bool:
    return ch in " \t\n\r\f"


_SRCSET_SEPARATORS_RE = re.compile(r"[ \t\n\r\f,]*")
_SRCSET_URL_RE = re.compile(r"[^ \t\n\r\f]*")


def srcset_url_spans(value: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every candidate URL in a srcset value (HTML standard algorithm)."""
    spans: list[tuple[int, int]] = []
    pos, n = 0, len(value)
    skip, url = _SRCSET_SEPARATORS_RE.match, _SRCSET_URL_RE.match
    while True:
        pos = skip(value, pos).end()  # type: ignore[union-attr]
        if pos >= n:
            return spans
        start = pos
        pos = end = url(value, pos).end()  # type: ignore[union-attr]
        if value[end - 1] == ",":
            while end > start and value[end - 1] == ",":
                end -= 1
            spans.append((start, end))
            continue
        spans.append((start, end))
        # descriptors: a comma outside parentheses ends the candidate
        comma = value.find(",", pos)
        if comma == -1:
            return spans  # the descriptors run to the end
        if "(" not in value[pos:comma]:
            pos = comma + 1
            continue
        depth = 0
        while pos < n:
            ch = value[pos]
            if ch == "(":
                depth += 1
            elif ch == ")" and depth:
                depth -= 1
            elif ch == "," and not depth:
                pos += 1
                break
            pos += 1


def refresh_url_span(value: str) -> tuple[int, int] | None:
    """``(start, end)`` of the URL in a meta refresh ``content`` (HTML "declarative refresh")."""
    pos, n = 0, len(value)
    while pos < n and _whitespace(value[pos]):
        pos += 1
    while pos < n and (value[pos].isdigit() or value[pos] == "."):
        pos += 1
    while pos < n and _whitespace(value[pos]):
        pos += 1
    if pos < n and value[pos] in ";,":
        pos += 1
    while pos < n and _whitespace(value[pos]):
        pos += 1
    if pos >= n:
        return None
    if value[pos : pos + 3].lower() == "url":
        probe = pos + 3
        while probe < n and _whitespace(value[probe]):
            probe += 1
        if probe < n and value[probe] == "=":
            probe += 1
            while probe < n and _whitespace(value[probe]):
                probe += 1
            pos = probe
    end = n
    if pos < n and value[pos] in "'\"":
        quote = value[pos]
        pos += 1
        close = value.find(quote, pos)
        end = n if close == -1 else close
    return (pos, end) if pos < end else None


def map_url(mapper: UrlMapper, value: str, base: str | None) -> str:
    """``value`` mapped to the proxy: relative and non-http(s) URLs unchanged, and an absolute or
    protocol-relative URL that cannot be parsed sent to the blocked origin, never left as it is
    (a browser may parse what the codec refuses)."""
    try:
        return mapper.to_proxy(value, base)
    except RewriteError:
        return mapper.blocked_url()


def replace_spans(value: str, spans: list[tuple[int, int]], fn: Callable[[str], str]) -> str:
    out: list[str] = []
    pos = 0
    for start, end in spans:
        new = fn(value[start:end])
        if new != value[start:end]:
            out.append(value[pos:start])
            out.append(new)
            pos = end
    if not out:
        return value
    out.append(value[pos:])
    return "".join(out)


def map_import_map(data: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    """An import map with its addresses mapped: ``imports`` values, ``scopes`` keys and values.

    Specifier keys of ``imports`` stay: they are matched against what scripts write.
    """
    out = dict(data)
    imports = data.get("imports")
    if isinstance(imports, dict):
        out["imports"] = {k: fn(v) if isinstance(v, str) else v for k, v in imports.items()}
    scopes = data.get("scopes")
    if isinstance(scopes, dict):
        out["scopes"] = {
            fn(scope): {k: fn(v) if isinstance(v, str) else v for k, v in table.items()}
            if isinstance(table, dict)
            else table
            for scope, table in scopes.items()
        }
    return out


def map_speculation_rules(data: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    """Speculation rules with the ``urls`` of their list rules mapped (Chromium prefetches and
    prerenders them); ``where`` patterns are left as they are."""
    out = dict(data)
    for action in ("prefetch", "prerender"):
        rules = data.get(action)
        if isinstance(rules, list):
            out[action] = [
                {**rule, "urls": [fn(u) if isinstance(u, str) else u for u in rule["urls"]]}
                if isinstance(rule, dict) and isinstance(rule.get("urls"), list)
                else rule
                for rule in rules
            ]
    return out


JsonMapper = Callable[[dict[str, Any], Callable[[str], str]], dict[str, Any]]
# <script type> -> the mapper of its JSON: the browser fetches the URLs these name
JSON_SCRIPT_MAPPERS: dict[str, JsonMapper] = {
    "importmap": map_import_map,
    "speculationrules": map_speculation_rules,
}


def map_json_text(text: str, json_mapper: JsonMapper, fn: Callable[[str], str]) -> str:
    """The text of an import map or speculation rules with its URLs mapped; unchanged when it is
    not a JSON object (the browser ignores it too) or nothing changes."""
    try:
        data = json.loads(text)
    except ValueError:
        return text
    if not isinstance(data, dict):
        return text
    mapped = json_mapper(data, fn)
    return text if mapped == data else script_json(mapped)


def script_json(data: object) -> str:
    """JSON for the text of a ``<script>`` element: nothing in it can end the element or put the
    tokenizer in its double-escaped state (``</``, ``<!--``)."""
    return json.dumps(data, ensure_ascii=False).replace("</", "<\\/").replace("<!--", "<\\u0021--")
