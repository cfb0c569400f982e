"""The host's tests run against a real registry, as the registry's own tests do, but on SQLite
only: what the host sees is the registry's HTTP API, whose behaviour on PostgreSQL the
registry's tests already cover, and every host test starts real sandboxed workers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from plugport.registry.db import make_engine
from tests.registry.conftest import registry

__all__ = ["engine", "registry"]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.sqlite'}")
    yield engine
    engine.dispose()
