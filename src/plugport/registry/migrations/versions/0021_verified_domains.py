"""Verified publishers: the domains a namespace's owners claim (``domain_verifications``), the
domain its badge shows (``namespaces.verified_domain``), and whether its name is held for
review because it resembles a verified namespace or a popular plugin
(``namespaces.name_review``, ``name_review_reason``).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable columns: a plain ALTER TABLE on SQLite too. Copying the table (batch mode)
    # would fail, as every table referring to namespaces holds a foreign key to it.
    op.add_column("namespaces", sa.Column("verified_domain", sa.String(length=253), nullable=True))
    op.add_column("namespaces", sa.Column("name_review", sa.String(length=16), nullable=True))
    op.add_column("namespaces", sa.Column("name_review_reason", sa.Text(), nullable=True))
    op.create_table(
        "domain_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("namespace_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["namespace_id"], ["namespaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("namespace_id", "domain"),
    )


def downgrade() -> None:
    op.drop_table("domain_verifications")
    for column in ("name_review_reason", "name_review", "verified_domain"):
        # A plain ALTER TABLE on both (SQLite >= 3.35), for the same reason.
        op.execute(f"ALTER TABLE namespaces DROP COLUMN {column}")
