"""``cobrowse serve`` runs the proxy: with the API in one process (--role all) or alone against
Redis (--role proxy); both print a readiness line and stop cleanly on Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

from control_api import accounts, agents, proxy_access, sessions, visitors
from control_api.store import Store
from rewriter.urls import Origin, encode_label
from tests.conftest import free_port
from tests.proxy.conftest import DOMAIN, Harness, Sites
from tests.serve_process import ServeProcess, children_of

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "test-admin-token-0123456789"


class Serve(ServeProcess):
    """``cobrowse serve ARGS`` with the test admin token and ``env`` over this environment."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        super().__init__(args, {**os.environ, "COBROWSE_ADMIN_TOKEN": ADMIN, **(env or {})})


def test_role_all_runs_api_and_proxy_in_one_process() -> None:
    api_port, proxy_port = free_port(), free_port()
    serve = Serve("--host", "127.0.0.1", "--api-port", str(api_port), "--proxy-port", str(proxy_port),
                  env={"COBROWSE_REDIS_URL": ""}).wait_ready()
    try:
        assert any(line.startswith("cobrowse: proxy ready") for line in serve.output)
        assert any(line.startswith(f"cobrowse: api ready on 127.0.0.1:{api_port}") for line in serve.output)
        assert httpx.get(f"http://127.0.0.1:{api_port}/healthz").status_code == 200
        r = httpx.get(f"http://127.0.0.1:{proxy_port}/", headers={"host": f"nothing.{DOMAIN}"})
        assert r.status_code == 404 and "Unknown address" in r.text
        assert httpx.get(f"http://127.0.0.1:{proxy_port}/healthz").json() == {"status": "ok"}
    finally:
        code = serve.stop()
    assert code == 0
    assert "cobrowse: stopped\n" in serve.output


async def _make_session(redis_url: str, namespace: str, origin: str) -> tuple[str, str]:
    store = Store.connect(redis_url, namespace)
    try:
        policy = {"allowed_origins": [origin], "consent": "none"}
        account = await accounts.create(store, "Fixture", True, policy)
        agent, _ = await agents.create(store, account.id, "Agent")
        visitor, _ = await visitors.register(store, account, origin, 30)
        record = await sessions.create(store, account, agent, visitor.id)
        ticket = await proxy_access.store_ticket(store, record["id"], agent.id, 60)
        return record["id"], ticket
    finally:
        await store.close()


def test_role_proxy_alone_serves_sessions_from_redis(redis_url: str, namespace: str, sites: Sites) -> None:
    proxy_port = free_port()
    serve = Serve(
        "--role", "proxy", "--host", "127.0.0.1", "--proxy-port", str(proxy_port), "--redis-url", redis_url,
        env={"COBROWSE_REDIS_NAMESPACE": namespace, "COBROWSE_DEV_ALLOW_ORIGINS": sites.shop.origin},
    ).wait_ready()
    try:
        sid, ticket = asyncio.run(_make_session(redis_url, namespace, sites.shop.origin))
        host = f"{encode_label(sid, Origin.parse(sites.shop.origin))}.{DOMAIN}:{proxy_port}"
        query = urllib.parse.urlencode({"ticket": ticket, "url": sites.shop.origin + "/about"})
        with httpx.Client(base_url=f"http://127.0.0.1:{proxy_port}") as client:
            enter = client.get(f"/__cobrowse/enter?{query}", headers={"host": host})
            assert enter.status_code == 303
            cookie = enter.headers["set-cookie"].split(";")[0]
            page = client.get("/about", headers={"host": host, "cookie": cookie})
            big = client.get("/big?kb=64", headers={"host": host, "cookie": cookie})  # a worker's size
        assert page.status_code == 200 and "<h1 id=\"title\">About</h1>" in page.text
        assert sites.shop.hits["/about"] == 1
        assert big.status_code == 200 and "/__cobrowse/runtime.js" in big.text
        workers = children_of(serve.proc.pid)
        assert workers, "no rewrite worker process was started"
        exits = [os.pidfd_open(pid) for pid in workers]  # readable once that process has exited
    finally:
        code = serve.stop()
    assert code == 0
    try:  # Ctrl-C reached the workers too: they leave with the proxy, quietly
        waiting, deadline = set(exits), time.monotonic() + 15
        while waiting and time.monotonic() < deadline:
            ready, _, _ = select.select(list(waiting), [], [], deadline - time.monotonic())
            waiting -= set(ready)
        assert not waiting, "rewrite workers outlived cobrowse serve"
    finally:
        for fd in exits:
            os.close(fd)
    assert not any("Traceback" in line for line in serve.output), "".join(serve.output)



def test_role_proxy_without_redis_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cobrowse", "serve", "--role", "proxy"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "COBROWSE_REDIS_URL": ""},
    )
    assert result.returncode == 2
    assert "redis-url" in result.stderr


