"""What every handler of one app shares: settings, store, event hub and metrics (no module globals)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cobrowse.settings import Settings
from control_api.hub import EventHub
from control_api.metrics import Metrics
from control_api.store import Store


@dataclass(frozen=True)
class Api:
    settings: Settings
    store: Store
    hub: EventHub
    metrics: Metrics
    # cleanups still running after their WebSocket went away; awaited before the store closes
    cleanups: set[asyncio.Task[None]] = field(default_factory=set)
    # open visitor sockets per visitor id in this process (control_api.ws.MAX_SOCKETS_PER_VISITOR)
    visitor_sockets: dict[str, int] = field(default_factory=dict)
