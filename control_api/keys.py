"""Where everything lives in the store: one function per key or channel, so the layout is in one place.

Sessions:  session:{sid} (hash)  session:{sid}:live-of-visitor via visitor:{vid}:live (string)
           agent:{aid}:request:{request_id} (string sid, TTL: the session an agent's request made)
           session:{sid}:cred (set of credential SHA-256)  session:{sid}:jar (hash)
           session:{sid}:agent-addr (set of the addresses the agent's credential came from)
           session:{sid}:activity (string, last activity time)  session:{sid}:audit (stream)
Deadlines: deadlines:sessions (zset sid -> unix time)  deadlines:visitors (zset vid -> unix time)
Tokens:    token:{sha256} (hash kind/id/account_id)   ticket:{sha256} (string JSON, TTL)
Visitors:  registration:{sha256} (string "account_id origin vid", TTL: the visitor a tab's
           registration key made)
"""

from __future__ import annotations

from control_api.store import Store


def session(store: Store, sid: str) -> str:
    return store.key("session", sid)


def session_cred(store: Store, sid: str) -> str:
    return store.key("session", sid, "cred")


def session_agent_addresses(store: Store, sid: str) -> str:
    return store.key("session", sid, "agent-addr")


def session_jar(store: Store, sid: str) -> str:
    return store.key("session", sid, "jar")


def session_activity(store: Store, sid: str) -> str:
    return store.key("session", sid, "activity")


def session_audit(store: Store, sid: str) -> str:
    return store.key("session", sid, "audit")


def session_deadlines(store: Store) -> str:
    return store.key("deadlines", "sessions")


def visitor_deadlines(store: Store) -> str:
    return store.key("deadlines", "visitors")


def ticket(store: Store, ticket_hash: str) -> str:
    return store.key("ticket", ticket_hash)


def token(store: Store, token_hash: str) -> str:
    return store.key("token", token_hash)


def registration(store: Store, key_hash: str) -> str:
    """The visitor a banner's registration key made (``visitors.register``); the key only hashed."""
    return store.key("registration", key_hash)


def account(store: Store, aid: str) -> str:
    return store.key("account", aid)


def accounts_index(store: Store) -> str:
    return store.key("accounts")


def account_agents(store: Store, aid: str) -> str:
    return store.key("account", aid, "agents")


def account_visitors(store: Store, aid: str) -> str:
    return store.key("account", aid, "visitors")


def account_live(store: Store, aid: str) -> str:
    return store.key("account", aid, "live")


def account_audit(store: Store, aid: str) -> str:
    return store.key("account", aid, "audit")


def site_key(store: Store, key: str) -> str:
    return store.key("site-key", key)


def origin_accounts(store: Store, origin: str) -> str:
    return store.key("origin", origin)


def agent(store: Store, agent_id: str) -> str:
    return store.key("agent", agent_id)


def agent_live(store: Store, agent_id: str) -> str:
    return store.key("agent", agent_id, "live")


def agent_request(store: Store, agent_id: str, request_id: str) -> str:
    """The session that the agent's request ``request_id`` made (``POST /sessions`` is idempotent)."""
    return store.key("agent", agent_id, "request", request_id)


def visitor(store: Store, vid: str) -> str:
    return store.key("visitor", vid)


def visitor_live(store: Store, vid: str) -> str:
    return store.key("visitor", vid, "live")


def visitor_conns(store: Store, vid: str) -> str:
    return store.key("visitor", vid, "conns")


def stats(store: Store, name: str) -> str:
    return store.key("stats", name)


# Channels
def session_ended_channel(store: Store) -> str:
    return store.channel("session-ended")


def agent_channel(store: Store, agent_id: str) -> str:
    return store.channel("events", "agent", agent_id)


def visitor_channel(store: Store, vid: str) -> str:
    return store.channel("events", "visitor", vid)


def account_channel(store: Store, aid: str) -> str:
    return store.channel("events", "account", aid)


def sync_channel(store: Store, sid: str, to_side: str) -> str:
    return store.channel("sync", sid, to_side)


def rate_window(store: Store, name: str, subject: str, window: int) -> str:
    """A fixed-window counter of ``name`` events by ``subject`` (``control_api.rate_limits``)."""
    return store.key("rate", name, subject, str(window))
