"""Real servers for the browser tests: the demo shop (uvicorn in a thread) and `cobrowse serve`.

Everything starts on free loopback ports and is waited for by a readiness signal (uvicorn's
``started`` flag, an HTTP 200 from ``/readyz``), never after a fixed sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cobrowse.demo_shop import ShopConfig, create_shop_app
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
PROXY_DOMAIN = "cobrowse.localhost"


def bound_socket() -> socket.socket:
    """A listening loopback socket on a free port, kept open so nobody else takes the port.
    Listening at once: two sockets bound with SO_REUSEADDR and not yet listening may share a port
    (Linux), and the second server's listen then failed with EADDRINUSE under parallel runs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


class ShopServer:
    """The demo shop on its own loopback origin, in a background thread."""

    def __init__(self, sock: socket.socket, config: ShopConfig) -> None:
        self.sock = sock
        self.port = int(sock.getsockname()[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(create_shop_app(config), log_level="warning", lifespan="off", ws="none")
        )
        self.thread = threading.Thread(target=self._run, name="demo-shop", daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> ShopServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), "demo shop")
        if not self.server.started:
            raise AssertionError("demo shop did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@contextmanager
def shop_server(config: ShopConfig, sock: socket.socket | None = None) -> Iterator[ShopServer]:
    server = ShopServer(sock or bound_socket(), config).start()
    try:
        yield server
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Serve:
    """A running `cobrowse serve` subprocess."""

    proc: subprocess.Popen[bytes]
    api_port: int
    proxy_port: int
    admin_token: str
    log_path: Path

    @property
    def public_api_url(self) -> str:
        return f"http://{PROXY_DOMAIN}:{self.api_port}"

    def client(self, token: str | None = None) -> httpx.Client:
        """An HTTP client to the API (connects to 127.0.0.1, Host header of the public name)."""
        headers = {"Host": f"{PROXY_DOMAIN}:{self.api_port}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}/api/v1", headers=headers, timeout=10)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")


def ws_closes(serve: Serve | ApiServer, side: str) -> dict[str, int]:
    """How many of ``side``'s WebSockets the API has closed, by close code (its /metrics)."""
    with serve.client() as c:
        text = c.get(f"http://127.0.0.1:{serve.api_port}/metrics").text
    pattern = r'^cobrowse_websockets_closed_total\{side="' + side + r'",code="(\d+)"\} (\d+)$'
    return {code: int(n) for code, n in re.findall(pattern, text, re.M)}


@contextmanager
def serve_process(
    redis_url: str,
    tmp_path: Path,
    dev_allow_origins: tuple[str, ...],
    admin_token: str,
    namespace: str = "",
    role: str = "all",
    extra: tuple[str, ...] = (),
) -> Iterator[Serve]:
    api_port, proxy_port = free_port(), free_port()
    log_path = tmp_path / "serve.log"
    env = dict(os.environ)
    env["COBROWSE_ADMIN_TOKEN"] = admin_token
    if namespace:
        env["COBROWSE_REDIS_NAMESPACE"] = namespace
    args = [
        sys.executable, "-m", "cobrowse", "serve",
        "--host", "127.0.0.1",
        "--api-port", str(api_port),
        "--proxy-port", str(proxy_port),
        "--proxy-domain", PROXY_DOMAIN,
        "--redis-url", redis_url,
        "--dev-allow-origins", ",".join(dev_allow_origins),
        "--log-level", "debug",
        "--role", role,
        *extra,
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    serve = Serve(proc, api_port, proxy_port, admin_token, log_path)
    try:
        def ready() -> bool:
            if proc.poll() is not None:
                return True
            try:
                with serve.client() as c:
                    api_ok = c.get(f"http://127.0.0.1:{api_port}/readyz").status_code == 200
                if role == "api":
                    return api_ok
                with socket.create_connection(("127.0.0.1", proxy_port), timeout=0.5):
                    return api_ok
            except (httpx.HTTPError, OSError):
                return False

        wait_until(ready, "cobrowse serve", timeout_s=60)
        if proc.poll() is not None:
            raise AssertionError(f"cobrowse serve exited with {proc.returncode}:\n{serve.log()[-4000:]}")
        yield serve
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if namespace:  # the test's namespace is its own: drop what the server left in Redis
            import redis

            client = redis.Redis.from_url(redis_url)
            try:
                keys = list(client.scan_iter(match=namespace + "*"))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


@dataclass
class Demo:
    """A running `cobrowse demo` subprocess and what it printed."""

    proc: subprocess.Popen[str]
    output: str
    shop_url: str
    console_url: str
    agent_token: str
    admin_token: str
    site_key: str


def _field(pattern: str, text: str) -> str:
    found = re.search(pattern, text)
    if not found:
        raise AssertionError(f"`cobrowse demo` printed no {pattern!r}:\n{text}")
    return found.group(1)


@contextmanager
def demo_process(extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Iterator[Demo]:
    """`cobrowse demo` on free ports; ready once it has printed its URLs and tokens."""
    args = [
        sys.executable, "-m", "cobrowse", "demo",
        "--api-port", str(free_port()), "--proxy-port", str(free_port()), "--shop-port", "0",
        *extra_args,
    ]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COBROWSE_")}
    full_env.update(env or {})
    proc = subprocess.Popen(
        args, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    pumper = threading.Thread(target=pump, name="demo-stdout", daemon=True)
    pumper.start()
    seen: list[str] = []
    try:
        end = time.monotonic() + 60
        while True:
            try:
                line = lines.get(timeout=max(0.1, end - time.monotonic()))
            except queue.Empty:
                raise AssertionError("`cobrowse demo` was silent for 60s:\n" + "".join(seen)) from None
            if line is None:
                raise AssertionError("`cobrowse demo` exited:\n" + "".join(seen))
            seen.append(line)
            if line.startswith("Press Ctrl+C"):
                break
        text = "".join(seen)
        yield Demo(
            proc=proc,
            output=text,
            shop_url=_field(r"Visitor .*?(http://\S+)", text),
            console_url=_field(r"Agent .*?(http://\S+/console)", text),
            agent_token=_field(r"Agent token \([^)]*\):\s+(\S+)", text),
            admin_token=_field(r"Admin token:\s+(\S+)", text),
            site_key=_field(r"site key (\S+)", text),
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        pumper.join(timeout=10)  # EOF once the process is gone
        if proc.stdout is not None:
            proc.stdout.close()


class ApiServer:
    """The control API alone (create_app with the real Redis and the test's namespace), in a thread.

    For the agent UI tests that need no proxy; same client helpers as ``Serve``.
    """

    def __init__(
        self, redis_url: str, namespace: str, admin_token: str, dev_origin: str, grace_s: float,
        **settings: Any,
    ) -> None:
        from cobrowse.settings import Settings
        from control_api.app import create_app
        from control_api.store import Store

        self.sock = bound_socket()
        self.api_port = int(self.sock.getsockname()[1])
        self.proxy_port = 0
        self.admin_token = admin_token
        self.settings = Settings(
            api_port=self.api_port, admin_token=admin_token, redis_url=redis_url,
            dev_allow_origins=(dev_origin,), visitor_grace_s=grace_s, proxy_domain=PROXY_DOMAIN,
            **settings,
        )
        self.store = Store.connect(redis_url, namespace=namespace)
        app = create_app(self.settings, store=self.store)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="websockets-sansio"))
        self.thread = threading.Thread(target=self._run, name="control-api", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            # the test's namespace is its own: drop what it left, then close the connections
            keys = [k async for k in self.store.redis.scan_iter(match=self.store.namespace + "*")]
            if keys:
                await self.store.redis.delete(*keys)
            await self.store.close()

    @property
    def public_api_url(self) -> str:
        return f"http://{PROXY_DOMAIN}:{self.api_port}"

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Host": f"{PROXY_DOMAIN}:{self.api_port}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=f"http://127.0.0.1:{self.api_port}/api/v1", headers=headers, timeout=10)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)

    def log(self) -> str:
        return ""

    def start(self) -> ApiServer:
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), "control API")
        if not self.server.started:
            raise AssertionError("the control API did not start")
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Stack:
    """serve + shop + an account (with the shop allowed) + an agent."""

    serve: Serve | ApiServer
    shop: ShopServer
    account: dict[str, Any]
    agent_token: str
    agent_name: str
    namespace: str  # the Redis prefix of the serve's keys (a shared serve's own)

    @property
    def console_url(self) -> str:
        return self.serve.public_api_url + "/console"

    def set_policy(self, **changes: Any) -> dict[str, Any]:
        with self.serve.admin() as c:
            answer = c.patch(f"/accounts/{self.account['id']}/policy", json=changes)
            answer.raise_for_status()
            return dict(answer.json())

    def agent(self) -> httpx.Client:
        return self.serve.client(self.agent_token)


