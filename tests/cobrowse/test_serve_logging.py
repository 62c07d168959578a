"""The log of `cobrowse serve` and `cobrowse demo` (``configure_logging``), in a process of its own:
logging's set-up is the process's."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import logging, sys
from cobrowse.cmd_serve import configure_logging
configure_logging(sys.argv[1])
for name in ("mitmproxy.proxy.server", "cobrowse.serve"):
    logging.getLogger(name).info("said at info by %s", name)
    logging.getLogger(name).debug("said at debug by %s", name)
logging.getLogger("mitmproxy.proxy.server").warning("a warning of mitmproxy")
"""


def said(level: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, level], capture_output=True, text=True, timeout=60, check=True
    ).stderr


@pytest.mark.parametrize("level", ["info", "warning-not-a-level"])
def test_mitmproxys_line_per_connection_is_kept_for_debug(level: str) -> None:
    """mitmproxy says "client connect" and "client disconnect" at info for every connection: they
    buried the demo's log."""
    text = said(level)
    assert "said at info by cobrowse.serve" in text
    assert "said at info by mitmproxy" not in text
    assert "a warning of mitmproxy" in text


def test_debug_says_everything() -> None:
    text = said("debug")
    for line in ("said at info by mitmproxy", "said at debug by mitmproxy", "said at debug by cobrowse"):
        assert line in text
