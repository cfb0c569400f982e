"""Suggestions for a misspelt word on PostgreSQL: the trigram index of ``search_words`` takes
new words at once rather than into a pending list.

A GIN index gathers inserted entries in a pending list until a vacuum merges them, and the
planner costs a search of that list as a scan of all of it: with a few thousand words just
added (a new database, or a burst of publishing before autovacuum came by), it tested every
word's trigrams instead (4.5 ms of 6,000 words against 0.15 ms off the index, and growing with
the vocabulary). Words are added a few at a time as plugins are published, so there is nothing
for the list to batch. The list already there is merged now.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

INDEX = "ix_search_words_trigrams"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER INDEX {INDEX} SET (fastupdate = off)")
    op.execute(f"SELECT gin_clean_pending_list('{INDEX}'::regclass)")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"ALTER INDEX {INDEX} RESET (fastupdate)")
