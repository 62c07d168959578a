"""The session cookie jar's model: pure functions over cookie records (the store only keeps them).

Set-Cookie values are parsed by the standard library's ``http.cookiejar`` (its Netscape parser
and ``DefaultCookiePolicy`` checks: domain against the request host, public-suffix-like domains
refused); what it does not model (HttpOnly, SameSite, the ``__Secure-``/``__Host-`` prefixes,
Secure only from secure origins) is added here as browsers do. Matching a request follows RFC
6265 section 5.4. Records are JSON strings keyed ``domain;path;name`` in a Redis hash.
"""

from __future__ import annotations

import http.cookiejar
import ipaddress
import json
import math
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from rewriter.public_suffixes import PUBLIC_SUFFIXES

SAME_SITE_VALUES = frozenset({"strict", "lax", "none"})
SECURE_SCHEMES = frozenset({"https", "wss"})
MAX_NAME_VALUE = 4096  # RFC 6265bis: a longer name+value is ignored
MAX_PER_DOMAIN = 180  # Chromium keeps at most 180 cookies per domain
MAX_PER_JAR = 1000  # one session's jar, all its sites together


@dataclass(frozen=True)
class CookieRecord:
    """One cookie of the jar. ``domain`` has no leading dot; ``expires`` is a Unix time or None."""

    name: str
    value: str
    domain: str
    host_only: bool
    path: str
    secure: bool
    http_only: bool
    same_site: str | None  # strict, lax, none; None when absent (treated as lax, as Chromium does)
    expires: float | None
    created: float

    @property
    def key(self) -> str:
        return f"{self.domain};{self.path};{self.name}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> CookieRecord:
        """Parse a stored record; raises ``ValueError`` for one that is not a record."""
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("a cookie record is a JSON object")
        try:
            record = cls(
                name=str(data["name"]),
                value=str(data["value"]),
                domain=str(data["domain"]),
                host_only=bool(data["host_only"]),
                path=str(data["path"]),
                secure=bool(data["secure"]),
                http_only=bool(data["http_only"]),
                same_site=data.get("same_site") if data.get("same_site") in SAME_SITE_VALUES else None,
                expires=None if data.get("expires") is None else float(data["expires"]),
                created=float(data.get("created") or 0.0),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a cookie record: {exc}") from exc
        return record

    def expired(self, now: float) -> bool:
        return self.expires is not None and self.expires <= now


@dataclass(frozen=True)
class CookieChange:
    """What a response (or a script write) does to the jar: records to store, keys to delete."""

    upserts: tuple[CookieRecord, ...] = ()
    deletes: tuple[str, ...] = ()

    def as_store_update(self) -> tuple[dict[str, str], tuple[str, ...]]:
        """``(upserts, deletes)`` in the form ``proxy_access.jar_update`` takes."""
        return {r.key: r.to_json() for r in self.upserts}, self.deletes


class _Headers:
    """The ``info()`` of a response, as ``CookieJar.make_cookies`` reads it."""

    def __init__(self, values: list[str]) -> None:
        self._values = values

    def info(self) -> _Headers:
        return self

    def get_all(self, name: str, default: list[str] | None = None) -> list[str]:
        return list(self._values) if name.lower() == "set-cookie" else (default or [])


class _FixedClock:
    """``_now`` pinned to the caller's time: ``make_cookies`` would overwrite it with ``time.time()``."""

    _fixed_now: int

    @property
    def _now(self) -> int:
        return self._fixed_now

    @_now.setter
    def _now(self, value: int) -> None:
        pass


class _Policy(_FixedClock, http.cookiejar.DefaultCookiePolicy):
    def __init__(self, now: float) -> None:
        self._fixed_now = int(now)
        # strict_domain refuses country-code second-level domains such as Domain=.co.uk
        super().__init__(rfc2965=False, strict_domain=True)

    def set_ok_domain(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        """And, as browsers: no ``Domain`` that is a public suffix (``Domain=github.io`` from
        ``alice.github.io`` would reach ``bob.github.io``, another site); from that host itself
        the cookie is host-only."""
        if not super().set_ok_domain(cookie, request):
            return False
        if not cookie.domain_specified:
            return True
        domain = cookie.domain.lstrip(".").lower()
        if domain.replace(".", "").isdigit() or ":" in domain:
            return True  # an address: http.cookiejar wants it equal to the host
        if not PUBLIC_SUFFIXES.is_public(domain):
            return True
        if domain != _host(request.get_full_url()):
            return False
        cookie.domain_specified = False  # the suffix's own host: host-only (RFC 6265bis 5.7 step 9)
        return True


class _Jar(_FixedClock, http.cookiejar.CookieJar):
    """A throw-away jar that records deletion requests instead of acting on its own contents."""

    def __init__(self, now: float) -> None:
        self._fixed_now = int(now)
        self.policy = _Policy(now)
        super().__init__(self.policy)
        self.deleted: list[tuple[str, str, str]] = []

    def clear(self, domain: str | None = None, path: str | None = None, name: str | None = None) -> None:
        if domain is not None and path is not None and name is not None:
            self.deleted.append((domain, path, name))


def _host(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower().rstrip(".")


def _path(url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    return path if path.startswith("/") else "/"


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


def _secure(url: str) -> bool:
    """Whether ``url`` is a secure context for cookies: https/wss, or a loopback host, which
    browsers trust like https (Secure cookies from ``http://127.0.0.1:8002`` are kept and sent)."""
    if _scheme(url) in SECURE_SCHEMES:
        return True
    host = _host(url)
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _attr(cookie: http.cookiejar.Cookie, name: str) -> tuple[bool, str | None]:
    rest: dict[str, str | None] = vars(cookie).get("_rest", {})  # non-standard attributes, case as sent
    for key, value in rest.items():
        if key.lower() == name:
            return True, value
    return False, None


def _record(cookie: http.cookiejar.Cookie, host: str, now: float) -> CookieRecord:
    has_http_only, _ = _attr(cookie, "httponly")
    _, same_site = _attr(cookie, "samesite")
    same_site = (same_site or "").strip().lower()
    return CookieRecord(
        name=cookie.name,
        value=cookie.value or "",
        domain=cookie.domain.lstrip(".") if cookie.domain_specified else host,
        host_only=not cookie.domain_specified,
        path=cookie.path or "/",
        secure=bool(cookie.secure),
        http_only=has_http_only,
        same_site=same_site if same_site in SAME_SITE_VALUES else None,
        expires=None if cookie.expires is None else float(cookie.expires),
        created=now,
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _acceptable(record: CookieRecord, host: str, secure_origin: bool) -> bool:
    if len(record.name) + len(record.value) > MAX_NAME_VALUE:
        return False
    if record.domain != host and _is_ip(host):
        return False  # an IP address domain-matches only itself (RFC 6265 5.1.3)
    if record.secure and not secure_origin:
        return False  # browsers refuse Secure cookies from insecure origins
    if record.same_site == "none" and not record.secure:
        return False  # SameSite=None requires Secure (Chromium, Firefox)
    prefix = record.name[:9].lower()  # the prefixes are matched case-insensitively (RFC 6265bis, Chromium)
    if prefix == "__secure-" and not record.secure:
        return False
    if prefix.startswith("__host-") and not (record.secure and record.host_only and record.path == "/"):
        return False
    return True


def parse_set_cookies(values: Iterable[str], url: str, *, now: float | None = None) -> CookieChange:
    """The jar change made by a response's ``Set-Cookie`` values for a request to ``url``.

    Cookies the policy refuses (another domain, a Secure cookie over http, a broken prefix) are
    dropped; an expiry in the past (``Max-Age=0``, an old ``Expires``) becomes a deletion.
    """
    now = time.time() if now is None else now
    host = _host(url)
    request = urllib.request.Request(url)
    secure_origin = _secure(url)
    upserts: dict[str, CookieRecord] = {}
    deletes: dict[str, None] = {}
    for value in values:
        jar = _Jar(now)
        try:
            cookies = jar.make_cookies(_Headers([value]), request)  # type: ignore[arg-type]
        except (ValueError, TypeError, AttributeError, UserWarning):
            continue  # http.cookiejar gave up on this one header: so does a browser
        for cookie in cookies:
            if cookie.value is None or not jar.policy.set_ok(cookie, request):
                continue
            record = _record(cookie, host, now)
            if _acceptable(record, host, secure_origin):
                deletes.pop(record.key, None)
                upserts[record.key] = record
        for domain, path, name in jar.deleted:
            bare = domain.lstrip(".") if domain.startswith(".") else host
            if bare != host and not host.endswith("." + bare):
                continue  # another site's cookie: not this response's to delete
            key = f"{bare};{path};{name}"
            upserts.pop(key, None)
            deletes[key] = None
    return CookieChange(tuple(upserts.values()), tuple(deletes))


def parse_script_write(
    cookie_string: str,
    page_url: str,
    existing: Mapping[str, CookieRecord] | Iterable[CookieRecord] = (),
    *,
    now: float | None = None,
) -> CookieChange:
    """The jar change of ``document.cookie = cookie_string`` on ``page_url``.

    A script cannot set an HttpOnly cookie nor overwrite (or delete) one: such writes change nothing.
    """
    change = parse_set_cookies([cookie_string], page_url, now=now)
    if any(r.http_only for r in change.upserts):
        return CookieChange()
    records = existing.values() if isinstance(existing, Mapping) else existing
    protected = {r.key for r in records if r.http_only}
    return CookieChange(
        tuple(r for r in change.upserts if r.key not in protected),
        tuple(k for k in change.deletes if k not in protected),
    )


def domain_match(host: str, record: CookieRecord) -> bool:
    if record.host_only or host == record.domain:
        return host == record.domain
    return host.endswith("." + record.domain) and not host.replace(".", "").isdigit() and ":" not in host


def path_match(request_path: str, cookie_path: str) -> bool:
    if request_path == cookie_path:
        return True
    return request_path.startswith(cookie_path) and (
        cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    )


def matching(
    records: Iterable[CookieRecord],
    url: str,
    *,
    same_site: bool = True,
    top_level_navigation: bool = False,
    for_script: bool = False,
    now: float | None = None,
) -> list[CookieRecord]:
    """The records a request to ``url`` carries, in ``Cookie`` header order (RFC 6265 5.4)."""
    now = time.time() if now is None else now
    host, path = _host(url), _path(url)
    secure = _secure(url)
    chosen = []
    for record in records:
        if record.expired(now) or not domain_match(host, record) or not path_match(path, record.path):
            continue
        if record.secure and not secure:
            continue
        if for_script and record.http_only:
            continue
        if not same_site and not for_script:
            if record.same_site == "strict":
                continue
            if record.same_site in (None, "lax") and not top_level_navigation:
                continue
        chosen.append(record)
    chosen.sort(key=lambda r: (-len(r.path), r.created))
    return chosen


def origin_script_view(
    records: Iterable[CookieRecord], origin_url: str, *, now: float | None = None
) -> list[tuple[str, str, str] | tuple[str, str, str, int]]:
    """``(name, value, path[, expires])`` of every cookie scripts on ``origin_url``'s origin can
    read, on any path, in ``document.cookie`` order: what the runtime filters by its document's
    path; ``expires`` (Unix seconds) for a cookie that has one, which the runtime drops then."""
    now = time.time() if now is None else now
    host, secure = _host(origin_url), _secure(origin_url)
    chosen = [
        r for r in records
        if not r.expired(now) and not r.http_only and domain_match(host, r) and (secure or not r.secure)
    ]
    chosen.sort(key=lambda r: (-len(r.path), r.created))
    return [
        (r.name, r.value, r.path) if r.expires is None else (r.name, r.value, r.path, math.ceil(r.expires))
        for r in chosen
    ]


def cookie_header(
    records: Iterable[CookieRecord],
    url: str,
    *,
    same_site: bool = True,
    top_level_navigation: bool = False,
    now: float | None = None,
) -> str:
    """The ``Cookie`` header value for a request to ``url`` ('' when no cookie applies)."""
    chosen = matching(records, url, same_site=same_site, top_level_navigation=top_level_navigation, now=now)
    return "; ".join(f"{r.name}={r.value}" if r.name else r.value for r in chosen)


def script_view(
    records: Iterable[CookieRecord], url: str, *, now: float | None = None
) -> list[dict[str, str | int]]:
    """What ``document.cookie`` shows on ``url``: the non-HttpOnly cookies, as ``{name, value,
    path[, expires]}`` in the order browsers show them (longest path first, then oldest); the
    runtime keeps that order as scripts write (a cookie is its name and path), and drops a cookie
    at its ``expires`` (Unix seconds)."""
    return [
        {"name": r.name, "value": r.value, "path": r.path,
         **({} if r.expires is None else {"expires": math.ceil(r.expires)})}
        for r in matching(records, url, for_script=True, now=now)
    ]


def load_records(stored: Mapping[str, str | bytes]) -> list[CookieRecord]:
    """Records from the store's hash (``jar_load``), skipping any that do not parse."""
    records = []
    for text in stored.values():
        try:
            records.append(CookieRecord.from_json(text))
        except ValueError:
            continue  # a corrupt entry must not take the session's cookies down
    return records


def over_limits(records: Iterable[CookieRecord], *, now: float | None = None) -> tuple[str, ...]:
    """Keys to delete so the jar keeps within a browser's limits: at most ``MAX_PER_DOMAIN``
    cookies per domain (Chromium's) and ``MAX_PER_JAR`` in all, expired ones and then the oldest
    going first. Without them an upstream could grow one session's jar (and the store) without
    end, and make every later request carry a Cookie header no server takes."""
    records = list(records)
    if len(records) <= MAX_PER_DOMAIN:
        return ()  # under both limits (MAX_PER_DOMAIN < MAX_PER_JAR)
    now = time.time() if now is None else now
    drop = [r.key for r in records if r.expired(now)]
    by_domain: dict[str, list[CookieRecord]] = {}
    for record in records:
        if not record.expired(now):
            by_domain.setdefault(record.domain, []).append(record)
    kept: list[CookieRecord] = []
    for group in by_domain.values():
        group.sort(key=lambda r: r.created)  # stable: of equal age, the last set stays
        excess = max(len(group) - MAX_PER_DOMAIN, 0)
        drop += [r.key for r in group[:excess]]
        kept += group[excess:]
    kept.sort(key=lambda r: r.created)
    drop += [r.key for r in kept[: max(len(kept) - MAX_PER_JAR, 0)]]
    return tuple(drop)


def expired_keys(records: Iterable[CookieRecord], *, now: float | None = None) -> tuple[str, ...]:
    """Keys of the records past their expiry, for the store to delete."""
    now = time.time() if now is None else now
    return tuple(r.key for r in records if r.expired(now))


def record_from_seed(name: str, value: str, url: str, *, now: float | None = None) -> tuple[str, str]:
    """``(key, JSON record)`` of a non-HttpOnly cookie the visitor's page handed over at consent."""
    now = time.time() if now is None else now
    record = CookieRecord(
        name=name,
        value=value,
        domain=_host(url),
        host_only=True,
        path="/",
        secure=_scheme(url) in SECURE_SCHEMES,
        http_only=False,
        same_site=None,
        expires=None,
        created=now,
    )
    return record.key, record.to_json()


def as_dict(record: CookieRecord) -> dict[str, Any]:
    return asdict(record)
