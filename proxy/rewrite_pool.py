"""Where bodies are rewritten: never on the event loop that serves every session.

Three lanes, by body size (bench/proxy.py measures the choice):

- small bodies (under ``SMALL_BODY``) go to a thread (``asyncio.to_thread``): a process hop
  costs more than their rewrite;
- medium bodies go to a pool of worker processes (``workers``: one per CPU, at most four, by
  default): rewriting holds the GIL for most of its time, so in threads it would use one core
  however many there are;
- large bodies (``LARGE_BODY`` and more) go to a pool of their own (half as many workers, at
  least one: at most six processes in all), so a 2 MiB page keeps one worker busy for a while
  without making every medium page wait behind it, and never holds the proxy process's GIL long
  enough to stall the event loop.

Workers receive the session's mapping (session, proxy, origins) rather than its ``UrlMapper``
and keep one mapper per mapping, so its origin caches stay warm across requests. This module
imports only the rewriter, so spawned workers start light.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Literal

from rewriter.dispatch import SNIFF_BYTES, Kind, Rewritten, kind_of, rewrite_body
from rewriter.urls import Origin, ProxyConfig, UrlMapper

logger = logging.getLogger(__name__)

SMALL_BODY = 16 * 1024  # below it a thread is cheaper than a process hop (bench)
LARGE_BODY = 128 * 1024  # from it on, bodies have a lane of their own
MAX_WORKERS = 4

Lane = Literal["thread", "medium", "large"]


def rewrite(kind: Kind, body: bytes, *, url: str, mapper: UrlMapper, content_type: str | None,
            inject: str, masked: Sequence[str]) -> Rewritten:
    if kind == "passthrough":
        kind = kind_of(content_type, body[:SNIFF_BYTES])
    return rewrite_body(
        body, url=url, mapper=mapper, content_type=content_type, inject=inject if kind == "html" else "",
        mask_selectors=tuple(masked), kind=kind,
    )


MapperSpec = tuple[str, ProxyConfig, tuple[Origin, ...]]


@functools.lru_cache(maxsize=256)
def _worker_mapper(spec: MapperSpec) -> UrlMapper:
    session_id, proxy, origins = spec
    return UrlMapper(session_id, proxy, origins)


def _rewrite_in_worker(kind: Kind, body: bytes, spec: MapperSpec, **options: object) -> Rewritten:
    return rewrite(kind, body, mapper=_worker_mapper(spec), **options)  # type: ignore[arg-type]


PARENT_CHECK_EVERY_S = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: leave when the proxy process is gone, however it went (SIGKILL, a crash,
    a test harness's terminate()): the executor's own shutdown never reaches the workers then, and
    they would linger, holding the parent's stdout and their memory."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_EVERY_S)
        os._exit(0)

    threading.Thread(target=watch, name="cobrowse-parent-watch", daemon=True).start()


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


class RewritePool:
    """Runs ``rewrite`` off the event loop; each process pool is created on its first use.

    ``workers`` is the medium lane's size (the large lane gets half as many, at least one);
    0 rewrites everything in threads.
    """

    def __init__(self, workers: int | None = None, small: int = SMALL_BODY, large: int = LARGE_BODY) -> None:
        self.workers = default_workers() if workers is None else workers
        self.small = small
        self.large = large
        self._pools: dict[Lane, ProcessPoolExecutor] = {}

    def lane(self, size: int) -> Lane:
        if self.workers <= 0 or size < self.small:
            return "thread"
        return "large" if size >= self.large else "medium"

    def _pool(self, lane: Lane) -> ProcessPoolExecutor:
        pool = self._pools.get(lane)
        if pool is None:
            size = self.workers if lane == "medium" else max(1, self.workers // 2)
            pool = self._pools[lane] = ProcessPoolExecutor(
                size,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return pool

    async def run(self, kind: Kind, body: bytes, *, mapper: UrlMapper, **options: object) -> Rewritten:
        lane = self.lane(len(body))
        in_thread = functools.partial(rewrite, kind, body, mapper=mapper, **options)  # type: ignore[arg-type]
        if lane == "thread":
            return await asyncio.to_thread(in_thread)
        try:
            pool = self._pool(lane)
        except (AssertionError, OSError, RuntimeError):  # e.g. inside a daemon process
            logger.warning("no rewrite worker processes here; rewriting in threads", exc_info=True)
            self.workers = 0
            return await asyncio.to_thread(in_thread)
        spec: MapperSpec = (mapper.session_id, mapper.proxy, mapper.known_origins)
        call = functools.partial(_rewrite_in_worker, kind, body, spec, **options)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except BrokenProcessPool:
            logger.warning("rewrite worker died; rewriting this body in a thread and restarting the pool")
            self._close(lane, pool)
            return await asyncio.to_thread(in_thread)

    @property
    def processes_started(self) -> bool:
        return bool(self._pools)

    def started(self, lane: Lane) -> bool:
        return lane in self._pools

    def _close(self, lane: Lane, broken: ProcessPoolExecutor | None = None) -> None:
        """Shut the lane's pool down; with ``broken``, only if that is still the lane's pool (a
        later failure of a pool already replaced must not cancel the new pool's work)."""
        pool = self._pools.get(lane)
        if pool is None or (broken is not None and pool is not broken):
            return
        del self._pools[lane]
        pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        for lane in list(self._pools):
            self._close(lane)
