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
imports only the rewriter (and ``proxy.compression``), so spawned workers start light.

Each worker is a spawned process on one end of a socket pair; the event loop talks to it with
length-prefixed pickles, one rewrite at a time per worker. No thread and no queue sits between
(``concurrent.futures.ProcessPoolExecutor`` has two threads and two pipes per call, which cost the
proxy process about as much CPU as a small page's rewrite). A worker leaves when its socket
closes, or when its parent is gone, even in the middle of a rewrite, so it never outlives the
proxy process, however that ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from proxy import compression
from rewriter.dispatch import SNIFF_BYTES, Kind, Rewritten, kind_of, rewrite_body
from rewriter.exceptions import UnrewritableDocument
from rewriter.urls import Origin, ProxyConfig, UrlMapper

logger = logging.getLogger(__name__)

SMALL_BODY = 16 * 1024  # below it a thread is cheaper than a process hop (bench)
LARGE_BODY = 128 * 1024  # from it on, bodies have a lane of their own
MAX_WORKERS = 4

Lane = Literal["thread", "medium", "large"]


def rewrite(
    kind: Kind, body: bytes, *, url: str, mapper: UrlMapper, content_type: str | None, inject: str,
    masked: Sequence[str], document: bool = True, encoding: str | None = None,
) -> Rewritten:
    """``body`` rewritten; when it was and ``encoding`` (a coding the browser accepts, see
    ``compression.choose_coding``) is given, in that coding, done here, off the event loop."""
    if kind == "passthrough":
        kind = kind_of(content_type, body[:SNIFF_BYTES])
    out = rewrite_body(
        body, url=url, mapper=mapper, content_type=content_type, inject=inject if kind == "html" else "",
        mask_selectors=tuple(masked), kind=kind, document=document,
    )
    if encoding and out.kind != "passthrough" and len(out.body) >= compression.MIN_ENCODE_BYTES:
        return dataclasses.replace(out, body=compression.encode(out.body, encoding), encoding=encoding)
    return out


MapperSpec = tuple[str, ProxyConfig, tuple[Origin, ...]]


@functools.lru_cache(maxsize=256)
def _worker_mapper(spec: MapperSpec) -> UrlMapper:
    session_id, proxy, origins = spec
    return UrlMapper(session_id, proxy, origins)


def _rewrite_in_worker(kind: Kind, body: bytes, spec: MapperSpec, **options: object) -> Rewritten:
    return rewrite(kind, body, mapper=_worker_mapper(spec), **options)  # type: ignore[arg-type]


_LENGTH = struct.Struct("!Q")


PARENT_CHECK_EVERY_S = 0.5
# a worker says it is up (a new interpreter, the rewriter and lxml imported) in an empty frame; the
# rewrite timeout counts from then, so a busy machine's slow start is not taken for a stuck rewrite
WORKER_START_TIMEOUT_S = 60.0
# after a worker did not start in time, its lane starts none for this long (bodies go to threads)
START_BACKOFF_S = 30.0


def _serve(sock: socket.socket, parent_pid: int) -> None:
    """A worker's life: read a call, run it, send back its result (or its exception) until the
    proxy process closes the socket, or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the proxy's to handle; EOF ends us
    _exit_with_parent(parent_pid)
    with sock:
        try:
            sock.sendall(_LENGTH.pack(0))  # up: the parent's rewrite timeouts start from here
        except OSError:
            return
        while True:
            request = _receive(sock)
            if request is None:
                return
            try:
                fn, args, kwargs = pickle.loads(request)
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


def _exit_with_parent(parent_pid: int) -> None:
    """Leave as soon as the proxy process is gone, however it went (SIGKILL, a crash), even in the
    middle of a long rewrite: the socket's end-of-file is only seen between calls."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_EVERY_S)
        os._exit(0)

    threading.Thread(target=watch, name="cobrowse-parent-watch", daemon=True).start()


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
    """The worker process died (or was killed, or the pool closed) before answering."""


class RewriteTimedOut(UnrewritableDocument):
    """A worker took longer than the pool's ``timeout_s``: it was stopped."""


class NoWorker(Exception):
    """No worker process could be started (inside a daemon process; no process or file left)."""


class _Worker:
    def __init__(self) -> None:
        multiprocessing.active_children()  # reaps the workers closed earlier
        try:
            ours, theirs = socket.socketpair()
        except OSError as exc:
            raise NoWorker(str(exc)) from exc
        # Ctrl-C while the worker starts must not reach it before it ignores SIGINT (a traceback):
        # blocked here, it stays blocked in the worker, whose mask the new interpreter inherits
        masked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            self.process = multiprocessing.get_context("spawn").Process(
                target=_serve, args=(theirs, os.getpid()), name="cobrowse-rewrite", daemon=True
            )
            self.process.start()
        except (AssertionError, OSError) as exc:  # a daemon process may have no children
            ours.close()
            raise NoWorker(f"{type(exc).__name__}: {exc}") from exc
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, masked)
            theirs.close()
        ours.setblocking(False)  # read and written by the event loop (``loop.sock_*``)
        self.sock = ours
        self.busy = False
        self.closing = False
        self.up = False  # its start frame has been read
        self.starting: asyncio.Future[None] | None = None

    def started(self) -> asyncio.Future[None]:
        """Done once the worker has said it is up; ``WorkerGone`` if it ended before."""
        if self.starting is None:
            self.starting = asyncio.ensure_future(self._read_start())
            # its failure is handled by whoever waits; with nobody left waiting it is not an error
            self.starting.add_done_callback(lambda done: done.cancelled() or done.exception())
        return self.starting

    @contextlib.contextmanager
    def _exchanging(self) -> Iterator[None]:
        """The event loop reads or writes the socket: ``close`` meanwhile only shuts it down (the
        pending read sees the end) and it is closed here after; its errors mean the worker is gone."""
        self.busy = True
        try:
            yield
        except OSError as exc:
            raise WorkerGone(str(exc)) from exc
        finally:
            self.busy = False
            if self.closing:
                self.sock.close()

    async def _read_start(self) -> None:
        loop = asyncio.get_running_loop()
        with self._exchanging():
            try:
                # the limit is the worker's own, not its first caller's: a caller may go before it
                header = await asyncio.wait_for(
                    _read_exactly(loop, self.sock, _LENGTH.size), WORKER_START_TIMEOUT_S
                )
            except TimeoutError:  # (an OSError: not left to ``_exchanging``)
                self.process.kill()
                limit = WORKER_START_TIMEOUT_S
                raise NoWorker(f"a rewrite worker did not start within {limit:g} s") from None
        if _LENGTH.unpack(header)[0] != 0:
            raise WorkerGone("the worker's first frame was not its start")
        self.up = True

    async def call(self, request: bytes) -> Any:
        loop = asyncio.get_running_loop()
        with self._exchanging():
            await loop.sock_sendall(self.sock, _LENGTH.pack(len(request)) + request)
            header = await _read_exactly(loop, self.sock, _LENGTH.size)
            reply = await _read_exactly(loop, self.sock, _LENGTH.unpack(header)[0])
        ok, value = pickle.loads(reply)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        """Close our end: the worker reads its end-of-file and leaves (reaped at the next start).

        In the middle of a call the socket is only shut down: the pending read sees the end at
        once (``WorkerGone``: its caller rewrites in a thread) and the call closes it. Closing it
        under the event loop's pending read would leave the loop watching a dead descriptor."""
        if self.busy:
            self.closing = True
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            self.sock.close()


