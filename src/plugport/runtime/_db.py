"""The host's own SQLite file for runtime state (plugin storage, settings, audit): one
connection, WAL journal, and a lock so the event loop and worker threads can share it."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from plugport._sqlite import connect, immediate

__all__ = ["RuntimeDatabase"]


class RuntimeDatabase:
    """``path`` is a file, or ``":memory:"`` for tests. Statements are short (one row, one
    plugin), so they run on the caller's thread under :attr:`lock` rather than in a pool."""

    def __init__(self, path: Path | str = ":memory:") -> None:
        self.path = str(path)
        self.connection = connect(path, timeout_s=10, rows=False)
        self.connection.execute("PRAGMA synchronous=NORMAL")
        self.connection.execute("PRAGMA foreign_keys=ON")
        self.lock = threading.RLock()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on any exception: a refused write
        leaves nothing behind."""
        with immediate(self.connection, self.lock) as connection:
            yield connection

    def execute(self, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self.lock:
            return self.connection.execute(sql, parameters).fetchall()

    def close(self) -> None:
        with self.lock:
            self.connection.close()
