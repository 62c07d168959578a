"""The client runtime: the JavaScript asset and the markup that injects it (docs/PROTOCOL.md).

The HTML rewriter inserts ``injection_markup(config)`` first in ``<head>``; the proxy serves
``runtime_js()`` at ``/__cobrowse/runtime.js``. The markup is one classic, parser-blocking,
same-origin ``<script src>`` whose config travels in a ``data-cobrowse-config`` attribute: it runs
before any page script, the asset is cacheable, and no inline script is needed (a page's
``script-src 'self'`` does not stop it). Attribute escaping also makes ``</script>``, ``<!--`` and
U+2028/U+2029 in the config harmless, which an inline ``<script>`` would need care for.
"""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any

from rewriter.exceptions import RewriteError

__all__ = [
    "RUNTIME_PATH",
    "RuntimeConfigError",
    "injection_markup",
    "prelude_offset",
    "runtime_js",
    "worker_prelude",
]

# what a worker's prelude config holds (no cookies, no masking, no console: a worker has no document)
WORKER_CONFIG_KEYS = ("sid", "proxyDomain", "proxyPort", "proxyScheme", "origin", "knownOrigins", "base")

RUNTIME_PATH = "/__cobrowse/runtime.js"

_SID_RE = re.compile(r"[a-z][a-z0-9]{9}")
_ORIGIN_RE = re.compile(r"(https?)://[^/?#\s]+")

# key -> (accepted types, required)
_CONFIG_KEYS: dict[str, tuple[tuple[type, ...], bool]] = {
    "sid": ((str,), True),
    "proxyDomain": ((str,), True),
    "proxyPort": ((int,), True),
    "proxyScheme": ((str,), True),
    "origin": ((str,), True),
    "knownOrigins": ((list, tuple), False),
    "cookies": ((list, tuple), False),
    "masked": ((list, tuple), False),
    "consoleOrigin": ((str, type(None)), False),
    "publicDomains": ((list, tuple), False),  # rewriter.public_suffixes.public_ancestors of its host
    "now": ((int, float), False),  # the proxy's clock (Unix seconds): the jar's expiries are on it
    "mask": ((str,), False),
    "base": ((str,), False),  # a worker's: the upstream URL of its script
}


class RuntimeConfigError(RewriteError):
    """The runtime config is missing a key or has a value of the wrong shape."""


@functools.cache
def runtime_js() -> bytes:
    """The runtime asset (read once), served as ``application/javascript`` at ``RUNTIME_PATH``."""
    return resources.files("rewriter").joinpath("assets/runtime.js").read_bytes()


def _check(config: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(config) - set(_CONFIG_KEYS))
    if unknown:
        raise RuntimeConfigError(f"unknown runtime config keys: {', '.join(unknown)}")
    for key, (types, required) in _CONFIG_KEYS.items():
        if key not in config:
            if required:
                raise RuntimeConfigError(f"runtime config needs {key!r}")
            continue
        value = config[key]
        if not isinstance(value, types) or (int in types and isinstance(value, bool)):
            raise RuntimeConfigError(f"runtime config {key!r} has the wrong type: {type(value).__name__}")
    if not _SID_RE.fullmatch(config["sid"]):
        raise RuntimeConfigError("runtime config 'sid' is not a session id")
    if config["proxyScheme"] not in ("http", "https"):
        raise RuntimeConfigError("runtime config 'proxyScheme' must be http or https")
    if not 0 < config["proxyPort"] <= 65535:
        raise RuntimeConfigError("runtime config 'proxyPort' is out of range")
    if not _ORIGIN_RE.fullmatch(config["origin"]):
        raise RuntimeConfigError("runtime config 'origin' is not an http(s) origin")
    console = config.get("consoleOrigin")
    if console is not None and not _ORIGIN_RE.fullmatch(console):
        raise RuntimeConfigError("runtime config 'consoleOrigin' is not an http(s) origin")
    for origin in config.get("knownOrigins", ()):
        if not isinstance(origin, str) or not _ORIGIN_RE.fullmatch(origin):
            raise RuntimeConfigError(f"runtime config 'knownOrigins' holds a non-origin: {origin!r}")
    for cookie in config.get("cookies", ()):
        if not (
            isinstance(cookie, Mapping)
            and isinstance(cookie.get("name"), str)
            and isinstance(cookie.get("value"), str)
            and isinstance(cookie.get("path", ""), str)
            and isinstance(cookie.get("expires", 0), int)
            and not isinstance(cookie.get("expires", 0), bool)
        ):
            raise RuntimeConfigError(
                "runtime config 'cookies' entries must be {name, value[, path]} strings and an int expires"
            )
    for selector in config.get("masked", ()):
        if not isinstance(selector, str):
            raise RuntimeConfigError("runtime config 'masked' entries must be strings")
    checked = {key: (list(value) if isinstance(value, tuple) else value) for key, value in config.items()}
    if "cookies" in checked:
        checked["cookies"] = [
            {"name": c["name"], "value": c["value"], **{k: c[k] for k in ("path", "expires") if k in c}}
            for c in checked["cookies"]
        ]
    return checked


