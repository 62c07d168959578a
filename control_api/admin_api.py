"""Administrator routes: accounts, policy, agents, site keys, audit."""

from __future__ import annotations

import asyncio
import random
import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from control_api import accounts, agents, audit, presence, sessions, visitors
from control_api.endpoint import Call, Endpoint, QueryParam, json_response, no_content
from control_api.exceptions import ApiError, invalid, not_found
from control_api.policy import narrows, validate_policy
from control_api.request_parsing import boolean, display_text, json_body, no_unknown, query_float, query_int

ADMIN = ("admin",)
CURSOR_RE = re.compile(r"^[0-9]{1,20}-[0-9]{1,20}$")
MAX_STREAM_PART = 2**64 - 1  # a Redis stream id is two unsigned 64-bit numbers


async def create_account(request: Request, call: Call) -> Response:
    data = await json_body(request)
    no_unknown(data, ("name", "cobrowse_enabled", "policy"))
    name = display_text(data, "name", required=True)
    enabled = boolean(data, "cobrowse_enabled") or False
    policy = data.get("policy")
    if policy is not None and not isinstance(policy, dict):
        raise invalid("policy", "must be an object")
    account = await accounts.create(call.api.store, name or "", enabled, policy)
    return json_response(account.public(), 201)


async def list_accounts(request: Request, call: Call) -> Response:
    return json_response({"accounts": [a.public() for a in await accounts.list_all(call.api.store)]})


async def get_account(request: Request, call: Call) -> Response:
    return json_response((await accounts.get(call.api.store, request.path_params["aid"])).public())


async def _end_all(call: Call, sids: list[str], reason: str) -> None:
    for sid in sids:
        try:
            await sessions.end(call.api.store, sid, sessions.Actor("admin", "admin"), reason)
        except ApiError as exc:  # already over, or gone: nothing to end
            if exc.status >= 500:
                raise


async def patch_account(request: Request, call: Call) -> Response:
    data = await json_body(request)
    no_unknown(data, ("name", "cobrowse_enabled"))
    for key in ("name", "cobrowse_enabled"):  # (null changed nothing and said 200)
        if key in data and data[key] is None:
            raise invalid(key, "must not be null: leave it out to keep it")
    name = display_text(data, "name", required=False)
    enabled = boolean(data, "cobrowse_enabled")
    aid = request.path_params["aid"]
    account = await accounts.update(call.api.store, aid, name=name, cobrowse_enabled=enabled)
    if enabled is False:
        await _end_all(call, await sessions.live_of_account(call.api.store, aid), "feature_disabled")
    if enabled is not None:
        await presence.publish_account(call.api.store, aid)
    return json_response(account.public())


async def delete_account(request: Request, call: Call) -> Response:
    aid = request.path_params["aid"]
    # Off first: a session asked for from now on is refused (``sessions.create`` reads the flag in
    # its transaction); one asked for after the live ones were ended would have outlived the
    # account. A deletion that fails half-way leaves the account, off, to be deleted again.
    await accounts.update(call.api.store, aid, cobrowse_enabled=False)
    await _end_all(call, await sessions.live_of_account(call.api.store, aid), "account_deleted")
    await agents.delete_all_for(call.api.store, aid)
    await accounts.delete(call.api.store, aid)
    # last: the visitors' sockets would otherwise go on reporting pages to an account that is gone
    await visitors.close_all_for(call.api.store, aid)
    return no_content()


async def get_policy(request: Request, call: Call) -> Response:
    return json_response((await accounts.get(call.api.store, request.path_params["aid"])).policy)


POLICY_RETRIES = 12


async def _end_narrowed(call: Call, aid: str, policy: dict[str, Any]) -> None:
    """End the account's live sessions that ``policy`` narrows, each judged by the policy it was
    made under (whatever other writes came between)."""
    store = call.api.store
    for sid in await sessions.live_of_account(store, aid):
        record = await sessions.get_record(store, sid)
        if record is None:
            continue
        if narrows(sessions.policy_of(record), policy, pending=record["state"] == "pending"):
            await _end_all(call, [sid], "policy_changed")


async def put_policy(request: Request, call: Call) -> Response:
    account = await accounts.get(call.api.store, request.path_params["aid"])
    updated = await accounts.set_policy(call.api.store, account.id, validate_policy(await json_body(request)))
    await _end_narrowed(call, account.id, updated.policy)
    await presence.publish_policy(call.api.store, account.id, updated.policy)
    await presence.publish_account(call.api.store, account.id)
    return json_response(updated.policy)


