"""Trending kept on write: ``trending`` holds each plugin's downloads over the week ending on
``trending_state.through_day``, and triggers on ``daily_stats`` add every change of a count in
that week as it is written. Search no longer sums a week of ``daily_stats`` (tens of
milliseconds at 100,000 plugins): it reads ``trending`` in order, off its index. When the day
moves on, the first search of the new day moves ``through_day`` and sums the week once
(``search.base.SqlSearchBackend._trending``).

Until then ``through_day`` is NULL and the triggers add nothing. On PostgreSQL the trigger
reads ``through_day`` FOR SHARE: the week is moved only between counts, never while one is
being written, so no download is missed by both the sum and the trigger.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

DAYS = 7  # search.query.TRENDING_DAYS when written; a migration must not follow it later

_UPSERT = (
    "INSERT INTO trending (plugin_id, downloads) {values} "
    "ON CONFLICT (plugin_id) DO UPDATE SET downloads = trending.downloads + excluded.downloads"
)
# SQLite: a row's day against the week (an INSERT ... SELECT before ON CONFLICT needs a WHERE)
_SQLITE_WEEK = (
    "{row}.day BETWEEN (SELECT date(through_day, '-{back} days') FROM trending_state) "
    "AND (SELECT through_day FROM trending_state)"
)


def _sqlite_add(row: str, sign: str) -> str:
    week = _SQLITE_WEEK.format(row=row, back=DAYS - 1)
    values = f"SELECT {row}.plugin_id, {sign}{row}.downloads WHERE {week}"
    return _UPSERT.format(values=values) + ";"


SQLITE_TRIGGERS = {
    "daily_stats_trending_insert": ("INSERT", [_sqlite_add("NEW", "")]),
    "daily_stats_trending_update": (
        "UPDATE OF plugin_id, day, downloads",
        [_sqlite_add("OLD", "-"), _sqlite_add("NEW", "")],
    ),
    "daily_stats_trending_delete": ("DELETE", [_sqlite_add("OLD", "-")]),
}

POSTGRES_FUNCTION = f"""
CREATE FUNCTION trending_follow() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    through date;
BEGIN
    SELECT through_day INTO through FROM trending_state WHERE id = 1 FOR SHARE;
    IF TG_OP <> 'INSERT' AND OLD.day BETWEEN through - {DAYS - 1} AND through THEN
        {_UPSERT.format(values="VALUES (OLD.plugin_id, -OLD.downloads)")};
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.day BETWEEN through - {DAYS - 1} AND through THEN
        {_UPSERT.format(values="VALUES (NEW.plugin_id, NEW.downloads)")};
    END IF;
    RETURN NULL;
END
$$"""  # noqa: S608 - fixed text, no input in it


def upgrade() -> None:
    op.create_table(
        "trending_state",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("through_day", sa.Date(), nullable=True),
    )
    op.execute("INSERT INTO trending_state (id, through_day) VALUES (1, NULL)")
    op.create_table(
        "trending",
        sa.Column("plugin_id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("downloads", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_trending_downloads", "trending", [sa.text("downloads DESC"), "plugin_id"])
    if op.get_bind().dialect.name == "sqlite":
        for name, (event, statements) in SQLITE_TRIGGERS.items():
            body = " ".join(statements)
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON daily_stats BEGIN {body} END")
    else:
        op.execute(POSTGRES_FUNCTION)
        op.execute(
            "CREATE TRIGGER daily_stats_trending AFTER INSERT OR DELETE OR "
            "UPDATE OF plugin_id, day, downloads ON daily_stats "
            "FOR EACH ROW EXECUTE FUNCTION trending_follow()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in reversed(SQLITE_TRIGGERS):
            op.execute(f"DROP TRIGGER {name}")
    else:
        op.execute("DROP TRIGGER daily_stats_trending ON daily_stats")
        op.execute("DROP FUNCTION trending_follow()")
    op.drop_index("ix_trending_downloads", table_name="trending")
    op.drop_table("trending")
    op.drop_table("trending_state")
