"""Alembic's entry point: always run with a connection the registry hands over (never a URL
from an ini file), so the server and ``plugport registry migrate`` migrate the same way."""

from __future__ import annotations

from alembic import context

from plugport.registry.models import Base
from plugport.registry.search import include_schema_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying
    compare_type=True,
    include_name=include_schema_name,  # the dialect-specific search index is not modelled
)
with context.begin_transaction():
    context.run_migrations()
