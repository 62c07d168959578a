"""One pub/sub connection per API process, fanned out to local WebSocket connections; and one
batching publisher for the sync messages the sockets relay.

``subscribe(channel, sink)`` returns once Redis has confirmed the subscription, so a message
published after it returns is delivered. Sinks are plain callables taking the message text; they
must not block (WebSocket connections put the text on their own bounded queue). When the store goes
away the hub reconnects on its own and subscribes again to every channel.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from control_api.store import UNAVAILABLE_ERRORS, Store
from control_api.tasks import check_cancelled, stop

log = logging.getLogger("cobrowse.api.hub")

Sink = Callable[[str], None]
CONFIRM_TIMEOUT_S = 5.0
UNSUBSCRIBE_ERRORS: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, TimeoutError)


class Publisher:
    """``await publish(channel, text)`` for the hot path (sync messages): the messages queued while
    one batch is on the wire go out together in one pipeline, instead of one pool checkout and one
    round trip each. Order is kept (one task, one pipeline at a time); a store failure reaches
    every caller of its batch as the redis error, as a direct ``PUBLISH`` would."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: list[tuple[str, str, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cobrowse-publisher")

    async def stop(self) -> None:
        if self._task is not None:
            await stop(self._task)
            self._task = None
        for _, _, future in self._queue:
            if not future.done():
                future.set_exception(ConnectionError("the publisher stopped"))
        self._queue.clear()

    async def publish(self, channel: str, text: str) -> None:
        if self._task is None:  # not started (tests driving a bare app): publish directly
            await self.store.redis.publish(channel, text)
            return
        future = asyncio.get_running_loop().create_future()
        self._queue.append((channel, text, future))
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            check_cancelled()
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch, self._queue = self._queue, []
            try:
                async with self.store.redis.pipeline(transaction=False) as pipe:
                    for channel, text, _ in batch:
                        pipe.publish(channel, text)
                    await pipe.execute()
            except Exception as exc:  # every caller of the batch learns it; the publisher goes on
                if not isinstance(exc, UNAVAILABLE_ERRORS):
                    log.exception("publishing a batch of %d messages failed", len(batch))
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for _, _, future in batch:
                if not future.done():
                    future.set_result(None)


class EventHub:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._sinks: dict[str, set[Sink]] = {}
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._broken = False  # the last reconnection could not subscribe again
        self.publisher = Publisher(store)

    async def start(self) -> None:
        self._pubsub = self.store.redis.pubsub()
        self._task = asyncio.create_task(self._run(), name="cobrowse-event-hub")
        self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        if self._task is not None:
            await stop(self._task)
            self._task = None
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except UNAVAILABLE_ERRORS:
                pass

    @property
    def channel_count(self) -> int:
        return len(self._sinks)

    async def subscribe(self, channel: str, sink: Sink) -> None:
        """Deliver the channel's messages to ``sink`` from now on; TimeoutError if the store stalls."""
        async with asyncio.timeout(CONFIRM_TIMEOUT_S):
            async with self._lock:
                sinks = self._sinks.setdefault(channel, set())
                sinks.add(sink)
                if len(sinks) > 1:
                    confirmed = self._confirmed.get(channel)
                else:
                    confirmed = asyncio.get_running_loop().create_future()
                    self._confirmed[channel] = confirmed
                    try:
                        await self._pubsub.subscribe(channel)
                    except UNAVAILABLE_ERRORS:
                        log.warning("store unavailable while subscribing; the hub will retry")
                    self._wake.set()
            if confirmed is not None and not confirmed.done():
                await asyncio.shield(confirmed)

    async def unsubscribe(self, channel: str, sink: Sink) -> None:
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT_S), self._lock:
                sinks = self._sinks.get(channel)
                if not sinks or sink not in sinks:
                    return
                sinks.discard(sink)
                if sinks:
                    return
                del self._sinks[channel]
                future = self._confirmed.pop(channel, None)
                if future is not None and not future.done():
                    future.cancel()
                await self._pubsub.unsubscribe(channel)
        except UNSUBSCRIBE_ERRORS:
            log.warning("could not unsubscribe from a channel; its messages are dropped")

    async def _run(self) -> None:
        while True:
            check_cancelled()
            if not self._sinks:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except UNAVAILABLE_ERRORS as exc:
                log.warning("event hub lost the store (%s); reconnecting", type(exc).__name__)
                await self._reconnect()
                continue
            except RuntimeError:
                # redis-py has no pub/sub connection: a subscribe is under way (it sets one), or a
                # reconnection could not subscribe again (then try again)
                if self._broken:
                    await self._reconnect()
                else:
                    await asyncio.sleep(0.01)
                continue
            if message is None:
                continue
            kind = message.get("type")
            channel = message.get("channel")
            if kind == "subscribe":
                future = self._confirmed.get(channel)
                if future is not None and not future.done():
                    future.set_result(None)
            elif kind == "message":
                for sink in tuple(self._sinks.get(channel, ())):
                    sink(message["data"])

    async def _reconnect(self) -> None:
        await asyncio.sleep(0.5)
        async with self._lock:
            try:
                await self._pubsub.aclose()
            except UNAVAILABLE_ERRORS:
                pass
            self._pubsub = self.store.redis.pubsub()
            channels = list(self._sinks)
            self._broken = False
            if channels:
                try:
                    await self._pubsub.subscribe(*channels)
                except UNAVAILABLE_ERRORS:
                    self._broken = True
