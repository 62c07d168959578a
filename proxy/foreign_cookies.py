"""A flood of browser cookies on the proxy's domain that are not the proxy's own is expired.

The browser should hold no cookie of the proxy domain but the proxy's own: the credential of
each of the agent's sessions (``__cb_{sid}``, for the whole domain) and, on each proxy origin,
``proxy.cookie_sync``'s script-write and view cookies. Upstream cookies live in the server-side
jar, and the runtime keeps ``document.cookie`` there too. A page can still get round the runtime
(a ``Document`` cookie setter borrowed from a ``blob:`` frame) and write real cookies, even for
the whole proxy domain, which the browser then sends to every proxy origin of every session: a
few dozen of 4 KB make every request head of the agent's browser larger than the proxy reads
(64 KiB, ``proxy/server.py``), and so break the agent's other sessions.

So when the cookies of a request that are not the proxy's own weigh ``FLOOD_BYTES`` or more,
its answer expires them (``Max-Age=0`` for the proxy domain, on ``/`` and on the request path's
first directories: a cookie the browser sent has one of those paths), ``MAX_NAMES`` per answer;
the 431 page of a head too large does the same from what it could read. A planted flood is gone
after a request or two. Fewer of them harm nothing and are left alone: cookies of a *parent* of
the proxy domain (``example.com``'s own, for a proxy domain ``cobrowse.example.com``) reach every
proxy origin too, and no expiry of the proxy's could remove them.
"""

from __future__ import annotations

import re

from rewriter.urls import SESSION_ID_RE

FLOOD_BYTES = 16 * 1024  # foreign cookie bytes in one request from which they are expired
MAX_NAMES = 24  # per answer: the browser sends the rest again, and the next answer expires more
MAX_COOKIES = 400  # read per request (Chromium keeps 180 per domain): a client's 64 KiB of "a=b;"
MAX_EXPIRY_BYTES = 32 * 1024  # of Set-Cookie values per answer (Chromium drops heads over 256 KiB)
MAX_PATH_DEPTH = 3  # directories of the request path besides "/"

_SID = SESSION_ID_RE.pattern
_CREDENTIAL_NAME = re.compile(rf"__cb_{_SID}")
_CREDENTIAL_VALUE = re.compile(r"[A-Za-z0-9_-]{43}")  # control_api.tokens.new_token
# a name a Set-Cookie can give back as it came: no control character, ";" or "=" (browsers
# allow the rest, spaces inside too)
_NAME = re.compile(r"[^\x00-\x1f\x7f;=]{1,4096}")
_PATH = re.compile(r"/[!#-:<-~]*")  # printable, no ";" or space: safe as an attribute


def is_own(name: str, value: str, own_names: frozenset[str]) -> bool:
    """Whether a cookie the browser sent is the proxy's: the credential of one of the agent's
    sessions (any: the browser holds one per session, for the whole domain), or one of
    ``own_names`` (the request's own session's script cookies, ``proxy.cookie_sync``). A page can
    plant cookies under these names too, but not many: each of its credentials is a few bytes."""
    if name in own_names:
        return True
    return _CREDENTIAL_NAME.fullmatch(name) is not None and _CREDENTIAL_VALUE.fullmatch(value) is not None


def may_flood(cookie_headers: list[str]) -> bool:
    """Whether the Cookie header values are long enough to hold a flood (a cheap first test)."""
    return sum(len(h) for h in cookie_headers) >= FLOOD_BYTES


def flood_names(cookie_headers: list[str], own_names: frozenset[str]) -> list[str]:
    """The names of the request's cookies (``cookie_headers``: its Cookie header values) that are
    not the proxy's, when together they weigh ``FLOOD_BYTES`` or more; else none. Each once, at
    most ``MAX_NAMES``, the heaviest first (a flood is large cookies; a few small ones of a parent
    domain, which no expiry removes, must not take its places), ``__Host-`` ones last (they
    cannot be the whole domain's). Cheap when there is no flood (most requests): the headers'
    length decides first, and at most ``MAX_COOKIES`` cookies are read."""
    if not may_flood(cookie_headers):
        return []
    found: dict[str, int] = {}
    weight = seen = 0
    for header in cookie_headers:
        for part in header.split(";"):
            seen += 1
            if seen > MAX_COOKIES:
                break
            name, eq, value = part.partition("=")
            name, value = name.strip(), value.strip()
            if not eq or not _NAME.fullmatch(name) or is_own(name, value, own_names):
                continue  # a cookie without a name: no Set-Cookie can name it
            weight += len(name) + len(value)
            found[name] = max(found.get(name, 0), len(name) + len(value))
    if weight < FLOOD_BYTES:
        return []
    order = sorted(found, key=lambda n: (n.startswith("__Host-"), -found[n]))
    return order[:MAX_NAMES]


def own_script_names(sid: str, names: tuple[str, str]) -> frozenset[str]:
    """The set ``is_own`` takes for a request of session ``sid`` (``names``: its script-write and
    view cookie names)."""
    return frozenset(names) if SESSION_ID_RE.fullmatch(sid) else frozenset()


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


def expiries(names: list[str], domain: str, paths: list[str], *, secure: bool) -> list[str]:
    """``Set-Cookie`` values that expire each of ``names`` for ``domain`` on each of ``paths``,
    ``/`` first, at most ``MAX_EXPIRY_BYTES`` of them (long names on a deep path would make an
    answer the browser drops, and the flood would stay). ``secure``: the proxy's origins are
    secure contexts (https, ``localhost`` names), where a page can set ``Secure`` and
    ``Partitioned`` cookies, and ``__Host-`` ones (host-only, ``/``): each of those needs an
    expiry of its own kind. Elsewhere a browser refuses them all."""
    out: list[str] = []
    size = 0
    forms = ["; Secure", "; Secure; Partitioned"] if secure else [""]
    for path in paths:
        for name in names:
            if name.startswith("__Host-"):
                if not secure or path != "/":
                    continue
                values = [f"{name}=; Max-Age=0; Path=/{form}" for form in forms]
            else:
                values = [f"{name}=; Max-Age=0; Domain={domain}; Path={path}{form}" for form in forms]
            size += sum(len(v) for v in values)
            if size > MAX_EXPIRY_BYTES:
                return out
            out += values
    return out
