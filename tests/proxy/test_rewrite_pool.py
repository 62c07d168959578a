"""The rewrite worker processes never outlive the proxy process, however it ends."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import time
from pathlib import Path
from typing import Any


def _children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _proxy_like_process(conn: Any) -> None:
    """Starts a RewritePool's workers (as a proxy does for a large page), then waits to be killed."""
    import asyncio

    from proxy.rewrite_pool import RewritePool
    from rewriter.urls import ProxyConfig, UrlMapper

    async def main() -> None:
        pool = RewritePool(workers=2, threshold=0)
        mapper = UrlMapper("abcdefghij", ProxyConfig())
        await pool.run("html", b"<p>x</p>", url="http://127.0.0.1:1/", mapper=mapper,
                       content_type="text/html", inject="", masked=())
        conn.send("ready")
        await asyncio.Event().wait()

    asyncio.run(main())


def test_workers_exit_when_the_proxy_process_is_killed() -> None:
    parent, child = multiprocessing.Pipe()
    proxy = multiprocessing.get_context("spawn").Process(target=_proxy_like_process, args=(child,))
    proxy.start()
    try:
        assert parent.poll(60) and parent.recv() == "ready"
        workers = [pid for pid in _children_of(proxy.pid or 0)
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
