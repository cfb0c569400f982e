"""Bring a registry database to the newest schema with Alembic (at every start, and from
``plugport registry migrate``).

Several nodes may start on one fresh PostgreSQL database at the same moment: each takes a
transaction-scoped advisory lock before it looks at the schema, so one migrates while the others
wait, then find the schema at head and change nothing. SQLite has one writer at a time
already; its migration starts with a write (``BEGIN IMMEDIATE``) so a second process waits
for the first's whole migration rather than failing half-way through its own."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

MIGRATIONS = Path(__file__).parent / "migrations"
MIGRATION_LOCK = 0x706C7567706F7274  # "plugport": the advisory lock every node's migration takes


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config(engine)
    with engine.begin() as connection:
        _one_at_a_time(connection)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _one_at_a_time(connection: Connection) -> None:
    """Hold the database's migration lock until this transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    elif connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory(str(MIGRATIONS)).get_current_head()
