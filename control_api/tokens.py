"""Random tokens and ids; tokens are only ever stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALNUM = string.ascii_lowercase + string.digits


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_session_id() -> str:
    """ARCHITECTURE.md: ``^[a-z][a-z0-9]{9}$``."""
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(_ALNUM) for _ in range(9))


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALNUM) for _ in range(16))
