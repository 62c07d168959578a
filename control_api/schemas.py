"""JSON Schemas of request and response bodies, referenced from the OpenAPI document."""

from __future__ import annotations

from typing import Any

from control_api.policy import policy_schema
from control_api.request_parsing import UNSAFE_TEXT_CHARS

NUM = {"type": "number"}
NUM_OR_NULL = {"type": ["number", "null"]}
STR = {"type": "string"}
STR_OR_NULL = {"type": ["string", "null"]}
BOOL = {"type": "boolean"}
DISPLAY_TEXT = {"type": "string", "minLength": 1, "maxLength": 200, "pattern": f"^[^{UNSAFE_TEXT_CHARS}]*$"}


def obj(properties: dict[str, Any], required: list[str] | None = None, extra: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    schema["required"] = list(properties) if required is None else required
    if not extra:
        schema["additionalProperties"] = False
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


SESSION_STATES = ["pending", "active", "ended", "refused", "expired"]
REASONS = [
    "available", "feature_disabled", "origin_not_allowed", "low_bandwidth", "visitor_offline",
    "request_pending", "session_live",
]

COMPONENTS: dict[str, dict[str, Any]] = {
    "Error": obj({"error": STR, "detail": STR, "field": STR}, required=["error", "detail"]),
    "Policy": policy_schema(required=True),
    "PolicyPatch": policy_schema(required=False),
    "Account": obj(
        {
            "id": STR,
            "name": STR,
            "cobrowse_enabled": BOOL,
            "site_key": STR,
            "created_at": NUM,
            "policy": ref("Policy"),
        }
    ),
    "AccountList": obj({"accounts": {"type": "array", "items": ref("Account")}}),
    "AccountCreate": obj(
        {
            "name": DISPLAY_TEXT,
            "cobrowse_enabled": BOOL,
            "policy": ref("PolicyPatch"),
        },
        required=["name"],
        extra=False,
    ),
    "AccountPatch": obj(
        {
            "name": DISPLAY_TEXT,
            "cobrowse_enabled": BOOL,
        },
        required=[],
        extra=False,
    ),
    "Agent": obj({"id": STR, "account_id": STR, "display_name": STR, "created_at": NUM, "revoked": BOOL}),
    "AgentCreated": obj(
        {
            "id": STR,
            "account_id": STR,
            "display_name": STR,
            "created_at": NUM,
            "revoked": BOOL,
            "token": {"type": "string", "description": "shown once; store it now"},
        }
    ),
    "AgentList": obj({"agents": {"type": "array", "items": ref("Agent")}}),
    "AgentCreate": obj({"display_name": DISPLAY_TEXT}, extra=False),
    "SiteKey": obj({"site_key": STR}),
    "AuditEntry": obj(
        {
            "id": STR,
            "session_id": STR,
            "account_id": STR,
            "actor_kind": STR,
            "actor_id": STR,
            "from": STR,
            "to": STR,
            "reason": STR_OR_NULL,
            "time": NUM,
        }
    ),
    "AuditPage": obj({"entries": {"type": "array", "items": ref("AuditEntry")}, "next_cursor": STR_OR_NULL}),
    "Session": obj(
        {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9]{9}$"},
            "state": {"type": "string", "enum": SESSION_STATES},
            "account_id": STR,
            "agent_id": STR,
            "agent_name": STR,
            "visitor_id": STR,
            "consent": {"type": "string", "enum": ["request", "none"]},
            "agent_interface": {"type": "string", "enum": ["popin", "tab"]},
            "agent_can_navigate": BOOL,
            "seed_cookies": BOOL,
            "masked_selectors": {"type": "array", "items": STR},
            "created_at": NUM_OR_NULL,
            "updated_at": NUM_OR_NULL,
            "activated_at": NUM_OR_NULL,
            "ended_at": NUM_OR_NULL,
            "reason": STR_OR_NULL,
            "consent_deadline": NUM_OR_NULL,
            "expires_at": NUM_OR_NULL,
            "idle_timeout_s": NUM_OR_NULL,
        }
    ),
    "SessionList": obj({"sessions": {"type": "array", "items": ref("Session")}}),
    "SessionCreate": obj(
        {
            "visitor_id": {"type": "string", "minLength": 1, "maxLength": 64},
            # chosen by the client: the same request sent again gets the session it made
            "request_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{16,64}$"},
        },
        required=["visitor_id"],
        extra=False,
    ),
    "SeedCookie": obj(
        {
            "name": {"type": "string", "minLength": 1, "maxLength": 256},
            "value": {"type": "string", "maxLength": 4096},
            "url": {"type": "string", "maxLength": 4096},
        },
        extra=False,
    ),
    "Accept": obj(
        {"cookies": {"type": "array", "maxItems": 200, "items": ref("SeedCookie")}}, required=[], extra=False
    ),
    "ProxyTicket": obj(
        {
            "ticket": STR,
            "expires_in": {"type": "integer", "minimum": 1, "maximum": 60},
            "enter_url": {"type": "string", "format": "uri"},
        }
    ),
    "VisitorRegister": obj(
        {
            "site_key": {"type": "string", "minLength": 1, "maxLength": 128},
            # random (>= 128 bits), kept in the tab's sessionStorage before the banner asks: a tab
            # that copied it meanwhile (window.open) registers with it as the same visitor
            "registration": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22,128}$"},
        },
        required=["site_key"],
        extra=False,
    ),
    "VisitorRegistered": obj(
        {
            "visitor_id": STR,
            "token": STR,
            "account_id": STR,
            "grace_s": NUM,
            "ws_url": STR,
            "cobrowse_enabled": BOOL,
            "policy": obj({"seed_cookies": BOOL, "masked_selectors": {"type": "array", "items": STR}}),
        }
    ),
    "VisitorView": obj(
        {
            "id": STR,
            "online": BOOL,
            "last_seen": NUM,
            "url": STR_OR_NULL,
            "title": STR_OR_NULL,
            "bandwidth_kbps": NUM_OR_NULL,
            "viewport": {"oneOf": [{"type": "null"}, obj({"width": NUM, "height": NUM})]},
            "live_session": STR_OR_NULL,
            "cobrowse": obj({"available": BOOL, "reason": {"type": "string", "enum": REASONS}}),
            "rev": {"type": "integer", "minimum": 0},
        }
    ),
    "VisitorList": obj({"visitors": {"type": "array", "items": ref("VisitorView")}}),
    "Me": obj(
        {
            "agent": ref("Agent"),
            "account": obj({"id": STR, "name": STR, "cobrowse_enabled": BOOL}),
            "policy": obj(
                {
                    "agent_interface": STR,
                    "agent_can_navigate": BOOL,
                    "consent": STR,
                    "min_bandwidth_kbps": NUM,
                }
            ),
        }
    ),
    "Status": obj({"status": STR}),
    "Readiness": obj({"status": STR, "store": STR}),
}
