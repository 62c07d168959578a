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

Each worker is a spawned process on one end of a socket pair; the event loop talks to it with
length-prefixed pickles, one rewrite at a time per worker. No thread and no queue sits between
(``concurrent.futures.ProcessPoolExecutor`` has two threads and two pipes per call, which cost the
proxy process about as much CPU as a small page's rewrite). A worker leaves when its socket
closes, so it never outlives the proxy process, however that ends.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
from collections.abc import Callable, Sequence
from typing import Any, Literal

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


_LENGTH = struct.Struct("!Q")


def _serve(sock: socket.socket) -> None:
    """A worker's life: read a call, run it, send back its result (or its exception) until the
    proxy process closes the socket, or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the proxy's to handle; EOF ends us
    with sock:
        while True:
            request = _receive(sock)
            if request is None:
                return
            fn, args, kwargs = pickle.loads(request)
            try:
                reply = pickle.dumps((True, fn(*args, **kwargs)), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - handed to the caller, who decides
                try:
                    reply = pickle.dumps((False, exc), protocol=pickle.HIGHEST_PROTOCOL)
                except Exception:  # noqa: BLE001 - an exception that does not pickle
                    reply = pickle.dumps((False, RuntimeError(repr(exc))), protocol=pickle.HIGHEST_PROTOCOL)
            try:
                sock.sendall(_LENGTH.pack(len(reply)) + reply)
            except OSError:
                return  # the proxy process is gone


def _receive(sock: socket.socket) -> bytes | None:
    header = _receive_exactly(sock, _LENGTH.size)
    return None if header is None else _receive_exactly(sock, _LENGTH.unpack(header)[0])


def _receive_exactly(sock: socket.socket, size: int) -> bytes | None:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None  # the proxy process closed its end, or is gone
        got += n
    return bytes(buffer)


class WorkerGone(Exception):
    """The worker process died (or was killed) before answering."""


class _Worker:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            self.process = multiprocessing.get_context("spawn").Process(
                target=_serve, args=(theirs,), name="cobrowse-rewrite", daemon=True
            )
            self.process.start()
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def call(self, request: bytes) -> Any:
        if self._streams is None:
            self._streams = await asyncio.open_connection(sock=self.sock)
        reader, writer = self._streams
        try:
            writer.write(_LENGTH.pack(len(request)) + request)
            header = await reader.readexactly(_LENGTH.size)
            reply = await reader.readexactly(_LENGTH.unpack(header)[0])
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise WorkerGone(str(exc)) from exc
        ok, value = pickle.loads(reply)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Close our end: the worker reads its end-of-file and leaves."""
        if self._streams is not None:
            self._streams[1].close()
        else:
            self.sock.close()
        if self.process.is_alive():
            self.process.join(0)


class _Lane:
    """Up to ``size`` workers, started as calls need them, each running one call at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.loop = asyncio.get_running_loop()
        self.workers: list[_Worker] = []
        self.idle: list[_Worker] = []
        self.waiting: list[asyncio.Future[_Worker]] = []

    async def call(self, request: bytes) -> Any:
        worker = await self._acquire()
        exchange = asyncio.ensure_future(worker.call(request))
        try:
            result = await asyncio.shield(exchange)
        except asyncio.CancelledError:
            if exchange.done():
                self._after(worker, exchange)
            else:  # the reply is still to come: the worker is free once it has been read
                exchange.add_done_callback(functools.partial(self._after, worker))
            raise
        except WorkerGone:
            self._drop(worker)
            raise
        except BaseException:
            self._release(worker)
            raise
        self._release(worker)
        return result

    def _after(self, worker: _Worker, exchange: asyncio.Future[Any]) -> None:
        """A call whose caller was cancelled has ended: the worker is free, or gone."""
        gone = exchange.cancelled() or isinstance(exchange.exception(), WorkerGone)
        if gone:
            self._drop(worker)
        else:
            self._release(worker)

    async def _acquire(self) -> _Worker:
        if self.idle:
            return self.idle.pop()
        if len(self.workers) < self.size:
            worker = _Worker()
            self.workers.append(worker)
            return worker
        waiter: asyncio.Future[_Worker] = self.loop.create_future()
        self.waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a worker as we were cancelled
                self._release(waiter.result())
            raise

    def _release(self, worker: _Worker) -> None:
        while self.waiting:
            waiter = self.waiting.pop(0)
            if not waiter.done():
                waiter.set_result(worker)
                return
        self.idle.append(worker)

    def _drop(self, worker: _Worker) -> None:
        worker.close()
        if worker in self.workers:
            self.workers.remove(worker)
        # a waiter gets a fresh worker rather than waiting for a release that will not come
        while self.waiting and len(self.workers) < self.size:
            waiter = self.waiting.pop(0)
            if not waiter.done():
                fresh = _Worker()
                self.workers.append(fresh)
                waiter.set_result(fresh)

    def close(self) -> None:
        for worker in self.workers:
            worker.close()
        self.workers.clear()
        self.idle.clear()
        for waiter in self.waiting:
            if not waiter.done():
                waiter.cancel()
        self.waiting.clear()


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


class RewritePool:
    """Runs ``rewrite`` off the event loop; each lane's workers start on its first use.

    ``workers`` is the medium lane's size (the large lane gets half as many, at least one);
    0 rewrites everything in threads.
    """

    def __init__(self, workers: int | None = None, small: int = SMALL_BODY, large: int = LARGE_BODY) -> None:
        self.workers = default_workers() if workers is None else workers
        self.small = small
        self.large = large
        self._lanes: dict[Lane, _Lane] = {}

    def lane(self, size: int) -> Lane:
        if self.workers <= 0 or size < self.small:
            return "thread"
        return "large" if size >= self.large else "medium"

    def _lane(self, lane: Lane) -> _Lane:
        current = self._lanes.get(lane)
        if current is not None and current.loop is not asyncio.get_running_loop():
            current.close()  # its sockets belong to an event loop that is no longer ours
            current = None
        if current is None:
            size = self.workers if lane == "medium" else max(1, self.workers // 2)
            current = self._lanes[lane] = _Lane(size)
        return current

    async def call(self, lane: Lane, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in one of ``lane``'s workers (``fn`` importable by name)."""
        request = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        return await self._lane(lane).call(request)

    async def run(self, kind: Kind, body: bytes, *, mapper: UrlMapper, **options: object) -> Rewritten:
        lane = self.lane(len(body))
        in_thread = functools.partial(rewrite, kind, body, mapper=mapper, **options)  # type: ignore[arg-type]
        if lane == "thread":
            return await asyncio.to_thread(in_thread)
        spec: MapperSpec = (mapper.session_id, mapper.proxy, mapper.known_origins)
        try:
            result: Rewritten = await self.call(lane, _rewrite_in_worker, kind, body, spec, **options)
        except (AssertionError, OSError) as exc:  # e.g. inside a daemon process: no children
            logger.warning("no rewrite worker processes here (%s); rewriting in threads", exc)
            self.workers = 0
            return await asyncio.to_thread(in_thread)
        except WorkerGone:
            logger.warning("a rewrite worker died; rewriting this body in a thread (a new worker starts)")
            return await asyncio.to_thread(in_thread)
        return result

    @property
    def processes_started(self) -> bool:
        return any(lane.workers for lane in list(self._lanes.values()))

    def started(self, lane: Lane) -> bool:
        current = self._lanes.get(lane)
        return current is not None and bool(current.workers)

    def close(self) -> None:
        for lane in list(self._lanes.values()):
            lane.close()
        self._lanes.clear()
