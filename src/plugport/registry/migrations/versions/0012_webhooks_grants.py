"""The permission filter (0005's indexes) for outbound webhooks
(``permissions.webhooks.deliver``). Manifests stored before have no such key: the predicate is
NULL there, so those versions do not ask for it, as they did not.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

GRANTS = {
    "webhooks": (
        "json_array_length(manifest, '$.permissions.webhooks.deliver') > 0",
        "json_array_length(manifest #> '{permissions,webhooks,deliver}') > 0",
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
