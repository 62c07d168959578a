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


# Rewritten bodies go to the browser compressed when it accepts a coding: a page the upstream sent
# compressed would otherwise reach the agent 4 to 5 times larger than it reaches the visitor. The
# fastest settings of each coding (bench/proxy.py, docs/BENCHMARKS.md): an 88 KB page costs about
# 0.25 ms in zstd or br and 0.6 ms in gzip, next to some 3 ms of rewriting.
ENCODE_PREFERENCE = ("zstd", "br", "gzip")
MIN_ENCODE_BYTES = 1024  # below it the coding's own bytes and the time are not worth it
_ZSTD_LEVEL = 3
_BR_QUALITY = 1
_GZIP_LEVEL = 1


def choose_coding(accept: str | None) -> str | None:
    """The coding to send a rewritten body in, from the browser's ``Accept-Encoding`` (None:
    as it is). A coding needs a weight above 0, given by name or by ``*``; ``identity`` alone, or
    no header, gets none."""
    if not accept:
        return None
    weights: dict[str, float] = {}
    star: float | None = None
    for part in accept.split(","):
        coding, _, params = part.strip().partition(";")
        coding = coding.strip().lower()
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding == "*":
            star = weight
        elif coding:
            weights[coding] = weight
    usable = [c for c in ENCODE_PREFERENCE if weights.get(c, 0.0 if star is None else star) > 0]
    if not usable:
        return None
    best = max(weights.get(c, star or 0.0) for c in usable)
    return next(c for c in usable if weights.get(c, star or 0.0) == best)


def encode(data: bytes, coding: str) -> bytes:
    """``data`` in ``coding`` (one of ``ENCODE_PREFERENCE``), at the fastest useful setting."""
    if coding == "zstd":
        return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)
    if coding == "br":
        return bytes(brotli.compress(data, quality=_BR_QUALITY))
    if coding == "gzip":
        compressor = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        return compressor.compress(data) + compressor.flush()
    raise ValueError(f"cannot encode in {coding!r}")
