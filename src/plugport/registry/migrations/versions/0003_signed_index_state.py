"""The signed index's state: the document last issued, what it lists and when it expires, in
the one row every node shares (so nodes agree on the version number).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("index_state", schema=None) as batch_op:
        batch_op.add_column(sa.Column("entries_digest", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("document", sa.LargeBinary(), nullable=True))
    # The row every node updates with a compare-and-set on the version; never absent.
    op.execute(
        "INSERT INTO index_state (id, version) SELECT 1, 0 WHERE NOT EXISTS "
        "(SELECT 1 FROM index_state WHERE id = 1)"
    )


def downgrade() -> None:
    with op.batch_alter_table("index_state", schema=None) as batch_op:
        batch_op.drop_column("document")
        batch_op.drop_column("expires_at")
        batch_op.drop_column("entries_digest")
