"""Plain ASGI middleware: error translation, request ids and metrics, CORS for visitor routes."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_api import accounts
from control_api.exceptions import ApiError
from control_api.metrics import Metrics
from control_api.policy import normalize_origin
from control_api.store import Store

log = logging.getLogger("cobrowse.api")

CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "authorization, content-type"


async def send_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error.body()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class ErrorMiddleware:
    """``ApiError`` -> its JSON; anything else -> a bare 500 (logged here, never sent to the client)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            try:
                await self.app(scope, receive, send)
            except ApiError as exc:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 1013 if exc.status >= 500 else 4400})
                    return
                raise
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ApiError as exc:
            if started:
                raise
            await send_error(send, exc)
        except ClientDisconnect:
            # the client went away while sending its request: nobody to answer, nothing went wrong
            log.info("client disconnected during %s %s", scope.get("method"), scope.get("path"))
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            await send_error(send, ApiError(500, "internal_error", "an internal error occurred"))


class RequestMetricsMiddleware:
    """Adds ``X-Request-Id`` and counts requests by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get("x-request-id", "")
        request_id = incoming if re.fullmatch(r"[A-Za-z0-9._-]{1,64}", incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        start = time.monotonic()

        async def wrapped(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.request(scope["method"], route, status)
            log.debug(
                "%s %s %s %.1fms id=%s",
                scope["method"],
                route,
                status,
                (time.monotonic() - start) * 1000,
                request_id,
            )


class VisitorCorsMiddleware:
    """CORS for routes the banner calls from customer pages: exactly the account's allowed origins.

    A preflight carries no credentials, so it is answered for any origin some account allows; the
    real response names the origin only when the handler found it in *this* account's
    ``allowed_origins`` (``request.state.cors_origins``).
    """

    def __init__(self, app: ASGIApp, store: Store, prefixes: Iterable[str]) -> None:
        self.app = app
        self.store = store
        self.patterns = [re.compile(p) for p in prefixes]

    def _applies(self, path: str) -> bool:
        return any(p.fullmatch(path) for p in self.patterns)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS" and origin and headers.get("access-control-request-method"):
            try:
                await self._preflight(origin, send)
            except ApiError as exc:  # the store is down: same JSON error as everywhere
                await send_error(send, exc)
            return
        state = scope.setdefault("state", {})

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = MutableHeaders(scope=message)
                out.add_vary_header("Origin")
                allowed = state.get("cors_origins") or []
                if origin and _normal(origin) in allowed:
                    out["access-control-allow-origin"] = origin
            await send(message)

        await self.app(scope, receive, wrapped)

    async def _preflight(self, origin: str, send: Send) -> None:
        normal = _normal(origin)
        known = bool(normal) and await accounts.origin_is_known(self.store, normal)
        headers = [(b"vary", b"Origin"), (b"content-length", b"0")]
        if known:
            headers += [
                (b"access-control-allow-origin", origin.encode("latin-1", "replace")),
                (b"access-control-allow-methods", CORS_METHODS.encode()),
                (b"access-control-allow-headers", CORS_HEADERS.encode()),
                (b"access-control-max-age", b"600"),
            ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _normal(origin: str) -> str:
    try:
        return normalize_origin(origin)
    except ValueError:
        return ""
