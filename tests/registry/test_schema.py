"""The migrations and the models describe the same schema, on every backend."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from plugport.registry.migrate import alembic_config, current_revision, head_revision, upgrade
from plugport.registry.models import Base, utcnow
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


def test_migration_0008_keeps_owners_and_checks_roles(engine: Engine) -> None:
    """Owners from before 0008 stay owners (nobody recorded when or by whom); afterwards the
    database itself refuses a role that is neither owner nor member; 0008 downgrades."""
    upgrade(engine, "0007")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO namespaces (name, trusted, created_at) VALUES ('old', :f, :t)"),
            {"f": False, "t": utcnow()},
        )
        connection.execute(
            text(
                "INSERT INTO namespace_members (namespace_id, identity, role) "
                "SELECT id, 'ada', 'owner' FROM namespaces"
            )
        )
    upgrade(engine)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT identity, role, added_at, added_by FROM namespace_members")
        ).all()
    assert [tuple(r) for r in rows] == [("ada", "owner", None, None)]
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO namespace_members (namespace_id, identity, role) "
                "SELECT id, 'eve', 'boss' FROM namespaces"
            )
        )
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    assert "added_by" not in {c["name"] for c in inspect(engine).get_columns("namespace_members")}
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_migration_0010_leaves_older_versions_unrecorded_and_downgrades(engine: Engine) -> None:
    """Versions from before 0010 keep NULL libraries (nothing was recorded for them, and the
    migration reads no blobs); 0010 downgrades without touching the search triggers."""
    upgrade(engine, "0009")
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO namespaces (name, trusted, created_at) VALUES ('acme', :f, :t)"),
            {"f": False, "t": utcnow()},
        )
        connection.execute(
            text(
                "INSERT INTO plugins (name, namespace_id, display_name, description, categories,"
                " tags, listed, suspended, downloads, rating_count, rating_sum, created_at,"
                " updated_at) SELECT 'acme.old', id, '', '', '[]', '[]', :t, :f, 0, 0, 0, :at,"
                " :at FROM namespaces"
            ),
            {"t": True, "f": False, "at": utcnow()},
        )
        connection.execute(
            text(
                "INSERT INTO plugin_versions (plugin_id, version, canonical_version, status,"
                " sha256, length, key_id, manifest, scan, created_at) SELECT id, '1.0', '1',"
                " 'published', :s, 1, 'k', '{}', '{}', :at FROM plugins"
            ),
            {"s": "0" * 64, "at": utcnow()},
        )
    upgrade(engine)
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT libraries FROM plugin_versions")).all()
    assert [tuple(r) for r in stored] == [(None,)]
    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")
    assert "libraries" not in {c["name"] for c in inspect(engine).get_columns("plugin_versions")}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
