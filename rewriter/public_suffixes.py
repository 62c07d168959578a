"""The Public Suffix List (the maintained ``publicsuffixlist`` package, which bundles it), as
browsers use it: a cookie's ``Domain`` may not be a public suffix (``github.io``), and a site is
a public suffix and one label (``alice.github.io``)."""

from __future__ import annotations

from publicsuffixlist import PublicSuffixList

PUBLIC_SUFFIXES = PublicSuffixList()
