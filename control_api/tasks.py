"""Stopping background tasks reliably on Python 3.11.

On 3.11, ``asyncio.wait_for`` returns the inner result and drops a cancellation that arrives as the
inner awaitable completes (fixed in 3.12); redis-py uses it around socket writes, so one
``task.cancel()`` of a task busy with Redis is sometimes lost, and a loop that was asked to stop
runs on forever (seen: a shutdown that never ended; a visitor socket whose heartbeat task kept the
visitor "online" after the browser closed). Two defences, used together:

* ``stop(*tasks)`` cancels again until every task is done (bounded), instead of cancelling once;
* long-running loops call ``check_cancelled()`` each turn, which raises ``CancelledError`` when a
  cancellation was requested, whether or not a library swallowed it.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("cobrowse.tasks")

FIRST_WAIT_S = 1.0  # a task's own clean-up (``finally``) gets this long before a second cancel
RECANCEL_EVERY_S = 0.25


def check_cancelled() -> None:
    """Raise ``CancelledError`` if the current task has been asked to stop."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError()


async def stop(*tasks: asyncio.Task[object] | asyncio.Future[object], timeout_s: float = 10.0) -> None:
    """Cancel ``tasks`` and wait until they are done, cancelling again while one keeps running.

    Gives up (and logs) after ``timeout_s``; never raises the tasks' own exceptions.
    """
    pending = {t for t in tasks if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    wait_s = FIRST_WAIT_S
    while pending:
        for task in pending:
            task.cancel()
        remaining = deadline - loop.time()
        if remaining <= 0:
            log.warning("%d task(s) did not stop: %s", len(pending), ", ".join(map(repr, pending)))
            break
        _, pending = await asyncio.wait(pending, timeout=min(wait_s, remaining))
        wait_s = RECANCEL_EVERY_S
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" noise
