"""Versions unique by their canonical PEP 440 form: ``plugin_versions.canonical_version`` (the
version with trailing zeros and any local label dropped, so ``1.0``, ``1.0.0`` and
``1.0.0.0`` are all ``1``) and a unique index on (plugin, canonical version). Before this,
uniqueness was checked on the text, so a pin such as ``==1.0.0`` could match two archives.

Existing duplicates are not resolved here: choosing which archive a pin should mean is the
operator's decision, and dropping or hiding a version hosts may have installed loses data.
The migration first reads every version and, if two rows of a plugin share a canonical form,
stops before it changes anything with :class:`DuplicateVersionsError`, which lists each plugin
with its colliding versions (id, status, upload time). The server does not start on an
un-migrated database, so nothing serves the ambiguous pins meanwhile. The operator keeps one
row per group (usually the first upload) and removes the others, e.g. with
``DELETE FROM plugin_versions WHERE id IN (...)``, then runs ``plugport registry migrate``.

SQLite cannot add a NOT NULL column without a default, nor drop a default without copying
the table (which would drop the search triggers of 0006), so the column keeps
``server_default ''`` there; every insert fills it (``models.PluginVersion``). PostgreSQL
drops the default once the rows are filled in.

Revision ID: 0009
Revises: 0007
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op
from packaging.utils import canonicalize_version
from packaging.version import InvalidVersion, Version

from plugport.errors import ConflictError

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INDEX = "uq_plugin_versions_canonical"
_ADVICE = (
    "exist side by side, so a pin could name either archive; migration 0009 (one version per "
    "canonical form) changed nothing. Keep one row of each group below (usually the first "
    "upload) and delete the others, e.g. DELETE FROM plugin_versions WHERE id IN (...), then "
    "run 'plugport registry migrate' again:"
)


class DuplicateVersionsError(ConflictError):
    """Versions that PEP 440 calls equal exist side by side; ``.groups`` lists them."""

    def __init__(self, groups: list[list[Any]]) -> None:
        self.groups = groups
        lines = [
            f"  {rows[0].name}: "
            + ", ".join(
                f"{row.version} (id {row.id}, {row.status}, uploaded {row.created_at})"
                for row in rows
            )
            for rows in groups
        ]
        super().__init__("versions", "equal under PEP 440", "\n".join([_ADVICE, *lines]))


def canonical(version: str) -> str:
    """``plugport.versions.canonical_version`` as it was when this migration was written (a
    migration must not follow later changes); a text that is no version stays as it is."""
    try:
        parsed = Version(version)
    except InvalidVersion:
        return version
    return canonicalize_version(parsed.public, strip_trailing_zero=True)


def duplicates(rows: list[Any]) -> list[list[Any]]:
    """Groups of rows (oldest first) of one plugin that share a canonical version."""
    groups: dict[tuple[int, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[row.plugin_id, canonical(row.version)].append(row)
    return [group for group in groups.values() if len(group) > 1]


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT v.id, v.plugin_id, p.name, v.version, v.status, v.created_at "
            "FROM plugin_versions v JOIN plugins p ON p.id = v.plugin_id "
            "ORDER BY p.name, v.created_at, v.id"
        )
    ).all()
    found = duplicates(list(rows))
    if found:  # before any change, so a failed start leaves the database as it was
        raise DuplicateVersionsError(found)
    op.add_column(
        "plugin_versions",
        sa.Column("canonical_version", sa.String(64), nullable=False, server_default=""),
    )
    postgresql = bind.dialect.name == "postgresql"
    if postgresql:
        op.alter_column("plugin_versions", "canonical_version", server_default=None)
    if rows:
        bind.execute(
            sa.text("UPDATE plugin_versions SET canonical_version = :canonical WHERE id = :id"),
            [{"canonical": canonical(row.version), "id": row.id} for row in rows],
        )
    if postgresql:  # run 0006's deferred triggers now: PostgreSQL indexes no table with some
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    op.create_index(INDEX, "plugin_versions", ["plugin_id", "canonical_version"], unique=True)


def downgrade() -> None:
    op.drop_index(INDEX, table_name="plugin_versions")
    # A plain ALTER TABLE on both (SQLite >= 3.35): copying the table would drop its triggers.
    op.execute("ALTER TABLE plugin_versions DROP COLUMN canonical_version")
