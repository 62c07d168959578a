"""The OpenAPI 3.1 document, built from the endpoint table and the schemas."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from control_api.endpoint import Endpoint
from control_api.schemas import COMPONENTS, ref

STATUS_TEXT = {
    200: "OK",
    201: "Created",
    204: "No Content",
    401: "Missing or invalid bearer token",
    403: "Forbidden for this caller",
    404: "Not found",
    405: "Method not allowed",
    408: "The request body did not arrive in time",
    409: "Conflict with the current state",
    413: "Body too large",
    422: "Invalid request",
    503: "Store unavailable",
}
PATH_PARAM = re.compile(r"{([a-z_]+)}")


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": endpoint.handler.__name__,
        "tags": list(endpoint.tags),
    }
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9_-]+$"},
        }
        for name in PATH_PARAM.findall(endpoint.path)
    ]
    params += [
        {
            "name": q.name,
            "in": "query",
            "required": q.required,
            "schema": q.schema,
            "description": q.description,
        }
        for q in endpoint.query
    ]
    if params:
        op["parameters"] = params
    if endpoint.auth:
        op["security"] = [{"bearer": []}]
        op["description"] = "Caller: " + " or ".join(endpoint.auth) + " token."
    if endpoint.request:
        op["requestBody"] = {
            "required": endpoint.request_required,
            "content": {"application/json": {"schema": ref(endpoint.request)}},
        }
    responses: dict[str, Any] = {}
    if endpoint.status == 204:
        responses["204"] = {"description": STATUS_TEXT[204]}
    elif endpoint.response:
        responses[str(endpoint.status)] = {
            "description": STATUS_TEXT.get(endpoint.status, "OK"),
            "content": {endpoint.content_type: {"schema": ref(endpoint.response)}},
        }
    else:
        responses[str(endpoint.status)] = {
            "description": STATUS_TEXT.get(endpoint.status, "OK"),
            "content": {endpoint.content_type: {"schema": {"type": "string", "format": "binary"}}},
        }
    errors = set(endpoint.errors) | {503}
    if endpoint.request:
        errors |= {408, 413, 422}
    if endpoint.query:
        errors.add(422)
    for status in sorted(errors):
        responses[str(status)] = {
            "description": STATUS_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": ref("Error")}},
        }
    op["responses"] = responses
    return op


def document(endpoints: Iterable[Endpoint], extra_paths: dict[str, Any], server_url: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for endpoint in endpoints:
        paths.setdefault(endpoint.full_path, {})[endpoint.method.lower()] = _operation(endpoint)
    paths.update(extra_paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cobrowse control API",
            "version": "1",
            "description": "Accounts, policies, agents, visitors, sessions, consent, events and audit. "
            "Errors are JSON {error, detail}. WebSockets (/api/v1/visitor/ws, /api/v1/agent/ws) "
            "are described in docs/PROTOCOL.md.",
        },
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "schemas": COMPONENTS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
