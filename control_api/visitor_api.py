"""Routes of web users (the banner) and the session routes shared by every side."""

from __future__ import annotations

import json
import re

from starlette.requests import Request
from starlette.responses import Response

from cobrowse.client_address import client_ip, rate_subject
from control_api import accounts, proxy_access, rate_limits, sessions, visitors
from control_api.auth import Principal
from control_api.endpoint import Call, Endpoint, QueryParam, json_response
from control_api.exceptions import ApiError, invalid, not_found
from control_api.policy import normalize_origin
from control_api.request_parsing import json_body, no_unknown, query_int, string
from control_api.seed_cookies import jar_records, parse_seed_cookies

MAX_BANDWIDTH_BYTES = 4 * 1024 * 1024
_ZEROS = bytes(64 * 1024)
# the banner's registration key: random, at least 128 bits (22 base64url characters)
REGISTRATION_KEY = re.compile(r"[A-Za-z0-9_-]{22,128}")


def allow_cors(request: Request, origins: list[str]) -> None:
    """Let the CORS middleware answer this request for exactly these origins."""
    request.state.cors_origins = list(origins)


def _request_origin(request: Request) -> str:
    raw = request.headers.get("origin")
    if not raw:
        raise ApiError(403, "origin_not_allowed", "registration needs the Origin of the page")
    try:
        return normalize_origin(raw)
    except ValueError as exc:
        raise ApiError(403, "origin_not_allowed", "the Origin header is not an origin") from exc


async def register_visitor(request: Request, call: Call) -> Response:
    data = await json_body(request)
    no_unknown(data, ("site_key", "registration"))
    site_key = string(data, "site_key", required=True, max_len=128) or ""
    registration_key = data.get("registration")
    if "registration" in data and (
        not isinstance(registration_key, str) or not REGISTRATION_KEY.fullmatch(registration_key)
    ):
        # (the value is never echoed: it names a visitor for two minutes)
        raise invalid("registration", "must be 22 to 128 of A-Z a-z 0-9 _ -")
    account = await accounts.by_site_key(call.api.store, site_key)
    if account is None:
        raise ApiError(403, "invalid_site_key", "unknown site key")
    allow_cors(request, account.allowed_origins)
    origin = _request_origin(request)
    if origin not in account.allowed_origins:
        raise ApiError(403, "origin_not_allowed", f"{origin} is not an allowed origin of this account")
    settings = call.api.settings
    address = client_ip(request.client.host if request.client else None,
                        request.headers.getlist("x-forwarded-for"), settings.trusted_proxies)
    limit = settings.visitor_registrations_per_min
    subject = f"{account.id}:{rate_subject(address)}"
    if not await rate_limits.allow(call.api.store, "register", subject, limit):
        # the site key is public: without a limit one script could fill the store and the
        # agents' visitor lists with registrations
        raise ApiError(429, "rate_limited", f"more than {limit} registrations a minute from this address")
    # with the key a tab copied from the tab that opened it before its registration was answered:
    # the visitor that registration made (same account and origin), with a token of its own
    visitor, token = await visitors.register(
        call.api.store, account, origin, call.api.settings.visitor_grace_s, registration_key
    )
    ws_base = call.api.settings.public_api_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    return json_response(
        {
            "visitor_id": visitor.id,
            "token": token,
            "account_id": account.id,
            "grace_s": call.api.settings.visitor_grace_s,
            "ws_url": ws_base + "/api/v1/visitor/ws",
            "cobrowse_enabled": account.cobrowse_enabled,
            "policy": {
                "seed_cookies": bool(account.policy["seed_cookies"]),
                "masked_selectors": list(account.policy["masked_selectors"]),
            },
        },
        201,
    )


async def session_for(call: Call, request: Request) -> dict[str, str]:
    """The session of the path, if the caller may act on it (404 otherwise: no probing)."""
    sid = request.path_params["sid"]
    principal = call.principal
    record = await sessions.get_record(call.api.store, sid)
    if record is None or principal is None or not _owns(principal, record):
        raise not_found("session", sid)
    if principal.kind == "visitor":
        account = await accounts.find(call.api.store, record["account_id"])
        allow_cors(request, account.allowed_origins if account else [])
    return record


