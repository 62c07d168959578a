"""The OpenAPI document covers every route, and schemathesis finds no server error against a live API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis as sync_redis
import schemathesis
from cb_api_helpers import ADMIN_TOKEN, ApiProcess
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from control_api.app import ENDPOINTS


@pytest.fixture(scope="module")
def live_api(redis_server_url: str) -> Iterator[ApiProcess]:
    url = f"{redis_server_url}/15"
    api = ApiProcess(url).wait_ready()
    # something real to find: an account with an agent, so generated calls are not all 404s
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as c:
        account = c.post("/api/v1/accounts", json={"name": "Fuzz", "cobrowse_enabled": True}).json()
        agent = c.post(f"/api/v1/accounts/{account['id']}/agents", json={"display_name": "F"}).json()
    api.tokens = {"admin": ADMIN_TOKEN, "agent": agent["token"]}  # type: ignore[attr-defined]
    try:
        yield api
    finally:
        assert api.stop() == 0
        client = sync_redis.Redis.from_url(url)
        keys = list(client.scan_iter(match="cobrowse:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def api_schema(live_api: ApiProcess) -> Any:
    return schemathesis.openapi.from_url(live_api.url + "/openapi.json")


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


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
BOUNDED = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@schema.parametrize()
@BOUNDED
def test_no_server_errors_as_admin(case: Any, live_api: ApiProcess) -> None:
    headers = {"Authorization": f"Bearer {live_api.tokens['admin']}"}  # type: ignore[attr-defined]
    case.call_and_validate(base_url=live_api.url, headers=headers, checks=CHECKS, timeout=10)


@schema.parametrize()
@BOUNDED
def test_no_server_errors_as_agent(case: Any, live_api: ApiProcess) -> None:
    headers = {"Authorization": f"Bearer {live_api.tokens['agent']}"}  # type: ignore[attr-defined]
    case.call_and_validate(base_url=live_api.url, headers=headers, checks=CHECKS, timeout=10)
