"""One SQL connection for the task queue's tables, on SQLite (a path; written through
:func:`plugport._sqlite.immediate`) or PostgreSQL (a ``postgresql://`` URL): the statements
are written once, with ``?`` placeholders, and this adapts them."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from plugport._sqlite import connect, immediate

__all__ = ["POSTGRES_SCHEMES", "Cursor", "Sql", "is_postgres", "strip_comments"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_postgres(url: str | Path) -> bool:
    return str(url).startswith(POSTGRES_SCHEMES)


def strip_comments(statement: str) -> str:
    return "\n".join(line.split("--", 1)[0] for line in statement.splitlines())


class Sql:
    """One connection to either engine, with the placeholders and transactions each wants."""

    def __init__(self, url: str | Path) -> None:
        text = str(url)
        self.postgres = is_postgres(text)
        self._lock = threading.RLock()
        if self.postgres:
            import psycopg
            from psycopg.rows import dict_row

            dsn = text.replace("postgresql+psycopg://", "postgresql://", 1)
            self._pg = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
        else:
            self._db = connect(text)
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: a commit survives kill -9

    @contextlib.contextmanager
    def write(self) -> Iterator[Cursor]:
        if self.postgres:
            with self._lock, self._pg.transaction(), self._pg.cursor() as cursor:
                yield Cursor(cursor, True)
        else:
            with immediate(self._db, self._lock) as db:
                yield Cursor(db, False)

    @contextlib.contextmanager
    def read(self) -> Iterator[Cursor]:
        with self._lock:
            if self.postgres:
                with self._pg.cursor() as cursor:
                    yield Cursor(cursor, True)
            else:
                yield Cursor(self._db, False)

    def close(self) -> None:
        with self._lock:
            (self._pg if self.postgres else self._db).close()


class Cursor:
    """A cursor that takes ``?`` placeholders on both engines."""

    def __init__(self, target: Any, postgres: bool) -> None:
        self._target = target
        self._postgres = postgres

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        if self._postgres:
            sql = sql.replace("?", "%s")
            self._target.execute(sql, params)
            return self._target
        return self._target.execute(sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Mapping[str, Any]]:
        return list(self.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> Mapping[str, Any] | None:
        row = self.execute(sql, params).fetchone()
        return row  # type: ignore[no-any-return]

    def count(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self.execute(sql, params).rowcount)
