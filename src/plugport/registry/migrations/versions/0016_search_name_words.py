"""Search at 100,000 plugins on PostgreSQL: a GIN index on the words of a plugin's name alone.

A word set matching more than a few thousand plugins is ranked in two tiers, the plugins it
names first (``SqlSearchBackend._top``), and only the first tier is scored to find the best.
``search_vector``'s index cannot tell which matches are in the name (GIN keeps no weights):
testing weight A on every match read them all (39,000 rows for ``da``, 25-30 ms). This index
finds the name's matches alone. The expression is the name's part of 0002's ``search_vector``,
written out (a migration must not change when the code does); it must stay the very expression
the search sends, or the planner will not match it. SQLite's FTS5 index has columns already.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

NAME_WORDS = "to_tsvector('simple'::regconfig, translate(name, './@:', '    '))"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE INDEX ix_plugins_name_words ON plugins USING gin (({NAME_WORDS}))")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_plugins_name_words")