async def patch_policy(request: Request, call: Call) -> Response:
    data = await json_body(request)
    for attempt in range(POLICY_RETRIES):  # a PATCH applies to the policy it read, never over another write
        account = await accounts.get(call.api.store, request.path_params["aid"])
        policy = validate_policy(data, base=account.policy)
        try:
            updated = await accounts.set_policy(call.api.store, account.id, policy, base=account.policy)
        except accounts.PolicyChanged:
            # another write came first: again after a random pause that grows, so that changes
            # made at once (a script's) go one after the other rather than in step (5 tries with
            # no pause: 5 of 10 at once got 409)
            await asyncio.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))
            continue
        await _end_narrowed(call, account.id, updated.policy)
        await presence.publish_policy(call.api.store, account.id, updated.policy)
        await presence.publish_account(call.api.store, account.id)
        return json_response(updated.policy)
    raise ApiError(409, "conflict", "the policy kept changing while this change was applied; try again")


async def create_agent(request: Request, call: Call) -> Response:
    account = await accounts.get(call.api.store, request.path_params["aid"])
    data = await json_body(request)
    no_unknown(data, ("display_name",))
    name = display_text(data, "display_name", required=True)
    agent, token = await agents.create(call.api.store, account.id, name or "")
    return json_response({**agent.public(), "token": token}, 201)


async def list_agents(request: Request, call: Call) -> Response:
    account = await accounts.get(call.api.store, request.path_params["aid"])
    return json_response({"agents": [a.public() for a in await agents.list_for(call.api.store, account.id)]})


async def list_live_sessions(request: Request, call: Call) -> Response:
    """The account's live sessions (waiting for the visitor's answer, or active), oldest first:
    what an administrator looks at before ending one. Ended ones are in the audit trail."""
    account = await accounts.get(call.api.store, request.path_params["aid"])
    records = [await sessions.get_record(call.api.store, sid) for sid in await sessions.live_of_account(
        call.api.store, account.id
    )]
    live = [sessions.public(r) for r in records if r is not None and r["state"] in sessions.LIVE]
    live.sort(key=lambda s: (s["created_at"] or 0, s["id"]))
    return json_response({"sessions": live})


async def revoke_agent(request: Request, call: Call) -> Response:
    account = await accounts.get(call.api.store, request.path_params["aid"])
    agent = await agents.revoke(call.api.store, account.id, request.path_params["agent_id"])
    await _end_all(call, await sessions.live_of_agent(call.api.store, agent.id), "agent_revoked")
    return no_content()


async def rotate_site_key(request: Request, call: Call) -> Response:
    account = await accounts.rotate_site_key(call.api.store, request.path_params["aid"])
    return json_response({"site_key": account.site_key})


def _stream_id_before_last(cursor: str) -> bool:
    """Whether ``cursor`` is a stream id Redis takes as the exclusive start of a range: in range
    (Redis refuses 20 digits past 2**64 - 1) and not the last id there is (nothing comes after
    it; Redis refuses the interval). ``fullmatch``: ``$`` would let a trailing newline through."""
    if not CURSOR_RE.fullmatch(cursor):
        return False
    ms, seq = (int(part) for part in cursor.split("-"))
    return ms <= MAX_STREAM_PART and seq <= MAX_STREAM_PART and (ms, seq) != (MAX_STREAM_PART,) * 2


def _audit_query(request: Request) -> audit.AuditQuery:
    cursor = request.query_params.get("cursor")
    if cursor is not None and not _stream_id_before_last(cursor):
        raise invalid("cursor", "must be a next_cursor value from a previous page")
    since, until = query_float(request, "since"), query_float(request, "until")
    if since is not None and until is not None and since > until:
        raise invalid("since", "must not be after until")
    return audit.AuditQuery(since, until, cursor, query_int(request, "limit", 100, 1, 1000))


async def account_audit(request: Request, call: Call) -> Response:
    account = await accounts.get(call.api.store, request.path_params["aid"])
    page = await audit.query(
        call.api.store, audit.account_stream(call.api.store, account.id), _audit_query(request)
    )
    return json_response(page)


async def session_audit(request: Request, call: Call) -> Response:
    sid = request.path_params["sid"]
    query = _audit_query(request)
    if not sessions.valid_session_id(sid):
        raise not_found("session", sid)
    page = await audit.query(call.api.store, audit.session_stream(call.api.store, sid), query)
    if not page["entries"] and await sessions.get_record(call.api.store, sid) is None:
        raise not_found("session", sid)
    return json_response(page)


