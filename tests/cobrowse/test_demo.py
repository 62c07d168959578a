"""`cobrowse demo` as a newcomer runs it: one process, embedded store, prints what to open."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.e2e.harness import PROXY_DOMAIN, demo_process

pytestmark = pytest.mark.browser


def test_demo_prints_urls_and_tokens_and_everything_works(browser: Any) -> None:
    with demo_process() as demo:
        assert re.match(r"http://127\.0\.0\.1:\d+/$", demo.shop_url)
        assert re.match(rf"http://{re.escape(PROXY_DOMAIN)}:\d+/console$", demo.console_url)
        assert "/openapi.json" in demo.output
        api_port = int(demo.console_url.rsplit(":", 1)[1].split("/")[0])
        # the printed admin token works against the API
        with httpx.Client(base_url=f"http://127.0.0.1:{api_port}/api/v1",
                          headers={"Host": f"{PROXY_DOMAIN}:{api_port}"}) as c:
            accounts = c.get("/accounts", headers={"Authorization": f"Bearer {demo.admin_token}"}).json()
        (account,) = accounts["accounts"]
        assert account["cobrowse_enabled"] is True
        assert account["site_key"] == demo.site_key
        assert account["policy"]["allowed_origins"] == [demo.shop_url.rstrip("/")]
        assert account["policy"]["masked_selectors"] == [".card-number"]

        visitor_ctx = browser.new_context()
        agent_ctx = browser.new_context()
        try:
            visitor = visitor_ctx.new_page()
            visitor.goto(demo.shop_url)
            expect(visitor.locator("h1")).to_have_text("Products")
            agent = agent_ctx.new_page()
            agent.goto(demo.console_url)
            agent.fill("#token", demo.agent_token)
            agent.click("#signin-form button[type=submit]")
            button = agent.locator(".cobrowse-btn")
            expect(button).to_have_attribute("data-state", "available", timeout=15000)
            with agent.expect_popup() as popup:
                button.click()
            visitor.get_by_role("dialog").get_by_role("button", name="Accept").click()
            vb = popup.value
            expect(vb.frame_locator("#view").locator("h1")).to_have_text("Products", timeout=15000)
            expect(vb.locator("#navigate-form")).to_be_visible()  # the demo lets the agent navigate
        finally:
            visitor_ctx.close()
            agent_ctx.close()


def test_demo_reports_a_busy_shop_port() -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "cobrowse", "demo", "--shop-port", str(port)],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 2
    assert f"--shop-port {port}: cannot listen" in done.stderr

