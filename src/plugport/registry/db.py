"""Engines and sessions for the registry's database: SQLite by default (WAL, foreign keys on),
PostgreSQL by URL. Nothing here knows about plugins."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["make_engine", "make_sessions"]


def make_engine(url: str, **options: Any) -> Engine:
    """An engine for ``url``; SQLite connections get the pragmas a server needs."""
    if url.startswith("sqlite"):
        options.setdefault("connect_args", {"check_same_thread": False, "timeout": 30})
    engine = create_engine(url, **options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


WAL_SWITCH_S = 30.0
"""How long a connection keeps trying to switch a new database file to WAL."""


def _sqlite_pragmas(connection: sqlite3.Connection, _record: object) -> None:
    cursor = connection.cursor()
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """WAL is kept in the file, so this changes something only on a new database. There,
    nodes opening it at once race to switch it: switching takes an exclusive lock, and one
    that SQLite cannot wait for without deadlocking is refused at once ('database is
    locked'), whatever the busy timeout. Such a refusal is tried again until another
    connection's switch has landed (then this one is a no-op) or for :data:`WAL_SWITCH_S`."""
    deadline = time.monotonic() + WAL_SWITCH_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
