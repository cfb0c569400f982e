"""Search finds what people type: category names match as tags do, and misspelt words find the
words they were meant to be (trigram similarity).

Categories join the full-text index, weighted as tags. SQLite: ``plugin_search`` gains a
``categories`` column (an FTS5 table cannot add one: it is made again, with its triggers, and
rebuilt from ``plugins``), and ``plugin_search_words``, an ``fts5vocab`` table over it, lists its
words with how many plugins have each, kept in step by FTS5 itself. PostgreSQL:
``search_vector`` is generated again with the categories in weight B, and the words of names,
display names, tags and categories are added to ``search_words`` by statement triggers, with
a ``pg_trgm`` GIN index for similarity; the extension is created here (in ``public``, so a
schema dropped with CASCADE never takes it with it), and the migration stops with a message
that says so when it cannot be.

The 0002 warning stands: a SQLite batch operation that recreates ``plugins`` drops these
triggers with the old table; recreate them afterwards.

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_OLD_COLUMNS = ("name", "tags", "display_name", "description")
_NEW_COLUMNS = (*_OLD_COLUMNS, "categories")


def _sqlite_index(columns: tuple[str, ...]) -> list[str]:
    # S608 below: the column names are this module's constants, not input
    listed = ", ".join(columns)
    old = ", ".join(f"old.{c}" for c in columns)
    new = ", ".join(f"new.{c}" for c in columns)
    return [
        f"""CREATE VIRTUAL TABLE plugin_search USING fts5(
            {listed},
            content='plugins', content_rowid='id',
            tokenize='unicode61 remove_diacritics 2', prefix='2 3'
        )""",
        f"""CREATE TRIGGER plugin_search_insert AFTER INSERT ON plugins BEGIN
            INSERT INTO plugin_search(rowid, {listed}) VALUES (new.id, {new});
        END""",  # noqa: S608
        f"""CREATE TRIGGER plugin_search_delete AFTER DELETE ON plugins BEGIN
            INSERT INTO plugin_search(plugin_search, rowid, {listed})
            VALUES ('delete', old.id, {old});
        END""",  # noqa: S608
        f"""CREATE TRIGGER plugin_search_update AFTER UPDATE OF {listed} ON plugins BEGIN
            INSERT INTO plugin_search(plugin_search, rowid, {listed})
            VALUES ('delete', old.id, {old});
            INSERT INTO plugin_search(rowid, {listed}) VALUES (new.id, {new});
        END""",  # noqa: S608
        "INSERT INTO plugin_search(plugin_search) VALUES ('rebuild')",
    ]


_SQLITE_DROP = [
    "DROP TRIGGER plugin_search_update",
    "DROP TRIGGER plugin_search_delete",
    "DROP TRIGGER plugin_search_insert",
    "DROP TABLE plugin_search",
]
_SQLITE_WORDS = "CREATE VIRTUAL TABLE plugin_search_words USING fts5vocab(plugin_search, 'col')"


def _words(expression: str) -> str:
    return f"to_tsvector('simple'::regconfig, translate({expression}, './@:', '    '))"


def _vector(lists: str) -> str:
    """0002's ``search_vector`` with ``lists`` (the text of the tags, and now categories) in B."""
    text = "display_name || ' ' || description"
    return (
        f"setweight({_words('name')}, 'A')"
        f" || setweight({_words(lists)}, 'B')"
        f" || setweight({_words(text)}, 'C')"
    )


_OLD_LISTS = "coalesce(tags::text, '')"
NEW_LISTS = "coalesce(tags::text, '') || ' ' || coalesce(categories::text, '')"

# The words one plugin offers for "did you mean": of its name, display name, tags and
# categories (not the description: its words are many and rarely what someone types), three
# letters or more, letters only.
_POSTGRES_WORDS = """
CREATE FUNCTION search_words_of(name text, display_name text, tags json, categories json)
RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(w ORDER BY w), '{}') FROM unnest(tsvector_to_array(
        to_tsvector('simple'::regconfig, translate(
            coalesce(name, '') || ' ' || coalesce(display_name, '') || ' '
            || coalesce(tags::text, '') || ' ' || coalesce(categories::text, ''),
            './@:', '    '))
    )) AS w WHERE w ~ '^[[:alpha:]]{3,}$'
$$
"""
# Statement triggers over transition tables, and words only, not how many plugins have each:
# counting updates the same few rows (a category's word is in thousands of plugins) once per
# statement, and within one transaction every update of a row lengthens the chain of row
# versions the next one walks, so a bulk load of 100,000 plugins in one transaction (one
# statement per row, as drivers send executemany) ran for minutes. Words are only ever added:
# those of a deleted or renamed plugin stay (a suggestion that finds nothing is not used).
_ADDED = {
    "INSERT": "SELECT n.* FROM added AS n",
    "UPDATE": (
        "SELECT n.* FROM added AS n JOIN removed AS o USING (id)"
        " WHERE (n.name, n.display_name, n.tags::text, n.categories::text)"
        " IS DISTINCT FROM (o.name, o.display_name, o.tags::text, o.categories::text)"
    ),
}
_WORDS_OF = "unnest(search_words_of(r.name, r.display_name, r.tags, r.categories)) AS w"


