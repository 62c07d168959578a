"""The URL codec: upstream URL <-> proxy URL for one session (docs/ARCHITECTURE.md, "URL codec").

A proxy URL is ``{proxy_scheme}://{label}.{proxy_domain}:{proxy_port}{path}?{query}`` where the one
DNS label names the session and the upstream origin, and the path and query are the upstream's,
byte for byte. The mapping is deterministic so that the client runtime computes the same one.

Hosts are parsed as browsers do (WHATWG URL): percent-decoded, IDN mapped with UTS-46 to punycode,
IPv4 numbers in any form normalised to dotted decimal, IPv6 compressed; a trailing dot is dropped.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

from rewriter.exceptions import BadLabel, InvalidUrl, UnknownOrigin, UnsupportedScheme
from rewriter.hosts import is_ldh, normalize_host

__all__ = [
    "DEFAULT_PORTS",
    "Origin",
    "ParsedUrl",
    "ProxyConfig",
    "UrlMapper",
    "decode_label",
    "encode_label",
    "normalize_url",
    "parse_url",
]

MAX_LABEL = 63
SESSION_ID_RE = re.compile(r"[a-z][a-z0-9]{9}")
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# URL scheme -> origin scheme (a WebSocket URL lives on the origin of its http(s) twin)
ORIGIN_SCHEME = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
# origin scheme -> (label kind for a DNS/IPv4 host, label kind for an IPv6 host)
LABEL_KINDS = {"http": ("h", "i"), "https": ("s", "j")}
KIND_SCHEME = {"h": ("http", False), "s": ("https", False), "i": ("http", True), "j": ("https", True)}
HASH_KIND = "x"
HASH_LEN = 13
# where unmappable absolute URLs go (rewriter/assets/runtime.js has the same)
BLOCKED_HOST = "cobrowse-blocked.invalid"

# an absolute URL whose origin part is plain (ASCII name or IPv4, optional port): the fast path
_SIMPLE_ABSOLUTE_RE = re.compile(
    r"(?:https?|wss?)://[A-Za-z0-9.\-]+(?::[0-9]{1,5})?(?=[/?#]|\Z)", re.IGNORECASE
)
_PREFIX_CACHE_SIZE = 4096
_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_DIRECT_BODY_RE = re.compile(r"(0|[1-9][0-9]{0,4})?-([a-z0-9-]+)")
_HYPHEN_RUN_RE = re.compile(r"-+")
_HASH_BODY_RE = re.compile(r"[a-z2-7]{13}")
_STRIP = "".join(chr(c) for c in range(0x21))  # C0 controls and space, stripped at both ends
_TAB_NEWLINE = str.maketrans("", "", "\t\n\r")


# ---------------------------------------------------------------------------------------------
# origins and URLs


@dataclass(frozen=True)
class Origin:
    """A normalised upstream origin: scheme ``http``/``https``, host (IPv6 unbracketed), int port."""

    scheme: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Origin:
        """The origin of an absolute http(s)/ws(s) URL or origin string such as ``https://a.example``."""
        return parse_url(text).origin

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def netloc(self) -> str:
        """``host[:port]`` as in a URL: IPv6 in brackets, the port only when not the default."""
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    def serialize(self) -> str:
        """The web serialisation, e.g. ``https://shop.example`` or ``http://127.0.0.1:8002``."""
        return f"{self.scheme}://{self.netloc}"

    def canonical(self) -> str:
        """``scheme://host:port`` with an explicit port: what an ``x`` label hashes."""
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def __str__(self) -> str:
        return self.serialize()


BLOCKED_ORIGIN = Origin("http", BLOCKED_HOST, 80)


@dataclass(frozen=True)
class ParsedUrl:
    """An absolute http(s)/ws(s) URL split the way the codec needs it.

    ``scheme`` is the URL's own (``ws`` stays ``ws``); ``path_query`` starts with ``/`` and is kept
    byte for byte; ``fragment`` includes its ``#`` or is empty. Userinfo is gone.
    """

    scheme: str
    origin: Origin
    path_query: str
    fragment: str = ""

    def serialize(self) -> str:
        host = f"[{self.origin.host}]" if self.origin.is_ipv6 else self.origin.host
        port = "" if self.origin.port == DEFAULT_PORTS[self.scheme] else f":{self.origin.port}"
        return f"{self.scheme}://{host}{port}{self.path_query}{self.fragment}"


