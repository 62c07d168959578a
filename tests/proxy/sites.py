"""Fixture sites served on loopback for the proxy tests: a shop-like app and a CDN origin.

Each app counts the requests it receives (``hits``) so tests can assert that nothing reached
upstream. Pages cover the link kinds a rewriting proxy must handle.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import gzip
import hashlib
import html
import json
import secrets
import socket
import threading
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import brotli
import uvicorn
import zstandard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

# A 4x4 red PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000004000000040802000000269309290000001849444154789c63f8cf"
    "c0f09f819181e13f03830a0c0c0c00590f03fd0b34d3a30000000049454e44ae426082"
)
VIDEO = bytes(range(256)) * 4096  # 1 MiB of "video"

ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@functools.cache
def _bomb() -> bytes:
    """A small gzip body that decompresses to 100 MB."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b"\0" * (1 << 20)
    return b"".join(compressor.compress(block) for _ in range(100)) + compressor.flush()


@dataclass
class Site:
    """A running fixture app: its origin and the requests it has received."""

    name: str
    hits: Counter[str] = field(default_factory=Counter)
    port: int = 0
    # /drip sends its first chunk, then waits for this before the rest
    release: threading.Event = field(default_factory=threading.Event)
    # how long /stall?every=S keeps trickling, and how long /stall waits for ``release`` at most
    release_after_s: float = 3.5
    stall_s: float = 8.0
    # set once /stall has sent its whole body
    stall_done: threading.Event = field(default_factory=threading.Event)
    # the ``tag`` of every /slow request that has answered
    slow_answered: set[str] = field(default_factory=set)
    # (host, port) of every client connection that sent a request (connection reuse tests)
    connections: set[tuple[str, int]] = field(default_factory=set)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def total(self) -> int:
        return sum(self.hits.values())


def _sri_css(cdn_origin: str) -> str:
    """A stylesheet the proxy rewrites (it names an absolute URL), loaded with its integrity."""
    return ".sri{background:url(" + cdn_origin + "/img/sri.png);color:rgb(0,128,0)}"


def _sri_hash(text: str) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(text.encode()).digest()).decode()


def _page(title: str, body: str, head: str = "") -> HTMLResponse:
    return HTMLResponse(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>{head}</head>"
        f"<body>{body}</body></html>"
    )


async def echo_headers(request: Request) -> Response:
    return JSONResponse({k: v for k, v in request.headers.items()})


async def shift_jis_page(request: Request) -> Response:
    """A page in Shift_JIS (its header says so) with a GET form of Japanese text."""
    page = (
        '<!doctype html><html><head><title>日本</title><link rel=stylesheet href="/shift-jis.css"></head>'
        "<body><p id=t>日本語</p>"
        '<form id=f action="/raw-query"><input name=q value="日本"><button id=go>go</button></form>'
        "</body></html>"
    )
    return Response(page.encode("cp932"), media_type="text/html; charset=Shift_JIS")


async def shift_jis_sheet(request: Request) -> Response:
    """A style sheet in Shift_JIS that says nothing of it: read in its page's encoding. (表 is
    0x95 0x5C: its second byte a backslash.)"""
    sheet = '#t::after { content: "表示"; } #t { background: url(/nothing.png) }'
    return Response(sheet.encode("cp932"), headers={"content-type": "text/css"})  # (no charset)


async def raw_query(request: Request) -> Response:
    """The query string as it reached the site, percent-escapes and all."""
    return Response(request.url.query, media_type="text/plain")


