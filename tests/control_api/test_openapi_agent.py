"""Schemathesis finds no server error against a live API called as an agent (a module of its own so
that it runs beside the administrator's fuzzing in ``test_openapi.py``; the fixtures: ``conftest.py``)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from cb_api_helpers import ApiProcess
from cb_openapi_fuzz import BOUNDED, call_as

schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.long
@schema.parametrize()
@BOUNDED
def test_no_server_errors_as_agent(case: Any, live_api: ApiProcess) -> None:
    call_as(case, live_api, "agent")
