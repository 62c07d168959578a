"""Fixtures of the end-to-end tests: `cobrowse serve` (subprocess, real Redis) and the demo shop."""

from tests.e2e.harness import make_stack

__all__ = ["make_stack"]
