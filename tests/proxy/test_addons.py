"""Addon hooks on fake flows (mitmproxy.test.tflow / taddons)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from mitmproxy import exceptions, http
from mitmproxy.proxy.layers import websocket
from mitmproxy.test import taddons, tflow

import proxy.server  # noqa: F401 - imports mitmproxy.addons with its import-time warnings silenced
from cobrowse.settings import Settings
from control_api.store import Store
from proxy import addons
from proxy.context import ProxyContext
from proxy.exceptions import Refused
from rewriter.urls import Origin, UrlMapper


@pytest.fixture
async def ctx(redis_url: str, namespace: str) -> AsyncIterator[ProxyContext]:
    store = Store.connect(redis_url, namespace)
    yield ProxyContext.create(Settings(max_rewrite_bytes=1000), store)
    await store.close()


def _flow(host: str, path: str = "/", headers: dict[str, str] | None = None) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request = http.Request.make("GET", f"http://127.0.0.1:1{path}", b"", headers or {})
    flow.request.headers["host"] = host
    return flow


class FakeSession:
    session_id = "k3j9x2ab7q"
    allowed_origins = ("https://shop.example",)
    masked_selectors = ()


def _upstream_flow(ctx: ProxyContext, content_type: str, length: int | None = None) -> http.HTTPFlow:
    origin = Origin.parse("https://shop.example")
    flow = _flow("k3j9x2ab7qs-shop-example.cobrowse.localhost:8001")
    flow.metadata.update({
        addons.SESSION: FakeSession(),
        addons.ORIGIN: origin,
        addons.MAPPER: UrlMapper("k3j9x2ab7q", ctx.public, [origin]),
    })
    flow.response = http.Response.make(200, b"", {"content-type": content_type})
    if length is not None:
        flow.response.headers["content-length"] = str(length)
    return flow


async def test_options_are_declared_by_the_addons_and_checked(ctx: ProxyContext) -> None:
    rewriting = addons.Rewriting(ctx)
    with taddons.context(rewriting) as tctx:
        tctx.configure(rewriting, cobrowse_max_rewrite_bytes=2048)
        assert tctx.options.cobrowse_max_rewrite_bytes == 2048
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(rewriting, cobrowse_max_rewrite_bytes=0)


async def test_routing_answers_an_unknown_host_with_404(ctx: ProxyContext) -> None:
    flow = _flow("example.com")
    addons.Routing(ctx).request(flow)
    assert flow.response is not None and flow.response.status_code == 404
    ok = _flow("k3j9x2ab7qs-shop-example.cobrowse.localhost:8001")
    addons.Routing(ctx).request(ok)
    assert ok.response is None and ok.metadata[addons.ROUTE].sid == "k3j9x2ab7q"
    # a port that is no port: no Host a browser sends
    for host in ("k3j9x2ab7qs-shop-example.cobrowse.localhost:8001@x",
                 "k3j9x2ab7qs-shop-example.cobrowse.localhost:80x"):
        odd = _flow(host)
        addons.Routing(ctx).request(odd)
        assert odd.response is not None and odd.response.status_code == 404, host


async def test_a_failing_hook_refuses_instead_of_forwarding(ctx: ProxyContext) -> None:
    async def broken(sid: str, credential: str | None) -> None:
        raise RuntimeError("bug")

    ctx.gate.check = broken  # type: ignore[assignment,method-assign]
    flow = _flow("k3j9x2ab7qs-shop-example.cobrowse.localhost:8001", "/x", {"sec-fetch-mode": "cors"})
    addons.Routing(ctx).request(flow)
    await addons.Gate(ctx).request(flow)
    assert flow.response is not None and flow.response.status_code == 500
    assert flow.response.json()["error"] == "internal"


async def test_refusal_from_the_gate_is_a_403(ctx: ProxyContext) -> None:
    async def refuse(sid: str, credential: str | None) -> None:
        raise Refused("not_active")

    ctx.gate.check = refuse  # type: ignore[assignment,method-assign]
    flow = _flow("k3j9x2ab7qs-shop-example.cobrowse.localhost:8001")
    addons.Routing(ctx).request(flow)
    await addons.Gate(ctx).request(flow)
    assert flow.response is not None and flow.response.status_code == 403


async def test_images_stream_and_html_is_buffered_for_rewriting(ctx: ProxyContext) -> None:
    image = _upstream_flow(ctx, "image/png", 10_000_000)
    addons.Rewriting(ctx).responseheaders(image)
    assert image.response is not None and image.response.stream is True
    page = _upstream_flow(ctx, "text/html; charset=utf-8", 500)
    addons.Rewriting(ctx).responseheaders(page)
    assert page.response is not None and page.response.stream is False


async def test_html_over_the_limit_is_replaced_before_its_body_arrives(ctx: ProxyContext) -> None:
    flow = _upstream_flow(ctx, "text/html", 5000)
    addons.Rewriting(ctx).responseheaders(flow)
    assert flow.response is not None and flow.response.status_code == 502
    assert callable(flow.response.stream)
    assert flow.response.stream(b"<html>upstream") == b""
    page = flow.response.stream(b"")
    assert b"Page too large" in page and flow.response.headers["content-length"] == str(len(page))


def test_mitmproxy_outside_the_tested_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from mitmproxy import version

    from proxy.exceptions import ProxyError
    from proxy.server import check_mitmproxy_version

    check_mitmproxy_version()
    monkeypatch.setattr(version, "VERSION", "9.0.1")
    with pytest.raises(ProxyError):
        check_mitmproxy_version()


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("203.0.113.9", None, (), "203.0.113.9"),
        ("203.0.113.9", "198.51.100.7", (), "203.0.113.9"),  # from an untrusted peer: ignored
        ("10.0.0.5", "198.51.100.7", ("10.0.0.0/8",), "198.51.100.7"),
        ("10.0.0.5", "1.1.1.1, 198.51.100.7, 10.0.0.9", ("10.0.0.0/8",), "198.51.100.7"),  # last untrusted
        ("10.0.0.5", None, ("10.0.0.0/8",), "10.0.0.5"),
        ("10.0.0.5", "1.1.1.1, garbage", ("10.0.0.0/8",), "10.0.0.5"),  # the balancer's own hop broken
        ("::ffff:203.0.113.9", None, (), "203.0.113.9"),  # IPv4-mapped: the IPv4 address
        ("2001:db8::1", None, (), "2001:db8::1"),
    ],
)
def test_client_address_behind_trusted_balancers(
    peer: str, forwarded: str | None, trusted: tuple[str, ...], expected: str
) -> None:
    flow = _flow("x.cobrowse.localhost", headers={"x-forwarded-for": forwarded} if forwarded else {})
    flow.client_conn.peername = (peer, 40000)
    assert addons.client_address(flow, trusted) == expected


async def test_a_websocket_flow_keeps_only_the_message_being_relayed(ctx: ProxyContext) -> None:
    """mitmproxy kept every message for as long as the WebSocket was open."""
    flow = tflow.twebsocketflow()
    assert flow.websocket is not None
    messages = flow.websocket.messages
    assert len(messages) > 1
    latest = messages[-1]
    with taddons.context(*addons.make_addons(ctx)) as tctx:
        tctx.master.addons.trigger(websocket.WebsocketMessageHook(flow))
    assert flow.websocket.messages == [latest]
