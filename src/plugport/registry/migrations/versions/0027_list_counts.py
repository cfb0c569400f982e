"""Counting the plugins with a tag or in a category on SQLite, kept on write.

Browsing a tag or a category shows how many visible plugins have it, up to a thousand. SQLite
counted them by walking the text index's plugins with the value's words and testing each
one's list until a thousand passed: 3-5 ms for a common tag at 100,000 plugins, on every first
look at it. ``plugin_list_counts`` holds that number for every value of every visible plugin's
``tags`` and ``categories``, and triggers on ``plugins`` keep it exact on every insert, delete
and change of a list or of what makes a plugin visible (listed, not suspended, with a latest
version): the count is one row. PostgreSQL needs none of it: its GIN indexes on the lists (0024)
read a value's own plugins.

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

LISTS = ("tags", "categories")
VISIBLE = "{row}.listed AND NOT {row}.suspended AND {row}.latest_version IS NOT NULL"

# A list's distinct values (a list may repeat one), counted once each; an INSERT ... SELECT
# needs a WHERE before its ON CONFLICT.
_ADD = (
    "INSERT INTO plugin_list_counts (list, value, plugins)"
    " SELECT '{list}', value, 1 FROM json_each({row}.{list}) WHERE true GROUP BY value"
    " ON CONFLICT (list, value) DO UPDATE SET plugins = plugins + 1;"
)
_TAKE = (
    "UPDATE plugin_list_counts SET plugins = plugins - 1"
    " WHERE list = '{list}' AND value IN (SELECT value FROM json_each({row}.{list}));"
)
_BACKFILL = (
    "INSERT INTO plugin_list_counts (list, value, plugins)"
    " SELECT '{list}', item.value, count(DISTINCT plugins.id)"
    " FROM plugins, json_each(plugins.{list}) AS item WHERE {visible} GROUP BY item.value"
)
_WATCHED = "listed, suspended, latest_version, tags, categories"


def _trigger(name: str, event: str, row: str, step: str) -> str:
    body = " ".join(step.format(list=column, row=row) for column in LISTS)
    return (
        f"CREATE TRIGGER plugin_list_counts_{name} AFTER {event} ON plugins"
        f" WHEN {VISIBLE.format(row=row)} BEGIN {body} END"
    )


TRIGGERS = {
    "insert": ("INSERT", "new", _ADD),
    "delete": ("DELETE", "old", _TAKE),
    # An update takes the old row's values away and adds the new row's: two triggers.
    "update_old": (f"UPDATE OF {_WATCHED}", "old", _TAKE),
    "update_new": (f"UPDATE OF {_WATCHED}", "new", _ADD),
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(
        "CREATE TABLE plugin_list_counts (list TEXT NOT NULL, value TEXT NOT NULL,"
        " plugins INTEGER NOT NULL, PRIMARY KEY (list, value)) WITHOUT ROWID"
    )
    for column in LISTS:
        op.execute(_BACKFILL.format(list=column, visible=VISIBLE.format(row="plugins")))
    for name, (event, row, step) in TRIGGERS.items():
        op.execute(_trigger(name, event, row, step))


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER plugin_list_counts_{name}")
    op.execute("DROP TABLE plugin_list_counts")
