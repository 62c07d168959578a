"""The API's HTTP protocol closes connections whose request head does not come (slowloris)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from websockets.sync.client import connect as ws_connect

from cobrowse.api_protocol import HeadDeadline, HeadDeadlineProtocol
from cobrowse.cmd_serve import ApiPart
from cobrowse.settings import Settings
from control_api import create_app, request_parsing
from control_api.store import Store

DEADLINE_S = 1.0


class QuickDeadline(HeadDeadlineProtocol):  # httptools, the one `cobrowse serve` runs
    head_timeout_s = DEADLINE_S


class QuickH11Deadline(HeadDeadline, H11Protocol):  # uvicorn without httptools
    head_timeout_s = DEADLINE_S


PROTOCOLS = pytest.mark.parametrize("protocol", [QuickDeadline, QuickH11Deadline], ids=["httptools", "h11"])


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send({"type": "websocket.send", "text": message.get("text") or ""})
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(DEADLINE_S * 2)  # an answer that takes longer than the head deadline
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def server(protocol: type, asgi: Any = app, lifespan: str = "off") -> Iterator[int]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    config = uvicorn.Config(asgi, http=protocol, lifespan=lifespan, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(instance.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        yield int(sock.getsockname()[1])
    finally:
        instance.should_exit = True
        thread.join(10)
        sock.close()


def closed_by_server(conn: socket.socket, within_s: float = DEADLINE_S * 5) -> bool:
    """Whether the server closes ``conn`` (whatever it sent before) within ``within_s``."""
    conn.settimeout(within_s)
    try:
        while conn.recv(4096):
            pass
    except TimeoutError:
        return False
    return True


@PROTOCOLS
@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: x\r\n"], ids=["nothing", "half a head"])
def test_a_connection_without_a_whole_head_is_closed(protocol: type, sent: bytes) -> None:
    with server(protocol) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(sent)
        assert closed_by_server(conn)


@PROTOCOLS
def test_the_next_head_on_a_kept_alive_connection_has_the_same_deadline(protocol: type) -> None:
    with server(protocol) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(5)
        assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET / HTTP/1.1\r\n")  # cancels uvicorn's own keep-alive timer, and stops
        assert closed_by_server(conn)


@PROTOCOLS
def test_a_slow_answer_and_a_websocket_are_not_cut(protocol: type) -> None:
    with server(protocol) as port:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
            conn.settimeout(DEADLINE_S * 10)
            assert conn.recv(4096).startswith(b"HTTP/1.1 200")
        with ws_connect(f"ws://127.0.0.1:{port}/ws") as ws:
            with pytest.raises(TimeoutError):
                ws.recv(timeout=DEADLINE_S * 2)  # quiet past the deadline, and still open
            ws.send("still here")
            assert ws.recv(timeout=5) == "still here"


@PROTOCOLS
def test_a_websocket_upgrade_pipelined_after_a_request_is_not_cut(protocol: type) -> None:
    """h11 takes the buffered upgrade as the first answer completes: the deadline armed then for
    a next head closed the WebSocket it had become."""
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    with server(protocol) as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + upgrade)
        conn.settimeout(5)
        got = b""
        while b"101 Switching Protocols" not in got:
            chunk = conn.recv(4096)
            assert chunk, got
            got += chunk
        assert not closed_by_server(conn, within_s=DEADLINE_S * 2.5)  # quiet, and still open


@PROTOCOLS
def test_a_request_body_that_does_not_come_is_answered_408_and_the_connection_closed(
    protocol: type, monkeypatch: pytest.MonkeyPatch, redis_url: str, namespace: str
) -> None:
    """A whole head, then a body that stops: the head deadline is past, and the app waited for the
    rest of the body for ever (a connection, and its file descriptor, held by a byte now and then)."""
    monkeypatch.setattr(request_parsing, "BODY_TIMEOUT_S", DEADLINE_S)
    store = Store.connect(redis_url, namespace=namespace)
    api = create_app(Settings(api_port=0), store=store)
    head = b"POST /api/v1/visitors HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    with server(protocol, api, lifespan="on") as port, socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(head + b"Content-Length: 100\r\n\r\n" + b'{"site_key": "')
        conn.settimeout(DEADLINE_S * 10)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b'"error":"request_timeout"' in answer.replace(b" ", b""), answer
        assert closed_by_server(conn)  # the rest of that body is not read as a next request


def test_the_api_process_uses_it() -> None:
    part = ApiPart(Settings(api_port=0), store=None)
    assert part.server.config.http is HeadDeadlineProtocol
