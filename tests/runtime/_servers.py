"""Shared by the tests that run a ``PluginServer`` in the test process."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def plugin_logger() -> Iterator[None]:
    """A worker serves once per process, adding its log handler to ``plugport.plugin``; here
    each test's server leaves its handler behind, so the handlers are put back after it."""
    logger = logging.getLogger("plugport.plugin")
    before = list(logger.handlers)
    yield
    logger.handlers[:] = before
