"""Whether a word is in hundreds of names, on PostgreSQL, without counting the names: how
many plugins have each word in their name, kept on write.

A word search first asks whether its words are in :data:`RelevanceSearch._TIERED_FROM`
names or more (``_popular_first``): the names were counted, up to 500, off
``ix_plugins_name_words`` (1.3-1.7 ms for a common word at 100,000 plugins, on the first
search for it). ``name_words`` holds, for every word of every plugin's name (the lexemes of
``name_vector``, 0026), how many plugins have it, visible or not, as the count does. The
search reads the words a term starts: the most plugins one of them is in is at least how
many names the term matches, and their sum is at most that many, so one short range read of
the primary key decides most terms, and the names are counted only when it cannot. Words are
in the "C" collation, code point order, so the words a term starts are one range of the
key. Statement triggers keep it exact on insert and on delete, and a row trigger on any
change of a name. SQLite keeps its word list, from FTS5's own vocabulary
(``search/sqlite.py``).

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

_CHANGES = {
    # event: (statement-level transition tables, the counting done with them)
    "INSERT": (
        "REFERENCING NEW TABLE AS added",
        "PERFORM name_words_add(array_agg(r.name_vector)) FROM added AS r;",
    ),
    "DELETE": (
        "REFERENCING OLD TABLE AS removed",
        "PERFORM name_words_remove(array_agg(r.name_vector)) FROM removed AS r;",
    ),
}
# A name changing (none does today) is a row trigger: a statement trigger with transition
# tables cannot be limited to a column, and would run on every download counted.
_RENAMED = """
CREATE FUNCTION name_words_rename() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM name_words_remove(ARRAY[OLD.name_vector]);
    PERFORM name_words_add(ARRAY[NEW.name_vector]);
    RETURN NULL;
END; $$
"""
_RENAME_TRIGGER = (
    "CREATE TRIGGER name_words_rename AFTER UPDATE OF name ON plugins FOR EACH ROW"
    " WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION name_words_rename()"
)

_FUNCTIONS = (
    """
CREATE FUNCTION name_words_add(vectors tsvector[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO name_words(word, plugins)
    SELECT w, count(*) FROM unnest(vectors) AS v, unnest(tsvector_to_array(v)) AS w
    WHERE v IS NOT NULL GROUP BY w ORDER BY w
    ON CONFLICT (word) DO UPDATE SET plugins = name_words.plugins + EXCLUDED.plugins;
$$
""",
    """
CREATE FUNCTION name_words_remove(vectors tsvector[]) RETURNS void LANGUAGE sql AS $$
    UPDATE name_words SET plugins = name_words.plugins - gone.plugins
    FROM (
        SELECT w AS word, count(*) AS plugins
        FROM unnest(vectors) AS v, unnest(tsvector_to_array(v)) AS w
        WHERE v IS NOT NULL GROUP BY w
    ) AS gone
    WHERE name_words.word = gone.word;
$$
""",
)


def _trigger_function(event: str) -> str:
    return (
        f"CREATE FUNCTION name_words_{event.lower()}() RETURNS trigger LANGUAGE plpgsql AS $$"
        f" BEGIN {_CHANGES[event][1]} RETURN NULL; END; $$"
    )


def _trigger(event: str) -> str:
    return (
        f"CREATE TRIGGER name_words_{event.lower()} AFTER {event} ON plugins"
        f" {_CHANGES[event][0]} FOR EACH STATEMENT EXECUTE FUNCTION name_words_{event.lower()}()"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        'CREATE TABLE name_words (word text COLLATE "C" PRIMARY KEY, plugins integer NOT NULL)'
    )
    for function in _FUNCTIONS:
        op.execute(function)
    for event in _CHANGES:
        op.execute(_trigger_function(event))
        op.execute(_trigger(event))
    op.execute(_RENAMED)
    op.execute(_RENAME_TRIGGER)
    op.execute(
        "INSERT INTO name_words(word, plugins)"
        " SELECT w, count(*) FROM plugins, unnest(tsvector_to_array(name_vector)) AS w GROUP BY w"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for event in _CHANGES:
        op.execute(f"DROP TRIGGER name_words_{event.lower()} ON plugins")
        op.execute(f"DROP FUNCTION name_words_{event.lower()}()")
    op.execute("DROP TRIGGER name_words_rename ON plugins")
    op.execute("DROP FUNCTION name_words_rename()")
    op.execute("DROP FUNCTION name_words_add(tsvector[])")
    op.execute("DROP FUNCTION name_words_remove(tsvector[])")
    op.execute("DROP TABLE name_words")
