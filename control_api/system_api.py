"""Health, readiness, metrics and the OpenAPI document."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from control_api import keys
from control_api.endpoint import Call, Endpoint, json_response
from control_api.store import translate_errors


async def healthz(request: Request, call: Call) -> Response:
    return json_response({"status": "ok"})


async def readyz(request: Request, call: Call) -> Response:
    await call.api.store.ping()
    return json_response({"status": "ready", "store": "embedded" if call.api.store.embedded else "redis"})


def _ints(raw: dict[str, str]) -> dict[str, int]:
    result = {}
    for name, value in raw.items():
        try:
            result[name] = int(value)
        except ValueError:
            continue
    return result


async def metrics(request: Request, call: Call) -> Response:
    store = call.api.store
    with translate_errors():
        by_state = _ints(await store.redis.hgetall(keys.stats(store, "sessions")))
        consent = _ints(await store.redis.hgetall(keys.stats(store, "consent")))
    text = call.api.metrics.render(by_state, consent)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


async def openapi_json(request: Request, call: Call) -> Response:
    return JSONResponse(request.app.state.openapi)


ENDPOINTS = (
    Endpoint("GET", "/healthz", healthz, "Liveness", response="Status", absolute=True, tags=("system",)),
    Endpoint(
        "GET",
        "/readyz",
        readyz,
        "Readiness (checks the store)",
        response="Readiness",
        absolute=True,
        tags=("system",),
    ),
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        "Prometheus metrics (text format)",
        absolute=True,
        content_type="text/plain",
        tags=("system",),
    ),
    Endpoint("GET", "/openapi.json", openapi_json, "This document", absolute=True, tags=("system",)),
)