def test_session_end_reaches_every_proxy_process(redis_url: str, namespace: str, sites: Sites) -> None:
    """One proxy in this process, one ``--role proxy`` subprocess, one Redis: ending the session
    closes the open connections of both and both refuse it within a second."""
    import socket

    from tests.proxy.conftest import Harness, make_settings

    in_process = Harness(make_settings(sites), redis_url, namespace)
    proxy_port = free_port()
    serve = Serve(
        "--role", "proxy", "--host", "127.0.0.1", "--proxy-port", str(proxy_port), "--redis-url", redis_url,
        env={"COBROWSE_REDIS_NAMESPACE": namespace, "COBROWSE_DEV_ALLOW_ORIGINS": sites.shop.origin},
    ).wait_ready()
    try:
        s = in_process.open_session((sites.shop.origin,))
        cookie = f"__cb_{s.sid}={in_process.credential(s)}"
        label_host = f"{encode_label(s.sid, Origin.parse(sites.shop.origin))}.{DOMAIN}"
        socks = []
        for port in (in_process.port, proxy_port):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            request = f"GET /about HTTP/1.1\r\nHost: {label_host}:{port}\r\nCookie: {cookie}\r\n\r\n"
            sock.sendall(request.encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            socks.append(sock)
        ended_at = time.monotonic()
        in_process.end(s)
        for sock in socks:
            sock.settimeout(1.0)
            while sock.recv(65536):  # drain what is left of the page, then see the close
                pass
            sock.close()
        assert time.monotonic() - ended_at < 1.0
        for port in (in_process.port, proxy_port):
            headers = {"host": f"{label_host}:{port}", "cookie": cookie}
            r = httpx.get(f"http://127.0.0.1:{port}/about", headers=headers)
            assert r.status_code == 403
    finally:
        serve.stop()
        in_process.close()


def test_stopping_the_proxy_stops_the_hooks_of_the_connections_it_closes(
    harness: Harness, sites: Sites
) -> None:
    """mitmproxy leaves a closed connection's hooks running; a stopped proxy must not, or a check
    still under way goes on to use the store (and opens connections nobody closes)."""

    class Stuck:
        def __init__(self) -> None:
            self.started, self.cancelled = threading.Event(), threading.Event()

        async def request(self, flow: object) -> None:
            self.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise

    stuck = Stuck()

    async def add() -> None:
        assert harness.proxy.master is not None
        harness.proxy.master.addons.add(stuck)

    harness.call(add())
    s = harness.open_session((sites.shop.origin,))
    head = (f"GET /about HTTP/1.1\r\nHost: {harness.host(s, sites.shop.origin)}\r\n"
            f"Cookie: __cb_{s.sid}={harness.credential(s)}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", harness.port), timeout=10) as sock:
        sock.sendall(head.encode())
        assert stuck.started.wait(10), "the request never reached the hook"
        harness.call(harness.proxy.stop())
    assert stuck.cancelled.is_set(), "the hook of a closed connection kept running after stop()"


@pytest.mark.parametrize("busy", ["api", "proxy"])
def test_a_port_in_use_is_said_in_one_line(busy: str) -> None:
    """Another program holds the port: `serve` stops what it started and says which port, why,
    and which flag changes it, in one line and with exit status 1 (no traceback: uvicorn exits
    the process when it cannot listen, mitmproxy only logs it)."""
    api_port, proxy_port = free_port(), free_port()
    held = api_port if busy == "api" else proxy_port
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", held))
        holder.listen()
        result = subprocess.run(
            [sys.executable, "-m", "cobrowse", "serve", "--host", "127.0.0.1",
             "--api-port", str(api_port), "--proxy-port", str(proxy_port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
            env={**os.environ, "COBROWSE_ADMIN_TOKEN": ADMIN, "COBROWSE_REDIS_URL": ""},
        )
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    name = "API" if busy == "api" else "proxy"
    assert last == (
        f"cobrowse: the {name} could not listen on 127.0.0.1:{held}: address already in use"
        f" (choose another port with --{busy}-port)"
    ), result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    # nor mitmproxy's hint about a flag of its own, nor its empty error line
    assert "--mode" not in result.stderr, result.stderr
    assert not re.search(r"ERROR \S+: *$", result.stderr, re.M), result.stderr


async def test_a_proxy_that_cannot_reach_redis_says_so_and_leaves_nothing_running(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Redis cannot be reached when the proxy starts: within the gate's wait it gives up with a
    message that names Redis and the reason (it was an empty line before), and stops its
    subscription task. A proxy that would not hear of sessions ending must not serve them."""
    from cobrowse.cmd_serve import serve
    from cobrowse.settings import Settings
    from proxy import session_gate

    monkeypatch.setattr(session_gate, "SUBSCRIBE_TIMEOUT_S", 0.5)
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        nowhere = f"redis://127.0.0.1:{closed.getsockname()[1]}/0"
    settings = Settings(host="127.0.0.1", proxy_port=free_port(), role="proxy", redis_url=nowhere)
    with pytest.raises(RuntimeError) as info:
        await serve(settings, stop_event=asyncio.Event())
    message = str(info.value)
    expected = "the proxy could not subscribe to session ends in Redis within 0.5 s: "
    assert message.startswith(expected), message
    assert "connecting to 127.0.0.1" in message, message
    left = [t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]
    assert not [name for name in left if name.startswith("cobrowse")], left
