"""The queue engine behind one small interface: :class:`QueueEngine` (``push``, ``pop``,
``waiting``). The engine is Huey's storage layer: ``SqliteHuey`` in the host home by default,
``PostgresHuey`` when several worker hosts share a PostgreSQL database (its ``LISTEN/NOTIFY``
wakes idle nodes), ``MemoryHuey`` in tests. Huey gives the durable queue ordered by priority,
the schedule of not-yet-due messages and the locking between consumers; we keep its pickled
``Task`` messages out: a message is only a task id (ASCII), so nothing taken from the queue is
ever unpickled, and the task's data lives in the :mod:`~plugport.host.tasks.store`.

Huey removes a message when it is taken, so it alone would lose a task whose node was killed
mid-run; the store's records and leases make delivery at least once (see ``store.py``).
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any, Protocol

from plugport.host.tasks._sql import is_postgres

__all__ = ["HueyEngine", "QueueEngine", "engine_for"]

QUEUE_NAME = "plugport-tasks"


class QueueEngine(Protocol):
    """A durable queue of task ids: highest priority first, a message with an ``eta`` only
    once it is due."""

    def push(self, task_id: str, *, priority: int = 0, eta: float | None = None) -> None: ...

    def pop(self, now: float) -> str | None:
        """The next due task id (moving due scheduled ones into the queue first), or ``None``."""
        ...

    def waiting(self) -> set[str]:
        """Every task id in the queue or the schedule (to find records the queue lost)."""
        ...

    def close(self) -> None: ...


class HueyEngine:
    """:class:`QueueEngine` on a Huey instance's storage."""

    def __init__(self, huey: Any) -> None:
        self.huey = huey
        self.storage = huey.storage
        self._next_schedule_read = 0.0

    def push(self, task_id: str, *, priority: int = 0, eta: float | None = None) -> None:
        data = task_id.encode("ascii")
        if eta is None:
            self.storage.enqueue(data, priority)
        else:
            self.storage.add_to_schedule(data, _when(eta))

    def pop(self, now: float) -> str | None:
        if now >= self._next_schedule_read:
            # Due scheduled messages move to the queue; read at most every 10 ms, so a busy
            # queue does not pay a schedule transaction per message.
            for data in self.storage.read_schedule(_when(now)):
                self.storage.enqueue(data, 0)
            self._next_schedule_read = now + 0.01
        data = self.storage.dequeue()
        return None if data is None else bytes(data).decode("ascii")

    def waiting(self) -> set[str]:
        items = [*self.storage.enqueued_items(), *self.storage.scheduled_items()]
        return {bytes(i).decode("ascii") for i in items}

    def schedule_due(self) -> None:
        """Let the next :meth:`pop` read the schedule at once (a retry was just scheduled)."""
        self._next_schedule_read = 0.0

    def close(self) -> None:
        close = getattr(self.storage, "close", None)
        if close is not None:
            close()


def _when(timestamp: float) -> datetime.datetime:
    # Huey's SQL storages compare naive datetimes by their .timestamp(): local time both ways.
    return datetime.datetime.fromtimestamp(timestamp)


def engine_for(url: str | Path | None, *, memory: bool = False) -> HueyEngine:
    """The engine at ``url``: a SQLite file path (the default, made when missing), a
    ``postgresql://`` URL (several worker hosts), or an in-memory one when ``memory``."""
    import huey

    if memory:
        return HueyEngine(huey.MemoryHuey(QUEUE_NAME, results=False, utc=False))
    text = str(url)
    if is_postgres(text):
        import psycopg

        dsn = text.replace("postgresql+psycopg://", "postgresql://", 1)
        queue = huey.PostgresHuey(
            QUEUE_NAME, dsn=dsn, results=False, utc=False, blocking=False, create_tables=False
        )
        # CREATE ... IF NOT EXISTS is not safe against itself in PostgreSQL: two worker hosts
        # starting on a fresh database at once can fail with a duplicate key in pg_type. One
        # creates Huey's tables while the other waits (as the store does for its own).
        with psycopg.connect(dsn, autocommit=True) as lock:
            lock.execute("SELECT pg_advisory_lock(727002)")
            queue.storage.initialize_schema()
        return HueyEngine(queue)
    from huey.storage import SqliteStorage

    class _Storage(SqliteStorage):  # type: ignore[misc]
        def _create_connection(self) -> Any:
            connection = super()._create_connection()
            # WAL with NORMAL: a commit survives kill -9 of the host; only a power cut can
            # lose the last ones (FULL would fsync every message).
            connection.execute("pragma synchronous=NORMAL")
            return connection

    Path(text).parent.mkdir(parents=True, exist_ok=True)
    return HueyEngine(
        huey.SqliteHuey(QUEUE_NAME, filename=text, results=False, utc=False, storage_class=_Storage)
    )
