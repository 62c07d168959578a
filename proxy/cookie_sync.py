"""The session's cookie jar on the server (interim: upstream cookies never reach the browser)."""

from __future__ import annotations

from mitmproxy import http

from control_api.proxy_access import ProxySession
from proxy.context import ProxyContext
from proxy.request_fixup import is_proxy_cookie
from proxy.responses import respond

# flow metadata: the non-HttpOnly jar cookies the runtime shows to document.cookie
SCRIPT_COOKIES = "cobrowse.script_cookies"


async def on_request(ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession) -> None:
    cookies = flow.request.cookies
    for name in list(cookies.keys()):
        if is_proxy_cookie(name):
            del cookies[name]
    if not cookies:
        flow.request.headers.pop("cookie", None)


async def on_response(ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession) -> None:
    assert flow.response is not None
    flow.response.headers.pop("set-cookie", None)


async def post_cookies(ctx: ProxyContext, flow: http.HTTPFlow, session: ProxySession) -> None:
    respond(flow, http.Response.make(204))
