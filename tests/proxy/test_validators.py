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
    ("etag", "dest", "rewritten", "tagged"),
    [
        ('"e1"', "document", True, '"e1.cbr-document"'),
        ('W/"e1"', "empty", True, 'W/"e1.cbr-empty"'),
        ('""', "style", True, '".cbr-style"'),
        ('"e1"', None, True, '"e1.cbr-none"'),
        ('"v1"', "video", False, '"v1.cb-video"'),  # the upstream's bytes, sent on as they came
    ],
)
def test_an_answer_names_the_destination_it_was_made_for(
    etag: str, dest: str | None, rewritten: bool, tagged: str
) -> None:
    flow = _flow(dest)
    assert flow.response is not None
    flow.response.headers["etag"] = etag
    flow.response.headers["last-modified"] = "Mon, 30 Nov 2026 00:00:00 GMT"
    tag_response(flow, rewritten=rewritten)
    assert flow.response.headers["etag"] == tagged
    assert "last-modified" not in flow.response.headers  # a date cannot say which copy it is


def test_a_malformed_etag_is_dropped() -> None:
    flow = _flow()
    assert flow.response is not None
    flow.response.headers["etag"] = "no quotes"
    tag_response(flow, rewritten=True)
    assert "etag" not in flow.response.headers


def test_a_copy_of_the_same_destination_is_revalidated_with_the_upstreams_tag() -> None:
    flow = _flow("document", if_none_match='"e1.cbr-document", W/"e0.cbr-document"',
                 if_modified_since="Mon, 30 Nov 2026 00:00:00 GMT")
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"e1", W/"e0"'
    assert flow.request.headers["if-modified-since"]
    assert flow.metadata[VARIANT] == ("document", True)
    assert flow.response is not None
    flow.response.status_code = 304
    flow.response.headers["etag"] = '"e1"'
    tag_not_modified(flow)  # the browser stores the 304's tag with its copy
    assert flow.response.headers["etag"] == '"e1.cbr-document"'


def test_a_copy_made_for_another_destination_never_matches_upstream() -> None:
    lm = "Mon, 30 Nov 2026 00:00:00 GMT"
    flow = _flow("document", if_none_match='"e1.cbr-empty"', if_modified_since=lm)
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"e1.cbr-empty"'  # the upstream never wrote it
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
    flow = _flow("empty", if_match='"e1.cbr-document", "e2"')
    untag_request(flow)
    assert flow.request.headers["if-match"] == '"e1", "e2"'


@pytest.mark.parametrize("dest", ["document", "empty"])
def test_if_range_of_a_rewritten_copy_never_matches_upstream(dest: str) -> None:
    """A rewritten copy's bytes are not the upstream's: a part of the upstream's body must never
    complete it, so the upstream, which never wrote the tag, sends the whole body."""
    flow = _flow(dest, if_range='"v1.cbr-document"', range="bytes=100-")
    untag_request(flow)
    assert flow.request.headers["if-range"] == '"v1.cbr-document"'


@pytest.mark.parametrize(("dest", "sent"), [("video", '"v1"'), ("document", '"v1.cb-video"')])
def test_if_range_of_the_upstreams_bytes_resumes_for_their_destination(dest: str, sent: str) -> None:
    """A video seeks, a download resumes: the copy is the upstream's bytes, so a part of them
    completes it, for the destination it was made for."""
    flow = _flow(dest, if_range='"v1.cb-video"', range="bytes=100-")
    untag_request(flow)
    assert flow.request.headers["if-range"] == sent


def test_a_stylesheet_never_revalidates_a_copy_that_streamed_untouched() -> None:
    """A body typed text/plain streams untouched to a page or a fetch, but is rewritten as CSS for
    a stylesheet: the untagged validators of such a copy must not get it a 304."""
    flow = _flow("style", if_none_match='"t1"', if_modified_since="Mon, 30 Nov 2026 00:00:00 GMT")
    untag_request(flow)
    assert "if-none-match" not in flow.request.headers
    assert "if-modified-since" not in flow.request.headers
    flow = _flow("style", if_none_match='"t1.cbr-style"')
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"t1"'  # its own copy is revalidated


def test_a_malformed_if_none_match_is_left_alone() -> None:
    flow = _flow("document", if_none_match='"unterminated')
    untag_request(flow)
    assert flow.request.headers["if-none-match"] == '"unterminated'
