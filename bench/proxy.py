"""Proxy throughput and added latency on one page set (run by hand; not a test).

Three targets serve the same HTML pages from one loopback upstream, each in a process of its own:
``direct`` (the upstream), ``passthrough`` (mitmproxy embedded the same way, reverse mode, no addon
of ours) and ``cobrowse`` (our proxy: gate, jar, header and HTML rewriting, runtime injection).
For concurrency 1 and 8 it reports requests per second and latency p50/p99, and the latency each
proxy adds over ``direct``. Target: cobrowse >= 0.5x passthrough req/s on HTML at concurrency 8.

    python3 bench/proxy.py                      # 5 s per measurement
    python3 bench/proxy.py --duration 10 --page-kb 80
    python3 bench/proxy.py --html a.html --html b.html   # real documents instead of the generated pages
    python3 bench/proxy.py --images             # PNG images instead: the proxy without rewriting
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import multiprocessing
import os
import platform
import signal
import socket
import statistics
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DOMAIN = "cobrowse.localhost"
PAGES = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_page(index: int, origin: str, kb: int) -> bytes:
    """A shop-like page: head assets, many absolute and relative links, images with srcset."""
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>Page {index}</title>",
        f"<link rel='stylesheet' href='{origin}/static/site.css'>",
        f"<script src='{origin}/static/app.js' defer></script></head><body><h1>Page {index}</h1>",
    ]
    item = 0
    while sum(len(p) for p in parts) < kb * 1024:
        parts.append(
            f"<div class='card'><a href='{origin}/product/{item}?ref=list'>Product {item}</a>"
            f"<img src='{origin}/img/{item}.png'"
            f" srcset='{origin}/img/{item}.png 1x, {origin}/img/{item}@2x.png 2x'"
            f" alt='product {item}'><a href='/cart/add?id={item}'>add</a>"
            f"<p style='background:url({origin}/img/bg.png)'>Lorem ipsum dolor sit amet {item}</p></div>"
        )
        item += 1
    parts.append("</body></html>")
    return "".join(parts).encode()


# -- the processes ------------------------------------------------------------------------------


PNG_TYPE = b"image/png"


def make_image(kb: int) -> bytes:
    """A body that starts like a PNG (random bytes after the signature): passed untouched."""
    return b"\x89PNG\r\n\x1a\n" + os.urandom(kb * 1024 - 8)


def run_upstream(port: int, kb: int, html: list[str], images: bool, gzipped: bool, conn: Connection) -> None:
    import uvicorn

    origin = f"http://127.0.0.1:{port}"
    if html:
        pages = {f"/page/{i}": Path(name).read_bytes() for i, name in enumerate(html)}
    elif images:
        pages = {f"/page/{i}": make_image(kb) for i in range(PAGES)}
    else:
        pages = {f"/page/{i}": make_page(i, origin, kb) for i in range(PAGES)}
    pages["/big"] = make_page(99, origin, 2048)
    pages["/tiny"] = b"<!doctype html><title>t</title>"
    # --gzip-upstream: HTML gzipped once here (level 6, as Apache's default), sent to clients that
    # accept it, as most servers send pages
    zipped = {path: gzip.compress(body, 6) for path, body in pages.items()} if gzipped else {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = pages.get(scope["path"], b"not found")
        status = 200 if scope["path"] in pages else 404
        kind = PNG_TYPE if body.startswith(b"\x89PNG") else b"text/html; charset=utf-8"
        headers = [(b"content-type", kind)]
        accept = dict(scope["headers"]).get(b"accept-encoding", b"")
        if scope["path"] in zipped and kind != PNG_TYPE and b"gzip" in accept:
            body = zipped[scope["path"]]
            headers.append((b"content-encoding", b"gzip"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False,
                            lifespan="off")
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        conn.send("ready")
        await task

    asyncio.run(serve())


def run_passthrough(port: int, upstream_port: int, conn: Connection) -> None:
    import warnings

    from cobrowse.cmd_serve import tune_gc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from mitmproxy import options
        from mitmproxy.addons import core, next_layer, proxyserver, tlsconfig
        from mitmproxy.master import Master

    class Ready:
        def running(self) -> None:
            tune_gc()  # the collector settings of `cobrowse serve`, for both proxies alike
            conn.send("ready")

    async def serve() -> None:
        opts = options.Options(listen_host="127.0.0.1", listen_port=port,
                               mode=[f"reverse:http://127.0.0.1:{upstream_port}"],
                               confdir=tempfile.mkdtemp(prefix="bench-mitm-"))
        master = Master(opts)
        master.addons.add(
            core.Core(), proxyserver.Proxyserver(), next_layer.NextLayer(), tlsconfig.TlsConfig(), Ready()
        )
        opts.update(connection_strategy="lazy", http2=False)
        await master.run()

    asyncio.run(serve())


def run_cobrowse(port: int, upstream_port: int, conn: Connection) -> None:
    from cobrowse.cmd_serve import tune_gc
    from cobrowse.settings import Settings
    from control_api import accounts, agents, proxy_access, sessions, visitors
    from control_api.store import Store
    from proxy.server import ProxyServer
    from rewriter.urls import Origin, encode_label

    origin = f"http://127.0.0.1:{upstream_port}"

    async def serve() -> None:
        settings = Settings(
            host="127.0.0.1", proxy_port=port, proxy_domain=DOMAIN, dev_allow_origins=(origin,),
            log_level="warning",
        )
        store = Store.connect(os.environ.get("BENCH_REDIS_URL") or None, namespace="bench:")
        policy = {"allowed_origins": [origin], "consent": "none"}
        account = await accounts.create(store, "Bench", True, policy)
        agent, _ = await agents.create(store, account.id, "Agent")
        visitor, _ = await visitors.register(store, account, origin, 30)
        record = await sessions.create(store, account, agent, visitor.id)
        credential = await proxy_access.issue_credential(store, record["id"], agent.id)
        server = ProxyServer(settings, store)
        await server.start()
        tune_gc()  # as `cobrowse serve` does once started
        host = f"{encode_label(record['id'], Origin.parse(origin))}.{DOMAIN}:{port}"
        conn.send(("ready", host, f"__cb_{record['id']}={credential}"))
        # terminate() sends SIGTERM: stop the proxy (and its rewrite workers) as `cobrowse serve` does
        stopping = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
        waiter = asyncio.ensure_future(server.wait())
        await asyncio.wait([waiter, asyncio.ensure_future(stopping.wait())], return_when="FIRST_COMPLETED")
        await server.stop()

    asyncio.run(serve())


# -- the load -----------------------------------------------------------------------------------


class HeldCookies:
    """The cookies a browser would send back: the fixed request headers (the credential) plus
    what the proxy's answers set (its ``__Host-cbjv_{sid}`` view of the jar). httpx's own jar
    would not do: it adds nothing to a request that has a Cookie header, and sends no ``Secure``
    cookie over http, which a browser does on ``localhost`` names."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.base = headers
        self.held: dict[str, str] = {}

    def headers(self) -> dict[str, str]:
        if not self.held:
            return self.base
        cookies = [self.base["cookie"]] if "cookie" in self.base else []
        cookies += [f"{name}={value}" for name, value in self.held.items()]
        return {**self.base, "cookie": "; ".join(cookies)}

    def update(self, response: httpx.Response) -> None:
        for line in response.headers.get_list("set-cookie"):
            pair, _, attributes = line.partition(";")
            name, _, value = pair.strip().partition("=")
            if "max-age=0" in attributes.lower().replace(" ", ""):
                self.held.pop(name, None)
            else:
                self.held[name] = value