def _clean(url: str) -> str:
    url = url.strip(_STRIP)
    if "\t" in url or "\n" in url or "\r" in url:
        url = url.translate(_TAB_NEWLINE)
    return url


def _parse_port(text: str, scheme: str) -> int:
    if text == "":
        return DEFAULT_PORTS[scheme]
    if not (text.isascii() and text.isdigit()):
        raise InvalidUrl(f"invalid port {text!r}")
    port = int(text)
    if not 0 < port <= 65535:
        raise InvalidUrl(f"port {port} out of range")
    return port


def _split_authority(rest: str) -> tuple[str, str]:
    """``rest`` after ``scheme://`` -> (authority, path+query+fragment)."""
    end = len(rest)
    for ch in "/\\?#":
        pos = rest.find(ch)
        if pos != -1 and pos < end:
            end = pos
    return rest[:end], rest[end:]


def _split_absolute(text: str, url: str) -> tuple[str, str, str]:
    """A cleaned absolute http(s)/ws(s) URL -> (lower-case scheme, authority, path+query+fragment).

    Raises ``InvalidUrl`` without a scheme, ``UnsupportedScheme`` for any other scheme.
    """
    match = _SCHEME_RE.match(text)
    if match is None:
        raise InvalidUrl(f"not an absolute URL: {url[:200]!r}")
    scheme = match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsupportedScheme(f"scheme {scheme!r} cannot be proxied")
    rest = text[match.end() :].lstrip("/\\")  # special schemes ignore any number of slashes
    authority, tail = _split_authority(rest)
    return scheme, authority, tail


def _split_tail(tail: str) -> tuple[str, str]:
    """path+query+fragment -> (path+query starting with a slash, fragment with its ``#``)."""
    hash_pos = tail.find("#")
    path_query, fragment = (tail, "") if hash_pos == -1 else (tail[:hash_pos], tail[hash_pos:])
    if not path_query.startswith(("/", "\\")):
        path_query = "/" + path_query
    return path_query, fragment


def parse_url(url: str) -> ParsedUrl:
    """Parse an absolute http, https, ws or wss URL. Raises ``UnsupportedScheme`` or ``InvalidUrl``."""
    scheme, authority, tail = _split_absolute(_clean(url), url)
    hostport = authority.rpartition("@")[2]  # userinfo is dropped
    if hostport.startswith("["):
        close = hostport.find("]")
        if close == -1:
            raise InvalidUrl(f"unterminated IPv6 address in {url[:200]!r}")
        host_text, after = hostport[: close + 1], hostport[close + 1 :]
        if after and not after.startswith(":"):
            raise InvalidUrl(f"garbage after IPv6 address in {url[:200]!r}")
        port_text = after[1:]
    else:
        host_text, _, port_text = hostport.partition(":")
    if host_text == "":
        raise InvalidUrl(f"no host in {url[:200]!r}")
    origin = Origin(ORIGIN_SCHEME[scheme], normalize_host(host_text), _parse_port(port_text, scheme))
    return ParsedUrl(scheme, origin, *_split_tail(tail))


def is_protocol_relative(text: str) -> bool:
    """Whether a cleaned URL starts with two slashes or backslashes (``//``, ``\\\\``, ``/\\``, ``\\/``):
    a browser reads the next part as a host in an http(s) document."""
    return len(text) >= 2 and text[0] in "/\\" and text[1] in "/\\"


