"""Fixtures of the agent UI tests: `cobrowse serve` (subprocess, real Redis) and the demo shop."""

from tests.e2e.harness import make_stack, pytest_runtest_makereport, shared_serve

__all__ = ["make_stack", "pytest_runtest_makereport", "shared_serve"]
