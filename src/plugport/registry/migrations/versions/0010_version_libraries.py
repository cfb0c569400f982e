"""Each version's locked Python libraries: ``plugin_versions.libraries``, a JSON list of the
packages its ``plugport.lock`` names (name, version, wheels with sha256, size and whether the
scan found native code), recorded at upload for the plugin page, the review queue, the API and
the diff between versions.

Versions uploaded before stay NULL: what they ship is in their archives, and reading every blob
back is not a migration's job. Pages and the API say "not recorded" for them when their manifest
declares ``[python]`` dependencies, and treat them as having none otherwise.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A nullable column is a plain ALTER TABLE on SQLite too, which keeps 0006's triggers.
    op.add_column("plugin_versions", sa.Column("libraries", sa.JSON(), nullable=True))


def downgrade() -> None:
    # A plain ALTER TABLE on both (SQLite >= 3.35): copying the table would drop its triggers.
    op.execute("ALTER TABLE plugin_versions DROP COLUMN libraries")
