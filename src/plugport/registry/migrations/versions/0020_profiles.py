"""Profiles: the display name the public sees for an identity (a rating's author), so the
identity, often an e-mail address, is never shown. ``display_key`` is the name with case,
spaces and punctuation removed, unique: no two identities share a name.

An identity without a row is shown by a pseudonym derived from it (not stored).

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("identity", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=40), nullable=False),
        sa.Column("display_key", sa.String(length=160), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("identity"),
        sa.UniqueConstraint("display_key"),
    )


def downgrade() -> None:
    op.drop_table("profiles")