def shop_app(site: Site, cdn: Site) -> Starlette:
    sessions: dict[str, str] = {}

    async def home(request: Request) -> Response:
        cdn_o = cdn.origin
        own = site.origin
        return _page(
            "Fixture shop",
            f"""
<h1 id="title">Fixture shop</h1>
<p><a id="abs" href="{own}/about">about (absolute)</a>
<a id="rel" href="about">about (relative)</a> <a id="root" href="/about">about (root)</a>
<a id="proto" href="//127.0.0.1:{site.port}/about">about (protocol-relative)</a></p>
<img id="logo" src="{cdn_o}/img/logo.png" width="40" height="40" alt="logo">
<img id="srcset" src="/img/a.png" srcset="{cdn_o}/img/a.png 1x, {cdn_o}/img/b.png 2x" width="40" height="40">
<form id="search" action="{own}/search" method="get"><input name="q" value="mug"></form>
<iframe id="frame" src="{cdn_o}/frame" width="200" height="60"></iframe>
<div id="styled" class="bg">styled</div>
<script src="{cdn_o}/static/app.js"></script>
""",
            head=f'<link rel="stylesheet" href="{cdn_o}/static/site.css">',
        )

    async def app(request: Request) -> Response:
        own = site.origin
        ws = own.replace("http://", "ws://")
        return _page(
            "App",
            '<h1 id="title">App</h1><ul id="out"></ul>'
            '<nav><a id="step" href="/app/step2">step 2</a></nav>',
            head=f"""<script>
const out = (k, v) => {{ const li = document.createElement('li'); li.id = k; li.textContent = v;
                         document.getElementById('out').append(li); }};
addEventListener('DOMContentLoaded', async () => {{
  document.cookie = 'js_c=' + (Number((document.cookie.match(/js_c=(\\d+)/) || [0, 0])[1]) + 1) + '; path=/';
  out('cookies', document.cookie);
  localStorage.setItem('visits', String(Number(localStorage.getItem('visits') || 0) + 1));
  out('storage', localStorage.getItem('visits'));
  const data = await (await fetch('{own}/api/items')).json();
  out('fetch', data.items.join(','));
  const xhr = new XMLHttpRequest(); xhr.open('GET', '{own}/api/items');
  await new Promise(ok => {{ xhr.onload = ok; xhr.send(); }});
  out('xhr', JSON.parse(xhr.responseText).cookie.includes('js_c=') ? 'jar' : 'no-jar');
  const socket = new WebSocket('{ws}/ws');
  await new Promise(ok => socket.onopen = ok);
  socket.send('ping');
  out('ws', await new Promise(ok => socket.onmessage = e => ok(e.data)));
  document.getElementById('step').addEventListener('click', e => {{
    e.preventDefault(); history.pushState({{}}, '', '/app/step2'); out('route', location.pathname); }});
  out('done', 'yes');
}});
</script>""",
        )

    async def media(request: Request) -> Response:
        return _page(
            "Media",
            f"<video id='v' src='{site.origin}/video.mp4' preload='auto' muted></video>"
            f"<a id='dl' href='{site.origin}/download'>report</a>",
        )

    async def about(request: Request) -> Response:
        return _page("About", "<h1 id='title'>About</h1><a href='/'>home</a>")

    async def search(request: Request) -> Response:
        return _page("Search", f"<h1 id='title'>Search: {request.query_params.get('q', '')}</h1>")

    async def api_items(request: Request) -> Response:
        return JSONResponse({"items": ["mug", "tee"], "cookie": request.headers.get("cookie", "")})

    async def module_worker(request: Request) -> Response:
        # import() is syntax: no runtime can map it, and workers have no import maps
        return _page(
            "Module worker",
            '<p id="result"></p><script>const w = new Worker("/static/import-leak.js", {type: "module"});'
            'w.onmessage = (e) => { document.getElementById("result").textContent = e.data; };</script>',
        )

    async def import_leak_js(request: Request) -> Response:
        script = f"""
let result = "blocked";
try {{ await import("{site.origin}/static/leaked-module.js"); result = "imported"; }} catch (e) {{}}
postMessage(result);"""
        return Response(script, media_type="text/javascript")

    async def leaked_module(request: Request) -> Response:
        return Response("export const x = 1;", media_type="text/javascript",
                        headers={"access-control-allow-origin": "*"})

    async def shared_worker(request: Request) -> Response:
        return _page(
            "Shared worker",
            '<p id="result"></p><script>const w = new SharedWorker("/static/shared.js");'
            'w.port.onmessage = (e) => { document.getElementById("result").textContent = e.data; };'
            "w.port.start();</script>",
        )

    async def shared_worker_js(request: Request) -> Response:
        script = f"""
onconnect = async (event) => {{
  const port = event.ports[0];
  const relative = await fetch("/api/items").then((r) => String(r.status), () => "failed");
  const absolute = await fetch("{site.origin}/leak").then((r) => "fetched " + r.status, () => "blocked");
  port.postMessage("relative " + relative + ", absolute " + absolute);
}};"""
        return Response(script, media_type="text/javascript",
                        headers={"etag": '"v1"', "last-modified": "Mon, 30 Nov 2026 00:00:00 GMT"})

    async def fragment(request: Request) -> Response:
        # what htmx or a template loader fetches and inserts: a piece of markup, not a page
        return HTMLResponse(f'<p id="frag">piece <a href="{site.origin}/about">about</a></p>')

    async def fetch_fragment(request: Request) -> Response:
        return _page(
            "Fetched fragment",
            '<div id="box"></div><p id="result"></p><script>'
            "(async () => {"
            '  const box = document.getElementById("box");'
            '  box.innerHTML = await (await fetch("/fragment")).text();'
            "  const xhr = new XMLHttpRequest();"
            '  xhr.open("GET", "/fragment"); xhr.send();'
            "  await new Promise((done) => { xhr.onload = done; });"
            '  document.getElementById("result").textContent = [box.children.length,'
            "    box.firstElementChild.id, xhr.responseText === box.innerHTML].join(',');"
            "})();</script>",
        )

    async def revalidated(request: Request) -> Response:
        # a page with a validator, revalidated on every use (Rails answers HTML this way)
        asked = request.headers.get("if-none-match", "")
        site.hits["/revalidated if-none-match " + (asked or "none")] += 1
        if asked == '"r1"':
            return Response(status_code=304, headers={"etag": '"r1"', "cache-control": "no-cache"})
        return HTMLResponse(
            "<!doctype html><html><head><title>R</title></head><body><div id=secret></div>"
            "<script>document.getElementById('secret').textContent = 'SSN 123-45-6789';</script>"
            "</body></html>",
            headers={"etag": '"r1"', "cache-control": "no-cache"},
        )

    async def blob_worker(request: Request) -> Response:
        # a bundler's worker: its script never passes the proxy
        code = (
            f'fetch("{site.origin}/leak")'
            '.then((r) => postMessage("fetched " + r.status), () => postMessage("blocked"));'
        )
        return _page(
            "Blob worker",
            '<p id="result"></p><script>'
            f"const url = URL.createObjectURL(new Blob([{json.dumps(code)}], {{type: 'text/javascript'}}));"
            "const w = new Worker(url); URL.revokeObjectURL(url);"
            'w.onmessage = (e) => { document.getElementById("result").textContent = e.data; };</script>',
        )

    async def modules(request: Request) -> Response:
        # JavaScript the proxy does not rewrite, naming modules by absolute upstream URLs
        own_map = '<script type="importmap">{"imports": {"lib-a": "/static/mod-a.js"}}</script>'
        first = '"lib-a"' if "own-map" in request.query_params else f'"{site.origin}/static/mod-a.js"'
        return _page(
            "Modules",
            '<p id="out"></p><script type="module">'
            f"import {{ word }} from {first};"
            f'const b = await import("{cdn.origin}/static/mod-b.js");'
            f'const fetched = await fetch("{cdn.origin}/static/mod-b.js").then((r) => r.status);'
            'document.getElementById("out").textContent = word + "," + b.word + "," + fetched;</script>',
            head=own_map if "own-map" in request.query_params else "",
        )

    async def integrity(request: Request) -> Response:
        # stylesheets a script adds with the hash of the upstream's bytes (webpack's SRI plugin)
        sheet = f"{cdn.origin}/static/sri.css"
        digest = _sri_hash(_sri_css(cdn.origin))
        return _page(
            "Integrity",
            '<p id="out"></p><div id="box"></div><script>'
            "const load = (l) => new Promise((ok) => { l.onload = () => ok('applied');"
            " l.onerror = () => ok('blocked'); });"
            "const a = document.createElement('link'); a.rel = 'stylesheet'; a.crossOrigin = 'anonymous';"
            f"a.integrity = '{digest}'; a.href = '{sheet}?a';"
            "const b = document.createElement('link'); b.rel = 'stylesheet';"
            f"b.setAttribute('crossorigin', ''); b.setAttribute('integrity', '{digest}');"
            f"b.href = '{sheet}?b';"
            "const box = document.getElementById('box');"
            f"box.innerHTML = '<link rel=stylesheet crossorigin integrity=\"{digest}\" href=\"{sheet}?c\">';"
            "const c = box.firstChild; const waits = [load(a), load(b), load(c)]; document.head.append(a, b);"
            "Promise.all(waits).then((r) => { document.getElementById('out').textContent = r.join(','); });"
            "</script>",
        )

    async def fetched_cookie(request: Request) -> Response:
        # a cookie an API answer sets (a CSRF token, say), read by the page right after the fetch
        return _page(
            "Fetched cookie",
            '<p id="before"></p><p id="after"></p><script>'
            "document.getElementById('before').textContent = document.cookie || '(none)';"
            "fetch('/set-cookie').then(() => {"
            " document.getElementById('after').textContent = document.cookie || '(none)'; });"
            "</script>",
        )

    async def plant_cookie(request: Request) -> Response:
        # a page that gets round the runtime: a blob: document (the runtime is not in it) lends
        # its Document cookie setter, which writes a cookie for the whole proxy domain
        # ?name=NAME, where {sid} stands for the page's own session id (its host name's first
        # ten characters)
        # ?path=P: the cookies' path ("/")
        # ?count=N&size=S plants N cookies NAME0..NAME{N-1} of S bytes each (a flood)
        domain = request.query_params.get("domain", "")
        path = request.query_params.get("path", "/")
        sid = "' + parent.location.hostname.slice(0, 10) + '"
        name = request.query_params.get("name", "__cbjs").replace("{sid}", sid)
        count = int(request.query_params.get("count", "0"))
        size = int(request.query_params.get("size", "0"))
        value = "encodeURIComponent(JSON.stringify(['planted=1']))"
        attributes = f"'; Domain={domain}; Path={path}; Secure'"
        plant = f"d.set.call(parent.document, '{name}=' + {value} + {attributes});"
        if count:
            plant = (
                f"for (var i = 0; i < {count}; i++) d.set.call(parent.document, '{name}' + i + '='"
                f" + 'v'.repeat({size}) + {attributes});"
            )
        frame = (
            "<script>var d = Object.getOwnPropertyDescriptor(Document.prototype, 'cookie');"
            f"{plant}"
            "parent.document.getElementById('out').textContent = 'planted';<\\/script>"
        )
        return _page(
            "Plant a cookie",
            '<p id="out"></p><script>'
            f"var f = document.createElement('iframe'); f.src = URL.createObjectURL("
            f"new Blob([\"{frame}\"], {{type: 'text/html'}})); document.body.appendChild(f);"
            "</script>",
        )

    async def messages(request: Request) -> Response:
        # postMessage naming the upstream origin (to itself, from a same-origin frame) and a fetch
        # to its own origin without credentials
        return _page(
            "Messages",
            '<p id="out"></p><script>'
            "const got = []; let omitted = '';"
            "const finish = () => { if (got.length >= 3 && omitted)"
            " document.getElementById('out').textContent = omitted + ';' + got.sort().join(','); };"
            "addEventListener('message', (e) => { got.push(e.data + '@' + (e.origin === location.origin"
            " ? 'own' : e.origin)); finish(); });"
            f"postMessage('self', '{site.origin}');"
            f"postMessage('options', {{targetOrigin: '{site.origin}/any/path'}});"
            "postMessage('elsewhere', 'https://elsewhere.example');"  # not this window: never delivered
            "fetch('/api/items', {credentials: 'omit'}).then((r) => r.status, () => 'failed')"
            ".then((s) => { omitted = String(s); finish(); });"
            '</script><iframe src="/message-child"></iframe>',  # after the listener
        )

    async def message_child(request: Request) -> Response:
        return _page("Child", f"<script>parent.postMessage('child', '{site.origin}');</script>")

    async def sandboxed_popup(request: Request) -> Response:
        # a frame sandboxed without allow-same-origin (its requests carry no proxy credential)
        # opens a pop-up to an absolute upstream URL: only its own runtime can keep that inside
        child = f"<script>window.open('{site.origin}/about')</script>"
        return _page(
            "Sandboxed pop-up",
            f'<iframe sandbox="allow-scripts allow-popups" srcdoc="{html.escape(child)}"></iframe>',
        )

    async def data_frame_popup(request: Request) -> Response:
        # a data: frame (no runtime reaches it) opens a pop-up to an absolute upstream URL and
        # tells its parent what window.open gave it
        child = (
            f"<script>parent.postMessage(String(window.open('{site.origin}/echo-headers?from=data')),"
            " '*')</script>"
        )
        src = "data:text/html," + urllib.parse.quote(child)
        return _page(
            "Data frame pop-up",
            "<script>window.__said = []; addEventListener('message', (e) => __said.push(e.data));</script>"
            f'<iframe src="{html.escape(src)}"></iframe>',
        )

    async def module_a(request: Request) -> Response:
        return Response('export const word = "alpha";', media_type="text/javascript")

    async def leak(request: Request) -> Response:
        return PlainTextResponse("reached upstream directly", headers={"access-control-allow-origin": "*"})

    async def set_cookie(request: Request) -> Response:
        response = PlainTextResponse("ok")
        response.set_cookie("server_c", "s1", path="/", httponly=True)
        response.set_cookie("visible_c", "v1", path="/")
        return response

    async def forget_cookies(request: Request) -> Response:
        """A logout: the cookies of /set-cookie deleted, one by Max-Age=0, one by a past Expires;
        a cookie for another site's domain and a malformed one, which a browser ignores."""
        response = PlainTextResponse("bye")
        response.headers.append("set-cookie", "server_c=; Max-Age=0; Path=/; HttpOnly")
        response.headers.append("set-cookie", "visible_c=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/")
        response.headers.append("set-cookie", "elsewhere=1; Domain=evil.example; Path=/")
        response.headers.append("set-cookie", "=; Path=/")
        return response

    async def broken_svg(request: Request) -> Response:
        """An SVG document that is not well-formed, padded to ``kb`` KiB (a browser renders none)."""
        pad = "<!--" + "x" * (int(request.query_params.get("kb", "1")) * 1024) + "-->"
        body = f'<svg xmlns="http://www.w3.org/2000/svg">{pad}<a href="/about"><text>unclosed</svg'
        return Response(body.encode(), media_type="image/svg+xml")

    async def many_cookies(request: Request) -> Response:
        response = PlainTextResponse("ok")
        for i in range(int(request.query_params.get("n", "1"))):
            response.set_cookie(f"many{i}", "v" * 100, path="/")
        return response

    async def echo_body(request: Request) -> Response:
        body = await request.body()
        return JSONResponse({"body": body.decode("latin-1"),
                             "content-length": request.headers.get("content-length"),
                             "transfer-encoding": request.headers.get("transfer-encoding")})

    async def redirect_in(request: Request) -> Response:
        return RedirectResponse(f"{site.origin}/about", status_code=302)

    async def return_to(request: Request) -> Response:
        """Echoes the URL it is given (a login's ``?return=`` + ``location.href``), as a link or,
        with ``redirect``, as a redirect."""
        to = request.query_params.get("to", "/")
        if request.query_params.get("redirect"):
            return RedirectResponse(to, status_code=303)
        return _page("return", f'<a id="back" href="{html.escape(to)}">back</a>')

    async def redirect_out(request: Request) -> Response:
        return RedirectResponse("http://example.invalid/elsewhere", status_code=302)

    async def login(request: Request) -> Response:
        if request.method == "GET":
            token = secrets.token_hex(8)
            response = _page(
                "Login",
                f"""<form id="login" method="post" action="/login">
<input type="hidden" name="csrf" value="{token}"><input name="user" id="user">
<input type="password" name="password" id="password"><button id="go">Sign in</button></form>""",
            )
            response.set_cookie("csrf", token, httponly=True)
            return response
        form = {k: v[0] for k, v in urllib.parse.parse_qs((await request.body()).decode()).items()}
        if form.get("csrf") != request.cookies.get("csrf") or form.get("password") != "secret":
            return _page("Denied", "<h1 id='title'>Denied</h1>")
        sid = secrets.token_hex(8)
        sessions[sid] = str(form.get("user"))
        response = RedirectResponse("/account", status_code=303)
        response.set_cookie("login", sid, httponly=True)
        return response

    async def account(request: Request) -> Response:
        user = sessions.get(request.cookies.get("login", ""))
        if user is None:
            return RedirectResponse("/login", status_code=303)
        return _page("Account", f"<h1 id='title'>Hello {user}</h1>")

    async def big(request: Request) -> Response:
        size = int(request.query_params.get("kb", "64")) * 1024
        chunked = request.query_params.get("chunked") == "1"
        body = b"<!doctype html><html><body>" + b"x" * size + b"</body></html>"
        if chunked:
            async def gen() -> Any:
                for start in range(0, len(body), 65536):
                    yield body[start : start + 65536]

            return StreamingResponse(gen(), media_type="text/html")
        return Response(body, media_type="text/html")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "5")))
        site.slow_answered.add(request.query_params.get("tag", ""))
        return PlainTextResponse("late")

    async def video(request: Request) -> Response:
        range_header = request.headers.get("range")
        if range_header and range_header.startswith("bytes="):
            start_text, _, end_text = range_header[6:].partition("-")
            start = int(start_text or 0)
            end = int(end_text) if end_text else len(VIDEO) - 1
            chunk = VIDEO[start : end + 1]
            return Response(
                chunk,
                status_code=206,
                media_type="video/mp4",
                headers={"content-range": f"bytes {start}-{end}/{len(VIDEO)}", "accept-ranges": "bytes"},
            )
        return Response(VIDEO, media_type="video/mp4", headers={"accept-ranges": "bytes"})

    async def chunks(request: Request) -> Response:
        """A body in chunked transfer coding (no Content-Length), of the type asked for."""
        body = PNG if request.query_params.get("type") == "image/png" else (
            f"<!doctype html><html><body><a id='abs' href='{site.origin}/about'>about</a>"
            "</body></html>"
        ).encode()

        async def gen() -> Any:
            yield body[:10]
            yield body[10:]

        return StreamingResponse(gen(), media_type=request.query_params.get("type", "text/html"))

    async def stall(request: Request) -> Response:
        """``kb`` KiB of a body in chunks, then nothing until ``site.release`` (``site.stall_s`` at most).
        ``type=none`` sends no Content-Type; ``every=S`` sends one more chunk every S seconds
        while it waits (a slow but live upstream)."""
        kind = request.query_params.get("type", "text/html")
        size = int(request.query_params.get("kb", "1")) * 1024
        every = float(request.query_params.get("every", "0"))
        filler = b"x" if kind.startswith("text/") else b"\x00"
        head = b"<!doctype html><html><body>" if kind == "text/html" else b"\x89PNG\r\n\x1a\n"

        async def gen() -> Any:
            body = head + filler * max(0, size - len(head))
            for start in range(0, len(body), 16384):
                yield body[start : start + 16384]
            if every:
                for _ in range(int(site.release_after_s / every)):
                    await asyncio.sleep(every)
                    yield filler
            else:
                released = await asyncio.to_thread(site.release.wait, site.stall_s)
                yield b"released" if released else b"never-released"
            yield b"</body></html>" if kind == "text/html" else b"end"
            site.stall_done.set()

        return StreamingResponse(gen(), media_type=None if kind == "none" else kind)

    async def drip(request: Request) -> Response:
        async def gen() -> Any:
            yield b"first-chunk;"
            released = await asyncio.to_thread(site.release.wait, 20)
            yield b"rest" if released else b"never-released"

        return StreamingResponse(gen(), media_type="application/octet-stream")

    async def encoded(request: Request) -> Response:
        coding = request.query_params["enc"]
        page = (f"<!doctype html><html><body><a id='abs' href='{site.origin}/about'>about</a>"
                "</body></html>").encode()
        return Response(ENCODERS[coding](page), media_type="text/html", headers={"content-encoding": coding})

    async def bomb(request: Request) -> Response:
        return Response(_bomb(), media_type="text/html", headers={"content-encoding": "gzip"})

    async def download(request: Request) -> Response:
        return Response(
            b"report,1\n" * 1000,
            media_type="text/csv",
            headers={"content-disposition": 'attachment; filename="report.csv"'},
        )

    async def ws_echo(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive_text()
                if message == "close, please":  # the server ends it
                    await websocket.close(4001, "server bye")
                    return
                await websocket.send_text(message)
        except Exception:  # noqa: BLE001 - the client went away
            return

    routes = [
        Route("/", home),
        Route("/about", about),
        Route("/return", return_to),
        Route("/app", app),
        Route("/media", media),
        Route("/app/step2", app),
        Route("/search", search),
        Route("/api/items", api_items),
        Route("/set-cookie", set_cookie),
        Route("/shared-worker", shared_worker),
        Route("/blob-worker", blob_worker),
        Route("/fragment", fragment),
        Route("/revalidated", revalidated),
        Route("/fetch-frag", fetch_fragment),
        Route("/module-worker", module_worker),
        Route("/static/import-leak.js", import_leak_js),
        Route("/static/leaked-module.js", leaked_module),
        Route("/static/shared.js", shared_worker_js),
        Route("/leak", leak),
        Route("/modules", modules),
        Route("/messages", messages),
        Route("/fetched-cookie", fetched_cookie),
        Route("/plant-cookie", plant_cookie),
        Route("/integrity", integrity),
        Route("/message-child", message_child),
        Route("/sandboxed-popup", sandboxed_popup),
        Route("/data-frame-popup", data_frame_popup),
        Route("/static/mod-a.js", module_a),
        Route("/echo-headers", echo_headers, methods=["GET", "POST"]),
        Route("/shift-jis", shift_jis_page),
        Route("/shift-jis.css", shift_jis_sheet),
        Route("/raw-query", raw_query),
        Route("/echo-body", echo_body, methods=["POST", "PUT"]),
        Route("/many-cookies", many_cookies),
        Route("/broken.svg", broken_svg),
        Route("/forget-cookies", forget_cookies),
        Route("/redirect-in", redirect_in),
        Route("/redirect-out", redirect_out),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/account", account),
        Route("/big", big),
        Route("/chunks", chunks),
        Route("/stall", stall),
        Route("/slow", slow),
        Route("/video.mp4", video),
        Route("/download", download),
        Route("/drip", drip),
        Route("/encoded", encoded),
        Route("/bomb", bomb),
        WebSocketRoute("/ws", ws_echo),
    ]
    return _counting(Starlette(routes=routes), site)


def cdn_app(site: Site, shop: Site) -> Starlette:
    async def image(request: Request) -> Response:
        return Response(PNG, media_type="image/png", headers={"cache-control": "no-store"})

    async def css(request: Request) -> Response:
        return Response(
            "@import url('" + site.origin + "/static/extra.css');\n"
            "@font-face{font-family:Fx;src:url('" + site.origin + "/static/font.woff2') format('woff2')}\n"
            ".bg{background:url(" + site.origin + "/img/logo.png);color:rgb(0,0,128)}\n",
            media_type="text/css",
        )

    async def sri_css(request: Request) -> Response:
        return Response(_sri_css(site.origin), media_type="text/css",
                        headers={"access-control-allow-origin": "*"})

    async def extra_css(request: Request) -> Response:
        return Response("#title{color:rgb(200,0,0)}", media_type="text/css")

    async def font(request: Request) -> Response:
        return Response(b"wOF2-not-really", media_type="font/woff2")

    async def app_js(request: Request) -> Response:
        return Response(
            "window.__fixtureScriptRan = true;"
            "fetch('/api/items').then(r => r.json()).then(d => {"
            "document.body.dataset.items = d.items.join(',');});",
            media_type="application/javascript",
        )

    async def module_b(request: Request) -> Response:
        return Response('export const word = "beta";', media_type="text/javascript",
                        headers={"access-control-allow-origin": shop.origin})

    async def frame(request: Request) -> Response:
        return _page("Frame", "<p id='in-frame'>inside the frame</p>")

    routes = [
        Route("/img/{name}", image),
        Route("/static/site.css", css),
        Route("/static/extra.css", extra_css),
        Route("/static/sri.css", sri_css),
        Route("/static/font.woff2", font),
        Route("/static/app.js", app_js),
        Route("/frame", frame),
        Route("/echo-headers", echo_headers),
        Route("/static/mod-b.js", module_b),
    ]
    return _counting(Starlette(routes=routes), site)


def _counting(app: Starlette, site: Site) -> Any:
    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            site.hits[scope["path"]] += 1
            if scope.get("client"):
                site.connections.add(tuple(scope["client"]))
        await app(scope, receive, send)

    return wrapped


class SiteServer:
    """Serves an ASGI app on a pre-bound loopback socket in a thread of its own."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)  # connections queue from now on: the server is "ready" at once
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", lifespan="off", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> SiteServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
