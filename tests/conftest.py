"""Shared fixtures: a real Redis and a real headless Chromium.

Redis comes from ``COBROWSE_TEST_REDIS_URL`` (``scripts/test`` starts one on a free loopback port).
When it is not set, a private ``redis-server`` is started for the run. A missing Redis or Chromium
is a test failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("COBROWSE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Any, what: str | Callable[[], str], timeout_s: float = 20.0, *, page: Any = None
) -> None:
    """Poll ``predicate`` (a readiness check, never a fixed sleep) until true or fail naming ``what``.

    Pass the ``page`` when the predicate reads what Playwright event handlers collect (console
    messages, WebSocket frames): sync Playwright runs handlers only inside its own calls, so the
    poll then ticks with ``page.wait_for_timeout`` instead of ``time.sleep``.
    """
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return
        if page is not None:
            page.wait_for_timeout(20)
        else:
            time.sleep(0.02)
    raise AssertionError(f"{what() if callable(what) else what} not ready within {timeout_s}s")


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _wait_for_redis(port: int, deadline_s: float = 10.0) -> None:
    wait_until(lambda: _redis_answers(port), f"redis-server on port {port} (PING)", deadline_s)


def start_redis_server(port: int, workdir: Path, *extra: str) -> subprocess.Popen[bytes]:
    """A redis-server on loopback ``port`` (no snapshots, its files in ``workdir``, ``extra``
    flags), returned once it answers PING; the caller stops it."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is required"
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir), *extra]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_redis(port)
    except BaseException:
        proc.kill()
        proc.wait(10)
        raise
    return proc


@contextlib.contextmanager
def private_redis(workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A Redis of one test alone, for a test that stops it or cuts its clients (which on the
    shared one would reach other tests): (the process, its port)."""
    port = free_port()
    proc = start_redis_server(port, workdir)
    try:
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    """Base URL of a real Redis server (no database number)."""
    url = os.environ.get("COBROWSE_TEST_REDIS_URL")
    if url:
        yield url.rsplit("/", 1)[0] if url.count("/") > 2 else url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail(
            "no Redis: set COBROWSE_TEST_REDIS_URL or install redis-server (scripts/test does both)"
        )
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="cobrowse-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_redis(port)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_url(redis_server_url: str) -> str:
    """A Redis URL with a database of this xdist worker's own (pub/sub is global: use namespaces)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    return f"{redis_server_url}/{1 + index % 15}"


@pytest.fixture
def namespace() -> str:
    """A key and channel prefix unique to one test, so tests sharing a Redis never meet."""
    return f"t{uuid.uuid4().hex[:10]}:"


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/test does)")
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium_executable: str) -> Iterator[Any]:
    """One headless Chromium per test module (sync Playwright API).

    Module scope, not session scope: while sync Playwright runs, its event loop counts as running
    in this thread, so every asyncio test after it would fail. ``scripts/test`` distributes tests
    by file (``--dist loadfile``), so the fixture is gone before another module's tests start.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=chromium_executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield instance
        finally:
            instance.close()


# --- the order of the modules, for `--dist loadfile` ------------------------------------------------

# What one test costs, roughly, in tenths of a second: a plain test 1, and more for what it starts
# (a browser, a stack, a live API process) or when it is marked ``long`` (a whole co-browse flow).
_COST_OF_FIXTURE = {"browser": 30, "make_stack": 20, "live_api": 700}
_COST_OF_LONG = 300


def module_cost(items: list[pytest.Item]) -> int:
    """A rough cost of running ``items`` (one module's tests), for the order of the modules."""
    return sum(
        1
        + sum(_COST_OF_FIXTURE.get(name, 0) for name in item.fixturenames)
        + (_COST_OF_LONG if item.get_closest_marker("long") else 0)
        for item in items
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The costliest modules first, each module's tests in their order. ``scripts/test`` hands
    modules to two workers in this order (``--dist loadfile --no-loadscope-reorder``): with the
    long ones first, the cheap ones fill in at the end and neither worker is left alone with a
    module of minutes (xdist's own order, most tests first, put the end-to-end ones last)."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    ordered = sorted(modules.values(), key=module_cost, reverse=True)
    items[:] = [item for module in ordered for item in module]
