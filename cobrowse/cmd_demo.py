"""``cobrowse demo``: the API, the proxy and a sample shop in one process, ready to click through.

It starts ``cobrowse serve`` (embedded store unless ``--redis-url``), provisions an account
through the admin API exactly as an administrator would (co-browse on, the shop in
``allowed_origins``, the shop's card field masked) and an agent, starts the bundled shop on its
own loopback origin with the banner embedded, and prints what to open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import secrets
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TextIO, cast

from cobrowse.cmd_serve import configure_logging
from cobrowse.settings import Settings, SettingsError, command_line_secret_warnings

SHOP_HOST = "127.0.0.1"
READY_TIMEOUT_S = 60.0
STOPPING_WAIT_S = 5.0  # for `serve` to end, when the API it served went away


class DemoError(RuntimeError):
    """The demo could not start; the message says why, for a person."""


@dataclass(frozen=True)
class Provisioned:
    account_id: str
    site_key: str
    agent_name: str
    agent_token: str


def bind_shop_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((SHOP_HOST, port))
    except OSError as exc:
        sock.close()
        where = f"{SHOP_HOST}:{port}"
        raise SettingsError(f"--shop-port {port}: cannot listen on {where} ({exc.strerror})") from exc
    sock.listen(128)  # now: a port 0 bound with SO_REUSEADDR is not claimed until it listens
    return sock


def demo_settings(settings: Settings, shop_origin: str) -> Settings:
    """The demo's settings: an admin token (generated unless given) and the shop as a dev origin."""
    origins = tuple(dict.fromkeys((*settings.dev_allow_origins, shop_origin)))
    token = settings.admin_token or secrets.token_urlsafe(24)
    return settings.replace(admin_token=token, dev_allow_origins=origins)


