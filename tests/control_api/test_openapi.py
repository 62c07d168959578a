"""The OpenAPI document covers every route, and schemathesis finds no server error against a live API
called as the administrator (as an agent: ``test_openapi_agent.py``; the fixtures: ``conftest.py``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from cb_api_helpers import ApiProcess
from cb_openapi_fuzz import BOUNDED, call_as

from control_api.app import ENDPOINTS


def test_document_covers_every_route(live_api: ApiProcess) -> None:
    document = httpx.get(live_api.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    for endpoint in ENDPOINTS:
        operation = document["paths"][endpoint.full_path][endpoint.method.lower()]
        assert operation["responses"], endpoint.full_path
        assert "503" in operation["responses"]
        if endpoint.request:
            assert "requestBody" in operation and "422" in operation["responses"]
        if endpoint.auth:
            assert operation["security"] == [{"bearer": []}]
    for path in ("/console", "/vb", "/banner.js"):
        assert path in document["paths"]


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.long
@schema.parametrize()
@BOUNDED
def test_no_server_errors_as_admin(case: Any, live_api: ApiProcess) -> None:
    call_as(case, live_api, "admin")
