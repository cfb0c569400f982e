"""The permission filter (0005's indexes) for webhooks: the endpoints a plugin receives
(``permissions.webhooks.receive``, filled from ``[webhooks.NAME]``) and the targets it delivers
to (``permissions.webhooks.deliver``). Manifests stored before have neither key: the predicate
is 0 there, so those versions ask for nothing, as they did.

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
        "coalesce(json_array_length(manifest, '$.permissions.webhooks.receive'), 0)"
        " + coalesce(json_array_length(manifest, '$.permissions.webhooks.deliver'), 0) > 0",
        "coalesce(json_array_length(manifest #> '{permissions,webhooks,receive}'), 0)"
        " + coalesce(json_array_length(manifest #> '{permissions,webhooks,deliver}'), 0) > 0",
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
