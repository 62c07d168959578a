"""Who is calling: bearer tokens resolved to a ``Principal`` by one ASGI middleware.

Admin: ``settings.admin_token`` (constant-time compare). Agents and visitors: ``token:{sha256}`` in
the store. Tokens are never logged. A request with a token that resolves to nothing is answered
401 ``invalid_token`` by the route that needs a principal.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from control_api import keys
from control_api.exceptions import ApiError
from control_api.store import Store, translate_errors
from control_api.tokens import digest

KINDS = ("admin", "agent", "visitor")
MAX_TOKEN_LEN = 512


@dataclass(frozen=True)
class Principal:
    kind: str  # admin | agent | visitor
    id: str
    account_id: str | None


async def resolve(store: Store, admin_token: str, token: str) -> Principal | None:
    if not token or len(token) > MAX_TOKEN_LEN:
        return None
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("admin", "admin", None)
    with translate_errors():
        record = await store.redis.hgetall(keys.token(store, digest(token)))
    if record.get("kind") in ("agent", "visitor") and record.get("id"):
        return Principal(record["kind"], record["id"], record.get("account_id"))
    return None


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class AuthMiddleware:
    """Puts ``principal`` (or None) and ``token_given`` into ``scope["state"]`` for HTTP requests."""

    def __init__(self, app: ASGIApp, store: Store, admin_token: str) -> None:
        self.app = app
        self.store = store
        self.admin_token = admin_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            state = scope.setdefault("state", {})
            token = bearer(HTTPConnection(scope).headers.get("authorization"))
            state["token_given"] = token is not None
            state["principal"] = await resolve(self.store, self.admin_token, token) if token else None
            # (a socket reads its token again later: ``control_api.ws``)
            if scope["type"] == "websocket":
                state["token_digest"] = digest(token) if token and len(token) <= MAX_TOKEN_LEN else ""
        await self.app(scope, receive, send)


def require(conn: HTTPConnection, kinds: tuple[str, ...]) -> Principal:
    """The caller, if its kind is one of ``kinds``; else 401 (no/invalid token) or 403 (wrong kind)."""
    principal: Principal | None = conn.state.principal if hasattr(conn.state, "principal") else None
    if principal is None:
        if getattr(conn.state, "token_given", False):
            raise ApiError(401, "invalid_token", "the bearer token is not valid")
        raise ApiError(401, "unauthorized", "a bearer token is required")
    if principal.kind not in kinds:
        raise ApiError(403, "forbidden", f"this route is for {' or '.join(kinds)} tokens")
    return principal