def _follow_function(event: str) -> str:
    # in word order, so two writers adding the same words take their locks in one order
    return f"""
CREATE FUNCTION search_words_{event.lower()}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words(word)
    SELECT DISTINCT w FROM ({_ADDED[event]}) AS r, {_WORDS_OF} ORDER BY w
    ON CONFLICT (word) DO NOTHING;
    RETURN NULL;
END
$$
"""  # noqa: S608 - this module's own constants


def _follow_trigger(event: str) -> str:
    tables = {"INSERT": "NEW TABLE AS added", "UPDATE": "NEW TABLE AS added OLD TABLE AS removed"}
    return (
        f"CREATE TRIGGER search_words_{event.lower()} AFTER {event} ON plugins"
        f" REFERENCING {tables[event]} FOR EACH STATEMENT"
        f" EXECUTE FUNCTION search_words_{event.lower()}()"
    )


_EVENTS = ("INSERT", "UPDATE")
_POSTGRES_FILL = """
INSERT INTO search_words(word)
SELECT DISTINCT w FROM plugins, unnest(search_words_of(name, display_name, tags, categories)) AS w
"""
_TRGM_SCHEMA = sa.text(
    "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
    " WHERE e.extname = 'pg_trgm'"
)


def _pg_trgm() -> str:
    """The schema ``pg_trgm`` is in, creating it in ``public`` if no schema has it."""
    bind = op.get_bind()
    schema = bind.execute(_TRGM_SCHEMA).scalar()
    if schema is not None:
        return str(schema)
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public"))
    except sa.exc.DBAPIError as exc:
        schema = bind.execute(_TRGM_SCHEMA).scalar()  # created meanwhile by another migration
        if schema is not None:
            return str(schema)
        raise RuntimeError(
            "migration 0023 needs the PostgreSQL extension pg_trgm (typo-tolerant search) and "
            f"could not create it: {exc.orig}. Install it (Debian: postgresql-contrib) or have "
            "a superuser run: CREATE EXTENSION pg_trgm SCHEMA public"
        ) from None
    return "public"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in [*_SQLITE_DROP, *_sqlite_index(_NEW_COLUMNS), _SQLITE_WORDS]:
            op.execute(statement)
    elif dialect == "postgresql":
        trgm = _pg_trgm()
        op.execute("ALTER TABLE plugins DROP COLUMN search_vector")  # and its GIN index
        op.execute(
            "ALTER TABLE plugins ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({_vector(NEW_LISTS)}) STORED"
        )
        op.execute("CREATE INDEX ix_plugins_search_vector ON plugins USING gin (search_vector)")
        op.execute("CREATE TABLE search_words (word text PRIMARY KEY)")
        op.execute(
            "CREATE INDEX ix_search_words_trigrams ON search_words"
            f' USING gin (word "{trgm}".gin_trgm_ops)'
        )
        op.execute(_POSTGRES_WORDS)
        for event in _EVENTS:
            op.execute(_follow_function(event))
            op.execute(_follow_trigger(event))
        op.execute(_POSTGRES_FILL)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE plugin_search_words")
        for statement in [*_SQLITE_DROP, *_sqlite_index(_OLD_COLUMNS)]:
            op.execute(statement)
    elif dialect == "postgresql":
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER search_words_{event.lower()} ON plugins")
            op.execute(f"DROP FUNCTION search_words_{event.lower()}()")
        op.execute("DROP FUNCTION search_words_of(text, text, json, json)")
        op.execute("DROP TABLE search_words")
        op.execute("ALTER TABLE plugins DROP COLUMN search_vector")
        op.execute(
            "ALTER TABLE plugins ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({_vector(_OLD_LISTS)}) STORED"
        )
        op.execute("CREATE INDEX ix_plugins_search_vector ON plugins USING gin (search_vector)")
        # pg_trgm stays: other databases' schemas, or the operator, may use it
