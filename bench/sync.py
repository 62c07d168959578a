#!/usr/bin/env python3
"""Sync latency, measured in two browsers: from a visitor's action to the agent's view updated.

Runs `cobrowse demo` (API + proxy + shop in one process, embedded store) on free loopback ports,
opens a visitor and an agent in one headless Chromium, starts a session, then repeats:
- navigation: the visitor clicks a link (Date.now() just before the click) -> the agent's proxied
  iframe posts "ready" for the new URL to the virtual browser (Date.now() in its message handler);
- scroll: the visitor scrolls (Date.now() just before) -> the proxied page inside the agent's iframe
  fires its "scroll" event at the anchored position (Date.now() in the listener).
Both clocks are the same machine's wall clock (Date.now() in the two renderer processes).
Usage: python3 bench/sync.py [--runs 30] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import os
import platform
import queue
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-quic"]
PAGES = ("/product/red-mug", "/product/blue-notebook", "/search", "/cart", "/")
HEADINGS = {"/product/red-mug": "Red mug", "/product/blue-notebook": "Blue notebook", "/search": "Search",
            "/cart": "Cart", "/": "Products"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_demo() -> tuple[subprocess.Popen[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COBROWSE_")}
    cmd = [sys.executable, "-m", "cobrowse", "demo", "--api-port", str(free_port()),
           "--proxy-port", str(free_port()), "--shop-port", "0", "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    text = ""
    end = time.monotonic() + 60
    while not text.rstrip().endswith("Press Ctrl+C to stop."):
        line = lines.get(timeout=max(0.1, end - time.monotonic()))
        if line is None:
            raise SystemExit("cobrowse demo exited:\n" + text)
        text += line

    def field(pattern: str) -> str:
        found = re.search(pattern, text)
        if not found:
            raise SystemExit(f"no {pattern!r} in the demo's output:\n{text}")
        return found.group(1)

    return proc, {"shop": field(r"Visitor .*?(http://\S+)").rstrip("/"),
                  "console": field(r"Agent .*?(http://\S+/console)"),
                  "token": field(r"Agent token \([^)]*\): (\S+)")}


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(name: str, values: list[float]) -> str:
    return (f"| {name} | {len(values)} | {statistics.median(values):.0f} | {percentile(values, 95):.0f} | "
            f"{min(values):.0f} | {max(values):.0f} |")


READY_HOOK = """() => {
  window.__marks = [];
  addEventListener('message', (e) => {
    const d = e.data;
    if (d && d.cobrowse === 1 && d.type === 'ready') window.__marks.push([Date.now(), d.url]);
  });
}"""


def run(runs: int, chromium: str) -> int:
    proc, info = start_demo()
    nav: list[float] = []
    scroll: list[float] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
            visitor = browser.new_context(viewport={"width": 1100, "height": 700}).new_page()
            visitor.goto(info["shop"] + "/")
            agent = browser.new_context(viewport={"width": 1100, "height": 700}).new_page()
            agent.goto(info["console"])
            agent.fill("#token", info["token"])
            agent.click("#signin-form button[type=submit]")
            button = agent.locator(".cobrowse-btn")
            expect(button).to_have_attribute("data-state", "available", timeout=20000)
            with agent.expect_popup() as popup:
                button.click()
            visitor.get_by_role("dialog").get_by_role("button", name="Accept").click()
            vb = popup.value
            expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=20000)
            vb.evaluate(READY_HOOK)

            for i in range(runs):
                path = PAGES[i % len(PAGES)]
                target = info["shop"] + path
                vb.evaluate("window.__marks = []")
                t0 = visitor.evaluate(
                    "(p) => { const a = document.createElement('a'); a.href = p;"
                    " document.body.appendChild(a); const t = Date.now(); a.click(); return t; }", path)
                t1 = vb.wait_for_function(
                    "(u) => { const m = window.__marks.find((x) => x[1] === u); return m ? m[0] : false; }",
                    arg=target, timeout=20000).json_value()
                nav.append(float(t1) - float(t0))
                expect(visitor.locator("h1")).to_have_text(HEADINGS[path])

            visitor.goto(info["shop"] + "/")
            vb.wait_for_function(
                "(u) => window.__marks.some((x) => x[1] === u)", arg=info["shop"] + "/", timeout=20000)
            frame = vb.locator("#view").element_handle().content_frame()
            assert frame is not None
            expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products")
            frame.evaluate("() => { window.__scrolls = []; addEventListener('scroll', () =>"
                           " window.__scrolls.push([Date.now(), Math.round(scrollY)])); }")
            height = visitor.evaluate("document.documentElement.scrollHeight - innerHeight")
            for i in range(runs):
                y = 100 + (i * 137) % max(1, height - 200)
                frame.evaluate("window.__scrolls = []")
                t0 = visitor.evaluate("(y) => { const t = Date.now(); scrollTo(0, y); return t; }", y)
                t1 = frame.wait_for_function(
                    "(y) => { const s = window.__scrolls.find((x) => Math.abs(x[1] - y) <= 2);"
                    " return s ? s[0] : false; }", arg=y, timeout=20000).json_value()
                scroll.append(float(t1) - float(t0))
            browser.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; Python {platform.python_version()}")
    print("| action | runs | p50 (ms) | p95 (ms) | min (ms) | max (ms) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(summary("navigation", nav))
    print(summary("scroll", scroll))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="repetitions of each action (30)")
    parser.add_argument("--chromium", default=os.environ.get("COBROWSE_TEST_CHROMIUM", "/usr/bin/chromium"))
    args = parser.parse_args()
    return run(args.runs, args.chromium)


if __name__ == "__main__":
    sys.exit(main())
