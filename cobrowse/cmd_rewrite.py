"""``cobrowse rewrite FILE``: rewrite one HTML or CSS file as the proxy would, to standard output.

Imports only the rewriter (lxml, idna): never mitmproxy, Starlette or Redis.
"""

from __future__ import annotations

import argparse
import os
import sys

from rewriter.dispatch import SNIFF_BYTES, Kind, kind_of, rewrite_body
from rewriter.exceptions import RewriteError
from rewriter.urls import Origin, ProxyConfig, UrlMapper

# file name suffix -> kind, when --type is not given
SUFFIX_KINDS: dict[str, Kind] = {".html": "html", ".htm": "html", ".xhtml": "html", ".css": "css"}


def _fail(message: str) -> int:
    print(f"cobrowse rewrite: {message}", file=sys.stderr)
    return 2


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as handle:
        return handle.read()


def _kind(args: argparse.Namespace, body: bytes) -> Kind:
    if args.type:
        return args.type
    suffix = os.path.splitext(args.file)[1].lower()
    if suffix in SUFFIX_KINDS:
        return SUFFIX_KINDS[suffix]
    return kind_of(args.content_type, body[:SNIFF_BYTES])


def run(args: argparse.Namespace) -> int:
    try:
        proxy = ProxyConfig(domain=args.proxy_domain, port=args.proxy_port, scheme=args.proxy_scheme)
        origin = Origin.parse(args.url)
        mapper = UrlMapper(args.session, proxy, (origin,))
    except RewriteError as exc:
        return _fail(str(exc))
    try:
        body = _read(args.file)
    except OSError as exc:
        return _fail(f"cannot read {args.file}: {exc.strerror or exc}")
    kind = _kind(args, body)
    if kind == "passthrough":
        return _fail(f"{args.file} is neither HTML nor CSS: give --type html or --type css")
    try:
        result = rewrite_body(body, url=args.url, mapper=mapper, content_type=args.content_type, kind=kind)
    except RewriteError as exc:
        return _fail(str(exc))
    sys.stdout.buffer.write(result.body)
    sys.stdout.buffer.flush()
    return 0