def join_url(base: str, ref: str) -> str:
    """``ref`` resolved against the absolute http(s) URL ``base`` the way a browser resolves it.

    Unlike ``urllib.parse.urljoin``: C0/space trimmed and tabs/newlines removed, backslashes are
    slashes (``/\\host`` is protocol-relative), ``https:x`` is relative only to an https base. An
    absolute http(s) reference is returned as it is (``parse_url`` reads it as a browser does).
    """
    text = _clean(ref)
    base = _clean(base)
    base_match = _SCHEME_RE.match(base)
    base_scheme = base_match.group(1).lower() if base_match else ""
    match = _SCHEME_RE.match(text)
    if match is not None:
        scheme = match.group(1).lower()
        rest = text[match.end() :]
        if scheme != base_scheme or scheme not in DEFAULT_PORTS or is_protocol_relative(rest):
            return text
        text = rest  # "https:x" against an https base: relative
    if is_protocol_relative(text):
        scheme = base_scheme if base_scheme in DEFAULT_PORTS else "https"
        return f"{scheme}://{text.lstrip(chr(47) + chr(92))}"
    fragment_at = text.find("#")
    query_at = text.find("?", 0, fragment_at if fragment_at != -1 else len(text))
    cut = min((i for i in (query_at, fragment_at) if i != -1), default=len(text))
    try:
        joined = urllib.parse.urljoin(base, text[:cut].replace("\\", "/") + text[cut:])
    except ValueError as exc:  # a base with a broken IPv6 host, say
        raise InvalidUrl(f"cannot resolve {ref[:200]!r} against {base[:200]!r}") from exc
    if cut == len(text):
        return joined.partition("#")[0] if not text else joined  # ("": the base, but its fragment)
    # urljoin cannot tell an empty query or fragment from none: "?" kept the base's query and "#"
    # was dropped, where a browser has the reference's own, empty ones
    head = joined.partition("#")[0]
    if query_at != -1:
        head = head.partition("?")[0] + text[query_at : fragment_at if fragment_at != -1 else len(text)]
    return head + (text[fragment_at:] if fragment_at != -1 else "")


def normalize_url(url: str) -> str:
    """An absolute URL as the codec normalises it (what ``to_upstream(to_proxy(u))`` returns)."""
    return parse_url(url).serialize()


# ---------------------------------------------------------------------------------------------
# labels


def _check_sid(sid: str) -> None:
    if not SESSION_ID_RE.fullmatch(sid):
        raise BadLabel(f"invalid session id {sid!r}: want 10 characters [a-z0-9], the first a letter")


def _hash_body(origin: Origin) -> str:
    digest = hashlib.sha256(origin.canonical().encode("ascii")).digest()[:8]
    return base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def encode_label(sid: str, origin: Origin) -> str:
    """The one DNS label naming session ``sid`` and upstream ``origin`` (at most 63 characters)."""
    _check_sid(sid)
    port = "" if origin.port == DEFAULT_PORTS[origin.scheme] else str(origin.port)
    kind_dns, kind_v6 = LABEL_KINDS[origin.scheme]
    if origin.is_ipv6:
        direct = f"{sid}{kind_v6}{port}-{origin.host.replace(':', 'x')}"
    elif is_ldh(origin.host):
        direct = f"{sid}{kind_dns}{port}-{origin.host.replace('-', '--').replace('.', '-')}"
    else:
        direct = ""
    if direct and len(direct) <= MAX_LABEL:
        return direct
    return f"{sid}{HASH_KIND}{_hash_body(origin)}"


