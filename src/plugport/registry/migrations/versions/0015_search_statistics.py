"""Search at 100,000 plugins on PostgreSQL: statistics on the expressions the tag and permission
filters test, so that the planner knows how common a tag or a grant is.

Without them it guessed: a tag's ``tags::text LIKE '%"x"%'`` matches 0.02% of plugins, a
category's 0.005% (0005's index on ``categories::text`` is partial, and its statistics went
unused), so it read every visible plugin and sorted (70-160 ms for a common tag or category,
where walking the order's index stops after a few hundred rows), and a grant's partial index
holds 1% of versions (so it joined every version granting ``config``, a quarter of them,
70-140 ms). Extended statistics on
an expression (PostgreSQL 14 and later) are gathered by ``ANALYZE`` as for a column; nothing
reads or writes them but the planner. SQLite plans without such statistics: nothing to do.

The expressions are written out here as 0005 and 0011-0014 spell them in their index
predicates (a migration must not change when the models do); they must stay the very
expressions the searches send, or the planner will not match them.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

MINIMUM_SERVER = (14,)
"""Statistics on expressions came with PostgreSQL 14; older servers plan as before."""


def _length(path: str) -> str:
    return f"json_array_length(manifest #> '{{{path}}}')"


def _either(first: str, second: str) -> str:
    return f"coalesce({_length(first)}, 0) + coalesce({_length(second)}, 0)"


STATISTICS: dict[str, tuple[str, str]] = {  # name: (table, expression)
    "st_plugins_categories_text": ("plugins", "(categories)::text"),
    "st_plugins_tags_text": ("plugins", "(tags)::text"),
    "st_plugin_versions_grants_network": ("plugin_versions", _length("permissions,network")),
    "st_plugin_versions_grants_storage": (
        "plugin_versions",
        "CAST(manifest #>> '{permissions,storage}' AS BIGINT)",
    ),
    "st_plugin_versions_grants_events": (
        "plugin_versions",
        _either("permissions,events,publish", "permissions,events,subscribe"),
    ),
    "st_plugin_versions_grants_ui": ("plugin_versions", _length("permissions,ui")),
    "st_plugin_versions_grants_config": (
        "plugin_versions",
        "manifest #>> '{permissions,config}'",
    ),
    "st_plugin_versions_grants_credentials": (
        "plugin_versions",
        "manifest #>> '{permissions,credentials}'",
    ),
    "st_plugin_versions_grants_secrets": (
        "plugin_versions",
        _length("permissions,secrets,reveal"),
    ),
    "st_plugin_versions_grants_webhooks": (
        "plugin_versions",
        _either("permissions,webhooks,receive", "permissions,webhooks,deliver"),
    ),
    "st_plugin_versions_grants_mail": ("plugin_versions", _length("permissions,mail,to")),
    "st_plugin_versions_grants_tasks": ("plugin_versions", _length("permissions,tasks,submit")),
}


def _applies() -> bool:
    bind = op.get_bind()
    version = bind.dialect.server_version_info or ()
    return bind.dialect.name == "postgresql" and tuple(version) >= MINIMUM_SERVER


def upgrade() -> None:
    if not _applies():
        return
    for name, (table, expression) in STATISTICS.items():
        op.execute(f"CREATE STATISTICS {name} ON ({expression}) FROM {table}")
    # Now, not when autovacuum next gets round to it: an upgraded registry plans well at once
    # (ANALYZE samples a fixed number of rows, about a second at 100,000 plugins).
    op.execute("ANALYZE plugins")
    op.execute("ANALYZE plugin_versions")


def downgrade() -> None:
    if not _applies():
        return
    for name in reversed(STATISTICS):
        op.execute(f"DROP STATISTICS IF EXISTS {name}")
