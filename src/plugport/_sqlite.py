"""The one way Plugport's own SQLite files are written: a shared connection under a lock, each
write in ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception, so a refused change
leaves nothing behind (the runtime's state, the host's state, the host service's store)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["connect", "create_schema", "immediate"]


def connect(path: Path | str, *, timeout_s: float = 30, rows: bool = True) -> sqlite3.Connection:
    """One connection shared by the event loop and worker threads (the caller serialises it
    with a lock): autocommit, so :func:`immediate` decides where transactions start, and the
    WAL journal, so readers never wait on a writer. ``":memory:"`` for tests."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(
        str(path), check_same_thread=False, isolation_level=None, timeout=timeout_s
    )
    if rows:
        connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    return connection


def create_schema(connection: sqlite3.Connection, schema: str) -> None:
    """Every statement of ``schema`` in the caller's open transaction (``executescript``
    would commit on its own)."""
    for statement in filter(None, (s.strip() for s in schema.split(";"))):
        connection.execute(statement)


@contextlib.contextmanager
def immediate(
    connection: sqlite3.Connection, lock: threading.Lock | threading.RLock
) -> Iterator[sqlite3.Connection]:
    """A write transaction on ``connection`` (opened with ``isolation_level=None``), holding
    ``lock`` for its whole length: the event loop and worker threads share one connection."""
    with lock:
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
