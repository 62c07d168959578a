"""`cobrowse demo` that cannot start says why in one line (async tests: not in the module of the
browser tests, whose Playwright loop runs in the same thread)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("busy", ["api", "proxy"])
def test_demo_reports_a_busy_api_or_proxy_port_in_one_line(busy: str) -> None:
    import socket
    import subprocess
    import sys

    from tests.conftest import free_port

    ports = {"api": free_port(), "proxy": free_port(), "shop": free_port()}
    flags = [arg for kind, port in ports.items() for arg in (f"--{kind}-port", str(port))]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports[busy]))
        taken.listen()
        done = subprocess.run(
            [sys.executable, "-m", "cobrowse", "demo", *flags],
            capture_output=True, text=True, timeout=60,
        )
    assert done.returncode == 1, done.stderr
    name = "API" if busy == "api" else "proxy"
    assert done.stderr.strip().splitlines()[-1] == (
        f"cobrowse demo: the {name} could not listen on 127.0.0.1:{ports[busy]}: address already in use"
        f" (choose another port with --{busy}-port)"
    ), done.stderr
    assert "Traceback" not in done.stderr + done.stdout


async def test_demo_names_what_stopped_the_server_when_the_api_goes_while_provisioning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The API answered ready, then the proxy could not listen and `serve` stopped it: the
    provisioning call that then finds nobody is not what the demo reports, the busy port is."""
    import socket
    import urllib.error

    from cobrowse import cmd_demo
    from cobrowse.settings import Settings
    from tests.conftest import free_port, wait_until

    def provision_once_the_api_is_gone(self: cmd_demo.AdminClient, shop_origin: str) -> None:
        # the proxy fails and `serve` stops the API meanwhile
        wait_until(lambda: not self.ready(), "the API stopped by `serve`", 30)
        cause = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
        raise cmd_demo.DemoError(f"POST /api/v1/accounts: {cause}") from cause

    monkeypatch.setattr(cmd_demo.AdminClient, "provision", provision_once_the_api_is_gone)
    api_port, proxy_port = free_port(), free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", proxy_port))
        taken.listen()
        settings = Settings(host="127.0.0.1", api_port=api_port, proxy_port=proxy_port, log_level="warning")
        with pytest.raises(RuntimeError) as info:
            await cmd_demo.run_demo(settings, free_port())
    assert str(info.value).startswith(f"the proxy could not listen on 127.0.0.1:{proxy_port}"), info.value


@pytest.mark.parametrize("agent_name", ["Alex", "Maximiliana Fernández"])
def test_the_demos_two_tokens_start_in_one_column(agent_name: str) -> None:
    """The agent token's line and the admin token's were not aligned (a reader copies by eye)."""
    from cobrowse.cmd_demo import Provisioned, banner
    from cobrowse.settings import Settings

    settings = Settings(admin_token="adm_" + "a" * 28)
    text = banner(settings, "http://127.0.0.1:8002", Provisioned("acc_1", "sk_1", agent_name, "agt_tok"))
    agent = next(line for line in text.splitlines() if line.lstrip().startswith("Agent token"))
    admin = next(line for line in text.splitlines() if line.lstrip().startswith("Admin token"))
    assert agent.endswith(" agt_tok") and admin.endswith(" " + settings.admin_token)
    assert agent.index("agt_tok") == admin.index(settings.admin_token)
