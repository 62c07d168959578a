"""Fixtures of the rewriter tests."""

from __future__ import annotations

import pytest
from rewrite_helpers import make_mapper

from rewriter.urls import UrlMapper


@pytest.fixture
def mapper() -> UrlMapper:
    return make_mapper()