def _owns(principal: Principal, record: dict[str, str]) -> bool:
    if principal.kind == "admin":
        return True
    if principal.kind == "agent":
        return record.get("agent_id") == principal.id
    return record.get("visitor_id") == principal.id


def _actor(principal: Principal | None) -> sessions.Actor:
    assert principal is not None
    return sessions.Actor(principal.kind, principal.id)


async def get_session(request: Request, call: Call) -> Response:
    return json_response(sessions.public(await session_for(call, request)))


async def accept_session(request: Request, call: Call) -> Response:
    record = await session_for(call, request)
    data = await json_body(request, required=False)
    no_unknown(data, ("cookies",))
    seeds = parse_seed_cookies(data.get("cookies"), json.loads(record.get("allowed_origins") or "[]"))
    new = await sessions.accept(call.api.store, record["id"], _actor(call.principal))
    if seeds and new.get("seed_cookies") == "1":
        await proxy_access.jar_update(call.api.store, new["id"], jar_records(seeds), ())
    return json_response(sessions.public(new))


async def refuse_session(request: Request, call: Call) -> Response:
    record = await session_for(call, request)
    return json_response(
        sessions.public(await sessions.refuse(call.api.store, record["id"], _actor(call.principal)))
    )


async def end_session(request: Request, call: Call) -> Response:
    record = await session_for(call, request)
    return json_response(
        sessions.public(await sessions.end(call.api.store, record["id"], _actor(call.principal)))
    )


async def bandwidth(request: Request, call: Call) -> Response:
    assert call.principal is not None
    account = await accounts.find(call.api.store, call.principal.account_id or "")
    allow_cors(request, account.allowed_origins if account else [])  # (its error too: the banner reads it)
    size = query_int(request, "bytes", 256 * 1024, 1, MAX_BANDWIDTH_BYTES)
    body = (_ZEROS * (size // len(_ZEROS) + 1))[:size]
    return Response(body, media_type="application/octet-stream", headers={"Cache-Control": "no-store"})


V = ("visitor",)
ALL = ("admin", "agent", "visitor")
ENDPOINTS = (
    Endpoint(
        "POST",
        "/visitors",
        register_visitor,
        "Register a web user (banner): site key + allowed Origin",
        (),
        201,
        "VisitorRegister",
        response="VisitorRegistered",
        errors=(403, 409, 422, 429),
        tags=("visitor",),
        visitor_cors=True,
    ),
    Endpoint(
        "GET",
        "/bandwidth",
        bandwidth,
        "N bytes to time a download (bandwidth measurement)",
        V,
        errors=(401, 403, 422),
        tags=("visitor",),
        visitor_cors=True,
        content_type="application/octet-stream",
        query=(
            QueryParam(
                "bytes",
                {"type": "integer", "minimum": 1, "maximum": MAX_BANDWIDTH_BYTES},
                "how many bytes (default 262144)",
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/sessions/{sid}",
        get_session,
        "Read a session (its agent, its visitor, or an admin)",
        ALL,
        response="Session",
        errors=(401, 404),
        tags=("sessions",),
        visitor_cors=True,
    ),
    Endpoint(
        "POST",
        "/sessions/{sid}/accept",
        accept_session,
        "The visitor accepts (optional seed cookies)",
        V,
        request="Accept",
        request_required=False,
        response="Session",
        errors=(401, 403, 404, 409, 422),
        tags=("sessions",),
        visitor_cors=True,
    ),
    Endpoint(
        "POST",
        "/sessions/{sid}/refuse",
        refuse_session,
        "The visitor refuses",
        V,
        response="Session",
        errors=(401, 403, 404, 409),
        tags=("sessions",),
        visitor_cors=True,
    ),
    Endpoint(
        "POST",
        "/sessions/{sid}/end",
        end_session,
        "End a session (its agent, its visitor, or an admin)",
        ALL,
        response="Session",
        errors=(401, 404, 409),
        tags=("sessions",),
        visitor_cors=True,
    ),
)
