"""Where bodies are rewritten: never on the event loop that serves every session.

Small bodies go to a thread (``asyncio.to_thread``); bodies of ``PROCESS_THRESHOLD`` bytes and
more go to a pool of worker processes, because rewriting a large page holds the GIL long enough
to stall the event loop even from a thread (bench/proxy.py measures both). This module imports
only the rewriter, so spawned workers start light.
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

from rewriter.dispatch import SNIFF_BYTES, Kind, Rewritten, kind_of, rewrite_body
from rewriter.urls import UrlMapper

logger = logging.getLogger(__name__)

PROCESS_THRESHOLD = 128 * 1024  # below it threads win on throughput (bench), above it the GIL stalls


def rewrite(kind: Kind, body: bytes, *, url: str, mapper: UrlMapper, content_type: str | None,
            inject: str, masked: Sequence[str]) -> Rewritten:
    if kind == "passthrough":
        kind = kind_of(content_type, body[:SNIFF_BYTES])
    return rewrite_body(
        body, url=url, mapper=mapper, content_type=content_type, inject=inject if kind == "html" else "",
        mask_selectors=tuple(masked), kind=kind,
    )


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


class RewritePool:
    """Runs ``rewrite`` off the event loop; the process pool is created on first use."""

    def __init__(self, workers: int | None = None, threshold: int = PROCESS_THRESHOLD) -> None:
        self.workers = workers if workers is not None else max(1, min(4, (os.cpu_count() or 2) - 1))
        self.threshold = threshold
        self._pool: ProcessPoolExecutor | None = None

    def _processes(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    async def run(self, kind: Kind, body: bytes, **options: object) -> Rewritten:
        call = functools.partial(rewrite, kind, body, **options)  # type: ignore[arg-type]
        if self.workers <= 0 or len(body) < self.threshold:
            return await asyncio.to_thread(call)
        try:
            pool = self._processes()
        except (AssertionError, OSError, RuntimeError):  # e.g. inside a daemon process
            logger.warning("no rewrite worker processes here; rewriting in threads", exc_info=True)
            self.workers = 0
            return await asyncio.to_thread(call)
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, call)
        except BrokenProcessPool:
            logger.warning("rewrite worker died; rewriting this body in a thread and restarting the pool")
            self.close()
            return await asyncio.to_thread(call)

    @property
    def processes_started(self) -> bool:
        return self._pool is not None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
