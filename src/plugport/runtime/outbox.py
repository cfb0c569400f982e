"""The durable outbox of outbound webhook deliveries: ``<state_dir>/outbox.sqlite``.

Rule: a delivery is committed here before ``api.webhooks.deliver`` returns, and it leaves the
``pending``/``sending`` states only when an attempt's result is committed (``done``, a later
``retry_at``, or ``dead``). A host killed mid-send finds the row still ``sending`` and
:meth:`SqliteOutbox.recover` makes it due again, so every delivery is sent at least once
(receivers deduplicate on ``X-Plugport-Delivery``). The :class:`Outbox` interface is what the
sender uses, so the task queue (issue 19) can take its place.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from plugport._sqlite import connect, create_schema, immediate
from plugport.errors import InvalidInputError, NotFoundError

__all__ = ["OUTBOX_FILE", "STATES", "Delivery", "NewDelivery", "Outbox", "SqliteOutbox"]

OUTBOX_FILE = "outbox.sqlite"
"""Its file in the runtime's state directory."""

State = Literal["pending", "sending", "done", "dead"]
STATES: tuple[State, ...] = ("pending", "sending", "done", "dead")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    target TEXT NOT NULL,
    body BLOB NOT NULL,
    headers TEXT NOT NULL,
    sign_with TEXT,
    idempotency_key TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    last_status INTEGER,
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_deliveries_idempotency
    ON deliveries (plugin, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_deliveries_due ON deliveries (state, next_at);
CREATE INDEX IF NOT EXISTS ix_deliveries_plugin ON deliveries (plugin, state)
"""
_COLUMNS = (
    "id, plugin, target, body, headers, sign_with, idempotency_key, state, attempts, next_at,"
    " created_at, updated_at, last_status, last_error"
)

_CLAIM = (  # fixed text, no input in it
    "UPDATE deliveries SET state = 'sending', updated_at = ? WHERE id IN ("  # noqa: S608
    " SELECT id FROM deliveries WHERE state = 'pending' AND next_at <= ?"
    f" ORDER BY next_at LIMIT ?) RETURNING {_COLUMNS}"
)


@dataclass(frozen=True)
class NewDelivery:
    """A delivery as the plugin asked for it, checked, before it is stored."""

    id: str
    plugin: str
    target: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    sign_with: str | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Delivery:
    """A stored delivery and where it stands."""

    id: str
    plugin: str
    target: str
    body: bytes
    headers: tuple[tuple[str, str], ...]
    sign_with: str | None
    idempotency_key: str | None
    state: State
    attempts: int
    next_at: float
    created_at: float
    updated_at: float
    last_status: int | None
    last_error: str

    def public(self) -> dict[str, object]:
        """What the operator sees (API, CLI): everything but the body."""
        return {
            "id": self.id,
            "plugin": self.plugin,
            "target": self.target,
            "state": self.state,
            "attempts": self.attempts,
            "next_at": self.next_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "signed": self.sign_with is not None,
            "bytes": len(self.body),
        }


class Outbox(Protocol):
    """Where deliveries wait. Every method is one transaction."""

    def enqueue(self, deliveries: Sequence[NewDelivery], now: float) -> list[str]:
        """Store ``deliveries`` as due now, in one transaction; returns their ids (for a
        repeated idempotency key, the id of the delivery already stored)."""
        ...

    def claim_due(self, now: float, limit: int) -> list[Delivery]:
        """Up to ``limit`` due deliveries, oldest first, marked ``sending``."""
        ...

    def done(self, delivery_id: str, status: int, now: float) -> None: ...

    def retry_at(
        self,
        delivery_id: str,
        at: float,
        now: float,
        *,
        status: int | None = None,
        error: str = "",
        attempted: bool = True,
    ) -> None:
        """Due again at ``at``; ``attempted=False`` (a rate limit) does not count an attempt."""
        ...

    def dead(self, delivery_id: str, now: float, *, status: int | None, error: str) -> None: ...


class SqliteOutbox:
    """The outbox in one SQLite file, written only through :func:`plugport._sqlite.immediate`.

    ``synchronous=NORMAL`` with WAL: a committed row survives the host process dying (``kill
    -9``) without an fsync per commit; only losing the machine's power can lose the last
    commits."""

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._connection = connect(path)
        self._connection.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.Lock()
        with immediate(self._connection, self._lock) as connection:
            create_schema(connection, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    # --- the sender's interface ------------------------------------------------------------

    def enqueue(self, deliveries: Sequence[NewDelivery], now: float) -> list[str]:
        ids: list[str] = []
        with immediate(self._connection, self._lock) as connection:
            for d in deliveries:
                cursor = connection.execute(
                    "INSERT OR IGNORE INTO deliveries (id, plugin, target, body, headers,"
                    " sign_with, idempotency_key, state, next_at, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                    (
                        d.id,
                        d.plugin,
                        d.target,
                        d.body,
                        json.dumps(d.headers),
                        d.sign_with,
                        d.idempotency_key,
                        now,
                        now,
                        now,
                    ),
                )
                if cursor.rowcount == 1 or d.idempotency_key is None:
                    ids.append(d.id)
                    continue
                (existing,) = connection.execute(
                    "SELECT id FROM deliveries WHERE plugin = ? AND idempotency_key = ?",
                    (d.plugin, d.idempotency_key),
                ).fetchone()
                ids.append(existing)
        return ids

    def claim_due(self, now: float, limit: int) -> list[Delivery]:
        if limit <= 0:
            return []
        with immediate(self._connection, self._lock) as connection:
            rows = connection.execute(
                _CLAIM,
                (now, now, limit),
            ).fetchall()
        return sorted(map(_delivery, rows), key=lambda d: d.next_at)

    def done(self, delivery_id: str, status: int, now: float) -> None:
        self.done_many([(delivery_id, status)], now)

    def done_many(self, answered: Sequence[tuple[str, int]], now: float) -> None:
        """Several deliveries answered 2xx, in one transaction. The body has done its job;
        the row stays (without it) for the operator's list."""
        with immediate(self._connection, self._lock) as connection:
            connection.executemany(
                "UPDATE deliveries SET state = 'done', attempts = attempts + 1, body = x'',"
                " last_status = ?, last_error = '', updated_at = ? WHERE id = ?",
                [(status, now, delivery_id) for delivery_id, status in answered],
            )

    def retry_at(
        self,
        delivery_id: str,
        at: float,
        now: float,
        *,
        status: int | None = None,
        error: str = "",
        attempted: bool = True,
    ) -> None:
        if attempted:
            self._update(
                "UPDATE deliveries SET state = 'pending', attempts = attempts + 1, next_at = ?,"
                " last_status = ?, last_error = ?, updated_at = ? WHERE id = ?",
                (at, status, error, now, delivery_id),
            )
        else:
            self._update(
                "UPDATE deliveries SET state = 'pending', next_at = ?, updated_at = ? WHERE id = ?",
                (at, now, delivery_id),
            )

    def dead(self, delivery_id: str, now: float, *, status: int | None, error: str) -> None:
        self._update(
            "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_status = ?,"
            " last_error = ?, updated_at = ? WHERE id = ?",
            (status, error, now, delivery_id),
        )

    # --- the operator's -----------------------------------------------------------------------

    def recover(self, now: float) -> int:
        """Make the deliveries a dead host was sending due again; returns how many."""
        with immediate(self._connection, self._lock) as connection:
            cursor = connection.execute(
                "UPDATE deliveries SET state = 'pending', next_at = ?, updated_at = ?"
                " WHERE state = 'sending'",
                (now, now),
            )
            return cursor.rowcount

    def next_due(self) -> float | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT min(next_at) FROM deliveries WHERE state = 'pending'"
            ).fetchone()
        return None if row[0] is None else float(row[0])

    def get(self, delivery_id: str) -> Delivery:
        with self._lock:
            row = self._connection.execute(
                f"SELECT {_COLUMNS} FROM deliveries WHERE id = ?",  # noqa: S608 fixed text
                (delivery_id,),
            ).fetchone()
        if row is None:
            raise NotFoundError(
                "delivery", delivery_id, "list them with: plugport webhooks dead --home HOME"
            )
        return _delivery(row)

    def list(
        self, *, state: str | None = None, plugin: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Deliveries newest first, optionally of one state and one plugin."""
        if state is not None and state not in STATES:
            raise InvalidInputError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        if not 1 <= limit <= 1000:
            raise InvalidInputError(f"limit must be 1-1000, not {limit}")
        clauses, values = [], []
        for column, value in (("state", state), ("plugin", plugin)):
            if value is not None:
                clauses.append(f"{column} = ?")
                values.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._connection.execute(
                f"SELECT {_COLUMNS} FROM deliveries{where} ORDER BY updated_at DESC LIMIT ?",  # noqa: S608 fixed text
                (*values, limit),
            ).fetchall()
        return [_delivery(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT state, count(*) FROM deliveries GROUP BY state"
            ).fetchall()
        return dict.fromkeys(STATES, 0) | {r[0]: int(r[1]) for r in rows}

    def redeliver(self, delivery_id: str, now: float) -> Delivery:
        """A dead delivery made due again with a fresh count of attempts."""
        with immediate(self._connection, self._lock) as connection:
            row = connection.execute(
                "SELECT state FROM deliveries WHERE id = ?", (delivery_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError(
                    "delivery", delivery_id, "list dead ones with: plugport webhooks dead"
                )
            if row[0] != "dead":
                raise InvalidInputError(
                    f"delivery {delivery_id} is {row[0]}, not dead; only a dead delivery is "
                    "redelivered"
                )
            connection.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_at = ?,"
                " updated_at = ? WHERE id = ?",
                (now, now, delivery_id),
            )
        return self.get(delivery_id)

    def prune_done(self, before: float, *, batch: int = 1000) -> int:
        """Delete the ``done`` rows last updated before ``before``; returns how many. In
        transactions of at most ``batch`` rows, so a large backlog never holds the writer
        long. A ``done`` row's ``next_at`` is never after its ``updated_at``, so the
        ``(state, next_at)`` index narrows the search without an index of its own (one more
        index would cost every update)."""
        removed = 0
        while True:
            with immediate(self._connection, self._lock) as connection:
                count = connection.execute(
                    "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries"
                    " WHERE state = 'done' AND next_at < ? AND updated_at < ? LIMIT ?)",
                    (before, before, batch),
                ).rowcount
            removed += count
            if count < batch:
                return removed

    def purge(self, plugin: str) -> int:
        """Forget every delivery of ``plugin`` (uninstall --purge); returns how many."""
        with immediate(self._connection, self._lock) as connection:
            return connection.execute("DELETE FROM deliveries WHERE plugin = ?", (plugin,)).rowcount

    def _update(self, sql: str, values: tuple[object, ...]) -> None:
        with immediate(self._connection, self._lock) as connection:
            connection.execute(sql, values)


def _delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        plugin=row["plugin"],
        target=row["target"],
        body=bytes(row["body"]),
        headers=tuple((str(k), str(v)) for k, v in json.loads(row["headers"])),
        sign_with=row["sign_with"],
        idempotency_key=row["idempotency_key"],
        state=row["state"],
        attempts=int(row["attempts"]),
        next_at=float(row["next_at"]),
        created_at=float(row["created_at"]),
        updated_at=float(row["updated_at"]),
        last_status=row["last_status"],
        last_error=row["last_error"],
    )
