"""Filtering by a tag or a category at 100,000 plugins on PostgreSQL: GIN indexes on the
values of both lists.

The filter tested every plugin's stored list text for the value (``ix_plugins_visible_lists``
serves the grouping of lists, not a lookup of one value in them): counting the first thousand
plugins with a common tag read some 30,000 rows (13-21 ms). With the lists as ``jsonb``
indexed by ``jsonb_path_ops``, ``@>`` reads the value's own posting list. The expressions must
stay the very ones the search sends (``PostgresSearchBackend._contains``), or the planner will
not match them. SQLite keeps its substring test: it has no such index, and needs none at this
size (its text index carries the categories and tags).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

LISTS = ("tags", "categories")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in LISTS:
        op.execute(
            f"CREATE INDEX ix_plugins_{column}_values ON plugins"
            f" USING gin ((CAST({column} AS jsonb)) jsonb_path_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in LISTS:
        op.execute(f"DROP INDEX ix_plugins_{column}_values")
