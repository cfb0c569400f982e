"""Search generation: ``search_state`` holds one counter that triggers raise in the same
transaction as any change search results depend on (a plugin row but its download counter,
any version row), so a node can tell in one indexed read whether a result page it keeps is
still exact, whichever node or process made the change.

SQLite runs one writer at a time: plain row triggers. On PostgreSQL the counter row would be
a lock that every writer takes in the middle of its transaction (a deadlock waiting to happen
between two transactions that already hold plugin rows), so there the triggers are deferred
constraint triggers: the counter is raised at commit, after every other lock, once per
transaction (a transaction-local setting remembers it was done).

Download counting (``UPDATE plugins SET downloads = ...`` alone) does not raise it: kept
pages may show counts a little behind (``search.pages.PAGE_CACHE_S``).

Later migrations, beware (as for 0002): a SQLite batch operation that recreates ``plugins``
or ``plugin_versions`` drops these triggers with the old table; recreate them afterwards. A
new column of ``plugins`` that search shows or filters by belongs in ``PLUGIN_COLUMNS``.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PLUGIN_COLUMNS = (
    "name",
    "namespace_id",
    "display_name",
    "description",
    "categories",
    "tags",
    "latest_version",
    "listed",
    "suspended",
    "deprecated_reason",
    "replaced_by",
    "rating_count",
    "rating_sum",
    "created_at",
    "updated_at",
)
"""Every column of ``plugins`` but ``id`` and ``downloads``."""

_BUMP = "UPDATE search_state SET generation = generation + 1 WHERE id = 1"
_EVENTS = {  # trigger suffix: the event, as both dialects spell it
    "insert": "INSERT",
    "update": f"UPDATE OF {', '.join(PLUGIN_COLUMNS)}",
    "delete": "DELETE",
}
_TABLES = ("plugins", "plugin_versions")

POSTGRES_FUNCTION = f"""
CREATE FUNCTION search_state_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF coalesce(current_setting('plugport.search_bumped', true), '') <> 'yes' THEN
        {_BUMP};
        PERFORM set_config('plugport.search_bumped', 'yes', true);
    END IF;
    RETURN NULL;
END
$$"""


def _event(table: str, suffix: str) -> str:
    # plugin_versions: any change (status, yanked, manifest) may matter to a filter
    return "UPDATE" if table == "plugin_versions" and suffix == "update" else _EVENTS[suffix]


def upgrade() -> None:
    op.create_table(
        "search_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO search_state (id, generation) VALUES (1, 0)")
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(POSTGRES_FUNCTION)
    for table in _TABLES:
        for suffix in _EVENTS:
            name = f"{table}_search_{suffix}"
            event = _event(table, suffix)
            if dialect == "sqlite":
                op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} BEGIN {_BUMP}; END")
            elif dialect == "postgresql":
                op.execute(
                    f"CREATE CONSTRAINT TRIGGER {name} AFTER {event} ON {table} "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                    "EXECUTE FUNCTION search_state_bump()"
                )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in reversed(_TABLES):
        for suffix in reversed(_EVENTS):
            name = f"{table}_search_{suffix}"
            if dialect == "sqlite":
                op.execute(f"DROP TRIGGER {name}")
            elif dialect == "postgresql":
                op.execute(f"DROP TRIGGER {name} ON {table}")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION search_state_bump()")
    op.drop_table("search_state")
