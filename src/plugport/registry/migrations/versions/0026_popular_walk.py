"""Word sets in many names on PostgreSQL: the plugins they name, most downloaded first, read
off one index without visiting the table.

Such a word set ranks the plugins it names by downloads (``RelevanceSearch._popular_first``):
the search walks the visible plugins by downloads and keeps the named ones until the page is
full. Each step fetched the plugin's row to test the name (weight A of ``search_vector``): a
word in 1% of the names, page 5, walked some 9,000 rows (14-20 ms at 100,000 plugins). Here
the name's words are a stored column, and a covering index over the walk's order carries it
with the id, restricted to the plugins the walk may show: the walk reads index pages alone
(1.8 ms). The expression is the name's part of 0002's ``search_vector``, as 0016 indexes it.
SQLite needs none of it: its walk tests each plugin against the name's matches, read once.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

NAME_WORDS = "to_tsvector('simple'::regconfig, translate(name, './@:', '    '))"
SHOWN = "listed AND NOT suspended AND latest_version IS NOT NULL AND deprecated_reason IS NULL"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        f"ALTER TABLE plugins ADD COLUMN name_vector tsvector GENERATED ALWAYS AS ({NAME_WORDS})"
        " STORED"
    )
    op.execute(
        "CREATE INDEX ix_plugins_popular_walk ON plugins (downloads DESC, name)"
        f" INCLUDE (id, name_vector) WHERE {SHOWN}"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_plugins_popular_walk")
    op.execute("ALTER TABLE plugins DROP COLUMN name_vector")
