"""``create_app(settings)``: the control API as a Starlette application."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send

from cobrowse.settings import Settings
from control_api import admin_api, agent_api, openapi, static, sweeper, system_api, tasks, visitor_api, ws
from control_api.auth import AuthMiddleware
from control_api.context import Api
from control_api.endpoint import Endpoint
from control_api.hub import EventHub
from control_api.metrics import Metrics
from control_api.middleware import ErrorMiddleware, RequestMetricsMiddleware, VisitorCorsMiddleware
from control_api.store import Store

ENDPOINTS: tuple[Endpoint, ...] = (
    system_api.ENDPOINTS + admin_api.ENDPOINTS + visitor_api.ENDPOINTS + agent_api.ENDPOINTS
)
HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request"}


def _cors_patterns() -> list[str]:
    patterns = []
    for endpoint in ENDPOINTS:
        if endpoint.visitor_cors:
            patterns.append(openapi.PATH_PARAM.sub("[^/]+", endpoint.full_path))
    return patterns


def _static_paths() -> dict[str, Any]:
    def page(summary: str, media: str) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "operationId": "static_" + summary.split()[0].lower(),
                "tags": ["ui"],
                "responses": {
                    "200": {"description": "the file", "content": {media: {"schema": {"type": "string"}}}},
                    "404": {
                        "description": "not there",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                    },
                },
            }
        }

    paths = {
        "/console": page("Console: the agent console (HTML)", "text/html"),
        "/vb": page("Virtual browser page (HTML)", "text/html"),
        "/banner.js": page("Banner script embedded by customer sites", "text/javascript"),
        "/static/{path}": page("Static files of the agent UI", "application/octet-stream"),
    }
    paths["/static/{path}"]["get"]["parameters"] = [
        {
            "name": "path",
            "in": "path",
            "required": True,
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]+$"},
        }
    ]
    return paths


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    detail = {404: "no such route", 405: "method not allowed on this route"}.get(
        exc.status_code, str(exc.detail)
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # every method of the path (one route per method: Starlette named the first's)
        methods: set[str] = set()
        for route in request.app.router.routes:
            if isinstance(route, Route) and route.methods and route.matches(request.scope)[0] != Match.NONE:
                methods |= route.methods
        if methods:
            headers["Allow"] = ", ".join(sorted(methods))
    return JSONResponse({"error": code, "detail": detail}, status_code=exc.status_code, headers=headers)


def create_app(
    settings: Settings, *, store: Store | None = None, sweep: bool = True, ui_dir: Path | None = None
) -> Starlette:
    """The API app. ``store`` defaults to ``Store.connect(settings.redis_url)``; ``sweep=False`` leaves
    deadline sweeping to other processes (tests of the sweeper call it directly); ``ui_dir`` replaces
    agent_ui/static/ (tests)."""
    store = store or Store.connect(settings.redis_url)
    metrics = Metrics()
    hub = EventHub(store)
    api = Api(settings, store, hub, metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await hub.start()
        task = asyncio.create_task(sweeper.run(store, settings.visitor_grace_s)) if sweep else None
        try:
            yield
        finally:
            if task is not None:
                await tasks.stop(task)
            await asyncio.gather(*api.cleanups, return_exceptions=True)
            await hub.stop()
            await store.close()  # its connections belong to this event loop

    routes: list[BaseRoute] = [
        Route(e.full_path, e.starlette_endpoint(), methods=[e.method], name=e.handler.__name__)
        for e in ENDPOINTS
    ]
    routes += [
        WebSocketRoute("/api/v1/visitor/ws", ws.visitor_ws),
        WebSocketRoute("/api/v1/agent/ws", ws.agent_ws),
    ]
    routes += static.routes(settings, ui_dir or static.STATIC_DIR)
    middleware = [  # outermost first: metrics and CORS see the responses the error layer renders
        Middleware(RequestMetricsMiddleware, metrics=metrics),
        Middleware(VisitorCorsMiddleware, store=store, prefixes=_cors_patterns()),
        Middleware(ErrorMiddleware),
        Middleware(AuthMiddleware, store=store, admin_token=settings.admin_token),
    ]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: _http_exception},
        lifespan=lifespan,
    )
    _relative_slash_redirects(app.router)
    app.state.api = api
    app.state.openapi = openapi.document(ENDPOINTS, _static_paths(), settings.public_api_url)
    return app


def _relative_slash_redirects(router: Router) -> None:
    """Redirect a path with a trailing slash too many (or one too few) to the route's, as Starlette
    does, but with a relative ``Location`` (path and query): Starlette's absolute URL named the
    request's ``Host``, so any Host header a client sent came back in the redirect."""
    router.redirect_slashes = False
    fallback = router.default

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] != "/":
            path = str(scope["path"])
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            probe = {**scope, "path": other}
            # ("//host/x" would be another site's address: never a Location of ours)
            if other.startswith("/") and not other.startswith("//") and any(
                route.matches(probe)[0] != Match.NONE for route in router.routes
            ):
                query = bytes(scope.get("query_string") or b"").decode("latin-1")
                location = quote(other, safe="/:@!$&'()*+,;=-._~") + ("?" + query if query else "")
                await RedirectResponse(location, status_code=307)(scope, receive, send)
                return
        await fallback(scope, receive, send)

    router.default = default
