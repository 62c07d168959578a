"""Error pages (one table, HTML or JSON, no internal detail) and body decoding limits."""

from __future__ import annotations

import gzip
import html
import json
import random
import zlib
from typing import Any

import brotli
import pytest
import zstandard

from proxy import compression
from proxy.error_pages import PAGES, render, wants_json
from proxy.exceptions import BodyTooLarge, ContentDecodingError
from tests.proxy.conftest import DOMAIN, Harness, Sites

BODY = b"<html>" + b"hello world " * 1000 + b"</html>"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"sec-fetch-mode": "navigate", "accept": "text/html"}, False),
        ({"sec-fetch-mode": "cors"}, True),
        ({"sec-fetch-mode": "no-cors"}, True),
        ({"accept": "application/json"}, True),
        ({"accept": "text/html,application/json"}, False),
        ({}, False),
    ],
)
def test_navigation_or_fetch(headers: dict[str, str], expected: bool) -> None:
    assert wants_json(headers) is expected


@pytest.mark.parametrize("page", sorted(PAGES))
def test_every_page_renders_as_html_and_json(page: str) -> None:
    status, headers, body = render(page)
    assert status == PAGES[page].status and headers["content-type"].startswith("text/html")
    assert PAGES[page].title.encode() in body
    status, headers, body = render(page, json_body=True)
    assert json.loads(body) == {"error": page, "detail": PAGES[page].detail}


def test_expected_statuses() -> None:
    statuses = {name: page.status for name, page in PAGES.items()}
    assert statuses["not_active"] == statuses["no_credential"] == statuses["outside_scope"] == 403
    assert statuses["unknown_host"] == 404
    assert statuses["upstream_unreachable"] == 502 and statuses["upstream_timeout"] == 504


def test_a_request_mitmproxy_cannot_frame_gets_our_400_page(harness: Harness, sites: Sites) -> None:
    # mitmproxy answers it itself, before any hook, with a page that names itself and the error
    answer = harness.raw_exchange(
        f"POST / HTTP/1.1\r\nContent-Length: 12abc\r\nHost: nothing.{DOMAIN}\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 400")
    assert b"Bad request" in answer and b"cobrowse" in answer
    assert b"mitmproxy" not in answer.lower() and b"12abc" not in answer
    assert sites.shop.total == 0


@pytest.mark.parametrize(
    ("coding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress),
     ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)), ("identity", lambda d: d)],
)
def test_decode_each_coding(coding: str, encode: object) -> None:
    assert compression.decode(encode(BODY), coding, 1 << 20) == BODY  # type: ignore[operator]


def test_raw_deflate_and_stacked_codings() -> None:
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    assert compression.decode(raw.compress(BODY) + raw.flush(), "deflate", 1 << 20) == BODY
    assert compression.decode(gzip.compress(brotli.compress(BODY)), "br, gzip", 1 << 20) == BODY


def test_size_and_ratio_limits() -> None:
    with pytest.raises(BodyTooLarge):
        compression.decode(gzip.compress(BODY), "gzip", 1000)
    zeros = gzip.compress(b"\0" * (4 << 20))
    with pytest.raises(BodyTooLarge):  # 4 MiB from ~4 KiB: over the ratio limit
        compression.decode(zeros, "gzip", 1 << 30)


