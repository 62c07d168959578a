"""``cobrowse serve``: run the control API and/or the proxy until Ctrl-C or SIGTERM.

``serve(settings)`` builds the parts of the chosen role and runs them together on one event loop.
A part has ``start()`` (returns once it listens), ``wait()`` (returns if it stops on its own) and
``stop()``. With ``--role all`` both parts share one store object (the embedded store when no
``--redis-url`` is given). Once every part listens, one line ``cobrowse: ready ...`` is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import logging
import signal
import sys
from typing import Any, Protocol

from cobrowse.settings import Settings, command_line_secret_warnings

log = logging.getLogger("cobrowse.serve")


class Part(Protocol):
    name: str

    async def start(self) -> None: ...

    async def wait(self) -> None: ...

    async def stop(self) -> None: ...


class ApiPart:
    """The control API on uvicorn (signals are handled by ``serve``, not by uvicorn)."""

    name = "api"

    def __init__(self, settings: Settings, store: Any) -> None:
        import uvicorn

        from cobrowse.api_protocol import HeadDeadlineProtocol
        from control_api import create_app

        class Server(uvicorn.Server):
            def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
                return contextlib.nullcontext()

        config = uvicorn.Config(
            create_app(settings, store=store),
            host=settings.host,
            port=settings.api_port,
            log_level=settings.log_level,
            ws_max_size=settings.ws_max_message_bytes + 1024,
            ws_per_message_deflate=False,  # small JSON messages: compression costs more CPU than it saves
            timeout_graceful_shutdown=5,  # then open WebSocket handlers are cancelled: Ctrl-C always ends
            lifespan="on",
            access_log=settings.log_level == "debug",  # access lines carry paths only, never tokens
            proxy_headers=False,
            http=HeadDeadlineProtocol,  # no connection waits for ever for its request head
        )
        self.settings = settings
        self.server = Server(config)
        self._task: asyncio.Task[None] | None = None

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit as exc:
            # uvicorn exits the process when it cannot listen (after logging why): a plain error
            # here, so that `serve` stops what it started and says so in one line
            cause = exc.__context__
            if isinstance(cause, OSError) and cause.errno == errno.EADDRINUSE:
                raise RuntimeError("address already in use (choose another port with --api-port)") from None
            reason = cause.strerror if isinstance(cause, OSError) and cause.strerror else ""
            raise RuntimeError(reason.rpartition(": ")[2] or f"uvicorn exited with {exc.code}") from None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="cobrowse-api")
        while not self.server.started:
            if self._task.done():
                break
            await asyncio.sleep(0.02)
        if not self.server.started:
            failure = self._task.exception() if self._task.done() and not self._task.cancelled() else None
            reason = f": {failure}" if failure is not None else ""
            raise RuntimeError(
                f"the API could not listen on {self.settings.host}:{self.settings.api_port}{reason}"
            )
        print(f"cobrowse: api ready on {self.settings.host}:{self.port}", flush=True)

    @property
    def port(self) -> int:
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return self.settings.api_port

    async def wait(self) -> None:
        if self._task is not None:
            await self._task

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class ProxyPart:
    """The rewriting proxy (``proxy.server.ProxyServer``)."""

    name = "proxy"

    def __init__(self, settings: Settings, store: Any) -> None:
        from proxy.server import ProxyServer

        self.settings = settings
        self.server = ProxyServer(settings, store)

    async def start(self) -> None:
        from proxy.exceptions import ProxyError

        try:
            await self.server.start()
        except ProxyError as exc:
            raise RuntimeError(str(exc)) from exc
        public = self.server.ctx.public
        print(
            f"cobrowse: proxy ready on {self.settings.host}:{self.port} "
            f"(proxied origins at {public.scheme}://*.{public.domain}:{public.port})",
            flush=True,
        )

    @property
    def port(self) -> int:
        return int(self.server.port)

    async def wait(self) -> None:
        await self.server.wait()

    async def stop(self) -> None:
        await self.server.stop()


GC_GEN0_THRESHOLD = 10_000


def tune_gc() -> None:
    """Once started: freeze what start-up allocated (modules, app, tables) out of the collector's
    scans, and collect the young generation every 10 000 allocations instead of 700. A serving
    process allocates many short-lived objects per message; at the default threshold its full
    collections paused the event loop often enough to show in the events benchmark's p99."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def build_parts(settings: Settings, store: Any) -> list[Part]:
    parts: list[Part] = []
    if settings.role in ("all", "api"):
        parts.append(ApiPart(settings, store))
    if settings.role in ("all", "proxy"):
        parts.append(ProxyPart(settings, store))
    return parts


async def serve(settings: Settings, *, stop_event: asyncio.Event | None = None) -> None:
    """Run every part of ``settings.role`` until SIGINT/SIGTERM (or ``stop_event``), then stop them."""
    from control_api.store import Store

    store = Store.connect(settings.redis_url or None, namespace=settings.redis_namespace)
    stop_event = stop_event or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, stop_event.set)
    parts = build_parts(settings, store)
    started: list[Part] = []
    try:
        for part in parts:
            await part.start()
            started.append(part)
        ports = ", ".join(f"{p.name} port {getattr(p, 'port', '?')}" for p in started)
        tune_gc()
        print(f"cobrowse: ready ({ports})", flush=True)
        waiters = [asyncio.create_task(p.wait()) for p in started]
        stopper = asyncio.create_task(stop_event.wait())
        await asyncio.wait([*waiters, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
    finally:
        for part in reversed(started):
            await part.stop()
        await store.close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def check(settings: Settings) -> str | None:
    """A reason not to start, for the user, or None."""
    if settings.role in ("all", "api") and not settings.admin_token:
        return (
            "cobrowse: no admin token: set COBROWSE_ADMIN_TOKEN (or --admin-token-file) to serve the API; "
            "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return None


def configure_logging(log_level: str) -> None:
    """The process's log format and level. mitmproxy says "client connect" and "client disconnect"
    at INFO for every connection: kept for ``debug``, they buried everything else."""
    level = log_level.upper()
    level = level if level in logging.getLevelNamesMapping() else "INFO"
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if logging.getLevelNamesMapping()[level] > logging.DEBUG:
        logging.getLogger("mitmproxy.proxy.server").setLevel(logging.WARNING)


def run(args: argparse.Namespace) -> int:
    for warning in command_line_secret_warnings(args):
        print(warning, file=sys.stderr)
    settings = Settings.resolve(args)
    problem = check(settings)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    store = "redis" if settings.redis_url else "embedded store"
    print(
        f"cobrowse: serving role {settings.role} with the {store}; "
        f"console at {settings.public_api_url}/console",
        flush=True,
    )
    try:
        asyncio.run(serve(settings))
    except KeyboardInterrupt:
        pass
    except (RuntimeError, OSError) as exc:
        print(f"cobrowse: {exc}", file=sys.stderr)
        return 1
    print("cobrowse: stopped", flush=True)
    return 0
