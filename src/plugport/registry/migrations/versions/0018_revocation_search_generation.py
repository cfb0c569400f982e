"""Revocation withdraws versions: revoking a publisher key raises the search generation.

A version signed by a key its namespace revoked is withdrawn (``PluginVersion.
signer_revoked_at``, read off ``publisher_keys`` on every query, never copied): search stops
finding it, as compatible with a host (``SqlSearchBackend._compatible``) among others. So
``publisher_keys.revoked_at`` is now something search results depend on, and, as 0006 does for
``plugins`` and ``plugin_versions``, a trigger raises ``search_state.generation`` in the
transaction that sets it, whichever node revokes: every node's kept answers are dropped.

Same shapes as 0006: a plain row trigger on SQLite, a deferred constraint trigger on
PostgreSQL calling 0006's ``search_state_bump()`` (once per transaction, at commit).

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_NAME = "publisher_keys_search_revoke"
_EVENT = "UPDATE OF revoked_at"
_BUMP = "UPDATE search_state SET generation = generation + 1 WHERE id = 1"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"CREATE TRIGGER {_NAME} AFTER {_EVENT} ON publisher_keys BEGIN {_BUMP}; END")
    elif dialect == "postgresql":
        op.execute(
            f"CREATE CONSTRAINT TRIGGER {_NAME} AFTER {_EVENT} ON publisher_keys "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION search_state_bump()"
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(f"DROP TRIGGER {_NAME}")
    elif dialect == "postgresql":
        op.execute(f"DROP TRIGGER {_NAME} ON publisher_keys")
