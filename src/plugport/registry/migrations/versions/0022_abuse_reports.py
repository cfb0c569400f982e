"""Abuse reports and version quarantine: users report a plugin, a version or a review; admins
resolve reports and may quarantine a version (refused to every host, even pinned), then
release it.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE on both engines: a batch (copy-and-rename) on SQLite would drop the
    # triggers 0006 and later put on plugin_versions.
    op.add_column("plugin_versions", sa.Column("quarantined_reason", sa.Text(), nullable=True))
    op.add_column(
        "plugin_versions", sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_table(
        "abuse_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reporter", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("plugin_name", sa.String(length=130), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.Column("review_identity", sa.String(length=200), nullable=True),
        sa.Column("target_key", sa.String(length=500), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decision", sa.String(length=32), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(length=200), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("kind IN ('plugin', 'version', 'review')", name="ck_report_kind"),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_report_status"),
    )
    op.create_index("ix_abuse_reports_plugin_name", "abuse_reports", ["plugin_name"])
    op.create_index("ix_abuse_reports_status", "abuse_reports", ["status"])
    op.create_index(
        "ix_abuse_reports_reporter_created", "abuse_reports", ["reporter", "created_at"]
    )
    op.create_index(
        "uq_abuse_reports_open",
        "abuse_reports",
        ["reporter", "target_key"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("uq_abuse_reports_open", table_name="abuse_reports")
    op.drop_index("ix_abuse_reports_reporter_created", table_name="abuse_reports")
    op.drop_index("ix_abuse_reports_status", table_name="abuse_reports")
    op.drop_index("ix_abuse_reports_plugin_name", table_name="abuse_reports")
    op.drop_table("abuse_reports")
    for column in ("quarantined_at", "quarantined_reason"):  # SQLite >= 3.35 drops in place
        op.execute(f"ALTER TABLE plugin_versions DROP COLUMN {column}")
