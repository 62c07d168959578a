"""The Public Suffix List (the maintained ``publicsuffixlist`` package, which bundles it), as
browsers use it: a cookie's ``Domain`` may not be a public suffix (``github.io``), and a site is
a public suffix and one label (``alice.github.io``)."""

from __future__ import annotations

from publicsuffixlist import PublicSuffixList

PUBLIC_SUFFIXES = PublicSuffixList()


def public_ancestors(host: str) -> list[str]:
    """The domains above ``host`` that are public suffixes (``alice.github.io``: ``github.io``,
    ``io``), which no cookie ``Domain`` set from ``host`` may name; none for an address."""
    host = host.lower().rstrip(".")
    if not host or ":" in host or host.replace(".", "").isdigit():
        return []
    labels = host.split(".")
    return [d for d in (".".join(labels[i:]) for i in range(1, len(labels))) if PUBLIC_SUFFIXES.is_public(d)]
