"""Handoff codes: the same visitor on another of its account's allowed origins.

A tab's identity lives in ``sessionStorage``, which is per origin: a visitor who follows a link
from ``www.shop.example`` to ``checkout.shop.example`` would register there as a new visitor, and
the agent lose them at the checkout. The banner asks for a code (with its visitor token) before
such a navigation and carries it in the URL's fragment, which no server sees; the banner on the
other origin registers with it and gets the same visitor with a token of its own.

A code is random (256 bits), stored only as SHA-256, for ``CODE_TTL_S`` seconds, bound to the
visitor's account, and redeemed at most once (``GETDEL``). Registration checks the new origin
against the account's ``allowed_origins`` before it redeems anything.
"""

from __future__ import annotations

from control_api import keys
from control_api.store import Store, translate_errors
from control_api.tokens import digest, new_token

CODE_TTL_S = 60
MAX_CODE_LEN = 128
HANDOFFS_PER_MIN = 30  # codes one visitor may ask for in a minute (each lives a minute)


async def issue(store: Store, account_id: str, vid: str) -> str:
    """A new code that registers as ``vid`` on another allowed origin of ``account_id``."""
    code = new_token()
    with translate_errors():
        await store.redis.set(keys.handoff(store, digest(code)), f"{account_id} {vid}", ex=CODE_TTL_S)
    return code


async def redeem(store: Store, account_id: str, code: str) -> str | None:
    """The visitor id the code was issued for, once; None for a code unknown, used, expired, or
    of another account (used up all the same: a code is tried once)."""
    if not code or len(code) > MAX_CODE_LEN:
        return None
    with translate_errors():
        value = await store.redis.getdel(keys.handoff(store, digest(code)))
    if not value:
        return None
    issued_account, _, vid = value.partition(" ")
    return vid if issued_account == account_id and vid else None
