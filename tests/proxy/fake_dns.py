"""A fake resolver for made-up names: the proxy's egress check and mitmproxy's connections both
resolve through ``socket.getaddrinfo`` (via the event loop's executor)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest


class FakeDns:
    """``socket.getaddrinfo`` for made-up names (the proxy's resolver and mitmproxy's both call it):
    each lookup of a name takes its next answer, the last one repeats; other names resolve as usual."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers
        self.lookups: list[str] = []
        self._real = socket.getaddrinfo
        self._lock = threading.Lock()

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in self.answers:
            return self._real(host, port, *args, **kwargs)
        with self._lock:
            done = self.lookups.count(name)
            self.lookups.append(name)
            queue = self.answers[name]
            addresses = queue[min(done, len(queue) - 1)]
        infos: list[Any] = []
        for text in addresses:
            if ":" in text:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (text, int(port or 0), 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (text, int(port or 0))))
        return infos


def install(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """A ``FakeDns`` in place of ``socket.getaddrinfo`` until ``monkeypatch`` undoes it."""
    dns = FakeDns({})
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns
