"""The inbox: every verified webhook delivery is written here (and committed) before the sender
gets its 202, and stays until the plugin's handler took it (``done``) or every attempt failed
(``dead``). One SQLite file per host home, ``HOME/inbox.sqlite``, written only through
:func:`plugport._sqlite.immediate`.

Replay protection is a unique key: ``(plugin, endpoint, delivery_id)``. A delivery the sender
sends again (GitHub does after a timeout) is answered as a duplicate and never queued twice.

Behind the small :class:`Inbox` interface (``accept``, ``claim_due``, ``done``, ``failed``)
because the task queue (issue 19) takes it over later.
"""

from __future__ import annotations

import json
import random as _random
import sqlite3
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from plugport._sqlite import connect, create_schema, immediate
from plugport.errors import InvalidInputError, NotFoundError
from plugport.host.inbound._inbox_rules import (
    BASE_DELAY_S,
    MAX_ATTEMPTS,
    MAX_DELAY_S,
    after_failure,
    prune_cutoffs,
)

__all__ = [
    "Accepted",
    "Delivery",
    "Inbox",
    "SqliteInbox",
    "State",
    "inbox_path",
    "purge_inbox",
]

State = Literal["pending", "running", "done", "dead"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    plugin TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    delivery_id TEXT,                 -- the sender's id or a replay key, NULL: cannot tell
    received_at REAL NOT NULL,        -- Unix seconds
    headers TEXT NOT NULL,            -- JSON object, the safe subset (no signature or token)
    body BLOB NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,            -- when it is due (pending) or when it was claimed
    state TEXT NOT NULL DEFAULT 'pending',  -- pending, running (claimed), done, dead
    last_error TEXT NOT NULL DEFAULT '',
    finished_at REAL,                 -- when the handler took it (done), else NULL
    UNIQUE (plugin, endpoint, delivery_id)
);
CREATE INDEX IF NOT EXISTS ix_deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS ix_deliveries_plugin ON deliveries (plugin)
"""
_ADDED_COLUMNS = {"finished_at": "REAL"}
"""Columns added after the first inboxes were written: added to an older file when opened."""


def inbox_path(home: Path) -> Path:
    return home / "inbox.sqlite"


@dataclass(frozen=True, slots=True)
class Accepted:
    """The inbox's row for a delivery; ``duplicate`` when it was there already (not queued
    again)."""

    id: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    plugin: str
    endpoint: str
    delivery_id: str | None
    received_at: float
    headers: Mapping[str, str]
    body: bytes
    attempts: int
    state: State
    next_at: float
    last_error: str
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        """What the operator is shown (API, pages): never the body or the headers, which may
        carry what the sender sent the plugin, not the operator."""
        return {
            "id": self.id,
            "plugin": self.plugin,
            "endpoint": self.endpoint,
            "delivery_id": self.delivery_id,
            "received_at": self.received_at,
            "state": self.state,
            "attempts": self.attempts,
            "next_at": self.next_at,
            "last_error": self.last_error,
            "finished_at": self.finished_at,
        }


class Inbox(Protocol):
    """What the route and the dispatcher need of a durable inbox."""

    def accept(
        self,
        plugin: str,
        endpoint: str,
        delivery_id: str | None,
        *,
        headers: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> Accepted: ...

    def claim_due(self, now: float, limit: int) -> list[Delivery]: ...

    def done(self, delivery: int, now: float) -> None: ...

    def failed(self, delivery: int, error: str, now: float) -> State: ...


class SqliteInbox:
    """The :class:`Inbox` in a SQLite file (``":memory:"`` for tests). Opening it hands rows a
    previous process claimed and never finished (it was killed) back to ``pending``: delivery
    is at least once, so a handler should tolerate seeing a delivery id again."""

    def __init__(
        self,
        path: Path | str,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        base_delay_s: float = BASE_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self._db = connect(path)
        self._lock = threading.RLock()
        self.max_attempts = max_attempts
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self._random = random
        with immediate(self._db, self._lock) as db:
            create_schema(db, _SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(deliveries)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in have:
                    db.execute(f"ALTER TABLE deliveries ADD COLUMN {column} {kind}")
            db.execute("UPDATE deliveries SET state = 'pending' WHERE state = 'running'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def accept(
        self,
        plugin: str,
        endpoint: str,
        delivery_id: str | None,
        *,
        headers: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> Accepted:
        """Store a verified delivery, committed when this returns."""
        with immediate(self._db, self._lock) as db:
            if delivery_id is not None:
                found = db.execute(
                    "SELECT id FROM deliveries WHERE plugin = ? AND endpoint = ? "
                    "AND delivery_id = ?",
                    (plugin, endpoint, delivery_id),
                ).fetchone()
                if found is not None:
                    return Accepted(int(found["id"]), duplicate=True)
            cursor = db.execute(
                "INSERT INTO deliveries (plugin, endpoint, delivery_id, received_at, headers, "
                "body, next_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (plugin, endpoint, delivery_id, now, json.dumps(dict(headers)), body, now),
            )
            return Accepted(int(cursor.lastrowid or 0), duplicate=False)

    def claim_due(self, now: float, limit: int) -> list[Delivery]:
        """Up to ``limit`` pending deliveries due by ``now``, oldest first, marked ``running``
        with their attempt counted."""
        with immediate(self._db, self._lock) as db:
            rows = db.execute(
                "SELECT * FROM deliveries WHERE state = 'pending' AND next_at <= ? "
                "ORDER BY next_at, id LIMIT ?",
                (now, limit),
            ).fetchall()
            db.executemany(
                "UPDATE deliveries SET state = 'running', attempts = attempts + 1, next_at = ? "
                "WHERE id = ?",
                [(now, row["id"]) for row in rows],
            )
        return [
            _delivery(row, state="running", attempts=row["attempts"] + 1, next_at=now)
            for row in rows
        ]

    def next_due(self) -> float | None:
        """When the earliest pending delivery is due, or ``None`` when none is pending."""
        with self._lock:
            row = self._db.execute(
                "SELECT min(next_at) AS due FROM deliveries WHERE state = 'pending'"
            ).fetchone()
        return None if row["due"] is None else float(row["due"])

    def done(self, delivery: int, now: float) -> None:
        with immediate(self._db, self._lock) as db:
            db.execute(
                "UPDATE deliveries SET state = 'done', last_error = '', finished_at = ? "
                "WHERE id = ?",
                (now, delivery),
            )

    def prune(self, now: float, retention_s: float) -> int:
        """Forget handled deliveries past their retention and replay window
        (:func:`~plugport.host.inbound._inbox_rules.prunable`); how many. Rows from before
        ``finished_at`` existed count from their last claim."""
        finished_before, received_before = prune_cutoffs(now, retention_s)
        with immediate(self._db, self._lock) as db:
            return db.execute(
                "DELETE FROM deliveries WHERE state = 'done' "
                "AND coalesce(finished_at, next_at) < ? AND received_at < ?",
                (finished_before, received_before),
            ).rowcount

    def failed(self, delivery: int, error: str, now: float) -> State:
        """Record a failed attempt: ``pending`` again after a backoff, or ``dead`` once the
        attempts are used up. ``error`` is shown to the operator: never a secret in it."""
        with immediate(self._db, self._lock) as db:
            row = db.execute("SELECT attempts FROM deliveries WHERE id = ?", (delivery,)).fetchone()
            if row is None:
                return "dead"  # purged while it ran
            state, next_at = after_failure(
                int(row["attempts"]),
                now,
                max_attempts=self.max_attempts,
                base_s=self.base_delay_s,
                cap_s=self.max_delay_s,
                random=self._random,
            )
            db.execute(
                "UPDATE deliveries SET state = ?, next_at = ?, last_error = ? WHERE id = ?",
                (state, next_at, error[:1000], delivery),
            )
        return "dead" if state == "dead" else "pending"

    def get(self, delivery: int) -> Delivery | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM deliveries WHERE id = ?", (delivery,)).fetchone()
        return None if row is None else _delivery(row)

    def list(
        self, plugin: str | None = None, *, state: State | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Newest first; ``plugin`` keeps one plugin's, ``state`` those in that state."""
        where, params = [], []
        if plugin:
            where.append("plugin = ?")
            params.append(plugin)
        if state:
            where.append("state = ?")
            params.append(state)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM deliveries {clause} ORDER BY id DESC LIMIT ?",  # noqa: S608 fixed text
                (*params, limit),
            ).fetchall()
        return [_delivery(row) for row in rows]

    def retry(self, delivery: int, now: float) -> Delivery:
        """A dead delivery made due again with a fresh count of attempts (its last error
        stays until an attempt succeeds)."""
        with immediate(self._db, self._lock) as db:
            row = db.execute("SELECT * FROM deliveries WHERE id = ?", (delivery,)).fetchone()
            if row is None:
                raise NotFoundError(
                    "inbox delivery", str(delivery), "list dead ones with GET .../inbox?state=dead"
                )
            if row["state"] != "dead":
                raise InvalidInputError(
                    f"inbox delivery {delivery} is {row['state']}, not dead; only a dead "
                    "delivery is retried"
                )
            db.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ? WHERE id = ?",
                (now, delivery),
            )
        return _delivery(row, state="pending", attempts=0, next_at=now)

    def purge(self, plugin: str) -> int:
        """Forget every delivery for ``plugin`` (uninstall --purge); how many."""
        with immediate(self._db, self._lock) as db:
            return db.execute("DELETE FROM deliveries WHERE plugin = ?", (plugin,)).rowcount


def purge_inbox(home: Path, plugin: str) -> int:
    """Delete ``plugin``'s deliveries from the inbox of the host home ``home``, if it has one."""
    path = inbox_path(home)
    if not path.is_file():
        return 0
    inbox = SqliteInbox(path)
    try:
        return inbox.purge(plugin)
    finally:
        inbox.close()


def _delivery(
    row: sqlite3.Row,
    *,
    state: State | None = None,
    attempts: int | None = None,
    next_at: float | None = None,
) -> Delivery:
    return Delivery(
        id=int(row["id"]),
        plugin=row["plugin"],
        endpoint=row["endpoint"],
        delivery_id=row["delivery_id"],
        received_at=float(row["received_at"]),
        headers=json.loads(row["headers"]),
        body=bytes(row["body"]),
        attempts=int(row["attempts"] if attempts is None else attempts),
        state=row["state"] if state is None else state,
        next_at=float(row["next_at"] if next_at is None else next_at),
        last_error=row["last_error"],
        finished_at=None if row["finished_at"] is None else float(row["finished_at"]),
    )
