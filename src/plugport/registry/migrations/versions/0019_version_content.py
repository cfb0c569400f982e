"""Content from the archive: the icon, screenshots, README and changelog of each version,
stored as blobs and listed here so that pages link them and the orphan collector keeps them.

Versions uploaded before this migration have no rows: they show a placeholder icon and no
README until a new version is published.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_content",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["version_id"], ["plugin_versions.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("version_id", "kind", "position"),
    )
    op.create_index("ix_version_content_version_id", "version_content", ["version_id"])
    op.create_index("ix_version_content_sha256", "version_content", ["sha256"])


def downgrade() -> None:
    op.drop_index("ix_version_content_sha256", table_name="version_content")
    op.drop_index("ix_version_content_version_id", table_name="version_content")
    op.drop_table("version_content")
