"""The one way Plugport's own SQLite files are written: a shared connection under a lock, each
write in ``BEGIN IMMEDIATE`` … ``COMMIT``, rolled back on any exception, so a refused change
leaves nothing behind (the runtime's state, the host's state, the host service's store)."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator

__all__ = ["immediate"]


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
