"""One HTTP endpoint: method, path, who may call it, its schemas and its handler.

The same table builds the Starlette routes (``app.py``) and the OpenAPI document (``openapi.py``),
so the document cannot drift from what is served.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from control_api.auth import Principal, require
from control_api.context import Api


@dataclass(frozen=True)
class Call:
    api: Api
    principal: Principal | None


Handler = Callable[[Request, Call], Awaitable[Response]]


@dataclass(frozen=True)
class QueryParam:
    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /api/v1 unless absolute=True
    handler: Handler
    summary: str
    auth: tuple[str, ...] = ()  # principal kinds allowed; () = public
    status: int = 200
    request: str | None = None  # component schema name of the JSON body
    request_required: bool = True
    response: str | None = None  # component schema name; None = no body
    errors: tuple[int, ...] = ()
    query: tuple[QueryParam, ...] = ()
    tags: tuple[str, ...] = ()
    visitor_cors: bool = False  # answers CORS for the account's allowed origins
    absolute: bool = False
    content_type: str = "application/json"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def full_path(self) -> str:
        return self.path if self.absolute else "/api/v1" + self.path

    def starlette_endpoint(self) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            principal = (
                require(request, self.auth) if self.auth else getattr(request.state, "principal", None)
            )
            return await self.handler(request, Call(request.app.state.api, principal))

        endpoint.__name__ = self.handler.__name__
        return endpoint


def json_response(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status)


def no_content() -> Response:
    return Response(status_code=204)
