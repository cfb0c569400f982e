"""Keep each version's publisher signature, so hosts can verify it end to end.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column is a plain ALTER TABLE on SQLite too. Versions uploaded before this
    # have no signature to serve: hosts refuse to install those (fail closed).
    op.add_column("plugin_versions", sa.Column("signature", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("plugin_versions", schema=None) as batch_op:
        batch_op.drop_column("signature")
