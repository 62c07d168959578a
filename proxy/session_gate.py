"""The session gate: a request is served only for an active session and the agent's credential.

Session state and credential checks are cached for at most ``CACHE_TTL_S`` and dropped at once
when ``session_ended_channel`` announces the end of a session, so an ended session is refused by
every proxy process within a second even if a pub/sub message is lost. The sessions with open
connections here are read again every ``RECHECK_S``, so a lost message does not leave their
downloads and WebSockets open either; and a session heard ended is never served again here, even
by a request that was being checked as the end was heard.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from redis.exceptions import RedisError

from control_api import proxy_access
from control_api.exceptions import StoreUnavailable
from control_api.proxy_access import ProxySession
from control_api.store import Store
from control_api.tasks import check_cancelled, stop
from proxy.exceptions import ProxyError, Refused

logger = logging.getLogger(__name__)

CACHE_TTL_S = 0.5
RENOTE_S = 60.0  # an address already noted is written again after this long (a lost key heals)
SUBSCRIBE_TIMEOUT_S = 10.0  # how long start() waits for the store (a Redis still starting)
ENDED_KEPT = 100_000  # session ids heard ended, kept so that no later answer can revive one
RECHECK_S = 1.0  # how often the sessions with open connections are read again (lost messages)
COOKIE_PREFIX = "__cb_"


def credential_cookie_name(sid: str) -> str:
    return f"{COOKIE_PREFIX}{sid}"


def credential_cookie(sid: str, credential: str, domain: str, secure: bool) -> str:
    """The ``Set-Cookie`` value of the proxy credential (docs/ARCHITECTURE.md, reserved paths).

    ``Priority=High`` (and ``Secure`` where the browser keeps it): a page that gets round the
    runtime can plant cookies for the whole proxy domain, and past the browser's limit per domain
    (Chromium: 180) it evicts cookies of lower priority, and insecure ones, first; so hundreds of
    tiny ones would otherwise take every session's credential with them."""
    parts = [f"{credential_cookie_name(sid)}={credential}", f"Domain={domain}", "Path=/", "HttpOnly",
             "SameSite=Lax", "Priority=High"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


@dataclass(frozen=True)
class _Cached:
    value: object
    at: float


class SessionGate:
    """Answers "may this request be served?" for one proxy process; caches briefly."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self._clock = clock
        self._sessions: dict[str, _Cached] = {}
        self._credentials: dict[tuple[str, str], _Cached] = {}
        # (sid, address) -> whether the agent's credential came from there; ``_noted``: written
        self._addresses: dict[tuple[str, str], _Cached] = {}
        self._noted: dict[tuple[str, str], float] = {}
        self._ended_listeners: list[Callable[[str], object]] = []
        # sessions heard ended (terminal states are final), oldest first; bounded by ENDED_KEPT
        self._ended_sids: dict[str, None] = {}
        # the sessions with open client connections here (set by the ``Connections`` addon)
        self._open_sessions: Callable[[], Iterable[str]] = tuple
        self._task: asyncio.Task[None] | None = None
        self._recheck_task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._last_error: Exception | None = None  # why the last subscription attempt failed

    # -- cache

    def _fresh(self, entry: _Cached | None) -> bool:
        return entry is not None and self._clock() - entry.at < CACHE_TTL_S

    def invalidate(self, sid: str) -> None:
        self._sessions.pop(sid, None)
        for key in [k for k in self._credentials if k[0] == sid]:
            del self._credentials[key]
        for key in [k for k in self._addresses if k[0] == sid]:
            del self._addresses[key]
        for key in [k for k in self._noted if k[0] == sid]:
            del self._noted[key]

    def has_ended(self, sid: str) -> bool:
        """Whether this process has heard that ``sid`` ended. A request that awaited the store
        while the end was heard (its connections closed before it was tracked) checks this
        once it has nothing more to await, and is refused."""
        return sid in self._ended_sids

    async def session(self, sid: str, *, fresh: bool = False) -> ProxySession | None:
        """The session as stored (None: unknown), cached unless ``fresh``."""
        entry = self._sessions.get(sid)
        if not fresh and entry is not None and self._fresh(entry):
            return entry.value  # type: ignore[return-value]
        try:
            found = await proxy_access.get_proxy_session(self.store, sid)
        except StoreUnavailable as exc:
            raise Refused("store_unavailable") from exc
        if sid in self._ended_sids:
            return found  # an answer read before the end was heard is not cached as the state
        self._sessions[sid] = _Cached(found, self._clock())
        if len(self._sessions) > 10_000:
            self._sessions.clear()
        return found

    async def active_session(self, sid: str, *, fresh: bool = False) -> ProxySession:
        """The session if it is active and not past its deadline; else ``Refused('not_active')``.
        ``fresh``: read from the store, not the cache."""
        found = await self.session(sid, fresh=fresh)
        if found is None or found.state != "active" or sid in self._ended_sids:
            raise Refused("not_active")
        if found.expires_at and found.expires_at < time.time():
            raise Refused("not_active", "past deadline")
        return found

    async def check(self, sid: str, credential: str | None) -> ProxySession:
        """Refuse unless ``sid`` is active and ``credential`` is one issued for it."""
        found = await self.active_session(sid)
        if not credential:
            raise Refused("no_credential")
        def ask() -> Awaitable[bool]:
            return proxy_access.check_credential(self.store, sid, credential)

        if not await self._cached(self._credentials, (sid, credential), ask):
            raise Refused("no_credential")
        return found

    async def _cached(
        self, cache: dict[tuple[str, str], _Cached], key: tuple[str, str], ask: Callable[[], Awaitable[bool]]
    ) -> bool:
        """``ask()`` the store, or its answer of less than ``CACHE_TTL_S`` ago."""
        entry = cache.get(key)
        if entry is None or not self._fresh(entry):
            try:
                ok = await ask()
            except StoreUnavailable as exc:
                raise Refused("store_unavailable") from exc
            entry = cache[key] = _Cached(ok, self._clock())
            if len(cache) > 10_000:
                cache.clear()
        return bool(entry.value)

    async def note_address(self, sid: str, address: str) -> None:
        """The credential of ``sid`` was just accepted from ``address``: remember it in the store
        (for every proxy process, until the session ends), at most once a minute per process."""
        key = (sid, address)
        noted = self._noted.get(key)
        if noted is not None and self._clock() - noted < RENOTE_S:
            return
        try:
            await proxy_access.note_agent_address(self.store, sid, address)
        except StoreUnavailable as exc:
            raise Refused("store_unavailable") from exc
        if len(self._noted) > 10_000:
            self._noted.clear()
        self._noted[key] = self._clock()
        self._addresses[key] = _Cached(True, self._clock())

    async def check_address(self, sid: str, address: str) -> ProxySession:
        """For a request the browser sends without credentials: refuse unless ``sid`` is active
        and its agent's credential has been accepted from ``address``."""
        found = await self.active_session(sid)
        if not await self._cached(
            self._addresses, (sid, address), lambda: proxy_access.is_agent_address(self.store, sid, address)
        ):
            raise Refused("no_credential")
        return found

    async def enter(self, sid: str, ticket: str) -> str:
        """Redeem ``ticket`` for session ``sid``; returns a new credential or refuses."""
        try:
            grant = await proxy_access.redeem_ticket(self.store, ticket)
        except StoreUnavailable as exc:
            raise Refused("store_unavailable") from exc
        if grant is None or grant.session_id != sid:
            raise Refused("bad_ticket")
        self.invalidate(sid)
        session = await self.active_session(sid)
        if session.agent_id and grant.agent_id != session.agent_id:
            raise Refused("bad_ticket")
        try:
            return await proxy_access.issue_credential(self.store, sid, grant.agent_id)
        except StoreUnavailable as exc:
            raise Refused("store_unavailable") from exc

    # -- session end notifications

    def on_ended(self, listener: Callable[[str], object]) -> None:
        self._ended_listeners.append(listener)

    def track_open_sessions(self, sessions: Callable[[], Iterable[str]]) -> None:
        """``sessions()`` names the sessions with open connections in this process: each is read
        again every ``RECHECK_S``, and ended here when it is no longer active. An end published
        while the subscription was down is never heard (redis-py even reconnects and subscribes
        again by itself, silently), and nothing else would close its downloads and WebSockets;
        nor those of a session past its deadline while no API process runs to end it."""
        self._open_sessions = sessions

    async def _ended(self, sid: str) -> None:
        self._ended_sids[sid] = None
        if len(self._ended_sids) > ENDED_KEPT:
            del self._ended_sids[next(iter(self._ended_sids))]
        self.invalidate(sid)
        for listener in self._ended_listeners:
            try:
                result = listener(sid)
                if inspect.isawaitable(result):
                    await result
            except Exception:  # a failing listener must not stop the others
                logger.exception("session-ended listener failed for %s", sid)

    async def start(self) -> None:
        """Subscribe to ``session_ended_channel``; returns once subscribed. Raises ``ProxyError``
        when the store cannot be reached within ``SUBSCRIBE_TIMEOUT_S``: a proxy that would not
        hear of sessions ending must not serve them (a Redis still starting has that long)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen(), name="cobrowse-session-ended")
        if self._recheck_task is None:
            self._recheck_task = asyncio.create_task(self._recheck_loop(), name="cobrowse-session-recheck")
        try:
            await asyncio.wait_for(self._subscribed.wait(), SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            await self.stop()
            reason = f": {self._last_error}" if self._last_error is not None else ""
            raise ProxyError(
                f"the proxy could not subscribe to session ends in Redis within {SUBSCRIBE_TIMEOUT_S:g} s"
                f"{reason}"
            ) from None

    async def stop(self) -> None:
        if self._task is not None:
            await stop(self._task)
            self._task = None
        if self._recheck_task is not None:
            await stop(self._recheck_task)
            self._recheck_task = None

    async def _recheck_open_sessions(self) -> None:
        """End here every session with open connections that is no longer active in the store."""
        for sid in list(self._open_sessions()):
            try:
                await self.active_session(sid, fresh=True)
            except Refused as exc:
                if exc.page == "store_unavailable":
                    return  # no answer is no news: the next round asks again
                if sid not in self._ended_sids:
                    await self._ended(sid)

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(RECHECK_S)
            try:
                await self._recheck_open_sessions()
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one bad round stop the checks
                logger.exception("re-reading the sessions with open connections failed")

    async def _listen(self) -> None:
        channel = proxy_access.session_ended_channel(self.store)
        backoff = 0.1
        while True:
            pubsub = self.store.redis.pubsub()
            try:
                await pubsub.subscribe(channel)
                self._subscribed.set()
                # anything may have ended while we were not subscribed
                self._sessions.clear()
                self._credentials.clear()
                self._addresses.clear()
                self._noted.clear()
                backoff = 0.1
                while True:
                    check_cancelled()
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is None:
                        continue
                    data = message.get("data")
                    if isinstance(data, bytes):
                        data = data.decode("utf-8", "replace")
                    if isinstance(data, str):
                        await self._ended(data)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._last_error = exc
                logger.warning("session-ended subscription lost (%s); retrying", exc)
            finally:
                try:
                    await pubsub.aclose()
                except (RedisError, OSError):  # closing a broken connection may fail again
                    logger.debug("closing pubsub failed", exc_info=True)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 2.0)
