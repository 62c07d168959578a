"""The control API: accounts, policies, agents, visitors, sessions, consent, events and audit."""

from control_api.app import create_app
from control_api.store import Store

__all__ = ["Store", "create_app"]
