"""A scripted WebSocket upstream on raw sockets, for the ends no framework lets a test choose: a
connection reset or closed without a close frame, a close frame with any code and reason, an
upgrade refused or never answered. It serves a page at ``/`` (for Chromium to open the WebSocket
from) and runs ``scripts[path]`` for each request to another path."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

PAGE = b"<!doctype html><html><head><title>ws</title></head><body><p id=ready>ready</p></body></html>"
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Frame:
    opcode: int
    payload: bytes
    fin: bool = True

    @property
    def close_code(self) -> int | None:
        return struct.unpack("!H", self.payload[:2])[0] if len(self.payload) >= 2 else None

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode("utf-8")


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True) -> bytes:
    """One unmasked (server) frame."""
    first = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", first, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", first, 126, n)
    else:
        head = struct.pack("!BBQ", first, 127, n)
    return head + payload


def close_frame(code: int, reason: str = "") -> bytes:
    return frame(0x8, struct.pack("!H", code) + reason.encode("utf-8"))


@dataclass
class Peer:
    """The upstream's end of one connection, after its request head."""

    sock: socket.socket
    reader: object  # the socket's buffered reader
    head: bytes
    seen: list[Frame] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        """A field of the request head (the first of that name)."""
        for line in self.head.decode("latin-1").split("\r\n")[1:]:
            field_name, _, value = line.partition(":")
            if field_name.strip().lower() == name.lower():
                return value.strip()
        return None

    def accept(self, extra: bytes = b"") -> None:
        key = next(line.split(b":", 1)[1].strip() for line in self.head.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n"
                          + extra + b"\r\n")

    def _read(self, n: int) -> bytes:
        data = self.reader.read(n)  # type: ignore[attr-defined]
        if len(data) < n:
            raise EOFError
        return bytes(data)

    def receive(self) -> Frame:
        """The browser's next frame (unmasked), also kept in ``seen``."""
        first, second = self._read(2)
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._read(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._read(8))
        mask = self._read(4) if second & 0x80 else b"\0\0\0\0"
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._read(n)))
        received = Frame(first & 0x0F, payload, bool(first & 0x80))
        self.seen.append(received)
        return received

    def receive_message(self) -> Frame:
        """The browser's next data message, its fragments joined (control frames are kept in
        ``seen`` and skipped; a close is returned as it is)."""
        first = self.receive()
        while first.opcode in (0x9, 0xA):
            first = self.receive()
        parts = [first.payload]
        fin = first.fin
        while not fin:
            part = self.receive()
            if part.opcode == 0x0:
                parts.append(part.payload)
                fin = part.fin
        return Frame(first.opcode, b"".join(parts))

    def receive_until_close(self) -> Frame:
        while (received := self.receive()).opcode != 0x8:
            pass
        return received

    def reset(self) -> None:
        """End the connection with a TCP reset."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def at_eof(self) -> bool:
        """Whether the other side ends the connection (a socket timeout fails)."""
        try:
            return self.reader.read(1) == b""  # type: ignore[attr-defined]
        except ConnectionResetError:
            return True


class WsUpstream:
    """Serves the page at ``/`` and each other path by its script (run on its own thread); over
    TLS as ``https://localhost:{port}`` when given a server context."""

    def __init__(self, scripts: dict[str, Callable[[Peer], None]], tls: ssl.SSLContext | None = None) -> None:
        self.scripts = scripts
        self.tls = tls
        self.peers: list[Peer] = []
        self.done = threading.Event()  # a script has returned
        self.errors: list[BaseException] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.origin = f"https://localhost:{self.port}" if tls else f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(20)
        with contextlib.suppress(OSError), conn:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)  # detaches the plain one
            self._serve_http(conn)

    def _serve_http(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while head := reader.readline():
                while (line := reader.readline()) not in (b"\r\n", b""):
                    head += line
                path = head.split()[1].decode().split("?", 1)[0]
                script = self.scripts.get(path)
                if script is None:
                    body = PAGE if path == "/" else b"not here"
                    status = b"200 OK" if path == "/" else b"404 Not Found"
                    conn.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html\r\n"
                                 b"Cache-Control: no-store\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
                    continue
                peer = Peer(conn, reader, head)
                self.peers.append(peer)
                try:
                    script(peer)
                except (OSError, EOFError, AssertionError) as exc:
                    self.errors.append(exc)
                finally:
                    self.done.set()
                return

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def ws_upstream(
    scripts: dict[str, Callable[[Peer], None]], tls: ssl.SSLContext | None = None
) -> Iterator[WsUpstream]:
    upstream = WsUpstream(scripts, tls)
    try:
        yield upstream
    finally:
        upstream.close()
