"""The rewriting proxy: mitmproxy embedded as a library, with cobrowse's addons.

``ProxyServer(settings, store)`` (``proxy.server``) runs it; the addons, one small class per
concern, are listed in ``proxy.addons.make_addons``. Imported lazily: ``import proxy`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ProxyServer", "make_addons"]


def __getattr__(name: str) -> Any:
    if name == "ProxyServer":
        from proxy.server import ProxyServer

        return ProxyServer
    if name == "make_addons":
        from proxy.addons import make_addons

        return make_addons
    raise AttributeError(name)
