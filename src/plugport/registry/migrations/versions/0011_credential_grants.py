"""The permission filter (0005's indexes) for the credentials a plugin's manifest declares
(``permissions.credentials``, filled from ``[credentials.NAME]``) and for raw secret reads
(``permissions.secrets.reveal``). Manifests stored before have neither key: the predicates are
NULL there, so those versions ask for neither, as they did.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

GRANTS = {
    "credentials": (
        "json_extract(manifest, '$.permissions.credentials') <> '{}'",
        "manifest #>> '{permissions,credentials}' <> '{}'",
    ),
    "secrets": (
        "json_array_length(manifest, '$.permissions.secrets.reveal') > 0",
        "json_array_length(manifest #> '{permissions,secrets,reveal}') > 0",
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
