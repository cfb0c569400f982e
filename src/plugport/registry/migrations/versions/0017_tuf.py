"""TUF metadata: every signed file by role and version, the row nodes compare-and-set to
publish a timestamp, and each namespace's key generation.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tuf_metadata",
        sa.Column("role", sa.String(length=80), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("role", "version"),
    )
    op.create_table(
        "tuf_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("timestamp_version", sa.BigInteger(), nullable=False),
        sa.Column("entries_digest", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO tuf_state (id, timestamp_version) VALUES (1, 0)")
    op.create_table(
        "tuf_namespace_keys",
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("namespace"),
    )


def downgrade() -> None:
    op.drop_table("tuf_namespace_keys")
    op.drop_table("tuf_state")
    op.drop_table("tuf_metadata")
