"""Random tokens and ids; tokens are only ever stored as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets
import string

_ALNUM = string.ascii_lowercase + string.digits
# what an id from a client may look like before it goes into a store key: never ":", the
# separator (``vis_x:conns`` named another key of another type: a WRONGTYPE error, a 500)
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_session_id() -> str:
    """ARCHITECTURE.md: ``^[a-z][a-z0-9]{9}$``."""
    return secrets.choice(string.ascii_lowercase) + "".join(secrets.choice(_ALNUM) for _ in range(9))


def plausible_id(text: str) -> bool:
    """Whether ``text`` may be an id of ours (``new_id``); anything else names nothing."""
    return isinstance(text, str) and _ID.fullmatch(text) is not None


def new_id(prefix: str) -> str:
    return prefix + "_" + "".join(secrets.choice(_ALNUM) for _ in range(16))