def _decode_dns_host(body: str) -> str:
    def run(match: re.Match[str]) -> str:
        length = len(match.group(0))
        if length == 1:
            return "."
        if length % 2:
            raise BadLabel("odd run of hyphens in label")
        return "-" * (length // 2)

    return _HYPHEN_RUN_RE.sub(run, body)


def decode_label(label: str, known_origins: Iterable[Origin] = ()) -> tuple[str, Origin]:
    """``(session id, origin)`` of a proxy host label; ``x`` labels are looked up in ``known_origins``.

    Raises ``BadLabel`` for a malformed or non-canonical label, ``UnknownOrigin`` for an ``x`` label
    of none of the known origins.
    """
    if len(label) > MAX_LABEL or len(label) < 12 or not label.isascii() or label != label.lower():
        raise BadLabel(f"malformed label {label[:80]!r}")
    sid, kind, body = label[:10], label[10], label[11:]
    _check_sid(sid)
    if kind == HASH_KIND:
        if len(body) != HASH_LEN:
            raise BadLabel(f"malformed hashed label {label!r}")
        for candidate in known_origins:
            if encode_label(sid, candidate) == label:
                return sid, candidate
        raise UnknownOrigin(f"label {label!r} names no known origin")
    if kind not in KIND_SCHEME:
        raise BadLabel(f"unknown label kind {kind!r} in {label!r}")
    scheme, ipv6 = KIND_SCHEME[kind]
    match = _DIRECT_BODY_RE.fullmatch(body)
    if match is None:
        raise BadLabel(f"malformed label {label!r}")
    port = int(match.group(1)) if match.group(1) else DEFAULT_PORTS[scheme]
    host_body = match.group(2)
    try:
        if ipv6:
            host = ipaddress.IPv6Address(host_body.replace("x", ":")).compressed
        else:
            host = _decode_dns_host(host_body)
        origin = Origin(scheme, host, port)
    except ValueError as exc:
        raise BadLabel(f"malformed label {label!r}") from exc
    if not 0 < port <= 65535 or encode_label(sid, origin) != label:
        raise BadLabel(f"non-canonical label {label!r}")
    return sid, origin


# ---------------------------------------------------------------------------------------------
# the mapper


@dataclass(frozen=True)
class ProxyConfig:
    """Where the proxy is reached: ``{scheme}://{label}.{domain}:{port}``."""

    domain: str = "cobrowse.localhost"
    port: int = 8001
    scheme: str = "http"

    def __post_init__(self) -> None:
        if self.scheme not in ("http", "https"):
            raise UnsupportedScheme(f"proxy scheme must be http or https, not {self.scheme!r}")
        domain = self.domain.lower().rstrip(".")
        if not domain or not is_ldh(domain):
            raise InvalidUrl(f"invalid proxy domain {self.domain!r}")
        object.__setattr__(self, "domain", domain)
        if not 0 < self.port <= 65535:
            raise InvalidUrl(f"invalid proxy port {self.port}")

    def netloc(self, label: str) -> str:
        host = f"{label}.{self.domain}"
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


class UrlMapper:
    """Maps URLs of one session between upstream and proxy form. Immutable once built."""

    __slots__ = ("session_id", "proxy", "known_origins", "_labels", "_prefixes")

    def __init__(
        self, session_id: str, proxy: ProxyConfig, known_origins: Iterable[Origin | str] = ()
    ) -> None:
        _check_sid(session_id)
        self.session_id = session_id
        self.proxy = proxy
        self.known_origins: tuple[Origin, ...] = tuple(
            o if isinstance(o, Origin) else Origin.parse(o) for o in known_origins
        )
        self._labels: dict[Origin, str] = {}
        self._prefixes: dict[str, str] = {}  # "scheme://authority" -> its proxy "scheme://netloc"

    # -- hosts and origins

    def label_for(self, origin: Origin) -> str:
        label = self._labels.get(origin)
        if label is None:
            label = self._labels[origin] = encode_label(self.session_id, origin)
        return label

    def proxy_origin(self, origin: Origin) -> str:
        """The proxy origin serving ``origin``, e.g. ``http://{label}.cobrowse.localhost:8001``."""
        return f"{self.proxy.scheme}://{self.proxy.netloc(self.label_for(origin))}"

    def label_of_host(self, host: str) -> str | None:
        """The label of a proxy ``host`` (``Host`` header form, port allowed), else None."""
        name = host.lower()
        if not name.startswith("["):
            name = name.rpartition(":")[0] if ":" in name else name
        name = name.rstrip(".")
        suffix = "." + self.proxy.domain
        if not name.endswith(suffix):
            return None
        label = name[: -len(suffix)]
        return label if label and "." not in label else None

    def is_proxy_host(self, host: str) -> bool:
        """Whether ``host`` is a one-label subdomain of the proxy domain (any session)."""
        return self.label_of_host(host) is not None

    def origin_of_host(self, host: str) -> Origin:
        """The upstream origin served at proxy ``host`` for this session; raises ``BadLabel``."""
        label = self.label_of_host(host)
        if label is None:
            raise BadLabel(f"{host[:200]!r} is not a proxy host")
        sid, origin = decode_label(label, self.known_origins)
        if sid != self.session_id:
            raise BadLabel(f"host {host[:200]!r} belongs to another session")
        return origin

    # -- URLs

    def to_proxy(self, url: str, base: str | None = None) -> str:
        """The proxy URL of an absolute or protocol-relative ``url``; anything else unchanged.

        Relative URLs stay as they are (they resolve right on the proxy origin); ``data:``,
        ``blob:``, ``javascript:``, ``mailto:``, ``about:``, ``#frag`` and other non-http(s)
        schemes are returned unchanged; a URL on a proxy origin of this session keeps its path,
        query and fragment byte for byte (``is_own_proxy_origin``). ``base`` (the upstream
        document or ``<base href>`` URL) gives protocol-relative URLs their scheme (https without
        one). Raises ``InvalidUrl``.
        """
        simple = _SIMPLE_ABSOLUTE_RE.match(url)
        if simple is not None and url[-1] > " " and "\t" not in url and "\n" not in url and "\r" not in url:
            prefix = simple.group(0)
            mapped = self._prefixes.get(prefix) or self._map_prefix(prefix)
            rest = url[simple.end() :]
            return mapped + rest if rest[:1] == "/" else f"{mapped}/{rest}"
        text = _clean(url)
        match = _SCHEME_RE.match(text)
        if match is None and not is_protocol_relative(text):
            return url  # relative: resolves right on the proxy origin
        if match is not None and match.group(1).lower() not in DEFAULT_PORTS:
            return url  # data:, javascript:, mailto:, ...
        absolute = join_url(base, text) if base is not None else text if match else f"https:{text}"
        return self._map(parse_url(absolute))

    def blocked_url(self, ws: bool = False) -> str:
        """Where an absolute URL that cannot be mapped goes instead of upstream: the proxy origin of
        ``cobrowse-blocked.invalid``, outside every session's scope (the client runtime's twin)."""
        return self._map(ParsedUrl("ws" if ws else "http", BLOCKED_ORIGIN, "/"))

    def _map_prefix(self, prefix: str) -> str:
        """The proxy ``scheme://netloc`` of a plain ``scheme://authority`` (cached)."""
        mapped = self._map(parse_url(prefix))[:-1]  # the codec adds the empty path's "/"
        if len(self._prefixes) >= _PREFIX_CACHE_SIZE:
            self._prefixes.clear()
        self._prefixes[prefix] = mapped
        return mapped

    def is_own_proxy_origin(self, origin: Origin) -> bool:
        """Whether ``origin`` is a proxy origin of this session: the proxy's scheme and port, and a
        host ``{label}.{proxy domain}`` whose label decodes to this session (``x`` labels only
        among the known origins).

        A URL on such an origin is mapped already and stays as it is (a server may echo a URL the
        runtime gave it, e.g. ``?return=`` + ``location.href``). Any other host, another session's
        proxy host or another one-label name under the proxy domain included, is an upstream
        host like any other: its URL is mapped to a label of this session, which the proxy serves
        only if that origin is in the session's scope (so never into another session, and a proxy
        domain that is also an ordinary upstream domain name keeps working). The client runtime's
        ``isProxyURL`` is the twin of this test. A hashed label of this session counts even when
        it names no known origin (the proxy refuses it as outside the scope), so that mapping is
        idempotent: ``to_proxy(to_proxy(u)) == to_proxy(u)``.
        """
        if origin.scheme != self.proxy.scheme or origin.port != self.proxy.port:
            return False
        suffix = "." + self.proxy.domain
        label = origin.host[: -len(suffix)] if origin.host.endswith(suffix) else ""
        if not label or "." in label or label[:10] != self.session_id:
            return False
        try:
            decode_label(label, self.known_origins)
        except UnknownOrigin:  # this session's hashed label of an origin outside its scope
            return _HASH_BODY_RE.fullmatch(label[11:]) is not None
        except BadLabel:
            return False
        return True

    def _map(self, parsed: ParsedUrl) -> str:
        if self.is_own_proxy_origin(parsed.origin):
            return parsed.serialize()  # mapped already (userinfo dropped, as for any URL)
        ws = parsed.scheme in ("ws", "wss")
        scheme = {"http": "ws", "https": "wss"}[self.proxy.scheme] if ws else self.proxy.scheme
        netloc = self.proxy.netloc(self.label_for(parsed.origin))
        return f"{scheme}://{netloc}{parsed.path_query}{parsed.fragment}"

    def to_upstream(self, proxy_url: str) -> str:
        """The upstream URL of a proxy URL of this session. Raises ``BadLabel``/``UnknownOrigin``."""
        scheme, authority, tail = _split_absolute(_clean(proxy_url), proxy_url)
        origin = self.origin_of_host(authority.rpartition("@")[2])
        path_query, fragment = _split_tail(tail)
        ws = scheme in ("ws", "wss")
        up_scheme = {"http": "ws", "https": "wss"}[origin.scheme] if ws else origin.scheme
        return ParsedUrl(up_scheme, origin, path_query, fragment).serialize()

    def upstream_origin(self, proxy_origin: str) -> Origin:
        """The upstream origin of a proxy origin string such as an ``Origin`` header value."""
        text = _clean(proxy_origin)
        match = _SCHEME_RE.match(text)
        if match is None:
            raise InvalidUrl(f"not an origin: {proxy_origin[:200]!r}")
        authority, _ = _split_authority(text[match.end() :].lstrip("/\\"))
        return self.origin_of_host(authority)
