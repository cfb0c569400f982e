"""The counts of ``name_words`` (0029) carried by its primary key, so that reading the words a
term starts reads the key alone.

A short prefix starts thousands of words ('da': 1,560, 'f': 3,943 at 100,000 plugins), whose
rows lie all over the table: reading their counts fetched that many table pages (6-24 ms,
more than the count of names it replaces). With the count in the key's leaf entries, the
range is read off the index (0.25-0.6 ms) once vacuum has marked the table's pages
all-visible, as autovacuum does for a table that changes only when plugins come and go.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE name_words DROP CONSTRAINT name_words_pkey,"
        " ADD CONSTRAINT name_words_pkey PRIMARY KEY (word) INCLUDE (plugins)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "ALTER TABLE name_words DROP CONSTRAINT name_words_pkey,"
        " ADD CONSTRAINT name_words_pkey PRIMARY KEY (word)"
    )