class AdminClient:
    """The few admin API calls the demo makes (stdlib HTTP: no client dependency at run time)."""

    def __init__(self, settings: Settings) -> None:
        connect_host = "127.0.0.1" if settings.host in ("0.0.0.0", "", "::") else settings.host
        self.base = f"http://{connect_host}:{settings.api_port}"
        self.host_header = settings.public_api_url.split("://", 1)[1]
        self.token = settings.admin_token

    def _call(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Host", self.host_header)
        request.add_header("Content-Type", "application/json")
        request.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            raise DemoError(f"{method} {path}: HTTP {exc.code} {detail}") from exc
        except OSError as exc:
            raise DemoError(f"{method} {path}: {exc}") from exc
        return json.loads(text) if text else None

    def ready(self) -> bool:
        request = urllib.request.Request(self.base + "/readyz")
        request.add_header("Host", self.host_header)
        try:
            with urllib.request.urlopen(request, timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def provision(self, shop_origin: str) -> Provisioned:
        from cobrowse.demo_shop import MASKED_SELECTORS

        account = self._call(
            "POST",
            "/api/v1/accounts",
            {
                "name": "Demo Shop",
                "cobrowse_enabled": True,
                "policy": {
                    "allowed_origins": [shop_origin],
                    "masked_selectors": list(MASKED_SELECTORS),
                    "consent": "request",
                    "agent_interface": "popin",
                    "agent_can_navigate": True,
                    # Loopback is fast, but a busy laptop must not grey the button out in a demo.
                    "min_bandwidth_kbps": 64,
                },
            },
        )
        account = account.get("account", account)
        agent_name = "Alex from Support"
        created = self._call("POST", f"/api/v1/accounts/{account['id']}/agents", {"display_name": agent_name})
        token = created.get("token") or created.get("agent_token")
        if not token:
            raise DemoError("the API created an agent but returned no token")
        return Provisioned(account["id"], account["site_key"], agent_name, token)


async def _wait_ready(client: AdminClient, serving: asyncio.Task[Any]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while loop.time() < deadline:
        if serving.done():
            serving.result()  # raises what stopped it
            raise DemoError("the server stopped during start-up")
        if await asyncio.to_thread(client.ready):
            return
        await asyncio.sleep(0.1)
    raise DemoError(f"the API did not become ready within {READY_TIMEOUT_S:.0f}s")


def banner(settings: Settings, shop_origin: str, p: Provisioned) -> str:
    api = settings.public_api_url
    proxy = f"{settings.proxy_public_scheme}://*.{settings.proxy_domain}:{settings.public_proxy_port}"
    agent, admin = f"Agent token ({p.agent_name}):", "Admin token:"
    width = max(len(agent), len(admin)) + 1  # the two tokens start in one column
    return f"""
cobrowse demo is running. Open two browser windows (Chromium or Chrome: *.localhost must resolve):

  Visitor  - the sample shop:      {shop_origin}/
  Agent    - the console:          {api}/console
             sign in with the agent token below, then press "Co-browse" next to the visitor.
  API      - OpenAPI document:     {api}/openapi.json
  Proxy    - proxied origins:      {proxy}

  {agent:<{width}}{p.agent_token}
  {admin:<{width}}{settings.admin_token}
  Account {p.account_id}, site key {p.site_key}

The shop's card number field (.card-number), every password input and every field whose
autocomplete says it holds a card number or a one-time code are masked.
Press Ctrl+C to stop.
"""


ServeFn = Callable[[Settings], Coroutine[Any, Any, Any]]


def _serve_function() -> ServeFn:
    cmd_serve = importlib.import_module("cobrowse.cmd_serve")
    serve = getattr(cmd_serve, "serve", None)
    if serve is None:
        raise DemoError("cobrowse.cmd_serve has no serve(settings) coroutine")
    return cast(ServeFn, serve)


async def run_demo(settings: Settings, shop_port: int, out: TextIO = sys.stdout) -> int:
    import uvicorn

    from cobrowse.demo_shop import ShopConfig, create_shop_app

    class _ShopServer(uvicorn.Server):
        def capture_signals(self) -> contextlib.AbstractContextManager[None]:  # type: ignore[override]
            return contextlib.nullcontext()  # Ctrl+C belongs to `serve`; the shop stops with it

    sock = bind_shop_socket(shop_port)
    shop_origin = f"http://{SHOP_HOST}:{sock.getsockname()[1]}"
    settings = demo_settings(settings, shop_origin)
    serving: asyncio.Task[Any] = asyncio.create_task(_serve_function()(settings), name="cobrowse-serve")
    shop_task: asyncio.Task[Any] | None = None
    shop: _ShopServer | None = None
    try:
        client = AdminClient(settings)
        await _wait_ready(client, serving)
        try:
            provisioned = await asyncio.to_thread(client.provision, shop_origin)
        except DemoError as exc:
            # the API answered ready, then went: what stopped `serve` (the proxy's port in use)
            # says more than the refused connection
            cause = exc.__cause__
            if isinstance(cause, OSError) and not isinstance(cause, urllib.error.HTTPError):
                await asyncio.wait([serving], timeout=STOPPING_WAIT_S)
                if serving.done() and not serving.cancelled() and serving.exception() is not None:
                    serving.result()
            raise
        config = ShopConfig(banner_src=settings.public_api_url + "/banner.js", site_key=provisioned.site_key)
        shop = _ShopServer(
            uvicorn.Config(
                create_shop_app(config), log_level=settings.log_level.lower(), lifespan="off", ws="none",
                timeout_graceful_shutdown=3,
            )
        )
        shop_task = asyncio.create_task(shop.serve(sockets=[sock]), name="demo-shop")
        print(banner(settings, shop_origin, provisioned), file=out, flush=True)
        await serving
        return 0
    finally:
        if shop is not None:
            shop.should_exit = True
        if shop_task is not None:
            await asyncio.gather(shop_task, return_exceptions=True)
        if not serving.done():
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        sock.close()


def run(args: argparse.Namespace) -> int:
    for warning in command_line_secret_warnings(args):
        print(warning, file=sys.stderr)
    settings = Settings.resolve(args)
    configure_logging(settings.log_level)
    try:
        return asyncio.run(run_demo(settings, int(args.shop_port)))
    except (RuntimeError, OSError) as exc:  # DemoError, or what stopped `serve` (a port in use)
        print(f"cobrowse demo: {exc}", file=sys.stderr)
        return 1
