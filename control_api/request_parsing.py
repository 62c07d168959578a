"""Reading HTTP requests: bounded JSON bodies and query parameters, with 4xx errors naming the field."""

from __future__ import annotations

import asyncio
import math
import re
import sys
from typing import Any

from starlette.requests import Request

from control_api import json_text
from control_api.exceptions import ApiError, invalid

MAX_BODY_BYTES = 256 * 1024
# from the app's first read to the body's last byte: the head has its own deadline
# (``cobrowse.api_protocol``), and without this one a client that sent a head and then a byte of
# its body now and then held the connection (and its file descriptor) for ever; 256 KiB, the
# largest body, takes about 40 s at 56 kbit/s, and the API's bodies are a few hundred bytes
BODY_TIMEOUT_S = 30.0
# C0 and C1 controls (DEL too), the line and paragraph separators, the bidirectional marks,
# embeddings, overrides and isolates, as a class body both Python and the OpenAPI document's
# ECMAScript patterns read: in a name people read, they break the line it is shown on or reorder
# the text around it (a name that reads as another)
UNSAFE_TEXT_CHARS = r"\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069"
UNSAFE_TEXT = re.compile(f"[{UNSAFE_TEXT_CHARS}]")


async def json_body(request: Request, *, required: bool = True) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes")
    chunks = bytearray()
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                chunks.extend(chunk)
                if len(chunks) > MAX_BODY_BYTES:
                    raise ApiError(413, "payload_too_large", f"bodies are limited to {MAX_BODY_BYTES} bytes")
    except TimeoutError as exc:
        raise ApiError(
            408, "request_timeout", f"the request body did not arrive within {BODY_TIMEOUT_S:g} s"
        ) from exc
    if not chunks.strip():
        if required:
            raise ApiError(422, "invalid_json", "a JSON object body is required")
        return {}
    try:
        data = json_text.loads(bytes(chunks))
    except UnicodeDecodeError as exc:
        raise ApiError(422, "invalid_json", "the body is not UTF-8 text") from exc
    except ValueError as exc:
        why = str(exc)
        if "int_max_str_digits" in why:  # (Python's own words: say it in ours)
            why = f"a number has more than {sys.get_int_max_str_digits()} digits"
        raise ApiError(422, "invalid_json", f"the body is not usable JSON: {why}") from exc
    if not isinstance(data, dict):
        raise ApiError(422, "invalid_json", "the body must be a JSON object")
    return data


def no_unknown(data: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for name in data:
        if name not in allowed:
            raise invalid(str(name), "unknown field")


def string(
    data: dict[str, Any], name: str, *, required: bool, max_len: int = 200, min_len: int = 1
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise invalid(name, "is required")
        return None
    if not isinstance(value, str) or not min_len <= len(value.strip()) <= max_len:
        raise invalid(name, f"must be a string of {min_len} to {max_len} characters")
    return value.strip()


def display_text(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    """A ``string`` shown to people (an account's or an agent's name)."""
    value = string(data, name, required=required)
    if value is not None and UNSAFE_TEXT.search(value):
        raise invalid(name, "must not contain control characters or bidirectional formatting characters")
    return value


def boolean(data: dict[str, Any], name: str) -> bool | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise invalid(name, "must be a boolean")
    return value


def query_float(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError as exc:
        raise invalid(name, "must be a number (unix time in seconds)") from exc
    if not math.isfinite(value) or not 0 <= value <= 1e11:
        raise invalid(name, "must be a unix time in seconds")
    return value


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise invalid(name, "must be an integer") from exc
    if not low <= value <= high:
        raise invalid(name, f"must be between {low} and {high}")
    return value
