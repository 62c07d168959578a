"""Cache validators of answers that depend on where the browser puts them.

The proxy answers one upstream URL differently by ``Sec-Fetch-Dest``: a page gets the runtime, the
same HTML fetched by a script gets nothing added, a stylesheet is rewritten as CSS whatever its
type, an XML document shown as a page is inert text. ``Vary: Sec-Fetch-Dest`` keeps a cache from
answering one destination with the copy of another, but Chromium still revalidates that copy
with its validators: the upstream answers 304 and the browser shows the copy it holds, made for
the other destination (a page without the runtime, whose masked fields then show).

So such an answer's ``ETag`` names its destination (``"e1"`` becomes ``"e1.cbr-document"`` for a
copy of ours, rewritten, ``"e1.cb-document"`` for the upstream's bytes sent on as they came) and
loses ``Last-Modified`` (a date cannot say which copy it is). On the way back, a validator of the
request's own destination goes upstream as the upstream wrote it; one of another destination
goes as it is, which the upstream never matches, so it answers in full (``If-Range`` too when it
names a rewritten copy: its bytes are not the upstream's, and no part of the upstream's body may
complete it). ``If-Match`` (a write that must find the state it read) gets the upstream's own tag
back whatever the destination.
Answers that are the same for every destination (typed bodies that stream untouched: scripts,
JSON, images) keep their validators as they are.
"""

from __future__ import annotations

import re

from mitmproxy import http

from proxy.responses import destination

VARIANT = "cobrowse.validator_variant"  # flow metadata: the request revalidated a copy of ours
# destinations whose answer is rewritten even when the body came typed as something that streams
# untouched elsewhere (a stylesheet is rewritten as CSS whatever its type): an untagged validator
# names such a copy, never one of theirs
UNTAGGED_NOT_OURS = frozenset({"style"})
# ".cb-document": the upstream's bytes, as they came; ".cbr-document": a copy of ours, rewritten
_SUFFIX_RE = re.compile(r'^(W/)?"(.*)\.cb(r?)-([a-z]+)"$', re.DOTALL)
_TAG_RE = re.compile(r'\s*((?:W/)?"[^"]*"|\*)\s*(?:,|$)')


def variant(flow: http.HTTPFlow) -> str:
    """The destination an answer was made for, as it goes in a validator (letters only)."""
    return re.sub("[^a-z]", "", destination(flow)) or "none"


def _tags(value: str) -> list[str] | None:
    """The entity tags of an ``If-None-Match``/``If-Match`` value, or None when it is malformed."""
    tags, pos = [], 0
    value = value.strip()
    while pos < len(value):
        match = _TAG_RE.match(value, pos)
        if match is None or match.end() == pos:
            return None
        tags.append(match.group(1))
        pos = match.end()
    return tags


def _split(tag: str) -> tuple[str, str | None, bool]:
    """``W/"e1.cbr-document"`` -> (``W/"e1"``, ``"document"``, rewritten True); an upstream's own
    tag -> (tag, None, False)."""
    match = _SUFFIX_RE.match(tag)
    if match is None:
        return tag, None, False
    weak, opaque, rewritten, name = match.groups()
    return f'{weak or ""}"{opaque}"', name, bool(rewritten)


def tag_response(flow: http.HTTPFlow, *, rewritten: bool, name: str | None = None) -> None:
    """Make the answer's validators name the destination it was made for (``name``, by default
    the request's) and whether its bytes are ours (``rewritten``) or the upstream's."""
    response = flow.response
    assert response is not None
    response.headers.pop("last-modified", None)
    etag = response.headers.get("etag")
    if etag is None:
        return
    match = re.fullmatch(r'\s*(W/)?"([^"]*)"\s*', etag)
    if match is None:
        del response.headers["etag"]  # not a tag a browser could give back to be understood
        return
    weak, opaque = match.groups()
    mark = "cbr" if rewritten else "cb"
    response.headers["etag"] = f'{weak or ""}"{opaque}.{mark}-{name or variant(flow)}"'


def untag_request(flow: http.HTTPFlow) -> None:
    """Give the upstream its own tags back where they name the request's destination (see above)."""
    headers = flow.request.headers
    own = variant(flow)
    if "if-none-match" in headers:
        tags = _tags(headers["if-none-match"])
        if tags is not None:
            out, ours, matched = [], False, None
            for tag in tags:
                upstream, name, rewritten = _split(tag)
                ours = ours or name is not None
                if name == own:
                    out.append(upstream)
                    matched = rewritten if matched is None else matched
                elif name is None and own in UNTAGGED_NOT_OURS:
                    ours = True  # a typed copy that streamed untouched: this one is rewritten
                else:
                    out.append(tag)  # another destination's copy (or the upstream's own tag)
            if out:
                headers["if-none-match"] = ", ".join(out)
            else:
                del headers["if-none-match"]
            if matched is not None:
                flow.metadata[VARIANT] = (own, matched)  # its 304 is tagged like the copy it confirms
            elif ours:
                headers.pop("if-modified-since", None)  # the date of a copy made for another
    elif own in UNTAGGED_NOT_OURS:
        headers.pop("if-modified-since", None)
    # If-Range: a part of the upstream's body may complete a copy of the upstream's bytes (a media
    # file, a download), never a rewritten copy, whose bytes are ours: its tag stays as it is, the
    # upstream never wrote it and sends the whole body
    if "if-range" in headers:
        upstream, name, rewritten = _split(headers["if-range"].strip())
        if name == own and not rewritten:
            headers["if-range"] = upstream
    if "if-match" in headers:
        tags = _tags(headers["if-match"])
        if tags is not None:
            headers["if-match"] = ", ".join(_split(tag)[0] for tag in tags)


def tag_not_modified(flow: http.HTTPFlow) -> None:
    """A 304 confirming a copy of ours carries that copy's tag (the browser stores it)."""
    confirmed = flow.metadata.get(VARIANT)
    if confirmed is not None and flow.response is not None and flow.response.status_code == 304:
        name, rewritten = confirmed
        tag_response(flow, rewritten=rewritten, name=name)
