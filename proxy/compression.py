"""Decoding of compressed upstream bodies with limits on size and ratio (zip bombs).

Only bodies the proxy rewrites are decoded; everything else streams to the browser as it came.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import brotli
import zstandard

from proxy.exceptions import BodyTooLarge, ContentDecodingError

MAX_RATIO = 1000
_CHUNK = 64 * 1024
SUPPORTED = ("gzip", "deflate", "br", "zstd")
ACCEPT_ENCODING = ", ".join(SUPPORTED)


def _zlib(data: bytes, limit: int, wbits: int) -> bytes:
    decoder = zlib.decompressobj(wbits)
    out = decoder.decompress(data, limit + 1)
    if len(out) > limit or decoder.unconsumed_tail:
        raise BodyTooLarge("decompressed body over the limit")
    return out + decoder.flush()


def _gzip(data: bytes, limit: int) -> bytes:
    return _zlib(data, limit, 16 + zlib.MAX_WBITS)


def _deflate(data: bytes, limit: int) -> bytes:
    try:
        return _zlib(data, limit, zlib.MAX_WBITS)
    except zlib.error:  # raw deflate, as some servers send
        return _zlib(data, limit, -zlib.MAX_WBITS)


def _brotli(data: bytes, limit: int) -> bytes:
    decoder = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(data), _CHUNK):
        out += decoder.process(data[start : start + _CHUNK])
        if len(out) > limit:
            raise BodyTooLarge("decompressed body over the limit")
    return bytes(out)


def _zstd(data: bytes, limit: int) -> bytes:
    reader = zstandard.ZstdDecompressor().stream_reader(data)
    out = bytearray()
    while chunk := reader.read(_CHUNK):
        out += chunk
        if len(out) > limit:
            raise BodyTooLarge("decompressed body over the limit")
    return bytes(out)


DECODERS: dict[str, Callable[[bytes, int], bytes]] = {
    "gzip": _gzip,
    "x-gzip": _gzip,
    "deflate": _deflate,
    "br": _brotli,
    "zstd": _zstd,
    "identity": lambda data, limit: data,
}


def decode(data: bytes, content_encoding: str, max_bytes: int) -> bytes:
    """Decode ``data`` (encodings applied in header order); at most ``max_bytes`` out and
    at most ``MAX_RATIO`` times the input size. Raises ``BodyTooLarge``/``ContentDecodingError``
    (a known coding whose data is corrupt); with a coding no browser knows the body is as it came."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    if any(coding not in DECODERS for coding in codings):
        return data  # a coding browsers do not know: Chromium shows the body as it came, and so do we
    for coding in reversed(codings):
        decoder = DECODERS[coding]
        limit = min(max_bytes, max(len(data), 1) * MAX_RATIO)
        try:
            data = decoder(data, limit)
        except BodyTooLarge:
            raise
        except (zlib.error, brotli.error, zstandard.ZstdError, ValueError) as exc:
            raise ContentDecodingError(f"corrupt {coding} body") from exc
        if len(data) > limit:
            raise BodyTooLarge("decompressed body over the limit")
    return data


def accept_encoding(value: str) -> str:
    """The browser's ``Accept-Encoding`` narrowed to the codings the proxy decodes, with their
    weights: ``identity`` alone stays alone (a Range request must get the bytes it names, not a
    compressed copy), and ``*`` stands for the supported ones."""
    out: list[str] = []
    seen: set[str] = set()
    for part in value.split(","):
        coding, _, params = part.strip().partition(";")
        coding = coding.strip().lower()
        weight = f";{params.strip()}" if params.strip() else ""
        names = [c for c in SUPPORTED if c not in seen] if coding == "*" else [coding]
        for name in names:
            if (name in DECODERS or name == "identity") and name not in seen:
                seen.add(name)
                out.append(name + weight)
    return ", ".join(out) or "identity"
