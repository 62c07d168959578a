"""The rewrite pool: bodies go to the lane their size calls for, process lanes give the thread
lane's output, a large body does not hold up medium ones, and the worker processes never outlive
the proxy process, however it ends."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import time
from pathlib import Path
from typing import Any

from tests.serve_process import children_of


def _proxy_like_process(conn: Any) -> None:
    """Starts a RewritePool's workers (as a proxy does for a large page), keeps one busy, then
    waits to be killed."""
    import asyncio
    import time

    from proxy.rewrite_pool import RewritePool
    from rewriter.urls import ProxyConfig, UrlMapper

    async def main() -> None:
        pool = RewritePool(workers=2, small=0, large=64)  # both lanes of processes
        mapper = UrlMapper("abcdefghij", ProxyConfig())
        for body in (b"<p>x</p>", b"<p>" + b"x" * 100 + b"</p>"):
            await pool.run("html", body, url="http://127.0.0.1:1/", mapper=mapper,
                           content_type="text/html", inject="", masked=())
        assert pool.started("medium") and pool.started("large")
        busy = asyncio.ensure_future(pool.call("large", time.sleep, 120))  # a worker busy for long
        await _until(lambda: not pool._lanes["large"].idle)
        conn.send("ready")
        await asyncio.gather(busy, asyncio.Event().wait())

    asyncio.run(main())


ORIGIN = "http://127.0.0.1:9000"
POLL_S = 0.01


async def _until(condition: Any) -> None:
    """Wait for ``condition()`` (a state of the pool another task brings about); the test's own
    timeout is the limit."""
    import asyncio

    while not condition():
        await asyncio.sleep(POLL_S)


def _page(cards: int) -> bytes:
    card = (f"<div><a href='{ORIGIN}/p?x=1'>p</a><img src='{ORIGIN}/i.png' "
            f"srcset='{ORIGIN}/i.png 1x, //127.0.0.1:9000/j.png 2x' "
            f"style='background:url({ORIGIN}/b.png)'></div>")
    return f"<!doctype html><html><head><title>t</title></head><body>{card * cards}</body></html>".encode()


def _options() -> dict[str, Any]:
    from rewriter.urls import Origin, ProxyConfig, UrlMapper

    mapper = UrlMapper("abcdefghij", ProxyConfig("cobrowse.localhost", 8001), [Origin.parse(ORIGIN)])
    return {"url": ORIGIN + "/", "mapper": mapper, "content_type": "text/html; charset=utf-8",
            "inject": '<script src="/__cobrowse/runtime.js"></script>', "masked": ("h1",)}


def _mapper_cache_counts() -> tuple[int, int]:
    """In a worker: (mappers built, mappers reused)."""
    from proxy.rewrite_pool import _worker_mapper

    info = _worker_mapper.cache_info()
    return info.misses, info.hits


def test_bodies_take_the_lane_of_their_size() -> None:
    from proxy.rewrite_pool import LARGE_BODY, SMALL_BODY, RewritePool

    pool = RewritePool(workers=2)
    assert [pool.lane(n) for n in (0, SMALL_BODY - 1, SMALL_BODY, LARGE_BODY - 1, LARGE_BODY)] == [
        "thread", "thread", "medium", "medium", "large"]
    assert RewritePool(workers=0).lane(10 * LARGE_BODY) == "thread"


def test_worker_processes_rewrite_as_the_thread_does() -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(300)
    expected = rewrite("html", body, **_options())
    assert b"cobrowse.localhost:8001" in expected.body

    async def main() -> list[Any]:
        pool = RewritePool(workers=1, small=0, large=len(body))
        try:
            medium = await pool.run("html", body[:-10] + b"</html>", **_options())
            large = await pool.run("html", body, **_options())
            again = await pool.run("html", body, **_options())
            assert pool.started("medium") and pool.started("large")
            # the large lane's one worker built one mapper and reused it for the second body
            counts = await pool.call("large", _mapper_cache_counts)
            assert counts == (1, 1)
            return [medium, large, again]
        finally:
            pool.close()

    medium, large, again = asyncio.run(main())
    assert large == again == expected
    assert medium.body.startswith(expected.body[:1000])


def test_a_dead_worker_is_replaced_and_its_body_rewritten_anyway() -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())

    async def main() -> None:
        pool = RewritePool(workers=1)
        try:
            assert await pool.run("html", body, **_options()) == expected
            (first,) = pool._lanes["medium"].workers
            first.process.kill()
            first.process.join(10)
            assert await pool.run("html", body, **_options()) == expected  # in a thread, this once
            assert await pool.run("html", body, **_options()) == expected
            (second,) = pool._lanes["medium"].workers
            assert second is not first and second.process.is_alive()
        finally:
            pool.close()

    asyncio.run(main())


def test_a_cancelled_rewrite_does_not_hand_its_answer_to_the_next_one() -> None:
    """The caller went away (the browser closed the connection) while a worker was rewriting: the
    worker's late answer must be read and dropped, not taken as the next body's answer."""
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    small = _page(80)
    expected = rewrite("html", small, **_options())

    async def main() -> None:
        pool = RewritePool(workers=1)
        try:
            await pool.run("html", small, **_options())  # the worker is up
            (worker,) = pool._lanes["medium"].workers
            first = asyncio.create_task(pool.call("medium", time.sleep, 0.5))  # answers None, late
            await _until(lambda: worker.busy)  # its (small) request has been sent
            first.cancel()
            assert await pool.run("html", small, **_options()) == expected
            assert pool._lanes["medium"].workers == [worker]  # the same worker, read to its end
        finally:
            pool.close()

    asyncio.run(main())


def test_a_large_body_does_not_hold_up_medium_ones() -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool

    large_body, medium_body = _page(12000), _page(100)  # about 2.5 MB and 21 KB

    async def main() -> list[str]:
        pool = RewritePool(workers=1, large=len(large_body))
        finished: list[str] = []

        async def go(name: str, body: bytes) -> None:
            await pool.run("html", body, **_options())
            finished.append(name)

        try:
            await go("warm-up", medium_body)  # the medium lane's worker is up
            large = asyncio.create_task(go("large", large_body))  # starts (submits) first
            await asyncio.gather(*(go(f"medium-{i}", medium_body) for i in range(3)))
            await large
        finally:
            pool.close()
        return finished

    finished = asyncio.run(main())
    assert finished[-1] == "large", finished


def test_workers_exit_when_the_proxy_process_is_killed() -> None:
    parent, child = multiprocessing.Pipe()
    proxy = multiprocessing.get_context("spawn").Process(target=_proxy_like_process, args=(child,))
    proxy.start()
    try:
        assert parent.poll(60) and parent.recv() == "ready"
        workers = [pid for pid in children_of(proxy.pid or 0)
                   if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")]
        assert workers, "no rewrite worker process was started"
        exits = {os.pidfd_open(pid): pid for pid in workers}  # readable once that process exits
        try:
            os.kill(proxy.pid or 0, signal.SIGKILL)  # no clean-up code runs in the proxy
            proxy.join(10)
            deadline = time.monotonic() + 15
            waiting = set(exits)
            while waiting and time.monotonic() < deadline:
                ready, _, _ = select.select(list(waiting), [], [], deadline - time.monotonic())
                waiting -= set(ready)
            assert not waiting, f"rewrite workers {[exits[fd] for fd in waiting]} outlived the proxy"
        finally:
            for fd in exits:
                os.close(fd)
    finally:
        if proxy.is_alive():
            proxy.kill()
            proxy.join(10)


def test_a_worker_that_dies_while_others_wait_does_not_leave_them_waiting(monkeypatch: Any) -> None:
    """The waiting caller takes the dead worker's place; when no new worker can start (out of
    processes, say), it rewrites in a thread instead of waiting for ever."""
    import asyncio

    from proxy import rewrite_pool
    from proxy.rewrite_pool import NoWorker, RewritePool, WorkerGone, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())

    def cannot_start(self: Any) -> None:
        raise NoWorker("no process left")

    async def main() -> None:
        pool = RewritePool(workers=1)
        try:
            await pool.run("html", body, **_options())
            lane = pool._lanes["medium"]
            busy = asyncio.create_task(pool.call("medium", time.sleep, 60))
            await _until(lambda: not lane.idle)  # the one worker has taken the call
            waiting = asyncio.create_task(pool.run("html", body, **_options()))
            await _until(lambda: lane.waiting)
            monkeypatch.setattr(rewrite_pool._Worker, "__init__", cannot_start)
            (worker,) = lane.workers
            worker.process.kill()
            assert await asyncio.wait_for(waiting, 30) == expected  # a hang guard, not a timing
            try:
                await busy
            except WorkerGone:
                pass
            else:
                raise AssertionError("the killed worker's call did not fail")
            assert pool.workers == 1  # a passing failure to start does not turn the processes off
        finally:
            pool.close()

    asyncio.run(main())


def test_a_pool_used_from_a_new_event_loop_starts_new_workers() -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())
    pool = RewritePool(workers=1)
    try:
        assert asyncio.run(pool.run("html", body, **_options())) == expected
        (first,) = pool._lanes["medium"].workers
        assert asyncio.run(pool.run("html", body, **_options())) == expected
        (second,) = pool._lanes["medium"].workers
        assert second is not first
        first.process.join(15)
        assert not first.process.is_alive()  # the old loop's worker was told to leave
    finally:
        pool.close()


def test_closing_the_pool_sends_waiting_and_later_bodies_to_threads() -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())

    async def main() -> None:
        pool = RewritePool(workers=1, large=10**9)  # every body in the one medium worker
        await pool.run("html", body, **_options())
        lane = pool._lanes["medium"]
        busy = asyncio.create_task(pool.run("html", _page(9000), **_options()))  # in the worker
        await _until(lambda: not lane.idle)
        waiting = asyncio.create_task(pool.run("html", body, **_options()))
        await _until(lambda: lane.waiting)
        pool.close()
        assert await asyncio.wait_for(waiting, 30) == expected  # rewritten anyway, not cancelled
        # the body in the worker's hands at the close: rewritten anyway too (in a thread)
        assert (await asyncio.wait_for(busy, 60)).body == rewrite("html", _page(9000), **_options()).body
        assert await pool.run("html", body, **_options()) == expected
        assert not pool.processes_started  # no worker started after the close

    asyncio.run(main())


def test_a_rewrite_that_does_not_end_is_stopped_and_its_worker_replaced() -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool, RewriteTimedOut, rewrite
    from rewriter.exceptions import RewriteError

    body = _page(100)
    expected = rewrite("html", body, **_options())

    async def main() -> None:
        pool = RewritePool(workers=1, timeout_s=1.0)
        try:
            await pool.run("html", body, **_options())
            (stuck,) = pool._lanes["medium"].workers
            try:
                await pool.call("medium", time.sleep, 60)  # a "rewrite" that would take a minute
            except RewriteTimedOut as exc:
                assert isinstance(exc, RewriteError)  # the proxy answers with its error page
            else:
                raise AssertionError("no timeout")
            stuck.process.join(15)
            assert not stuck.process.is_alive()
            assert await pool.run("html", body, **_options()) == expected  # a new worker
            assert pool._lanes["medium"].workers != [stuck]
        finally:
            pool.close()

    asyncio.run(main())


def _slow_worker_start(monkeypatch: Any, tmp_path: Path, seconds: float) -> None:
    """New worker processes (new interpreters, which inherit the environment) take ``seconds``
    longer to start, as on a machine under load: a ``sitecustomize`` that sleeps."""
    (tmp_path / "sitecustomize.py").write_text(f"import time\ntime.sleep({seconds})\n")
    paths = [str(tmp_path), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))


def _recording_workers(monkeypatch: Any) -> list[Any]:
    """Every ``_Worker`` made from now on, in order."""
    from proxy import rewrite_pool

    made: list[Any] = []
    init = rewrite_pool._Worker.__init__

    def recorded(self: Any) -> None:
        init(self)
        made.append(self)

    monkeypatch.setattr(rewrite_pool._Worker, "__init__", recorded)
    return made


def _workers_that_never_start(monkeypatch: Any, tmp_path: Path) -> list[Any]:
    """New workers take a minute to start and the pool waits 0.5 s; the workers made, in order."""
    from proxy import rewrite_pool

    _slow_worker_start(monkeypatch, tmp_path, 60)
    monkeypatch.setattr(rewrite_pool, "WORKER_START_TIMEOUT_S", 0.5)
    return _recording_workers(monkeypatch)


def test_a_workers_slow_start_is_not_counted_as_a_stuck_rewrite(monkeypatch: Any, tmp_path: Path) -> None:
    """The rewrite timeout counts from the moment the worker is up: a new interpreter that takes
    longer than the timeout to start (a busy machine) is waited for, not killed, and rewrites."""
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())
    _slow_worker_start(monkeypatch, tmp_path, 1.5)

    async def main() -> None:
        pool = RewritePool(workers=1, timeout_s=1.0)
        try:
            started = time.monotonic()
            assert await pool.call("medium", os.getpid) != os.getpid()  # in the new worker
            assert time.monotonic() - started >= 1.5  # its start did outlast the timeout
            (worker,) = pool._lanes["medium"].workers
            assert await pool.run("html", body, **_options()) == expected
            assert pool._lanes["medium"].workers == [worker] and worker.process.is_alive()
        finally:
            pool.close()

    asyncio.run(main())


def test_a_worker_that_does_not_start_is_stopped_and_the_body_rewritten_in_a_thread(
    monkeypatch: Any, tmp_path: Path
) -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())
    made = _workers_that_never_start(monkeypatch, tmp_path)

    async def main() -> None:
        pool = RewritePool(workers=1, timeout_s=60.0)
        try:
            lane = pool._lane("medium")
            assert await pool.run("html", body, **_options()) == expected  # in a thread, this once
            assert lane.workers == [] and lane.idle == []
            (worker,) = made
            worker.process.join(15)
            assert not worker.process.is_alive()  # the worker that did not start was stopped
        finally:
            pool.close()

    asyncio.run(main())


def test_a_caller_that_goes_while_its_worker_starts_leaves_the_worker_to_the_next(
    monkeypatch: Any, tmp_path: Path
) -> None:
    import asyncio

    from proxy.rewrite_pool import RewritePool

    _slow_worker_start(monkeypatch, tmp_path, 1.0)

    async def main() -> None:
        pool = RewritePool(workers=1, timeout_s=60.0)
        try:
            first = asyncio.create_task(pool.call("medium", os.getpid))
            await _until(lambda: "medium" in pool._lanes and pool._lanes["medium"].workers)
            (worker,) = pool._lanes["medium"].workers
            first.cancel()  # the browser went away while the worker was still starting
            assert await pool.call("medium", os.getpid) == worker.process.pid
            assert pool._lanes["medium"].workers == [worker]
        finally:
            pool.close()

    asyncio.run(main())


def test_a_worker_that_does_not_start_is_stopped_even_when_its_caller_went_away(
    monkeypatch: Any, tmp_path: Path
) -> None:
    """The start limit is the worker's, not its first caller's: a browser that gave up must not
    leave a worker that never starts holding the lane's one place, with every later body waiting."""
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())
    made = _workers_that_never_start(monkeypatch, tmp_path)

    async def main() -> None:
        pool = RewritePool(workers=1, timeout_s=60.0)
        try:
            first = asyncio.create_task(pool.run("html", body, **_options()))
            await _until(lambda: made)
            first.cancel()  # its caller goes while the worker is still starting
            # a hang guard (the worker's limit is 0.5 s), not a timing
            assert await asyncio.wait_for(pool.run("html", body, **_options()), 30) == expected
            made[0].process.join(15)
            assert not made[0].process.is_alive()
        finally:
            pool.close()

    asyncio.run(main())


def test_after_a_worker_did_not_start_the_waiting_bodies_go_to_threads_at_once(
    monkeypatch: Any, tmp_path: Path
) -> None:
    """Not one start limit after another: the bodies waiting for the lane's worker are rewritten
    in threads when it fails to start, and no worker is started for a while."""
    import asyncio

    from proxy.rewrite_pool import RewritePool, rewrite

    body = _page(100)
    expected = rewrite("html", body, **_options())
    made = _workers_that_never_start(monkeypatch, tmp_path)

    async def main() -> None:
        pool = RewritePool(workers=1, timeout_s=60.0)
        try:
            bodies = [asyncio.create_task(pool.run("html", body, **_options())) for _ in range(3)]
            assert await asyncio.wait_for(asyncio.gather(*bodies), 30) == [expected] * 3
            assert await pool.run("html", body, **_options()) == expected  # in a thread too
            assert len(made) == 1  # the two waiting bodies and the next one started none
        finally:
            pool.close()

    asyncio.run(main())
