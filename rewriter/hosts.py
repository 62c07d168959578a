"""Hosts as browsers parse them (WHATWG URL "host parsing"): the part of the URL codec that
reads a URL's host. Percent-decoded, IDN mapped with UTS-46 to Punycode, IPv4 numbers in any
form normalised to dotted decimal, IPv6 compressed and unbracketed, a trailing dot dropped.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import urllib.parse

import idna

from rewriter.exceptions import InvalidUrl

__all__ = ["is_ldh", "normalize_host"]

_LDH_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
# WHATWG "forbidden domain code points" (C0 controls and DEL are checked separately)
_FORBIDDEN_HOST_CHARS = frozenset(" #%/:<>?@[\\]^|")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _parse_ipv4_number(part: str) -> int | None:
    """One part of a WHATWG IPv4 address (decimal, 0x hex, 0 octal); None if not a number."""
    if part == "":
        return None
    base = 10
    if part[:2].lower() == "0x":
        part, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, base = part[1:], 8
    if part == "":
        return 0
    digits = {10: "0123456789", 16: "0123456789abcdefABCDEF", 8: "01234567"}[base]
    if any(ch not in digits for ch in part):
        return None
    return int(part, base)


def _ends_in_number(host: str) -> bool:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    last = parts[-1]
    if last.isascii() and last.isdigit():
        return True
    return last[:2].lower() == "0x" and all(ch in "0123456789abcdefABCDEF" for ch in last[2:])


def _parse_ipv4(host: str) -> str:
    parts = host.split(".")
    if parts[-1] == "" and len(parts) > 1:
        parts.pop()
    if len(parts) > 4:
        raise InvalidUrl(f"invalid IPv4 address {host!r}")
    numbers = [_parse_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        raise InvalidUrl(f"invalid IPv4 address {host!r}")
    nums = [n for n in numbers if n is not None]
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        raise InvalidUrl(f"invalid IPv4 address {host!r}")
    value = nums[-1]
    for index, n in enumerate(nums[:-1]):
        value += n * 256 ** (3 - index)
    return str(ipaddress.IPv4Address(value))


def _punycode_label(label: str) -> str:
    """One mapped (UTS-46) non-ASCII label as its ``xn--`` form.

    IDNA 2008 validity is tried first; symbols and emoji, which browsers accept (``☃`` becomes
    ``xn--n3h``) and IDNA 2008 refuses, are encoded as plain Punycode: a host the browser would
    load must never be left unmapped.
    """
    try:
        return idna.alabel(label).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return "xn--" + label.encode("punycode").decode("ascii")


def _idna_host(host: str) -> str:
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
        labels = [label.lower() if label.isascii() else _punycode_label(label) for label in mapped.split(".")]
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise InvalidUrl(f"invalid internationalised host {host!r}: {exc}") from exc
    return ".".join(labels)


@functools.lru_cache(maxsize=4096)
def normalize_host(host: str) -> str:
    """A URL's host as a browser normalises it; IPv6 without brackets. Raises ``InvalidUrl``."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise InvalidUrl(f"unterminated IPv6 address {host!r}")
        if "%" in host:
            raise InvalidUrl(f"IPv6 zone ids cannot be in URLs: {host!r}")
        try:
            return ipaddress.IPv6Address(host[1:-1]).compressed
        except ValueError as exc:
            raise InvalidUrl(f"invalid IPv6 address {host!r}") from exc
    if ":" in host and "." not in host.split(":")[0] and _looks_ipv6(host):
        return normalize_host(f"[{host}]")
    try:
        decoded = urllib.parse.unquote(host, errors="strict")
    except UnicodeDecodeError as exc:
        raise InvalidUrl(f"host {host!r} is not UTF-8 once percent-decoded") from exc
    result = decoded.lower() if decoded.isascii() else _idna_host(decoded)
    if result == "" or result == ".":
        raise InvalidUrl("empty host")
    if not _FORBIDDEN_HOST_CHARS.isdisjoint(result) or _CONTROL_RE.search(result):
        raise InvalidUrl(f"forbidden character in host {host!r}")
    if _ends_in_number(result):
        return _parse_ipv4(result)
    if result.endswith("."):
        result = result[:-1]
    if result == "" or "" in result.split("."):
        raise InvalidUrl(f"empty label in host {host!r}")
    return result


def _looks_ipv6(host: str) -> bool:
    try:
        ipaddress.IPv6Address(host)
    except ValueError:
        return False
    return True


def is_ldh(host: str) -> bool:
    """Whether every dot-separated label of ``host`` is letters, digits and inner hyphens."""
    return all(_LDH_LABEL_RE.fullmatch(label) for label in host.split("."))
