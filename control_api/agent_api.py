"""Agent routes: who am I, visitors present, sessions, proxy tickets."""

from __future__ import annotations

import json
import re
import urllib.parse

from starlette.requests import Request
from starlette.responses import Response

from control_api import accounts, agents, proxy_access, sessions, visitors
from control_api.endpoint import Call, Endpoint, json_response
from control_api.exceptions import ApiError, invalid, not_found
from control_api.policy import agent_view, normalize_origin
from control_api.request_parsing import json_body, no_unknown, string
from control_api.visitor_api import session_for
from rewriter.exceptions import RewriteError
from rewriter.urls import Origin, ProxyConfig, encode_label

A = ("agent",)
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")


async def _agent_and_account(call: Call) -> tuple[agents.Agent, accounts.Account]:
    assert call.principal is not None
    agent = await agents.find(call.api.store, call.principal.id)
    account = await accounts.find(call.api.store, call.principal.account_id or "")
    if agent is None or agent.revoked or account is None:
        raise ApiError(401, "invalid_token", "the agent no longer exists")
    return agent, account


async def me(request: Request, call: Call) -> Response:
    agent, account = await _agent_and_account(call)
    policy = account.policy
    return json_response(
        {
            "agent": agent.public(),
            "account": {"id": account.id, "name": account.name, "cobrowse_enabled": account.cobrowse_enabled},
            "policy": agent_view(policy),
        }
    )


async def list_visitors(request: Request, call: Call) -> Response:
    _, account = await _agent_and_account(call)
    present = await visitors.present(call.api.store, account.id)
    # the account again, after the visitors: their views are then as new as their ``rev`` says
    # (an account change bumps its visitors' ``rev`` before it publishes them: ``presence``)
    account = await accounts.find(call.api.store, account.id) or account
    return json_response({"visitors": [visitors.view(account, v) for v in present]})


def _request_id(data: dict[str, object]) -> str | None:
    value = data.get("request_id")
    if value is None:
        return None
    if not isinstance(value, str) or not REQUEST_ID.fullmatch(value):
        raise invalid("request_id", "must be 16 to 64 characters of A-Z a-z 0-9 _ -")
    return value


def _made_by_request(record: dict[str, str], vid: str) -> Response:
    if record["visitor_id"] != vid:
        raise ApiError(409, "request_id_reused", "this request_id asked for another visitor")
    return json_response(sessions.public(record), 201)


async def create_session(request: Request, call: Call) -> Response:
    agent, account = await _agent_and_account(call)
    data = await json_body(request)
    no_unknown(data, ("visitor_id", "request_id"))
    vid = string(data, "visitor_id", required=True, max_len=64) or ""
    rid = _request_id(data)
    # The same request sent again (the console's answer was lost, its window asks for it) gets the
    # session it made, never a second one; looked up among this agent's requests only.
    earlier = await sessions.of_request(call.api.store, agent.id, rid) if rid else None
    if earlier is not None:
        return _made_by_request(earlier, vid)
    visitor = await visitors.find(call.api.store, vid)
    if visitor is None or visitor.account_id != account.id:
        raise not_found("visitor", vid)
    reason = visitors.availability(account, visitor)
    if reason == "feature_disabled":
        raise ApiError(403, "feature_disabled", visitors.UNAVAILABLE_DETAILS[reason])
    if reason != visitors.AVAILABLE:
        # its twin may have made the session that makes the visitor busy a moment ago
        earlier = await sessions.of_request(call.api.store, agent.id, rid) if rid else None
        if earlier is not None:
            return _made_by_request(earlier, vid)
        raise ApiError(409, reason, visitors.UNAVAILABLE_DETAILS[reason])
    record = await sessions.create(call.api.store, account, agent, visitor.id, request_id=rid)
    return _made_by_request(record, vid)


def enter_url(call: Call, sid: str, target: str, ticket: str) -> str:
    settings = call.api.settings
    proxy = ProxyConfig(settings.proxy_domain, settings.public_proxy_port, settings.proxy_public_scheme)
    label = encode_label(sid, Origin.parse(target))
    query = urllib.parse.urlencode({"ticket": ticket, "url": target})
    return f"{proxy.scheme}://{proxy.netloc(label)}/__cobrowse/enter?{query}"


def _target_url(record: dict[str, str], visitor_url: str | None) -> str:
    allowed = json.loads(record.get("allowed_origins") or "[]")
    if visitor_url:
        try:  # the visitor reported it: urlsplit too may refuse it ("http://[x")
            parts = urllib.parse.urlsplit(visitor_url)
            if normalize_origin(f"{parts.scheme}://{parts.netloc}") in allowed:
                return visitor_url
        except ValueError:
            pass
    if not allowed:
        raise ApiError(409, "no_allowed_origin", "the account's policy allows no origin to co-browse")
    return allowed[0] + "/"


async def proxy_ticket(request: Request, call: Call) -> Response:
    record = await session_for(call, request)
    if record["state"] != "active":
        raise ApiError(409, "session_not_active", f"session {record['id']} is {record['state']}")
    visitor = await visitors.find(call.api.store, record["visitor_id"])
    target = _target_url(record, visitor.state.get("url") if visitor else None)
    ttl = max(1, min(call.api.settings.ticket_ttl_s, 60))
    ticket = await proxy_access.store_ticket(call.api.store, record["id"], record["agent_id"], ttl)
    try:
        url = enter_url(call, record["id"], target, ticket)
    except RewriteError as exc:
        raise ApiError(409, "unsupported_url", "the visitor's URL cannot be co-browsed") from exc
    return json_response({"ticket": ticket, "expires_in": ttl, "enter_url": url})


ENDPOINTS = (
    Endpoint(
        "GET",
        "/me",
        me,
        "The calling agent, its account and the policy bits the console needs",
        A,
        response="Me",
        errors=(401, 403),
        tags=("agent",),
    ),
    Endpoint(
        "GET",
        "/visitors",
        list_visitors,
        "Visitors present, with URL, bandwidth and availability",
        A,
        response="VisitorList",
        errors=(401, 403),
        tags=("agent",),
    ),
    Endpoint(
        "POST",
        "/sessions",
        create_session,
        "Ask to co-browse with a visitor",
        A,
        201,
        "SessionCreate",
        response="Session",
        errors=(401, 403, 404, 409, 422),
        tags=("agent",),
    ),
    Endpoint(
        "POST",
        "/sessions/{sid}/proxy-ticket",
        proxy_ticket,
        "A one-time ticket to enter the proxy",
        A,
        response="ProxyTicket",
        errors=(401, 403, 404, 409),
        tags=("agent",),
    ),
)
