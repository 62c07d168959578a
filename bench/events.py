"""Event latency through one API process and a real Redis (run by hand; not a test).

N live sessions (consent: none); each visitor sends 10 ``scroll`` messages per second to its
agent through the API's visitor WebSocket -> Redis pub/sub -> agent WebSocket. Reports p50/p95/p99
of visitor -> agent latency per N (send time to receive time, one client clock), the highest N
whose p99 stays <= 50 ms, and a raw Redis pub/sub round trip measured in the same run.

    python3 bench/events.py                      # starts redis-server and `cobrowse serve --role api`
    python3 bench/events.py --sizes 50,100,200,300 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parents[1]
ADMIN = "bench-admin-token"
ORIGIN = "http://127.0.0.1:8002"
RATE_HZ = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def start_redis() -> tuple[subprocess.Popen[bytes], str, str]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("bench/events.py: redis-server not found (or pass --redis-url)")
    port, workdir = free_port(), tempfile.mkdtemp(prefix="cobrowse-bench-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", workdir],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"redis://127.0.0.1:{port}/0", workdir


def start_api(redis_url: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "COBROWSE_ADMIN_TOKEN": ADMIN, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cobrowse",
            "serve",
            "--role",
            "api",
            "--host",
            "127.0.0.1",
            "--api-port",
            str(port),
            "--redis-url",
            redis_url,
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("cobrowse: ready"):
            # keep draining its output: a full pipe would block the server on its next log line
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            return proc, f"http://127.0.0.1:{port}"
    sys.exit("bench/events.py: the API did not start")


def _drain(stream: Any) -> None:
    for line in stream:
        if "WARNING" in line or "ERROR" in line:
            sys.stderr.write("  [api] " + line)


async def redis_round_trip(redis_url: str, count: int = 2000) -> list[float]:
    """Publish -> receive on one subscriber, one message in flight at a time (ms)."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub()
    await pubsub.subscribe("bench:rtt")
    await pubsub.get_message(timeout=1)
    samples = []
    for i in range(count):
        start = time.perf_counter()
        await client.publish("bench:rtt", str(i))
        while True:
            message = await pubsub.get_message(timeout=1, ignore_subscribe_messages=True)
            if message is not None:
                break
        samples.append((time.perf_counter() - start) * 1000)
    await pubsub.aclose()
    await client.aclose()
    return samples