def create_account(
    serve: Serve | ApiServer, origin: str, policy: dict[str, Any], enabled: bool
) -> dict[str, Any]:
    body = {
        "name": "E2E shop",
        "cobrowse_enabled": enabled,
        "policy": {"allowed_origins": [origin], "min_bandwidth_kbps": 1, **policy},
    }
    with serve.admin() as c:
        answer = c.post("/accounts", json=body)
        assert answer.status_code in (200, 201), answer.text
        data = answer.json()
    return dict(data.get("account", data))


def create_agent(serve: Serve | ApiServer, account_id: str, name: str) -> str:
    with serve.admin() as c:
        answer = c.post(f"/accounts/{account_id}/agents", json={"display_name": name})
        assert answer.status_code in (200, 201), answer.text
        data = answer.json()
    return str(data.get("token") or data["agent_token"])


class SharedServe:
    """One `cobrowse serve` (default flags) for the tests of a module, started by the first test
    that asks for it: starting it costs seconds of imports (far more under load), most tests
    change nothing of it, and each test has an account, an agent and a shop of its own.

    ``--dev-allow-origins`` is fixed at start, so the shops' sockets are bound then and handed
    out one per test; once they are used up (or the process is gone), a test starts its own."""

    SHOPS = 24

    def __init__(self, redis_url: str, tmp_path: Path) -> None:
        self.redis_url = redis_url
        self.tmp_path = tmp_path
        self.exits = contextlib.ExitStack()
        self.serve: Serve | None = None
        self.sockets: list[socket.socket] = []
        self.namespace = f"t{secrets.token_hex(5)}:"

    def take(self) -> tuple[Serve, socket.socket, str] | None:
        """The running serve, a shop socket it allows and its namespace, or None when there is none
        to take."""
        if self.serve is None:
            self.sockets = [bound_socket() for _ in range(self.SHOPS)]
            origins = tuple(f"http://127.0.0.1:{s.getsockname()[1]}" for s in self.sockets)
            token = secrets.token_urlsafe(16)
            self.serve = self.exits.enter_context(
                serve_process(self.redis_url, self.tmp_path, origins, token, self.namespace)
            )
        if not self.sockets or self.serve.proc.poll() is not None:
            return None
        return self.serve, self.sockets.pop(0), self.namespace

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        self.exits.close()


