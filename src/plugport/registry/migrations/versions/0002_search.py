"""Search: a self-maintaining full-text index over plugins, and daily_stats(day) for trending.

SQLite: ``plugin_search``, an FTS5 table with external content (``plugins`` itself, so the
text is not stored twice), and triggers that keep it in step on every insert, text update and
delete of a plugin. PostgreSQL: ``plugins.search_vector``, a stored generated tsvector with a
GIN index. Either way existing rows are indexed here, and no service has to re-index.

Later migrations, beware: a SQLite batch operation that recreates ``plugins`` (anything beyond
adding a column) drops these triggers with the old table; recreate them afterwards (and
``INSERT INTO plugin_search(plugin_search) VALUES ('rebuild')``).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_UPGRADE = (
    # unicode61 splits on punctuation: 'acme.hello' is 'acme' 'hello', '["a-b"]' is 'a' 'b'.
    # prefix='2 3' keeps short as-you-type prefixes off a full term scan.
    """CREATE VIRTUAL TABLE plugin_search USING fts5(
        name, tags, display_name, description,
        content='plugins', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3'
    )""",
    """CREATE TRIGGER plugin_search_insert AFTER INSERT ON plugins BEGIN
        INSERT INTO plugin_search(rowid, name, tags, display_name, description)
        VALUES (new.id, new.name, new.tags, new.display_name, new.description);
    END""",
    """CREATE TRIGGER plugin_search_delete AFTER DELETE ON plugins BEGIN
        INSERT INTO plugin_search(plugin_search, rowid, name, tags, display_name, description)
        VALUES ('delete', old.id, old.name, old.tags, old.display_name, old.description);
    END""",
    # Only the indexed columns: counting a download must not rewrite the index.
    """CREATE TRIGGER plugin_search_update
    AFTER UPDATE OF name, tags, display_name, description ON plugins BEGIN
        INSERT INTO plugin_search(plugin_search, rowid, name, tags, display_name, description)
        VALUES ('delete', old.id, old.name, old.tags, old.display_name, old.description);
        INSERT INTO plugin_search(rowid, name, tags, display_name, description)
        VALUES (new.id, new.name, new.tags, new.display_name, new.description);
    END""",
    "INSERT INTO plugin_search(plugin_search) VALUES ('rebuild')",  # index existing rows
)
SQLITE_DOWNGRADE = (
    "DROP TRIGGER plugin_search_update",
    "DROP TRIGGER plugin_search_delete",
    "DROP TRIGGER plugin_search_insert",
    "DROP TABLE plugin_search",
)


def _words(expression: str) -> str:
    # Dots, slashes, '@' and ':' would make PostgreSQL's parser read hosts, paths, e-mail
    # addresses and URLs as single lexemes ('acme.hello'); as spaces, words come out as
    # SQLite's tokenizer sees them, so 'hel' finds 'acme.hello' on both.
    return f"to_tsvector('simple'::regconfig, translate({expression}, './@:', '    '))"


_TAGS = "coalesce(tags::text, '')"
_TEXT = "display_name || ' ' || description"
POSTGRES_VECTOR = (
    f"setweight({_words('name')}, 'A')"
    f" || setweight({_words(_TAGS)}, 'B')"
    f" || setweight({_words(_TEXT)}, 'C')"
)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_UPGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        # A stored generated column computes every existing row while it is added.
        op.execute(
            "ALTER TABLE plugins ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({POSTGRES_VECTOR}) STORED"
        )
        op.create_index(
            "ix_plugins_search_vector", "plugins", ["search_vector"], postgresql_using="gin"
        )
    with op.batch_alter_table("daily_stats", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_daily_stats_day"), ["day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("daily_stats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_daily_stats_day"))
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE_DOWNGRADE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.drop_index("ix_plugins_search_vector", table_name="plugins")
        op.drop_column("plugins", "search_vector")
