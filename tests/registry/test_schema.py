"""The migrations and the models describe the same schema, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from plugport.registry.migrate import current_revision, head_revision, upgrade
from plugport.registry.models import Base
from plugport.registry.search import include_schema_name


def test_migrations_build_what_the_models_describe(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)  # a second start changes nothing
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        # The search index is dialect-specific (FTS5 tables, a tsvector column): not modelled.
        opts = {"compare_type": False, "include_name": include_schema_name}
        context = MigrationContext.configure(connection, opts=opts)
        assert compare_metadata(context, Base.metadata) == []
