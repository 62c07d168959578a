"""Browser cookies on the proxy's domain that are not the proxy's own are expired.

The browser should hold no cookie of the proxy's domain but the proxy's own (``__cb_{sid}``, the
credential of each of the agent's sessions, and ``proxy.cookie_sync``'s script-write and view
cookies): upstream cookies live in the server-side jar, and the runtime keeps ``document.cookie``
there too. A page can still get round the runtime (a ``Document`` cookie setter borrowed from a
``blob:`` frame) and write real cookies, even for the whole proxy domain, which the browser then
sends to every proxy origin of every session. A flood of them (a few dozen of 4 KB) makes every
request head of the agent's browser too large (431) and so breaks the agent's other sessions.

So every answer of the proxy to a request that carried such cookies expires them for the proxy
domain (what reaches every session; a cookie of one proxy origin only is that page's own
business), on ``/`` and on the request path's first directories (a cookie the browser
sent has one of those paths), a bounded number per answer; the 431 page for a head too large
does the same, on ``/``, from what it could read. Nothing of this reaches the page: its ``document.cookie``
is the runtime's view of the jar.
"""

from __future__ import annotations

import re

# the proxy's own names (session ids: ``rewriter.urls.SESSION_ID_RE``)
_OWN = re.compile(r"__cb_[a-z][a-z0-9]{9}|(?:__Host-cbj|__cbj)[sv]_[a-z][a-z0-9]{9}")
# a cookie name as browsers send it: a token (RFC 6265 cookie-name), no "=" or ";"
_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}")
_PATH = re.compile(r"/[!#-:<-~]*")  # printable, no ";", "," or space: safe as an attribute
MAX_NAMES = 32  # per answer: the browser sends the rest again, and the next answer expires more
MAX_PATH_DEPTH = 2  # directories of the request path besides "/"


def foreign_names(cookie_headers: list[str]) -> list[str]:
    """The names of the cookies in ``cookie_headers`` (the request's Cookie header values) that
    are not the proxy's own, each once, at most ``MAX_NAMES``. A name that is not a plain token
    is skipped: an expiry could not name it."""
    names: dict[str, None] = {}
    for header in cookie_headers:
        for part in header.split(";"):
            if "=" not in part:  # a cookie without a name: no Set-Cookie can name it
                continue
            name = part.split("=", 1)[0].strip()
            if not name or name in names or _OWN.fullmatch(name) or not _NAME.fullmatch(name):
                continue
            names[name] = None
            if len(names) >= MAX_NAMES:
                return list(names)
    return list(names)


def cookie_paths(path: str) -> list[str]:
    """The paths a cookie the browser sent with a request for ``path`` can have (RFC 6265
    path-match), to ``MAX_PATH_DEPTH`` directories: ``/a/b`` -> ``/``, ``/a``, ``/a/``, ``/a/b``."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    paths = ["/"]
    if not path.startswith("/"):
        return paths
    current = ""
    parts = path.split("/")[1:]
    for i, part in enumerate(parts[:MAX_PATH_DEPTH]):
        if not part:
            break
        current += "/" + part
        if not _PATH.fullmatch(current):
            break
        paths.append(current)
        if i + 1 < len(parts):  # "/a/" path-matches "/a/b", not "/a"
            paths.append(current + "/")
    return paths


def expiries(names: list[str], domain: str, paths: list[str], *, secure: bool | None) -> list[str]:
    """``Set-Cookie`` values that expire each of ``names`` for ``domain`` on each of ``paths``.
    ``secure``: whether to add ``Secure``, which ``__Secure-`` names need and which a browser
    refuses over plain http but on ``localhost`` names; None sends both forms, for a caller that
    cannot tell (the browser keeps the one it accepts). A ``__Host-`` cookie has no domain: it
    stays on the one origin that set it, and is left alone."""
    forms = ["; Secure"] if secure else [""] if secure is False else ["", "; Secure"]
    return [
        f"{name}=; Max-Age=0; Domain={domain}; Path={path}{form}"
        for name in names
        if not name.startswith("__Host-")
        for path in paths
        for form in forms
    ]
