"""Fixtures of the end-to-end tests: `cobrowse serve` (subprocess, real Redis) and the demo shop."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Stack, start_stack


@pytest.fixture
def make_stack(redis_url: str, namespace: str, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start a full stack: make_stack(policy={...}, cobrowse_enabled=True) -> Stack."""
    with contextlib.ExitStack() as exits:

        def make(policy: dict[str, Any] | None = None, cobrowse_enabled: bool = True) -> Stack:
            return exits.enter_context(
                start_stack(
                    redis_url,
                    tmp_path,
                    namespace=namespace,
                    admin_token=secrets.token_urlsafe(16),
                    policy=policy or {},
                    cobrowse_enabled=cobrowse_enabled,
                )
            )

        yield make
