"""Frames whose documents the client runtime never reaches: an ``<iframe>`` whose ``src`` is a
``data:``, ``blob:`` or ``javascript:`` URL gets a document without the runtime. A pop-up it
opens (``window.open``, a link to ``_blank``) is a top-level navigation, which the confinement
policy does not cover, so it loaded the upstream directly in the agent's browser. Such a frame is
sandboxed without ``allow-popups`` (the page's own sandbox keeps its other tokens); the client
runtime does the same for frames that scripts make (``confineFrame`` in ``assets/runtime.js``).
"""

from __future__ import annotations

UNREACHED_SCHEMES = frozenset({"data", "blob", "javascript"})
# what a frame without a sandbox of its own may still do
FRAME_SANDBOX = (
    "allow-same-origin", "allow-scripts", "allow-forms", "allow-modals", "allow-downloads",
    "allow-pointer-lock", "allow-orientation-lock", "allow-presentation",
)
_DROPPED = ("allow-popups", "allow-popups-to-escape-sandbox")
_ASCII_WHITESPACE = "\t\n\f\r "


def _scheme(url: str) -> str | None:
    """The scheme a browser reads in ``url`` (leading and trailing C0 controls and spaces
    stripped, tabs and newlines removed anywhere), lower-case; None for a relative URL."""
    clean = url.strip("".join(chr(c) for c in range(0x21)))
    clean = clean.replace("\t", "").replace("\n", "").replace("\r", "")
    scheme, colon, _rest = clean.partition(":")
    if not colon or not scheme or not scheme[0].isascii() or not scheme[0].isalpha():
        return None
    if not all(c.isascii() and (c.isalnum() or c in "+-.") for c in scheme):
        return None
    return scheme.lower()


def confined_sandbox(src: str, sandbox: str | None) -> str | None:
    """The ``sandbox`` an ``<iframe src=src sandbox=sandbox>`` must have, or None to leave it."""
    if _scheme(src) not in UNREACHED_SCHEMES:
        return None
    if sandbox is None:
        tokens: list[str] = list(FRAME_SANDBOX)
    else:
        tokens = _split(sandbox.lower())
    kept = [t for t in tokens if t not in _DROPPED and not t.startswith("allow-top-navigation")]
    value = " ".join(kept)
    return None if value == sandbox else value


def _split(value: str) -> list[str]:
    for c in _ASCII_WHITESPACE[:-1]:
        value = value.replace(c, " ")
    return [t for t in value.split(" ") if t]
