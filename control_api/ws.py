"""The two WebSocket endpoints: ``/api/v1/visitor/ws`` and ``/api/v1/agent/ws`` (docs/PROTOCOL.md).

Each connection authenticates (``Authorization`` header, or a first message ``{"type": "auth",
"token": ...}`` within ``AUTH_TIMEOUT_S``), subscribes through the process's ``EventHub`` to the
channels of its side, and relays validated sync messages of *active* sessions it belongs to through
Redis pub/sub, so the two sides may sit on different API processes. Every client message is
size-checked, rate-limited and validated; violations close the connection with a code of
``control_api.messages``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from control_api import accounts, agents, keys, masking, presence, sessions, visitors
from control_api.accounts import Account
from control_api.auth import Principal, resolve
from control_api.context import Api
from control_api.exceptions import StoreUnavailable
from control_api.messages import (
    CLOSE_AUTH_TIMEOUT,
    CLOSE_FORBIDDEN,
    CLOSE_GONE,
    CLOSE_RATE_LIMITED,
    CLOSE_SERVER_ERROR,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    ClientMessage,
    ProtocolViolation,
    decode,
    parse,
)
from control_api.store import translate_errors
from control_api.tasks import check_cancelled, stop
from control_api.tokens import digest

log = logging.getLogger("cobrowse.api.ws")

AUTH_TIMEOUT_S = 10.0
QUEUE_SIZE = 1000
# Open sockets one visitor may hold (one per tab of the site), in one API process and on all of them
# together (their leases in the store): each keeps under its own message rate, so one visitor token
# opening sockets without end slowed every session (40 of them took another session's relay from
# 8 ms to 93 ms, p50).
MAX_SOCKETS_PER_VISITOR = 16
ACTIVITY_EVERY_S = 1.0
# An agent's socket reads its token and its agent again this often: a token lost with the store's
# data (a Redis restarted empty, a failover to a replica behind) publishes no revocation, and the
# socket, authenticated once, went on (a console that looked signed in; requests it sent failed).
AGENT_RECHECK_S = 15.0
SCROLL_STORE_EVERY_S = 1.0


BURST_S = 3.0  # a bucket holds this many seconds' worth of messages


class RateLimiter:
    """Token bucket: ``rate`` messages per second, bursts of up to ``burst_s`` seconds' worth.

    Messages are counted as this process reads them, not as the client sent them: after a stall of
    ours (a busy event loop, a slow Redis) a client well within the rate has its last seconds'
    messages read at once. The bucket holds BURST_S seconds of them, so such a stall closes no
    socket (the banner sends at most 40 a second: 3.75 s of stall), while a flood is still
    stopped within a few hundred messages."""

    def __init__(self, rate: int, burst_s: float = BURST_S) -> None:
        self.rate = float(max(rate, 1))
        self.capacity = self.rate * max(burst_s, 1.0)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


# what closing a socket raises once its client is gone (anyio's: Starlette's in-process transport)
CLIENT_GONE = (
    RuntimeError, OSError, WebSocketDisconnect, anyio.ClosedResourceError, anyio.BrokenResourceError
)


class Connection:
    side = ""

    def __init__(self, api: Api, websocket: WebSocket) -> None:
        self.api = api
        self.ws = websocket
        self.store = api.store
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self.limiter = RateLimiter(api.settings.ws_rate_per_s)
        self.principal: Principal | None = None
        self.token_digest = ""  # the SHA-256 of the token the socket authenticated with
        self.subscriptions: set[str] = set()
        self.sessions: dict[str, dict[str, str]] = {}  # live sessions of this side, by id
        self.overflow = False
        self.last_activity: dict[str, float] = {}

    # -- plumbing

    def sink(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflow = True

    async def subscribe(self, channel: str) -> None:
        if channel not in self.subscriptions:
            self.subscriptions.add(channel)
            await self.api.hub.subscribe(channel, self.sink)

    async def unsubscribe(self, channel: str) -> None:
        if channel in self.subscriptions:
            self.subscriptions.discard(channel)
            await self.api.hub.unsubscribe(channel, self.sink)

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(message))

    async def error(self, code: str, detail: str) -> None:
        await self.send({"type": "error", "error": code, "detail": detail})

    async def authenticate(self) -> Principal:
        principal = getattr(self.ws.state, "principal", None)
        if principal is not None and principal.kind == self.side:
            self.token_digest = getattr(self.ws.state, "token_digest", "")
            return principal
        if getattr(self.ws.state, "token_given", False):
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "invalid token")
        try:
            first = await asyncio.wait_for(self.ws.receive(), AUTH_TIMEOUT_S)
        except TimeoutError as exc:
            raise ProtocolViolation(CLOSE_AUTH_TIMEOUT, "no auth message") from exc
        if first["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(first.get("code", 1000))
        data = decode(first.get("text") or first.get("bytes") or b"", self.api.settings.ws_max_message_bytes)
        if data.get("type") != "auth" or not isinstance(data.get("token"), str):
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "the first message must be {type: auth, token}")
        principal = await resolve(self.store, self.api.settings.admin_token, data["token"])
        if principal is None or principal.kind != self.side:
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "invalid token")
        self.token_digest = digest(data["token"])
        return principal

    async def run(self) -> None:
        await self.ws.accept()
        self.api.metrics.ws_opened(self.side)
        code = 1000
        try:
            code = await self._run()
        finally:
            self.api.metrics.ws_finished(self.side, code)

    async def _run(self) -> int:
        code, reason = 1000, ""
        tasks: list[asyncio.Task[None]] = []
        try:
            self.principal = await self.authenticate()
            await self.setup()
            tasks = [
                asyncio.create_task(self.read_loop()),
                asyncio.create_task(self.write_loop()),
                asyncio.create_task(self.background()),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is not None:
                    raise exc
        except WebSocketDisconnect:
            pass
        except ProtocolViolation as exc:
            code, reason = exc.code, exc.reason
        except StoreUnavailable:
            code, reason = CLOSE_TRY_AGAIN, "store unavailable"
        except Exception:
            log.exception("%s websocket failed", self.side)
            code, reason = CLOSE_SERVER_ERROR, "internal error"
        finally:
            # Shielded: a cancelled handler (server shutdown) still releases its subscriptions.
            cleanup = asyncio.ensure_future(self._cleanup(tasks, code, reason))
            self.api.cleanups.add(cleanup)
            cleanup.add_done_callback(self.api.cleanups.discard)
            await asyncio.shield(cleanup)
        return code

    async def _cleanup(self, tasks: list[asyncio.Task[None]], code: int, reason: str) -> None:
        await stop(*tasks)
        for channel in list(self.subscriptions):
            await self.unsubscribe(channel)
        try:
            await self.teardown()
        except StoreUnavailable:
            pass
        connected = WebSocketState.CONNECTED
        if self.ws.application_state == connected and self.ws.client_state == connected:
            try:
                await self.ws.close(code, reason)
            except CLIENT_GONE:
                pass  # the client went away first

    async def read_loop(self) -> None:
        limit = self.api.settings.ws_max_message_bytes
        while True:
            check_cancelled()
            raw = await self.ws.receive()
            if raw["type"] == "websocket.disconnect":
                return
            if not self.limiter.allow():
                raise ProtocolViolation(CLOSE_RATE_LIMITED, "rate limit exceeded")
            message = parse(self.side, raw.get("text") or raw.get("bytes") or b"", limit)
            self.api.metrics.ws_message(self.side, message.type)
            if message.type == "ping":
                await self.send({"type": "pong", "ts": time.time()})
                continue
            await self.handle(message)

    async def write_loop(self) -> None:
        while True:
            check_cancelled()
            text = await self.queue.get()
            if self.overflow:
                raise ProtocolViolation(CLOSE_TRY_AGAIN, "too slow: events were dropped; reconnect")
            try:
                event = json.loads(text)
            except ValueError:
                continue
            await self.deliver(event)

    async def relay(
        self, sid: str, message: ClientMessage, to_side: str, extra: dict[str, Any] | None = None
    ) -> None:
        now = time.time()
        event = {**message.data, **(extra or {}), "type": message.type, "session_id": sid, "from": self.side,
                 "ts": now}
        with translate_errors():
            channel = keys.sync_channel(self.store, sid, to_side)
            await self.api.hub.publisher.publish(channel, json.dumps(event))
        await self.touch(sid, now)

    async def touch(self, sid: str, now: float | None = None) -> None:
        """Count session activity (its idle timeout), at most once every ``ACTIVITY_EVERY_S``."""
        now = time.time() if now is None else now
        if now - self.last_activity.get(sid, 0.0) >= ACTIVITY_EVERY_S:
            self.last_activity[sid] = now
            await sessions.touch(self.store, sid, now)

    async def deliver_sync(self, event: dict[str, Any]) -> None:
        ts = event.get("ts")
        if isinstance(ts, int | float):
            self.api.metrics.observe_latency(time.time() - ts)
        if self.sessions.get(event.get("session_id", ""), {}).get("state") == "active":
            await self.send(event)

    async def track_session(self, record: dict[str, str]) -> None:
        sid = record["id"]
        channel = keys.sync_channel(self.store, sid, self.side)
        if record["state"] in sessions.LIVE:
            self.sessions[sid] = record
            await self.subscribe(channel)
        else:
            self.sessions.pop(sid, None)
            await self.unsubscribe(channel)

    async def refresh_session(self, sid: str) -> None:
        """Re-read a session after a lifecycle event (the stored record is the truth)."""
        record = await sessions.get_record(self.store, sid)
        if record is None:
            self.sessions.pop(sid, None)
            await self.unsubscribe(keys.sync_channel(self.store, sid, self.side))
        else:
            await self.track_session(record)

    # -- per side
    async def setup(self) -> None:
        raise NotImplementedError

    async def teardown(self) -> None:
        return None

    async def background(self) -> None:
        await asyncio.Event().wait()

    async def handle(self, message: ClientMessage) -> None:
        raise NotImplementedError

    async def deliver(self, event: dict[str, Any]) -> None:
        raise NotImplementedError


class VisitorConnection(Connection):
    side = "visitor"

    def __init__(self, api: Api, websocket: WebSocket) -> None:
        super().__init__(api, websocket)
        self.conn_id = uuid.uuid4().hex
        self.visitor: visitors.Visitor | None = None
        self.account: Account | None = None
        self.hold_s = max(3.0, min(15.0, api.settings.visitor_grace_s))
        self.last_scroll_store = 0.0
        self.counted = ""  # the visitor id this socket counts for in api.visitor_sockets

    async def setup(self) -> None:
        assert self.principal is not None
        self.visitor = await visitors.find(self.store, self.principal.id)
        self.account = await accounts.find(self.store, self.principal.account_id or "")
        if self.visitor is None:
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "unknown visitor")
        open_now = self.api.visitor_sockets.get(self.visitor.id, 0)
        if open_now >= MAX_SOCKETS_PER_VISITOR:
            self.account = None  # nothing of the visitor's to undo at teardown: this socket never counted
            raise ProtocolViolation(CLOSE_RATE_LIMITED, "too many sockets open for this visitor")
        self.api.visitor_sockets[self.visitor.id] = open_now + 1
        self.counted = self.visitor.id
        # and on every API process together: behind a load balancer, N processes let 16 x N
        if not await visitors.claim_connection(
            self.store, self.visitor, self.conn_id, self.hold_s, MAX_SOCKETS_PER_VISITOR
        ):
            self.account = None  # (as above: its claim is undone, and the visitor's record untouched)
            raise ProtocolViolation(CLOSE_RATE_LIMITED, "too many sockets open for this visitor")
        if self.account is None:  # deleted: its site key too, so the banner must not register again
            raise ProtocolViolation(CLOSE_GONE, "account deleted")
        origin = self.ws.headers.get("origin")
        if origin is not None and origin not in self.account.allowed_origins:
            raise ProtocolViolation(CLOSE_FORBIDDEN, "origin not allowed for this account")
        await self.subscribe(keys.visitor_channel(self.store, self.visitor.id))
        sid = await sessions.live_of_visitor(self.store, self.visitor.id)
        record = await sessions.get_record(self.store, sid) if sid else None
        if record is not None:
            await self.track_session(record)
        await visitors.touch_connection(
            self.store, self.visitor, self.conn_id, self.hold_s, self.api.settings.visitor_grace_s
        )
        # An account deletion closes the sockets of the visitors it lists once the account is
        # gone: one that listed them before this socket subscribed and listed itself reached no
        # one, and the account read above may predate it.
        if await accounts.find(self.store, self.account.id) is None:
            raise ProtocolViolation(CLOSE_GONE, "account deleted")
        await presence.publish_visitor(self.store, self.account.id, self.visitor.id)
        await self.send(
            {
                "type": "hello",
                "visitor_id": self.visitor.id,
                "session": sessions.public(record) if record and record["state"] in sessions.LIVE else None,
                "policy": {
                    "seed_cookies": bool(self.account.policy["seed_cookies"]),
                    "masked_selectors": list(self.account.policy["masked_selectors"]),
                },
                "heartbeat_s": self.hold_s / 3,
                # the messages a second this socket may send (``RateLimiter``): the banner keeps
                # under it, whatever an operator set
                "rate_per_s": int(self.limiter.rate),
            }
        )

    async def background(self) -> None:
        assert self.visitor is not None
        while True:
            check_cancelled()
            await asyncio.sleep(self.hold_s / 3)
            await visitors.touch_connection(
                self.store, self.visitor, self.conn_id, self.hold_s, self.api.settings.visitor_grace_s
            )

    async def teardown(self) -> None:
        if self.counted:
            left = self.api.visitor_sockets.pop(self.counted, 1) - 1
            if left > 0:
                self.api.visitor_sockets[self.counted] = left
            self.counted = ""
        if self.visitor is not None and self.account is not None:
            await visitors.drop_connection(
                self.store, self.visitor, self.conn_id, self.api.settings.visitor_grace_s
            )
            await presence.publish_visitor(self.store, self.account.id, self.visitor.id)

    def active_session(self) -> str | None:
        for sid, record in self.sessions.items():
            if record.get("state") == "active":
                return sid
        return None

    async def newly_active_session(self) -> str | None:
        """Re-read pending sessions: the visitor may have accepted (over HTTP) before this socket
        got the lifecycle event, and its next messages belong to the live session already."""
        for sid in [s for s, r in self.sessions.items() if r.get("state") == "pending"]:
            await self.refresh_session(sid)
        return self.active_session()

    async def handle(self, message: ClientMessage) -> None:
        assert self.visitor is not None and self.account is not None
        data = message.data
        claimed = data.get("session_id")
        if claimed is not None and claimed not in self.sessions:
            raise ProtocolViolation(CLOSE_FORBIDDEN, "not your session")
        if message.type == "bandwidth":
            await visitors.update_state(self.store, self.visitor.id, {"bandwidth_kbps": data["kbps"]})
            await presence.publish_visitor(self.store, self.account.id, self.visitor.id)
            return
        if message.type in ("page", "viewport"):
            # stored first, so the agent gets the state's revision with it: a view of the visitor
            # read before this write (another socket's close as the visitor moves to a new page, or
            # another API process) is published with a lower one, and never takes the view back
            if message.type == "page":
                fields = {"url": data["url"], "title": data.get("title", "")}
            else:
                fields = {"viewport_w": data["width"], "viewport_h": data["height"]}
            rev = await visitors.update_state(self.store, self.visitor.id, fields)
            await self.relay_to_agent(message, {"rev": rev})
            if message.type == "page":
                await presence.publish_visitor(self.store, self.account.id, self.visitor.id)
            return
        # the agent first (latency: a scroll's store is once a second), then the stored state
        await self.relay_to_agent(message)
        if message.type == "scroll" and "target" not in data:  # the page's, not an element's
            now = time.time()
            if now - self.last_scroll_store >= SCROLL_STORE_EVERY_S:
                self.last_scroll_store = now
                await visitors.update_state(
                    self.store, self.visitor.id, {"scroll_x": data["x"], "scroll_y": data["y"]}
                )

    async def relay_to_agent(self, message: ClientMessage, extra: dict[str, Any] | None = None) -> None:
        sid = self.active_session() or await self.newly_active_session()
        if sid is None:
            return
        data = message.data
        if message.type == "field":
            record = self.sessions[sid]
            masked = json.loads(record.get("masked_selectors") or "[]")
            if masking.is_masked(
                data["selector"], data["input_type"], masked, data.get("tag", ""), data.get("attrs")
            ):
                self.api.metrics.fields_dropped += 1
                return
        await self.relay(sid, message, "agent", extra)

    async def deliver(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "session":
            await self.refresh_session(str(event.get("session_id", "")))
            await self.send(event)
        elif kind == "revoked":  # its account was deleted (``visitors.close_all_for``)
            raise ProtocolViolation(CLOSE_GONE, "account deleted")
        elif event.get("from") == "agent":
            await self.deliver_sync(event)


class AgentConnection(Connection):
    side = "agent"

    async def setup(self) -> None:
        assert self.principal is not None
        account = await accounts.find(self.store, self.principal.account_id or "")
        if account is None:
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "unknown account")
        await self.subscribe(keys.agent_channel(self.store, self.principal.id))
        # A revocation published before that subscription reached no one: read the agent again
        # now that any later one will reach this socket (revoke marks it in the same MULTI).
        agent = await agents.find(self.store, self.principal.id)
        if agent is None or agent.revoked:
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "token revoked")
        await self.subscribe(keys.account_channel(self.store, account.id))
        live = []
        for sid in await sessions.live_of_agent(self.store, self.principal.id):
            record = await sessions.get_record(self.store, sid)
            if record is not None and record["state"] in sessions.LIVE:
                await self.track_session(record)
                live.append(sessions.public(record))
        present = await visitors.present(self.store, account.id)
        # the account again, after the visitors (as ``agent_api.list_visitors``)
        account = await accounts.find(self.store, account.id) or account
        await self.send(
            {
                "type": "hello",
                "agent_id": self.principal.id,
                "account": {"id": account.id, "cobrowse_enabled": account.cobrowse_enabled},
                "visitors": [visitors.view(account, v) for v in present],
                "sessions": live,
                "rate_per_s": int(self.limiter.rate),  # (the view keeps its pointer under it)
            }
        )

    async def background(self) -> None:
        assert self.principal is not None
        while True:
            check_cancelled()
            await asyncio.sleep(AGENT_RECHECK_S)
            await self.recheck()

    async def recheck(self) -> None:
        """Close with 4401 when the token no longer names this agent, or the agent is revoked."""
        assert self.principal is not None
        with translate_errors():
            record = await self.store.redis.hgetall(keys.token(self.store, self.token_digest))
        agent = await agents.find(self.store, self.principal.id)
        named = record.get("kind") == "agent" and record.get("id") == self.principal.id
        if not named or agent is None or agent.revoked:
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "token no longer valid")

    async def handle(self, message: ClientMessage) -> None:
        sid = str(message.data["session_id"])
        record = self.sessions.get(sid)
        if record is None:
            raise ProtocolViolation(CLOSE_FORBIDDEN, "not your session")
        if message.type == "active":
            # the agent using the view with Follow off while the visitor reads is not idle: only
            # relayed messages counted, and the session ended under an agent at work (one sent
            # as the session ends is no error to show)
            if record.get("state") == "active":
                await self.touch(sid)
            return
        if record.get("state") != "active":
            await self.error("session_not_active", f"session {sid} is {record.get('state')}")
            return
        if message.type == "navigate":
            if record.get("agent_can_navigate") != "1":
                await self.error("navigate_forbidden", "the policy does not let agents navigate the visitor")
                return
            from control_api.policy import normalize_origin

            allowed = json.loads(record.get("allowed_origins") or "[]")
            try:
                origin = normalize_origin("/".join(str(message.data["url"]).split("/")[:3]))
            except ValueError:
                origin = ""
            if origin not in allowed:
                await self.error("navigate_forbidden", "the URL is outside the account's allowed origins")
                return
        await self.relay(sid, message, "visitor")

    async def deliver(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        assert self.principal is not None
        if kind == "session":
            await self.refresh_session(str(event.get("session_id", "")))
            await self.send(event)
        elif kind == "revoked":
            raise ProtocolViolation(CLOSE_UNAUTHORIZED, "token revoked")
        elif kind in ("visitor", "visitor_left", "policy"):
            await self.send(event)
        elif event.get("from") == "visitor":
            await self.deliver_sync(event)


async def visitor_ws(websocket: WebSocket) -> None:
    await VisitorConnection(websocket.app.state.api, websocket).run()


async def agent_ws(websocket: WebSocket) -> None:
    await AgentConnection(websocket.app.state.api, websocket).run()
