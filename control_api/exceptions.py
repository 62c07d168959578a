"""Errors of the control API.

    ApiError(status, code, detail)        -> JSON {"error": code, "detail": detail} with status
     ├── StoreUnavailable                 -> 503 store_unavailable (any redis connection/timeout error)
     └── InvalidTransition                -> 409 invalid_transition (a session is not in the state the
                                             action needs; racing callers branch on it)

Everything a client may cause is an ``ApiError``; anything else is a fault and becomes a bare 500.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    def __init__(self, status: int, code: str, detail: str = "", field: str | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field

    def body(self) -> dict[str, str]:
        body = {"error": self.code, "detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        return body


class StoreUnavailable(ApiError):
    """The store (Redis) cannot be reached or did not answer in time."""

    def __init__(self, detail: str = "the state store is unavailable") -> None:
        super().__init__(503, "store_unavailable", detail)


class InvalidTransition(ApiError):
    """The session's current state does not allow the requested transition."""

    def __init__(self, session_id: str, state: str, action: str) -> None:
        super().__init__(409, "invalid_transition", f"session {session_id} is {state}: cannot {action}")
        self.state = state


MAX_ECHOED_ID = 64  # our ids are about 20 characters: a longer one is only the client's own text


def not_found(what: str, ident: str = "") -> ApiError:
    # enough of the id to recognise it, not whatever length the client sent (up to a URL's limit)
    shown = ident if len(ident) <= MAX_ECHOED_ID else ident[:MAX_ECHOED_ID] + "..."
    return ApiError(404, f"{what}_not_found", f"no such {what}" + (f": {shown}" if shown else ""))


def invalid(field: str, detail: str) -> ApiError:
    return ApiError(422, "invalid_request", f"{field}: {detail}", field=field)