async def _read_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view, got = memoryview(buffer), 0
    while got < size:
        n = await loop.sock_recv_into(sock, view[got:])
        if n == 0:
            raise WorkerGone("the worker closed its end")
        got += n
    return bytes(buffer)


class _Lane:
    """Up to ``size`` workers, started as calls need them, each running one call at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.loop = asyncio.get_running_loop()
        self.workers: list[_Worker] = []
        self.idle: list[_Worker] = []
        # callers waiting for a worker; handed one, or None when a slot came free (a worker died)
        self.waiting: list[asyncio.Future[_Worker | None]] = []
        self.closed = False
        self.no_start_until = 0.0  # loop time: a worker did not start in time, none is started before

    async def call(self, request: bytes, timeout_s: float | None = None) -> Any:
        worker = await self._acquire()
        if not worker.up:
            await self._start(worker)
        exchange = asyncio.ensure_future(worker.call(request))
        try:
            result = await asyncio.wait_for(asyncio.shield(exchange), timeout_s)
        except TimeoutError:
            # a rewrite that does not end (no known input does): the worker goes, its lane goes on
            worker.process.kill()
            try:
                await exchange  # ends at once: the killed worker's socket reads end-of-file
            except Exception:  # noqa: BLE001 - the worker is gone, whatever it said
                pass
            self._drop(worker)
            raise RewriteTimedOut(f"no answer from a rewrite worker within {timeout_s} s") from None
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

    async def _start(self, worker: _Worker) -> None:
        """Wait (outside the rewrite timeout) for a new worker to say it is up; ``NoWorker`` or
        ``WorkerGone`` if it does not (``_started`` has dropped it by then)."""
        starting = worker.started()
        try:
            await asyncio.shield(starting)
        except asyncio.CancelledError:
            if starting.done():
                self._after(worker, starting)
            else:  # it is still starting: the worker is free (or gone) once it has said so
                starting.add_done_callback(functools.partial(self._after, worker))
            raise

    def _new_worker(self) -> _Worker:
        worker = _Worker()
        self.workers.append(worker)
        worker.started().add_done_callback(functools.partial(self._started, worker))
        return worker

    def _started(self, worker: _Worker, starting: asyncio.Future[None]) -> None:
        """A new worker is up, or never will be: dropped, and if it did not start in time, the
        callers waiting for a worker go to threads and no worker starts for ``START_BACKOFF_S``
        (each would wait as long again, one after another)."""
        failure = None if starting.cancelled() else starting.exception()
        if not starting.cancelled() and failure is None:
            return
        if isinstance(failure, NoWorker):
            self.no_start_until = self.loop.time() + START_BACKOFF_S
            waiting, self.waiting = self.waiting, []
            for waiter in waiting:
                if not waiter.done():
                    waiter.set_exception(NoWorker(str(failure)))
        self._drop(worker)

    def _after(self, worker: _Worker, exchange: asyncio.Future[Any]) -> None:
        """A call whose caller was cancelled has ended: the worker is free, or gone."""
        gone = exchange.cancelled() or isinstance(exchange.exception(), (WorkerGone, NoWorker))
        if gone:
            self._drop(worker)
        else:
            self._release(worker)

    async def _acquire(self) -> _Worker:
        while True:
            if self.closed:
                raise WorkerGone("the rewrite pool is closed")
            if self.idle:
                return self.idle.pop()
            if len(self.workers) < self.size:
                if self.loop.time() < self.no_start_until:
                    raise NoWorker(f"rewrite workers did not start within {WORKER_START_TIMEOUT_S:g} s "
                                   f"lately; none is started for {START_BACKOFF_S:g} s")
                try:
                    return self._new_worker()
                except NoWorker:  # to this caller; the next waiter tries for itself, not for nothing
                    self._wake(None)
                    raise
            waiter: asyncio.Future[_Worker | None] = self.loop.create_future()
            self.waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # handed something as we were cancelled
                    self._hand_on(waiter.result())
                raise
            if handed is not None:
                return handed
            # None: a worker died and its slot is free: go round and start one

    def _hand_on(self, handed: _Worker | None) -> None:
        if handed is not None:
            self._release(handed)
        else:
            self._wake(None)

    def _wake(self, value: _Worker | None) -> bool:
        while self.waiting:
            waiter = self.waiting.pop(0)
            if not waiter.done():
                waiter.set_result(value)
                return True
        return False

    def _release(self, worker: _Worker) -> None:
        if self.closed:
            worker.close()
        elif not self._wake(worker):
            self.idle.append(worker)

    def _drop(self, worker: _Worker) -> None:
        worker.close()
        if worker in self.workers:
            self.workers.remove(worker)
        if worker in self.idle:
            self.idle.remove(worker)
        self._wake(None)  # a waiter starts a worker in its place rather than waiting for nothing

    def close(self) -> None:
        self.closed = True
        for worker in self.workers:
            worker.close()
        self.workers.clear()
        self.idle.clear()
        for waiter in self.waiting:
            if not waiter.done():
                waiter.set_exception(WorkerGone("the rewrite pool is closed"))
        self.waiting.clear()
        multiprocessing.active_children()


def default_workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


class RewritePool:
    """Runs ``rewrite`` off the event loop; each lane's workers start on its first use.

    ``workers`` is the medium lane's size (the large lane gets half as many, at least one);
    0 rewrites everything in threads. A body a worker has not rewritten within ``timeout_s``
    (counted from the moment the worker is up: a new worker's start does not count) raises
    ``RewriteTimedOut`` (an ``UnrewritableDocument``: the proxy's "bad content" page) and that
    worker is replaced. A worker not up within ``WORKER_START_TIMEOUT_S`` is stopped, and the body
    rewritten in a thread.
    """

    def __init__(
        self, workers: int | None = None, small: int = SMALL_BODY, large: int = LARGE_BODY,
        timeout_s: float | None = None,
    ) -> None:
        self.workers = default_workers() if workers is None else workers
        self.timeout_s = timeout_s  # per body in a worker process (a thread cannot be stopped)
        self.small = small
        self.large = large
        self._lanes: dict[Lane, _Lane] = {}
        self.closed = False

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
        if self.closed:
            raise WorkerGone("the rewrite pool is closed")
        request = pickle.dumps((fn, args, kwargs), protocol=pickle.HIGHEST_PROTOCOL)
        return await self._lane(lane).call(request, self.timeout_s)

    async def run(self, kind: Kind, body: bytes, *, mapper: UrlMapper, **options: object) -> Rewritten:
        lane = self.lane(len(body))
        in_thread = functools.partial(rewrite, kind, body, mapper=mapper, **options)  # type: ignore[arg-type]
        if lane == "thread" or self.closed:
            return await asyncio.to_thread(in_thread)
        spec: MapperSpec = (mapper.session_id, mapper.proxy, mapper.known_origins)
        try:
            result: Rewritten = await self.call(lane, _rewrite_in_worker, kind, body, spec, **options)
        except NoWorker as exc:
            if isinstance(exc.__cause__, AssertionError):  # a daemon process: never any children
                logger.warning("no rewrite worker processes here (%s); rewriting in threads", exc)
                self.workers = 0
            else:  # out of processes or files for now: this body in a thread, the next one tries again
                logger.warning("could not start a rewrite worker (%s); rewriting this body in a thread", exc)
            return await asyncio.to_thread(in_thread)
        except WorkerGone:
            if not self.closed:
                logger.warning("a rewrite worker died; rewriting this body in a thread (a new one starts)")
            return await asyncio.to_thread(in_thread)
        return result

    @property
    def processes_started(self) -> bool:
        return any(lane.workers for lane in list(self._lanes.values()))

    def started(self, lane: Lane) -> bool:
        current = self._lanes.get(lane)
        return current is not None and bool(current.workers)

    def close(self) -> None:
        """Stop every worker; bodies still to rewrite (and any later ones) go to threads."""
        self.closed = True
        for lane in list(self._lanes.values()):
            lane.close()
        self._lanes.clear()
