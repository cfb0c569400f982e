"""Namespace members as a managed table: owners add and remove members (and other owners)
through the API, so each row now says when it was added and by whom, and the role is one of
``owner`` or ``member`` in the database too (0001 created the table with owners only).

Rows from before keep NULL for both: nobody recorded them.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch: SQLite adds a CHECK constraint only by copying the table (render_as_batch).
    with op.batch_alter_table("namespace_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("added_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("added_by", sa.String(length=200), nullable=True))
        batch_op.create_check_constraint("ck_member_role", "role IN ('owner', 'member')")


def downgrade() -> None:
    with op.batch_alter_table("namespace_members", schema=None) as batch_op:
        batch_op.drop_constraint("ck_member_role", type_="check")
        batch_op.drop_column("added_by")
        batch_op.drop_column("added_at")
