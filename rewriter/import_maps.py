"""Import maps that route module specifiers of the session's origins to the proxy (shared by the
tree rewriter and the token-stream fallback; docs/ARCHITECTURE.md, "Module specifiers").

``import "https://cdn.example/x.js"`` and ``import(...)`` are JavaScript, which neither the
rewriter nor the runtime changes: a map sends each upstream origin to its proxy origin. The
routes join the page's own first import map when it is valid and no module loads before it (one
map is all some browsers take); otherwise they go in a map of their own right after the runtime,
without the keys any page map sets (Chromium drops a later map's rule whose key was already used,
and a page's own rule wins).
"""

from __future__ import annotations

import json
from typing import Any

from rewriter.url_values import script_json
from rewriter.urls import UrlMapper


def module_routes(mapper: UrlMapper) -> dict[str, str]:
    """Each of the session's upstream origins (``https://cdn.example/``) -> its proxy origin, plus
    the ``{proxy scheme}://host/`` form a protocol-relative specifier takes on a page of the proxy."""
    routes: dict[str, str] = {}
    known = {f"{o.serialize()}/" for o in mapper.known_origins}
    scheme = mapper.proxy.scheme
    for origin in mapper.known_origins:
        proxied = f"{mapper.proxy_origin(origin)}/"
        routes[f"{origin.serialize()}/"] = proxied
        relative = f"{scheme}://{origin.netloc}/"  # "//host/x.js" on a page of the proxy
        if relative not in known:
            routes.setdefault(relative, proxied)
    return routes


def parse_import_map(text: str | None) -> dict[str, Any] | None:
    """An import map's JSON when browsers would take it (HTML "parse an import map string":
    an object whose ``imports``, ``scopes`` and ``integrity``, where present, are objects)."""
    try:
        data = json.loads(text or "")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("imports", "scopes", "integrity"):
        if key in data and not isinstance(data[key], dict):
            return None
    return data


def merged_map_text(data: dict[str, Any], routes: dict[str, str]) -> str:
    """The text of a page's (valid) import map with the routes added; the page's entries win."""
    return script_json({**data, "imports": {**routes, **data.get("imports", {})}})


def map_keys(data: dict[str, Any] | None) -> set[str]:
    """The ``imports`` keys a valid page map sets (none for a map browsers reject)."""
    return set(data.get("imports", {})) if data is not None else set()


def own_map_markup(routes: dict[str, str], taken: set[str]) -> str:
    """``<script type="importmap">`` with the routes whose keys no page map sets; "" when none are left."""
    own = {key: value for key, value in routes.items() if key not in taken}
    return f'<script type="importmap">{script_json({"imports": own})}</script>' if own else ""


def is_module_load(tag: str, attributes: dict[str, str | None]) -> bool:
    """A ``<script type="module">`` or a ``<link rel="modulepreload">``: a module graph starts."""
    if tag == "script":
        return (attributes.get("type") or "").strip().lower() == "module"
    return tag == "link" and "modulepreload" in (attributes.get("rel") or "").lower().split()
