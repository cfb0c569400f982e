"""The host's tests run against a real registry, as the registry's own tests do, but on SQLite
only: what the host sees is the registry's HTTP API, whose behaviour on PostgreSQL the
registry's tests already cover, and every host test starts real sandboxed workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from plugport.registry.db import make_engine
from tests.host._service import Market, Service, market_at, serving, settings_for
from tests.registry.conftest import registry

__all__ = ["chromium", "engine", "registry"]


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """The machine's Chromium, headless and kept off the network, for the host's browser tests
    (one per module); skips, saying why, where Playwright or Chromium is missing."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    suite = pytest.importorskip("tests.browser.conftest", reason="no browser suite (its flags)")
    executable = suite.chromium_path()
    if executable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=suite.CHROMIUM_FLAGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield engine
    engine.dispose()


# The host service's test modules share one registry and one service per module (sandboxed
# workers are expensive); a module may define its own instead.
@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    with market_at(tmp_path_factory.mktemp("market")) as market:
        yield market


@pytest.fixture(scope="module")
def service(market: Market, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serving(settings_for(tmp_path_factory.mktemp("service"), market)) as service:
        yield service