async def provision(api: str, n: int, per_account: int) -> list[tuple[str, str, str]]:
    """(agent token, visitor token, visitor id) for n visitors, ``per_account`` per account."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    policy = {"consent": "none", "allowed_origins": [ORIGIN], "min_bandwidth_kbps": 0}
    result = []
    async with httpx.AsyncClient(base_url=api, headers=headers, timeout=30) as c:
        account: dict[str, Any] = {}
        for i in range(n):
            if i % per_account == 0:
                body = {"name": f"bench{i}", "cobrowse_enabled": True, "policy": policy}
                account = (await c.post("/api/v1/accounts", json=body)).json()
            agent = (
                await c.post(f"/api/v1/accounts/{account['id']}/agents", json={"display_name": f"a{i}"})
            ).json()
            visitor = (
                await c.post(
                    "/api/v1/visitors", json={"site_key": account["site_key"]}, headers={"Origin": ORIGIN}
                )
            ).json()
            result.append((agent["token"], visitor["token"], visitor["visitor_id"]))
    return result


async def one_pair(
    api: str,
    ws: str,
    creds: tuple[str, str, str],
    start: asyncio.Event,
    stop: asyncio.Event,
    samples: list[float],
    ready: asyncio.Queue[None],
    sent_total: list[int],
) -> None:
    agent_token, visitor_token, vid = creds
    sent: dict[int, float] = {}
    async with (
        connect(ws + "/api/v1/visitor/ws", max_size=2**20) as vws,
        connect(ws + "/api/v1/agent/ws") as aws,
    ):
        await vws.send(json.dumps({"type": "auth", "token": visitor_token}))
        await vws.recv()
        await aws.send(json.dumps({"type": "auth", "token": agent_token}))
        await aws.recv()
        async with httpx.AsyncClient(base_url=api, timeout=30) as c:
            r = await c.post(
                "/api/v1/sessions",
                json={"visitor_id": vid},
                headers={"Authorization": f"Bearer {agent_token}"},
            )
            r.raise_for_status()
            sid = r.json()["id"]

        async def drain_visitor() -> None:
            async for _ in vws:
                pass

        async def receive() -> None:
            async for raw in aws:
                message = json.loads(raw)
                if message.get("type") == "scroll" and start.is_set():
                    began = sent.pop(int(message["y"]), None)
                    if began is not None:
                        samples.append((time.perf_counter() - began) * 1000)

        drain = asyncio.create_task(drain_visitor())
        receiver = asyncio.create_task(receive())
        ready.put_nowait(None)
        await start.wait()
        await asyncio.sleep(1 / RATE_HZ * (hash(vid) % 100) / 100)  # spread the senders
        seq = 0
        while not stop.is_set():
            seq += 1
            sent[seq] = time.perf_counter()
            sent_total[0] += 1
            await vws.send(json.dumps({"type": "scroll", "x": 0, "y": seq}))
            await asyncio.sleep(1 / RATE_HZ)
        end = time.monotonic() + 5  # let the messages in flight arrive
        while sent and time.monotonic() < end:
            await asyncio.sleep(0.05)
        receiver.cancel()
        drain.cancel()
        # end the session now: left to the visitor grace period, the API would end them all
        # during the next size's measurement
        async with httpx.AsyncClient(base_url=api, timeout=30) as c:
            await c.post(f"/api/v1/sessions/{sid}/end", headers={"Authorization": f"Bearer {agent_token}"})


async def run_size(api: str, n: int, duration: float, per_account: int) -> dict[str, Any]:
    ws = api.replace("http://", "ws://")
    creds = await provision(api, n, per_account)
    start, stop = asyncio.Event(), asyncio.Event()
    samples: list[float] = []
    ready: asyncio.Queue[None] = asyncio.Queue()
    sent_total = [0]  # messages really sent: the senders' sleep loops drift below the nominal rate
    tasks = [
        asyncio.create_task(one_pair(api, ws, c, start, stop, samples, ready, sent_total)) for c in creds
    ]
    for count in range(n):
        if count and count % 10 == 0:
            print(f"  ({count}/{n} sessions ready)", file=sys.stderr, flush=True)
        getter = asyncio.ensure_future(ready.get())
        await asyncio.wait([getter, *tasks], return_when=asyncio.FIRST_COMPLETED)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            getter.cancel()
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise RuntimeError(f"a session could not be set up: {failed[0].exception()!r}")
    await asyncio.sleep(1.0)  # warm-up
    start.set()
    await asyncio.sleep(duration)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    expected = sent_total[0]
    return {
        "n": n,
        "messages": len(samples),
        "delivered": len(samples) / expected if expected else 0,
        "p50": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "mean": statistics.fmean(samples) if samples else float("nan"),
    }


async def main_async(args: argparse.Namespace) -> int:
    redis_proc = workdir = None
    redis_url = args.redis_url
    if not redis_url:
        redis_proc, redis_url, workdir = start_redis()
        await asyncio.sleep(0.3)
    api_proc = None
    api = args.api_url
    if not api:
        api_proc, api = start_api(redis_url)
    try:
        rtt = await redis_round_trip(redis_url)
        print(
            f"raw Redis pub/sub round trip: p50 {percentile(rtt, 50):.2f} ms, "
            f"p99 {percentile(rtt, 99):.2f} ms",
            flush=True,
        )
        print("| sessions | msgs/s | delivered | p50 (ms) | p95 (ms) | p99 (ms) |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: |")
        best = 0
        for n in args.sizes:
            result = await run_size(api, n, args.duration, args.per_account)
            print(
                f"| {n} | {n * RATE_HZ} | {result['delivered']:.1%} | {result['p50']:.1f} "
                f"| {result['p95']:.1f} | {result['p99']:.1f} |",
                flush=True,
            )
            if result["p99"] <= 50 and result["delivered"] > 0.99:
                best = max(best, n)
        print(f"highest N with p99 <= 50 ms: {best}")
    finally:
        if api_proc is not None:
            api_proc.send_signal(signal.SIGINT)
            api_proc.wait(timeout=20)
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
            shutil.rmtree(workdir or "", ignore_errors=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50,100,200,300", help="session counts to try (comma-separated)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of measurement per size")
    parser.add_argument(
        "--per-account",
        type=int,
        default=10,
        help="sessions per account (agents see their account's visitors)",
    )
    parser.add_argument("--redis-url", default="", help="use this Redis instead of starting one")
    parser.add_argument(
        "--api-url", default="", help="use this API (its admin token must be bench-admin-token)"
    )
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
