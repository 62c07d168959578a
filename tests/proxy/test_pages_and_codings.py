"""Error pages (one table, HTML or JSON, no internal detail) and body decoding limits."""

from __future__ import annotations

import gzip
import json
import zlib

import brotli
import pytest
import zstandard

from proxy import compression
from proxy.error_pages import PAGES, render, wants_json
from proxy.exceptions import BodyTooLarge, ContentDecodingError
from tests.proxy.conftest import Harness, Sites

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


def test_unknown_or_corrupt_coding() -> None:
    with pytest.raises(ContentDecodingError):
        compression.decode(BODY, "compress", 1 << 20)
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