@pytest.fixture(scope="module")
def shared_serve(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServe]:
    shared = SharedServe(redis_url, tmp_path_factory.mktemp("serve"))
    try:
        yield shared
    finally:
        shared.close()


@contextmanager
def start_stack(
    redis_url: str,
    tmp_path: Path,
    *,
    namespace: str,
    admin_token: str,
    policy: dict[str, Any],
    cobrowse_enabled: bool = True,
    agent_name: str = "Alex",
    role: str = "all",
    extra: tuple[str, ...] = (),
    api_settings: dict[str, Any] | None = None,
    shared: SharedServe | None = None,
) -> Iterator[Stack]:
    """``extra``: more flags of ``cobrowse serve``; ``api_settings``: more Settings of the
    ``api-thread`` role's API; ``shared``: the module's serve, used when the flags are the default."""
    taken = shared.take() if shared is not None and role == "all" and not extra else None
    sock = taken[1] if taken else bound_socket()
    origin = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with contextlib.ExitStack() as exits:
            serve: Serve | ApiServer
            if taken:
                serve = taken[0]
                namespace = taken[2]
            elif role == "api-thread":
                serve = ApiServer(
                    redis_url, namespace, admin_token, origin, **{"grace_s": 3.0, **(api_settings or {})}
                ).start()
                exits.callback(serve.stop)
            else:
                serve = exits.enter_context(
                    serve_process(redis_url, tmp_path, (origin,), admin_token, namespace, role, extra)
                )
            account = create_account(serve, origin, policy, cobrowse_enabled)
            token = create_agent(serve, account["id"], agent_name)
            config = ShopConfig(banner_src=serve.public_api_url + "/banner.js", site_key=account["site_key"])
            with shop_server(config, sock) as shop:
                yield Stack(serve, shop, account, token, agent_name, namespace)
    finally:
        sock.close()


@pytest.fixture
def make_stack(
    redis_url: str, namespace: str, tmp_path: Path, request: pytest.FixtureRequest, shared_serve: SharedServe
) -> Iterator[Callable[..., Stack]]:
    """Start a full stack: make_stack(policy={...}, cobrowse_enabled=True) -> Stack.

    With the default role and flags, the stack is served by the module's ``shared_serve``.

    When the test fails, the tail of each server's log is printed (pytest shows it with the failure).
    """
    started: list[Stack] = []
    with contextlib.ExitStack() as exits:
        exits.callback(_print_logs_on_failure, request, started)

        def make(
            policy: dict[str, Any] | None = None,
            cobrowse_enabled: bool = True,
            role: str = "all",
            extra: tuple[str, ...] = (),
            api_settings: dict[str, Any] | None = None,
        ) -> Stack:
            stack = exits.enter_context(
                start_stack(
                    redis_url,
                    tmp_path,
                    namespace=namespace,
                    admin_token=secrets.token_urlsafe(16),
                    policy=policy or {},
                    cobrowse_enabled=cobrowse_enabled,
                    role=role,
                    extra=extra,
                    api_settings=api_settings,
                    shared=shared_serve,
                )
            )
            started.append(stack)
            return stack

        yield make


def _print_logs_on_failure(request: pytest.FixtureRequest, stacks: list[Stack]) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    for stack in stacks:
        log = stack.serve.log()
        if log:
            print(f"---- cobrowse serve log (last 6000 characters) ----\n{log[-6000:]}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep the call phase's report on the item, for fixtures that report more on failure."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.rep_call = report  # type: ignore[attr-defined]
