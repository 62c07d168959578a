"""What the OpenAPI fuzzing modules share: the checks, the bound on examples, one call per case.

The fuzzing is split by credential into modules of their own (``test_openapi.py`` as the
administrator, ``test_openapi_agent.py`` as an agent), so ``--dist loadfile`` can run them at once.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.serve_process import ServeProcess

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BOUNDED = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def call_as(case: Any, live_api: ServeProcess, role: str) -> None:
    """Send ``case`` to the live API with ``role``'s token and validate the answer with ``CHECKS``."""
    headers = {"Authorization": f"Bearer {live_api.tokens[role]}"}  # type: ignore[attr-defined]
    case.call_and_validate(base_url=live_api.url, headers=headers, checks=CHECKS, timeout=10)
