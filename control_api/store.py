"""The one store interface: a ``redis.asyncio`` client plus a key/channel namespace.

``Store.connect(url)`` gives a real Redis for a URL and the embedded in-process store (fakeredis'
async client on a ``FakeServer``: same commands, TTLs, transactions and pub/sub) for ``None``/``""``.
The client decodes responses to ``str``. Every key and channel goes through ``key``/``channel``
so that tests (and tenants of one Redis) never meet. Redis errors become ``StoreUnavailable``
at the boundary: wrap store calls in ``with translate_errors():``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as redis_exceptions
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from control_api.exceptions import StoreUnavailable

log = logging.getLogger("cobrowse.api.store")

DEFAULT_NAMESPACE = "cobrowse:"
POOL_MAX_CONNECTIONS = 512
POOL_WAIT_S = 5.0

# Errors that mean "the store is not there right now" (as opposed to a bug in a command).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_exceptions.ConnectionError,
    redis_exceptions.TimeoutError,
    redis_exceptions.BusyLoadingError,
    ConnectionError,
    TimeoutError,
    OSError,
)

# A connection closed or refused; not a timeout (see ``_retry``).
CONNECTION_LOST = redis_exceptions.ConnectionError


def _retry() -> Retry:
    """A command whose connection is found closed goes again on a new one (twice at most).

    A Redis that restarted (or failed over) has closed every pooled connection: the next command
    on each found it closed, and each was a 503 or a socket closed with 1013 while Redis was back.
    Nothing reached the dead server then, so going again is safe. A connection lost after Redis
    ran the command (it reset as the answer came) would run it twice (an INCR, a PUBLISH): rare,
    and accepted for the restart's sake. A timeout is not tried again: the command may be running
    still. Nor is a transaction whose connection closed while it watched keys: redis-py raises
    ``WatchError`` and the transaction's own loop starts it again.
    """
    return Retry(ExponentialBackoff(cap=0.25, base=0.025), 2, (CONNECTION_LOST,))


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn redis connection failures inside the block into ``StoreUnavailable``."""
    try:
        yield
    except UNAVAILABLE_ERRORS as exc:
        log.warning("store unavailable: %s: %s", type(exc).__name__, exc)
        raise StoreUnavailable() from exc


class Store:
    """A Redis client (``self.redis``) and the namespace every key and channel lives under."""

    def __init__(self, redis: aioredis.Redis, namespace: str = DEFAULT_NAMESPACE, *, embedded: bool = False):
        # Any: redis-py types replies as bytes | str whatever decode_responses says; ours are str.
        self.redis: Any = redis
        self.namespace = namespace
        self.embedded = embedded

    @classmethod
    def connect(cls, url: str | None, namespace: str = DEFAULT_NAMESPACE, **options: Any) -> Store:
        """A store on the Redis at ``url``, or the embedded in-process store when ``url`` is empty.

        Synchronous: no connection is made until the first command. Each embedded store has its
        own ``FakeServer``; in one process, create the store once and hand it to every part.
        """
        if url:
            # A blocking pool: a burst of requests waits for a free connection instead of failing
            # at once with "Too many connections" (redis-py's default pool), which would be a 503
            # while Redis is perfectly healthy.
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                decode_responses=True,
                max_connections=options.pop("max_connections", POOL_MAX_CONNECTIONS),
                timeout=options.pop("pool_timeout", POOL_WAIT_S),
                socket_connect_timeout=options.pop("socket_connect_timeout", 2.0),
                socket_timeout=options.pop("socket_timeout", 5.0),
                health_check_interval=options.pop("health_check_interval", 10),
                retry=options.pop("retry", _retry()),
                retry_on_error=options.pop("retry_on_error", [CONNECTION_LOST]),
                **options,
            )
            return cls(aioredis.Redis.from_pool(pool), namespace)
        import fakeredis

        server = options.pop("server", None) or fakeredis.FakeServer()
        fake = fakeredis.FakeAsyncRedis(server=server, decode_responses=True, **options)
        return cls(fake, namespace, embedded=True)

    def key(self, *parts: str) -> str:
        return self.namespace + ":".join(parts)

    def channel(self, *parts: str) -> str:
        return self.namespace + ":".join(parts)

    async def ping(self) -> bool:
        with translate_errors():
            return bool(await self.redis.ping())

    async def close(self) -> None:
        try:
            await self.redis.aclose()
        except UNAVAILABLE_ERRORS:
            pass

    def __repr__(self) -> str:  # pragma: no cover - formatting only
        kind = "embedded" if self.embedded else "redis"
        return f"Store({kind}, namespace={self.namespace!r})"
