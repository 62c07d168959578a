"""The control API: accounts, policies, agents, visitors, sessions, consent, events and audit."""
