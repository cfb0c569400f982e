"""The migrations and the models describe the same schema, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from plugport.registry.migrate import current_revision, head_revision, upgrade
from plugport.registry.models import Base


def test_migrations_build_what_the_models_describe(engine: Engine) -> None:
    upgrade(engine)
    upgrade(engine)  # a second start changes nothing
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []
