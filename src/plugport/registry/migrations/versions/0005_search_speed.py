"""Search at 100,000 plugins: an index per browse order over the visible plugins, the rated
plugins apart, one partial index per permission over published versions, a covering index for
trending, and the visible plugins' categories and tags, to count them.

The predicates are written out here (a migration must not change when the models do); the
models describe the same indexes and search uses the models' predicates, so the planners match
the queries to them. ``ix_plugins_visible_lists`` differs by dialect (PostgreSQL has no
b-tree on ``json``) and is left out of model comparison by ``include_schema_name``.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SQLITE_VISIBLE = "listed = 1 AND suspended = 0 AND latest_version IS NOT NULL"
POSTGRES_VISIBLE = "listed AND NOT suspended AND latest_version IS NOT NULL"
PLUGIN_INDEXES: tuple[tuple[str, list[str | sa.TextClause], str], ...] = (
    ("ix_plugins_visible_downloads", [sa.text("downloads DESC"), "name"], ""),
    ("ix_plugins_visible_updated", [sa.text("updated_at DESC"), "name"], ""),
    ("ix_plugins_visible_name", ["name"], ""),
    (
        "ix_plugins_visible_rated",
        ["rating_count", "rating_sum", "name", "id"],
        " AND rating_count > 0",
    ),
)
GRANTS = {  # permission: (SQLite, PostgreSQL)
    "network": (
        "json_array_length(manifest, '$.permissions.network') > 0",
        "json_array_length(manifest #> '{permissions,network}') > 0",
    ),
    "storage": (
        "json_extract(manifest, '$.permissions.storage') > 0",
        "CAST(manifest #>> '{permissions,storage}' AS BIGINT) > 0",
    ),
    "events": (
        "coalesce(json_array_length(manifest, '$.permissions.events.publish'), 0)"
        " + coalesce(json_array_length(manifest, '$.permissions.events.subscribe'), 0) > 0",
        "coalesce(json_array_length(manifest #> '{permissions,events,publish}'), 0)"
        " + coalesce(json_array_length(manifest #> '{permissions,events,subscribe}'), 0) > 0",
    ),
    "ui": (
        "json_array_length(manifest, '$.permissions.ui') > 0",
        "json_array_length(manifest #> '{permissions,ui}') > 0",
    ),
    "config": (
        "json_extract(manifest, '$.permissions.config') = 1",
        "manifest #>> '{permissions,config}' = 'true'",
    ),
}


def upgrade() -> None:
    # Each dialect reads its own *_where and ignores the other's.
    for name, columns, extra in PLUGIN_INDEXES:
        op.create_index(
            name,
            "plugins",
            columns,
            sqlite_where=sa.text(SQLITE_VISIBLE + extra),
            postgresql_where=sa.text(POSTGRES_VISIBLE + extra),
        )
    for permission, (sqlite, postgresql) in GRANTS.items():
        op.create_index(
            f"ix_plugin_versions_grants_{permission}",
            "plugin_versions",
            ["plugin_id", "version"],
            sqlite_where=sa.text(f"status = 'published' AND {sqlite}"),
            postgresql_where=sa.text(f"status = 'published' AND {postgresql}"),
        )
    op.create_index("ix_daily_stats_trending", "daily_stats", ["day", "plugin_id", "downloads"])
    # The visible plugins' JSON lists: counting a category or a tag, or every category, reads
    # this instead of whole rows. PostgreSQL has no b-tree on json: there the key is the text,
    # and the lists and the id ride along so that an index-only scan answers.
    if op.get_bind().dialect.name == "sqlite":
        op.create_index(
            "ix_plugins_visible_lists",
            "plugins",
            ["categories", "tags"],
            sqlite_where=sa.text(SQLITE_VISIBLE),
        )
    else:
        op.create_index(
            "ix_plugins_visible_lists",
            "plugins",
            [sa.text("(categories::text)")],
            postgresql_include=["categories", "tags", "id"],
            postgresql_where=sa.text(POSTGRES_VISIBLE),
        )


def downgrade() -> None:
    op.drop_index("ix_plugins_visible_lists", table_name="plugins")
    op.drop_index("ix_daily_stats_trending", table_name="daily_stats")
    for permission in reversed(GRANTS):
        op.drop_index(f"ix_plugin_versions_grants_{permission}", table_name="plugin_versions")
    for name, _, _ in reversed(PLUGIN_INDEXES):
        op.drop_index(name, table_name="plugins")
