"""The permission filter (0005's indexes) for tasks: the published versions whose manifest
lets them submit tasks (``permissions.tasks.submit``). Manifests stored before have no such
key: the predicate is NULL there, so those versions submit none, as they did.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

GRANTS = {
    "tasks": (
        "json_array_length(manifest, '$.permissions.tasks.submit') > 0",
        "json_array_length(manifest #> '{permissions,tasks,submit}') > 0",
    ),
}


def upgrade() -> None:
    for permission, (sqlite, postgresql) in GRANTS.items():
        op.create_index(
            f"ix_plugin_versions_grants_{permission}",
            "plugin_versions",
            ["plugin_id", "version"],
            sqlite_where=sa.text(f"status = 'published' AND {sqlite}"),
            postgresql_where=sa.text(f"status = 'published' AND {postgresql}"),
        )


def downgrade() -> None:
    for permission in reversed(GRANTS):
        op.drop_index(f"ix_plugin_versions_grants_{permission}", table_name="plugin_versions")
