"""The host's tests run against a real registry, as the registry's own tests do, but on SQLite
only: what the host sees is the registry's HTTP API, whose behaviour on PostgreSQL the
registry's tests already cover, and every host test starts real sandboxed workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from plugport.registry.db import make_engine
from tests.host._service import Market, Service, market_at, serving, settings_for
from tests.registry.conftest import registry

__all__ = ["engine", "registry"]


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
