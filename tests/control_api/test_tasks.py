"""Background tasks stop when asked, even where a library swallows a cancellation (Python 3.11)."""

from __future__ import annotations

import asyncio
import random

from control_api import sweeper, tasks
from control_api.store import Store


async def _forever() -> None:
    await asyncio.Event().wait()


async def _swallows_one_cancel(log: list[str], started: asyncio.Event) -> None:
    started.set()
    try:
        await _forever()
    except asyncio.CancelledError:
        log.append("swallowed")  # what asyncio.wait_for does on 3.11 when the inner call finishes
    await _forever()


async def test_stop_cancels_again_a_task_that_swallowed_the_first_cancel() -> None:
    log: list[str] = []
    started = asyncio.Event()
    task = asyncio.create_task(_swallows_one_cancel(log, started))
    await started.wait()
    await asyncio.wait_for(tasks.stop(task), 5)
    assert log == ["swallowed"] and task.cancelled()


async def test_stop_gives_up_after_its_timeout_on_a_task_that_never_stops() -> None:
    stubborn_for = [True]
    started = asyncio.Event()

    async def stubborn() -> None:
        started.set()
        while stubborn_for[0]:
            try:
                await _forever()
            except asyncio.CancelledError:
                continue

    task = asyncio.create_task(stubborn())
    await started.wait()
    await asyncio.wait_for(tasks.stop(task, timeout_s=0.3), 5)
    assert not task.done()
    stubborn_for[0] = False
    await tasks.stop(task)
    assert task.done()


async def test_check_cancelled_raises_after_a_swallowed_cancel() -> None:
    seen: list[str] = []
    started = asyncio.Event()

    async def loop() -> None:
        started.set()
        try:
            await _forever()
        except asyncio.CancelledError:
            seen.append("swallowed")
        while True:
            tasks.check_cancelled()
            await asyncio.sleep(0)  # a yield, as a real loop's await gives

    task = asyncio.create_task(loop())
    await started.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=5)
    assert done and task.cancelled() and seen == ["swallowed"]


async def test_the_sweeper_stops_when_cancelled_mid_command(redis_store: Store) -> None:
    """Cancelled once at a random moment, the sweeper loop on a real Redis always ends.

    Before ``check_cancelled`` this hung within a few tries: redis-py's socket writes go through
    ``asyncio.wait_for``, which on 3.11 may drop the cancellation (so a server never shut down)."""
    rng = random.Random(7)
    for _ in range(150):
        task = asyncio.create_task(sweeper.run(redis_store, 30.0, interval_s=0.001))
        await asyncio.sleep(rng.random() * 0.005)
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=5)
        assert done, "the sweeper ignored its cancellation"