AUDIT_QUERY = (
    QueryParam(
        "since", {"type": "number", "minimum": 0}, "entries whose `time` is at or after this unix time (s)"
    ),
    QueryParam(
        "until", {"type": "number", "minimum": 0}, "entries whose `time` is at or before this unix time (s)"
    ),
    QueryParam(
        "cursor", {"type": "string", "pattern": CURSOR_RE.pattern}, "next_cursor of the previous page"
    ),
    QueryParam("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "entries per page (default 100)"),
)

E = (401, 403)
ENDPOINTS = (
    Endpoint(
        "POST",
        "/accounts",
        create_account,
        "Create an account",
        ADMIN,
        201,
        "AccountCreate",
        response="Account",
        errors=(*E, 422),
        tags=("admin",),
    ),
    Endpoint(
        "GET",
        "/accounts",
        list_accounts,
        "List accounts",
        ADMIN,
        response="AccountList",
        errors=E,
        tags=("admin",),
    ),
    Endpoint(
        "GET",
        "/accounts/{aid}",
        get_account,
        "Read an account",
        ADMIN,
        response="Account",
        errors=(*E, 404),
        tags=("admin",),
    ),
    Endpoint(
        "PATCH",
        "/accounts/{aid}",
        patch_account,
        "Rename an account or switch co-browse on/off",
        ADMIN,
        request="AccountPatch",
        response="Account",
        errors=(*E, 404, 422),
        tags=("admin",),
    ),
    Endpoint(
        "DELETE",
        "/accounts/{aid}",
        delete_account,
        "Delete an account (ends its sessions)",
        ADMIN,
        204,
        errors=(*E, 404),
        tags=("admin",),
    ),
    Endpoint(
        "GET",
        "/accounts/{aid}/policy",
        get_policy,
        "Read the policy",
        ADMIN,
        response="Policy",
        errors=(*E, 404),
        tags=("admin",),
    ),
    Endpoint(
        "PUT",
        "/accounts/{aid}/policy",
        put_policy,
        "Replace the policy (missing keys: defaults)",
        ADMIN,
        request="PolicyPatch",
        response="Policy",
        errors=(*E, 404, 422),
        tags=("admin",),
    ),
    Endpoint(
        "PATCH",
        "/accounts/{aid}/policy",
        patch_policy,
        "Change some policy keys (409 conflict: other changes kept coming first; try again)",
        ADMIN,
        request="PolicyPatch",
        response="Policy",
        errors=(*E, 404, 409, 422),
        tags=("admin",),
    ),
    Endpoint(
        "POST",
        "/accounts/{aid}/agents",
        create_agent,
        "Create an agent (token shown once)",
        ADMIN,
        201,
        "AgentCreate",
        response="AgentCreated",
        errors=(*E, 404, 422),
        tags=("admin",),
    ),
    Endpoint(
        "GET",
        "/accounts/{aid}/agents",
        list_agents,
        "List agents",
        ADMIN,
        response="AgentList",
        errors=(*E, 404),
        tags=("admin",),
    ),
    Endpoint(
        "GET",
        "/accounts/{aid}/sessions",
        list_live_sessions,
        "The account's live sessions (pending or active), oldest first (POST /sessions/{sid}/end ends one)",
        ADMIN,
        response="SessionList",
        errors=(*E, 404),
        tags=("admin",),
    ),
    Endpoint(
        "DELETE",
        "/accounts/{aid}/agents/{agent_id}",
        revoke_agent,
        "Revoke an agent (ends its sessions)",
        ADMIN,
        204,
        errors=(*E, 404),
        tags=("admin",),
    ),
    Endpoint(
        "POST",
        "/accounts/{aid}/site-key/rotate",
        rotate_site_key,
        "Rotate the public site key",
        ADMIN,
        response="SiteKey",
        errors=(*E, 404),
        tags=("admin",),
    ),
    Endpoint(
        "GET",
        "/accounts/{aid}/audit",
        account_audit,
        "Audit entries of an account",
        ADMIN,
        response="AuditPage",
        errors=(*E, 404, 422),
        query=AUDIT_QUERY,
        tags=("admin",),
    ),
    Endpoint(
        "GET",
        "/sessions/{sid}/audit",
        session_audit,
        "Audit entries of a session",
        ADMIN,
        response="AuditPage",
        errors=(*E, 404, 422),
        query=AUDIT_QUERY,
        tags=("admin",),
    ),
)