def _compressible(size: int) -> bytes:
    """``size`` bytes whose compressed form grows with them (a few random bytes every 64 KiB), so a
    stream decoder gets them a piece of input at a time."""
    rng = random.Random(7)
    block = 64 * 1024
    return b"".join(rng.randbytes(64) + b"\0" * (block - 64) for _ in range(size // block))


class _Counted:
    """How many decompressed bytes a decoder produced, whatever the caller kept of them."""

    produced = 0


class _CountingBrotli:
    def __init__(self) -> None:
        self.inner = _REAL_BROTLI()

    def process(self, data: bytes) -> bytes:
        out: bytes = self.inner.process(data)
        _Counted.produced += len(out)
        return out


class _CountingZstdReader:
    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def read(self, size: int) -> bytes:
        out: bytes = self.inner.read(size)
        _Counted.produced += len(out)
        return out


class _CountingZstd:
    def stream_reader(self, data: bytes) -> _CountingZstdReader:
        return _CountingZstdReader(_REAL_ZSTD().stream_reader(data))


_REAL_BROTLI = brotli.Decompressor
_REAL_ZSTD = zstandard.ZstdDecompressor
FULL = 8 << 20


LIMIT = 1 << 20
STEP = 256 * 1024  # at most what one step of either decoder produces here


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> type[_Counted]:
    monkeypatch.setattr(_Counted, "produced", 0)
    monkeypatch.setattr(compression.brotli, "Decompressor", _CountingBrotli)
    monkeypatch.setattr(compression.zstandard, "ZstdDecompressor", _CountingZstd)
    monkeypatch.setattr(compression, "_CHUNK", 256)  # small pieces of input (br) and output (zstd)
    return _Counted


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("br", lambda d: brotli.compress(d, quality=5, lgwin=16)),  # a short window: even output
        ("zstd", lambda d: zstandard.ZstdCompressor().compress(d)),
    ],
    ids=["br", "zstd"],
)
@pytest.mark.parametrize("limit_by", ["size", "ratio"])
def test_stream_decoders_stop_at_the_limit(
    counted: type[_Counted], monkeypatch: pytest.MonkeyPatch, coding: str, encode: Any, limit_by: str
) -> None:
    # a bomb is refused as soon as the limit is passed, not after it has all been decompressed
    body = encode(_compressible(FULL))
    assert compression.decode(body, coding, FULL) == _compressible(FULL)
    assert counted.produced == FULL
    counted.produced = 0
    if limit_by == "size":
        max_bytes = LIMIT
    else:
        max_bytes = 1 << 30
        monkeypatch.setattr(compression, "MAX_RATIO", LIMIT // len(body))
    limit = min(max_bytes, len(body) * compression.MAX_RATIO)
    with pytest.raises(BodyTooLarge):
        compression.decode(body, coding, max_bytes)
    assert limit < counted.produced <= limit + STEP


def test_unknown_or_corrupt_coding() -> None:
    # a coding no browser knows: the body as it came (Chromium shows it so); a known one that is
    # corrupt cannot be read
    assert compression.decode(BODY, "compress", 1 << 20) == BODY
    assert compression.decode(BODY, "gzip, utf-8", 1 << 20) == BODY
    with pytest.raises(ContentDecodingError):
        compression.decode(b"not gzip", "gzip", 1 << 20)


def test_masked_selectors_of_the_policy_are_masked(harness: Harness, sites: Sites) -> None:
    s = harness.open_session((sites.shop.origin,), masked=("#title",))
    r = harness.get(s, harness.host(s, sites.shop.origin), "/about", credential=harness.credential(s))
    assert r.status_code == 200
    assert ">About</h1>" not in r.text
    plain = harness.open_session((sites.shop.origin,))
    host = harness.host(plain, sites.shop.origin)
    r = harness.get(plain, host, "/about", credential=harness.credential(plain))
    assert ">About</h1>" in r.text


def test_the_runtime_is_told_the_policys_masked_selectors(harness: Harness, sites: Sites) -> None:
    """Elements that scripts add later are masked by the runtime, with the selectors the proxy
    hands it in its config."""
    s = harness.open_session((sites.shop.origin,), masked=("#title", ".card-number"))
    page = harness.get(s, harness.host(s, sites.shop.origin), "/about", credential=harness.credential(s)).text
    start = page.index("data-cobrowse-config=") + len("data-cobrowse-config=")
    quote = page[start]
    config = json.loads(html.unescape(page[start + 1 : page.index(quote, start + 1)]))
    assert config["masked"] == ["#title", ".card-number"]


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1, br;q=1", "br"),  # a tie: the proxy's preference
        ("gzip;q=0.9, br;q=0.5", "gzip"),  # the browser's weights first
        ("GZIP", "gzip"),
        ("br;q=nan, gzip", "gzip"),
        ("br;q=bad, gzip;q=0.1", "gzip"),
        ("*", "zstd"),
        ("*;q=0.5, gzip;q=0.8", "gzip"),
        ("zstd;q=0, *", "br"),
        ("identity;q=1, *;q=0", None),  # what Chromium sends for media
        ("deflate", None),
        ("", None),
        (None, None),
    ],
)
def test_the_coding_of_a_rewritten_body(accept: str | None, coding: str | None) -> None:
    assert compression.choose_coding(accept) == coding


@pytest.mark.parametrize("coding", compression.ENCODE_PREFERENCE)
def test_encoded_bodies_decode_to_what_they_were(coding: str) -> None:
    assert compression.decode(compression.encode(BODY, coding), coding, len(BODY)) == BODY
