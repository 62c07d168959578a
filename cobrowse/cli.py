"""The ``cobrowse`` command.

Each sub-command imports only what it needs: ``cobrowse rewrite`` never imports mitmproxy or
Starlette, so it starts fast and works as a debugging tool on its own.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from cobrowse import settings as settings_mod

# sub-command -> module with ``run(args) -> int``
COMMANDS = {
    "serve": "cobrowse.cmd_serve",
    "demo": "cobrowse.cmd_demo",
    "rewrite": "cobrowse.cmd_rewrite",
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"cobrowse: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cobrowse",
        description="Proxy-based co-browsing: control API, rewriting proxy, agent console.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    serve = sub.add_parser(
        "serve",
        help="run the control API and the rewriting proxy",
        description="Run the control API and the proxy (--role all, the default, in one process "
        "with the embedded store unless --redis-url is given), or one of them (--role api / "
        "--role proxy) against a shared Redis.",
    )
    settings_mod.add_arguments(serve)

    demo = sub.add_parser(
        "demo",
        help="run everything with a bundled sample shop, an account and an agent",
        description="Start the API, the proxy and a sample shop site on loopback, create an "
        "admin token, an account with co-browse on, and an agent, then print the URLs to open.",
    )
    settings_mod.add_arguments(
        demo, ("host", "api_port", "proxy_port", "proxy_domain", "redis_url", "log_level")
    )
    demo.add_argument(
        "--shop-port",
        type=int,
        default=8002,
        help="port of the sample shop site (default 8002; 0 picks a free one)",
    )

    rewrite = sub.add_parser(
        "rewrite",
        help="rewrite one HTML or CSS file as the proxy would, to stdout",
        description="Rewrite FILE as the proxy would serve it for SESSION, to standard output.",
    )
    rewrite.add_argument("file", metavar="FILE", help="the file to rewrite ('-' for stdin)")
    rewrite.add_argument(
        "--url", required=True, help="the upstream URL the file was fetched from"
    )
    rewrite.add_argument("--session", required=True, help="the session id")
    rewrite.add_argument(
        "--proxy-domain", default="cobrowse.localhost", help="proxy domain (cobrowse.localhost)"
    )
    rewrite.add_argument("--proxy-port", type=int, default=8001, help="proxy port (8001)")
    rewrite.add_argument(
        "--proxy-scheme", default="http", choices=("http", "https"), help="proxy scheme (http)"
    )
    rewrite.add_argument(
        "--type",
        choices=("html", "css"),
        default=None,
        help="content type (default: from the file name, then sniffed)",
    )
    rewrite.add_argument(
        "--content-type", default=None, help="a full Content-Type header, charset included"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command])
    try:
        return int(module.run(args))
    except settings_mod.SettingsError as exc:
        print(f"cobrowse: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