async def measure(
    port: int, headers: dict[str, str], concurrency: int, duration: float, pages: int = PAGES
) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    cookies = HeldCookies(headers)  # one browser
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:
        async def worker(offset: int, until: float, record: bool) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < until:
                start = time.perf_counter()
                response = await client.get(f"/page/{i % pages}", headers=cookies.headers())
                cookies.update(response)
                if response.status_code != 200:
                    errors += 1
                if record:
                    latencies.append(time.perf_counter() - start)
                i += 1

        warm = time.perf_counter() + 1.0
        await asyncio.gather(*(worker(n, warm, False) for n in range(concurrency)))
        begin = time.perf_counter()
        await asyncio.gather(*(worker(n, begin + duration, True) for n in range(concurrency)))
        elapsed = time.perf_counter() - begin
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "errors": errors,
    }


async def stall(port: int, headers: dict[str, str], duration: float) -> dict[str, float]:
    """Latency of a tiny page, alone and while 4 clients fetch 2 MiB pages (rewritten by ours)."""
    cookies = HeldCookies(headers)

    async def tiny_latencies(client: httpx.AsyncClient, until: float) -> list[float]:
        out = []
        while time.perf_counter() < until:
            start = time.perf_counter()
            cookies.update(await client.get("/tiny", headers=cookies.headers()))
            out.append(time.perf_counter() - start)
        return sorted(out)

    async def big_loop(client: httpx.AsyncClient, until: float) -> None:
        while time.perf_counter() < until:
            cookies.update(await client.get("/big", headers=cookies.headers()))

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        idle = await tiny_latencies(client, time.perf_counter() + duration)
        until = time.perf_counter() + duration
        loads = [big_loop(client, until) for _ in range(4)]
        loaded, *_ = await asyncio.gather(tiny_latencies(client, until), *loads)

    def pct(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))] * 1000

    return {"idle_p50": pct(idle, 0.5), "idle_p99": pct(idle, 0.99),
            "loaded_p50": pct(loaded, 0.5), "loaded_p99": pct(loaded, 0.99)}


