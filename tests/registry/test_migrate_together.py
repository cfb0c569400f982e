"""Several registry nodes migrating one fresh database at the same moment: one migrates, the
others wait and find the schema at head (without the lock, PostgreSQL answered one of them with
a UniqueViolation on alembic_version or a table's type)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect

from plugport.registry.db import make_engine
from plugport.registry.migrate import current_revision, head_revision, upgrade
from tests.registry.conftest import engine_for

NODES = 4


def _engines_like(engine: Engine) -> list[Engine]:
    """One engine per node on the same database, as separate processes would have."""
    if engine.dialect.name == "sqlite":
        return [make_engine(str(engine.url)) for _ in range(NODES)]
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    options = {"options": f"-csearch_path={schema}"}
    url = engine.url.render_as_string(hide_password=False)
    return [make_engine(url, connect_args=options) for _ in range(NODES)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_nodes_starting_together_migrate_once(backend: str, tmp_path: Path) -> None:
    with engine_for(backend, tmp_path) as engine:
        engines = _engines_like(engine)
        start = threading.Barrier(NODES)
        failures: list[BaseException] = []

        def node(mine: Engine) -> None:
            start.wait()
            try:
                upgrade(mine)
            except BaseException as exc:  # collected: every node must succeed
                failures.append(exc)

        threads = [threading.Thread(target=node, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        for mine in engines:
            mine.dispose()
        assert failures == []
        assert current_revision(engine) == head_revision()
        assert "plugins" in inspect(engine).get_table_names()
