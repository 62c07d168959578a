"""Validators of answers that depend on the destination (proxy/validators.py)."""

from __future__ import annotations

import pytest
from mitmproxy import http
from mitmproxy.test import tflow

from proxy.validators import VARIANT, tag_not_modified, tag_response, untag_request


def _flow(dest: str | None = "document", **request_headers: str) -> http.HTTPFlow:
    flow = tflow.tflow(resp=True)
    if dest is not None:
        flow.request.headers["sec-fetch-dest"] = dest
    for name, value in request_headers.items():
        flow.request.headers[name.replace("_", "-")] = value
    return flow


@pytest.mark.parametrize(
    ("etag", "dest", "tagged"),
    [
        ('"e1"', "document", '"e1.cb-document"'),
        ('W/"e1"', "empty", 'W/"e1.cb-empty"'),
        ('""', "style", '".cb-style"'),
        ('"e1"', None, '"e1.cb-none"'),
    ],
)
def test_an_answer_names_the_destination_it_was_made_for(etag: str, dest: str | None, tagged: str) -> None:
    flow = _flow(dest)
    assert flow.response is not None
    flow.response.headers["etag"] = etag
    flow.response.headers["last-modified"] = "Mon, 30 Nov 2026 00:00:00 GMT"
    tag_response(flow)
    assert flow.response.headers["etag"] == tagged
    assert "last-modified" not in flow.response.headers  # a date cannot say which copy it is


def test_a_malformed_etag_is_dropped() -> None:
    flow = _flow()
    assert flow.response is not None
    flow.response.headers["etag"] = "no quotes"
    tag_response(flow)
    assert "etag" not in flow.response.headers


def test_a_copy_of_the_same_destination_is_revalidated_with_the_upstreams_tag() -> None:
    flow = _flow("document", if_none_match='"e1.cb-document", W/"e0.cb-document"',
                 if_modified_since="Mon, 30 Nov 2026 00:00:00 GMT")
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"e1", W/"e0"'
    assert flow.request.headers["if-modified-since"]
    assert flow.metadata[VARIANT] == "document"
    assert flow.response is not None
    flow.response.status_code = 304
    flow.response.headers["etag"] = '"e1"'
    tag_not_modified(flow)  # the browser stores the 304's tag with its copy
    assert flow.response.headers["etag"] == '"e1.cb-document"'


def test_a_copy_made_for_another_destination_never_matches_upstream() -> None:
    flow = _flow("document", if_none_match='"e1.cb-empty"', if_modified_since="Mon, 30 Nov 2026 00:00:00 GMT")
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"e1.cb-empty"'  # the upstream never wrote it
    assert "if-modified-since" not in flow.request.headers
    assert VARIANT not in flow.metadata
    assert flow.response is not None
    flow.response.status_code = 304
    flow.response.headers["etag"] = '"e1"'
    tag_not_modified(flow)
    assert flow.response.headers["etag"] == '"e1"'


def test_the_upstreams_own_tags_and_star_pass_as_they_are() -> None:
    flow = _flow("image", if_none_match='"img7", *', if_modified_since="Mon, 30 Nov 2026 00:00:00 GMT")
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"img7", *'
    assert flow.request.headers["if-modified-since"]


def test_if_match_gets_the_upstreams_tag_whatever_the_destination() -> None:
    flow = _flow("empty", if_match='"e1.cb-document", "e2"')
    untag_request(flow)
    assert flow.request.headers["if-match"] == '"e1", "e2"'


@pytest.mark.parametrize(("dest", "sent"), [("video", '"v1"'), ("document", '"v1.cb-video"')])
def test_if_range_is_the_upstreams_tag_only_for_its_own_destination(dest: str, sent: str) -> None:
    flow = _flow(dest, if_range='"v1.cb-video"')
    untag_request(flow)
    assert flow.request.headers["if-range"] == sent  # another's: never matches, the whole body comes


def test_a_malformed_if_none_match_is_left_alone() -> None:
    flow = _flow("document", if_none_match='"unterminated')
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"unterminated'
