"""A scripted HTTP/1 upstream on a raw socket, for the framings no web framework sends: a 304 with
``Transfer-Encoding: chunked``, an HTTP/1.0 body that stops half-way, chunks split anywhere, a
connection dropped without an answer; and an origin whose connect never completes."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

# path -> handler(connection); a handler returns True to close the connection afterwards
Script = Callable[[socket.socket], bool | None]


class RawUpstream:
    def __init__(self, scripts: dict[str, Script], address: str = "127.0.0.1", port: int = 0) -> None:
        self.scripts = scripts
        self.connections = 0
        self.stop = threading.Event()  # handlers that stall wait on it
        self.rest_sent = threading.Event()  # a stalling handler sent the rest of its body
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.origin = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rb") as reader:
            while not self.stop.is_set():
                head = reader.readline()
                if not head:
                    return
                path = head.split()[1].decode().split("?", 1)[0]
                while (line := reader.readline()) not in (b"\r\n", b""):
                    head += line  # the request's headers (bodiless requests only)
                self.received(head)
                if self.scripts[path](conn):
                    return

    def received(self, head: bytes) -> None:
        """A request head has arrived (whole, as it came)."""

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


class RecordingUpstream(RawUpstream):
    """The raw upstream, keeping the head of every request it reads, as it arrived."""

    def __init__(self, scripts: dict) -> None:
        self.heads: list[bytes] = []
        super().__init__(scripts)

    def received(self, head: bytes) -> None:
        self.heads.append(head)

    def fields(self, index: int = -1) -> list[tuple[str, str]]:
        """The header fields of a request received, names lowercased."""
        lines = self.heads[index].decode("latin-1").split("\r\n")[1:]
        return [(n.strip().lower(), v.strip()) for n, _, v in (ln.partition(":") for ln in lines if ln)]


@contextlib.contextmanager
def unconnectable_origin() -> Iterator[str]:
    """A loopback origin whose TCP connect never completes: a listener with ``listen(0)`` whose
    accept queue one connection, never accepted, already fills. Linux drops further SYNs (it
    resets them only with ``tcp_abort_on_overflow``), so ``connect()`` waits for the OS's own
    timeout (``tcp_syn_retries``: about two minutes)."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@contextlib.contextmanager
def handshakeless_origin() -> Iterator[str]:
    """An https origin on loopback that accepts TCP connections (the kernel does) but never
    answers a TLS handshake: nothing accepts them."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield f"https://127.0.0.1:{listener.getsockname()[1]}"