def start(target: Any, *args: Any) -> tuple[multiprocessing.Process, Any]:
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(target=target, args=(*args, child))
    process.start()
    if not parent.poll(60):
        raise SystemExit(f"{target.__name__} did not start")
    return process, parent.recv()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement (5)")
    parser.add_argument("--page-kb", type=int, default=40, help="size of each HTML page in KiB (40)")
    parser.add_argument("--html", action="append", default=[], metavar="FILE",
                        help="serve this HTML file as one of the pages instead of the generated ones "
                             "(repeatable)")
    parser.add_argument("--gzip-upstream", action="store_true",
                        help="the upstream sends its HTML gzipped (level 6) to clients that accept it, "
                             "as most servers do")
    parser.add_argument("--images", action="store_true",
                        help="serve PNG images of --page-kb KiB instead of HTML pages (loaded as <img>)")
    args = parser.parse_args()
    pages = len(args.html) or PAGES

    up_port, pass_port, ours_port = free_port(), free_port(), free_port()
    processes = []
    try:
        proc, _ = start(run_upstream, up_port, args.page_kb, args.html, args.images, args.gzip_upstream)
        processes.append(proc)
        proc, _ = start(run_passthrough, pass_port, up_port)
        processes.append(proc)
        proc, (_, host, cookie) = start(run_cobrowse, ours_port, up_port)
        processes.append(proc)
        targets = {
            "direct": (up_port, {}),
            "passthrough": (pass_port, {}),
            "cobrowse": (ours_port, {"host": host, "cookie": cookie, **(
                {"sec-fetch-dest": "image", "sec-fetch-mode": "no-cors"} if args.images
                else {"sec-fetch-mode": "navigate"})}),
        }
        results: dict[tuple[str, int], dict[str, float]] = {}
        for concurrency in (1, 8):
            for name, (port, headers) in targets.items():
                results[(name, concurrency)] = asyncio.run(
                    measure(port, headers, concurrency, args.duration, pages)
                )
        stalls = {
            name: asyncio.run(stall(port, headers, args.duration))
            for name, (port, headers) in targets.items() if name != "direct" and not args.images
        }  # (the stall phase rewrites HTML: not with --images)
    finally:
        for proc in processes:
            proc.terminate()
            proc.join(10)

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    page_set = (
        "HTML files " + ", ".join(f"{Path(n).name} ({Path(n).stat().st_size // 1024} KiB)" for n in args.html)
        if args.html else f"{PAGES} PNG images of {args.page_kb} KiB" if args.images
        else f"{PAGES} generated HTML pages of {args.page_kb} KiB"
    ) + (", sent gzipped by the upstream" if args.gzip_upstream else "")
    print(f"# proxy benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine}, "
          f"{page_set}, {args.duration:g} s per cell")
    print("| target | concurrency | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for concurrency in (1, 8):
        base = results[("direct", concurrency)]
        for name in targets:
            r = results[(name, concurrency)]
            added = f"{r['p50_ms'] - base['p50_ms']:.2f} | {r['p99_ms'] - base['p99_ms']:.2f}"
            print(f"| {name} | {concurrency} | {r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                  f"{added} | {r['errors']:.0f} |")
    ratio = results[("cobrowse", 8)]["rps"] / results[("passthrough", 8)]["rps"]
    target = " (the target is for HTML pages)" if args.images else " (target >= 0.5)"
    print(f"\ncobrowse / passthrough req/s at concurrency 8: {ratio:.2f}{target}")
    if not stalls:
        return 0
    print("\nTiny page latency (ms) alone, then while 4 clients fetch 2 MiB HTML pages:")
    print("| target | idle p50 | idle p99 | loaded p50 | loaded p99 |")
    print("| --- | --- | --- | --- | --- |")
    for name, st in stalls.items():
        print(f"| {name} | {st['idle_p50']:.2f} | {st['idle_p99']:.2f} | {st['loaded_p50']:.2f} | "
              f"{st['loaded_p99']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