def injection_markup(config: Mapping[str, Any]) -> str:
    """The markup to insert first in a proxied document's ``<head>``.

    Raises ``RuntimeConfigError`` for a config that does not follow docs/PROTOCOL.md.
    """
    checked = _check(config)
    try:
        payload = json.dumps(checked, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise RuntimeConfigError(f"runtime config is not JSON-serialisable: {exc}") from exc
    return f'<script src="{RUNTIME_PATH}" data-cobrowse-config="{html.escape(payload, quote=True)}"></script>'


def worker_prelude(config: Mapping[str, Any]) -> bytes:
    """What the proxy puts in front of a worker's script (``Sec-Fetch-Dest: worker`` or
    ``sharedworker``): the runtime, then its start with ``config`` (``WORKER_CONFIG_KEYS``, with
    ``base`` the script's upstream URL). Valid at the top of a classic script and of a module:
    the worker keeps its own URL as ``self.location``, and a shared worker stays one per URL.
    A module's static imports still run before it (they are hoisted)."""
    checked = _check({key: config[key] for key in WORKER_CONFIG_KEYS if key in config})
    payload = json.dumps(checked, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    # the leading ";" ends a directive written without one ("use strict"<newline>)
    return b"\n;" + runtime_js() + b"\n;self.__cobrowse.init(" + payload.encode() + b");\n"


_SPACE = b" \t\n\r\f\v"


def prelude_offset(script: bytes) -> int:
    """Where a worker's prelude goes in ``script``: after a byte order mark, a ``#!`` line and the
    directive prologue (``"use strict";`` and the like, with the comments between), which must
    stay first for the script to keep its meaning."""
    pos = 3 if script.startswith(b"\xef\xbb\xbf") else 0
    if script.startswith(b"#!", pos):  # must stay the first line
        end = script.find(b"\n", pos)
        pos = len(script) if end == -1 else end + 1
    after = pos
    while True:
        pos = _skip_space_and_comments(script, after)
        quote = script[pos : pos + 1]
        if quote not in (b"'", b'"'):
            return after
        end = pos + 1
        while end < len(script) and script[end : end + 1] not in (quote, b"\n"):
            end += 2 if script[end : end + 1] == b"\\" else 1
        if script[end : end + 1] != quote:
            return after
        end += 1
        rest = end
        while rest < len(script) and script[rest : rest + 1] in b" \t":
            rest += 1
        following = script[rest : rest + 1]
        if following == b";":
            after = rest + 1
        elif following in (b"\n", b"\r", b""):
            after = end  # ended by a newline: the prelude's own ";" closes it
        else:
            return after  # "abc".length: an expression, not a directive


def _skip_space_and_comments(script: bytes, pos: int) -> int:
    while pos < len(script):
        if script[pos : pos + 1] in _SPACE:
            pos += 1
        elif script.startswith(b"//", pos):
            end = script.find(b"\n", pos)
            pos = len(script) if end == -1 else end
        elif script.startswith(b"/*", pos):
            end = script.find(b"*/", pos + 2)
            pos = len(script) if end == -1 else end + 2
        else:
            break
    return pos
