"""Real ``cobrowse serve --role api`` processes: two sharing one Redis, restarts, store outages, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as sync_redis
from cb_api_helpers import ADMIN_TOKEN, ApiProcess
from websockets.asyncio.client import connect
from websockets.sync.client import connect as ws_connect

from tests.conftest import free_port, start_redis_server, wait_until
from tests.serve_process import ServeProcess

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "http://127.0.0.1:8002"
H_ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[str]:
    """The test Redis; the processes use the default namespace, so its keys are removed afterwards."""
    yield redis_url
    client = sync_redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match="cobrowse:*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def two_apis(clean_redis: str) -> Iterator[tuple[ApiProcess, ApiProcess]]:
    first, second = ApiProcess(clean_redis), ApiProcess(clean_redis)
    try:
        yield first.wait_ready(), second.wait_ready()
    finally:
        assert first.stop() == 0
        assert second.stop() == 0


async def _recv(ws: Any, kind: str, timeout: float = 10) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


async def test_two_processes_share_state_and_events(two_apis: tuple[ApiProcess, ApiProcess]) -> None:
    one, two = two_apis
    async with httpx.AsyncClient(base_url=one.url) as c1, httpx.AsyncClient(base_url=two.url) as c2:
        policy = {"allowed_origins": [ORIGIN], "min_bandwidth_kbps": 0}
        account = (
            await c1.post(
                "/api/v1/accounts",
                json={"name": "S", "cobrowse_enabled": True, "policy": policy},
                headers=H_ADMIN,
            )
        ).json()
        agent = (
            await c1.post(
                f"/api/v1/accounts/{account['id']}/agents", json={"display_name": "Alice"}, headers=H_ADMIN
            )
        ).json()
        r = await c2.post(
            "/api/v1/visitors", json={"site_key": account["site_key"]}, headers={"Origin": ORIGIN}
        )
        visitor = r.json()
        h_agent = {"Authorization": f"Bearer {agent['token']}"}
        h_visitor = {"Authorization": f"Bearer {visitor['token']}"}
        async with (
            connect(two.ws_url + "/api/v1/visitor/ws", origin=ORIGIN) as vws,
            connect(  # type: ignore[arg-type]
                one.ws_url + "/api/v1/agent/ws"
            ) as aws,
        ):
            await vws.send(json.dumps({"type": "auth", "token": visitor["token"]}))
            await _recv(vws, "hello")
            await aws.send(json.dumps({"type": "auth", "token": agent["token"]}))
            await _recv(aws, "hello")
            r = await c1.post("/api/v1/sessions", json={"visitor_id": visitor["visitor_id"]}, headers=h_agent)
            assert r.status_code == 201, r.text
            sid = r.json()["id"]
            assert (await _recv(vws, "session"))["to"] == "pending"  # created on one, seen on two
            r = await c2.post(f"/api/v1/sessions/{sid}/accept", headers=h_visitor)  # accepted on two
            assert r.json()["state"] == "active"
            assert (await _recv(aws, "session"))["to"] == "pending"
            assert (await _recv(aws, "session"))["to"] == "active"  # seen on one
            await vws.send(json.dumps({"type": "scroll", "x": 0, "y": 77}))
            assert (await _recv(aws, "scroll"))["y"] == 77
            await aws.send(json.dumps({"type": "highlight", "session_id": sid, "selector": "#buy"}))
            assert (await _recv(vws, "highlight"))["selector"] == "#buy"
            assert (await c1.get(f"/api/v1/sessions/{sid}", headers=h_agent)).json()["state"] == "active"
            r = await c1.post(f"/api/v1/sessions/{sid}/proxy-ticket", headers=h_agent)
            assert r.status_code == 200
            r = await c2.post(f"/api/v1/sessions/{sid}/end", headers=H_ADMIN)
            assert r.json()["state"] == "ended"
            assert (await _recv(aws, "session"))["to"] == "ended"
            assert (await _recv(vws, "session"))["to"] == "ended"


def test_deadline_fires_after_a_restart_with_nobody_connected(clean_redis: str) -> None:
    first = ApiProcess(clean_redis).wait_ready()
    with httpx.Client(base_url=first.url) as c:
        policy = {"allowed_origins": [ORIGIN], "min_bandwidth_kbps": 0, "consent_timeout_s": 5}
        account = c.post(
            "/api/v1/accounts",
            json={"name": "S", "cobrowse_enabled": True, "policy": policy},
            headers=H_ADMIN,
        ).json()
        agent = c.post(
            f"/api/v1/accounts/{account['id']}/agents", json={"display_name": "A"}, headers=H_ADMIN
        ).json()
        visitor = c.post(
            "/api/v1/visitors", json={"site_key": account["site_key"]}, headers={"Origin": ORIGIN}
        ).json()
        # presence without a socket: mark the visitor online directly (its socket would do this)
        client = sync_redis.Redis.from_url(clean_redis, decode_responses=True)
        client.zadd(f"cobrowse:visitor:{visitor['visitor_id']}:conns", {"c": time.time() + 60})
        r = c.post(
            "/api/v1/sessions",
            json={"visitor_id": visitor["visitor_id"]},
            headers={"Authorization": f"Bearer {agent['token']}"},
        )
        assert r.status_code == 201, r.text
        sid = r.json()["id"]
    assert first.stop() == 0
    time.sleep(5.5)  # the consent deadline passes while no API process runs
    assert client.hget(f"cobrowse:session:{sid}", "state") == "pending"
    second = ApiProcess(clean_redis).wait_ready()
    try:
        wait_until(lambda: client.hget(f"cobrowse:session:{sid}", "state") != "pending", "the sweep", 10)
        assert client.hget(f"cobrowse:session:{sid}", "state") == "expired"
        assert client.hget(f"cobrowse:session:{sid}", "reason") == "consent_timeout"
    finally:
        client.close()
        assert second.stop() == 0


def test_store_outage_is_503_and_recovers(tmp_path: Path) -> None:
    port = free_port()

    def start_redis() -> subprocess.Popen[bytes]:
        # append-only file: the restarted server has the same data, as a restarted Redis would;
        # fsync every second, not on every write: a SIGTERM'd Redis writes its file out before it
        # exits anyway, and an fsync per write on a busy disk outlasted the client's 5 s socket
        # timeout in a full run (a 1013 "store unavailable" after the recovery)
        return start_redis_server(port, tmp_path, "--appendonly", "yes", "--appendfsync", "everysec")

    redis_proc = start_redis()
    api = ApiProcess(f"redis://127.0.0.1:{port}/0").wait_ready()
    try:
        with httpx.Client(base_url=api.url, timeout=10) as c:
            assert c.get("/readyz").status_code == 200
            policy = {"consent": "none", "allowed_origins": [ORIGIN], "min_bandwidth_kbps": 0}
            body = {"name": "S", "cobrowse_enabled": True, "policy": policy}
            account = c.post("/api/v1/accounts", json=body, headers=H_ADMIN).json()
            agent = c.post(
                f"/api/v1/accounts/{account['id']}/agents", json={"display_name": "A"}, headers=H_ADMIN
            )
            agent_token = agent.json()["token"]
            visitor = c.post(
                "/api/v1/visitors", json={"site_key": account["site_key"]}, headers={"Origin": ORIGIN}
            )
            # an agent console connected across the outage: its events must flow again afterwards
            with ws_connect(api.ws_url + "/api/v1/agent/ws") as aws:
                aws.send(json.dumps({"type": "auth", "token": agent_token}))
                assert json.loads(aws.recv(timeout=10))["type"] == "hello"
                redis_proc.terminate()
                redis_proc.wait()
                r = c.get("/readyz")
                assert (r.status_code, r.json()["error"]) == (503, "store_unavailable")
                r = c.post("/api/v1/accounts", json={"name": "x"}, headers=H_ADMIN)
                assert (r.status_code, r.json()["error"]) == (503, "store_unavailable")
                assert "Traceback" not in r.text
                assert c.get("/healthz").status_code == 200
                redis_proc = start_redis()
                wait_until(lambda: c.get("/readyz").status_code == 200, "ready again", 15)
                assert c.post("/api/v1/accounts", json={"name": "x"}, headers=H_ADMIN).status_code == 201
                v = visitor.json()

                @contextmanager
                def open_visitor() -> Iterator[Any]:
                    with ws_connect(api.ws_url + "/api/v1/visitor/ws") as vws:
                        vws.send(json.dumps({"type": "auth", "token": v["token"]}))
                        assert json.loads(vws.recv(timeout=10))["type"] == "hello"
                        yield vws

                # the hub subscribes again on its own: wait until a presence event reaches the console
                end, seen = time.monotonic() + 20, False
                while not seen and time.monotonic() < end:
                    with open_visitor():
                        try:
                            seen = json.loads(aws.recv(timeout=1))["type"] == "visitor"
                        except TimeoutError:
                            continue
                assert seen, "the agent console got no event after the store came back"
                with open_visitor():
                    r = c.post(
                        "/api/v1/sessions",
                        json={"visitor_id": v["visitor_id"]},
                        headers={"Authorization": f"Bearer {agent_token}"},
                    )
                    assert r.status_code == 201, r.text
                    kinds = []
                    while "session" not in kinds:
                        kinds.append(json.loads(aws.recv(timeout=10))["type"])
    finally:
        assert api.stop() == 0
        redis_proc.terminate()
        redis_proc.wait()


def test_refuses_to_start_without_an_admin_token(clean_redis: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COBROWSE_ADMIN_TOKEN"}
    port = free_port()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cobrowse",
            "serve",
            "--role",
            "api",
            "--api-port",
            str(port),
            "--redis-url",
            clean_redis,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "no admin token" in result.stderr and "COBROWSE_ADMIN_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr


def test_ctrl_c_stops_cleanly_and_logs_no_tokens(clean_redis: str) -> None:
    api = ApiProcess(clean_redis, log_level="debug").wait_ready()
    with httpx.Client(base_url=api.url) as c:
        agent_token = "agent-secret-token-value"
        assert c.get("/api/v1/me", headers={"Authorization": f"Bearer {agent_token}"}).status_code == 401
        assert c.get("/api/v1/accounts", headers=H_ADMIN).status_code == 200
    assert api.stop() == 0
    output = "".join(api.output)
    assert "/api/v1/accounts" in output  # the debug log does show requests...
    assert agent_token not in output and ADMIN_TOKEN not in output  # ...never tokens
    assert "Traceback" not in output and "cobrowse: stopped" in output


def test_serves_with_the_admin_token_from_a_file(clean_redis: str, tmp_path: Path) -> None:
    """``--admin-token-file``: the token is in no flag and no environment variable of the process."""
    token_file = tmp_path / "admin-token"
    token_file.write_text(ADMIN_TOKEN + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COBROWSE_")}
    port = free_port()
    args = ["--role", "api", "--host", "127.0.0.1", "--api-port", str(port), "--redis-url", clean_redis,
            "--admin-token-file", str(token_file)]
    api = ServeProcess(args, env).wait_ready()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
            assert c.get("/api/v1/accounts", headers=H_ADMIN).status_code == 200
            wrong = c.get("/api/v1/accounts", headers={"Authorization": "Bearer " + ADMIN_TOKEN + "x"})
            assert wrong.status_code == 401
    finally:
        assert api.stop() == 0
    assert ADMIN_TOKEN not in "".join(api.output)
    assert "warning" not in "".join(api.output)
