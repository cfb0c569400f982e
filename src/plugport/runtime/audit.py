"""The runtime's audit trail: every decision the host takes about a plugin (activated, denied a
capability, killed, quarantined …) is stored for later questions and logged as it happens."""

from __future__ import annotations

import collections
import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from plugport.errors import InvalidInputError
from plugport.runtime._db import RuntimeDatabase

__all__ = [
    "AUDIT_KINDS",
    "FAILURE_KINDS",
    "MAX_QUERY_LIMIT",
    "AuditEvent",
    "AuditLog",
    "MemoryAuditLog",
    "SqliteAuditLog",
    "last_failure",
]

AUDIT_KINDS = (
    "activate",
    "deactivate",
    "deny",
    "refuse",
    "kill",
    "crash",
    "restart",
    "quarantine",
    "release",
    "limit",
    "credential",
    "private-target",
    "mail",
    "webhook",
    "task",
    "problem",  # a finding raised (runtime/problems.py); capability: its kind
    "problem-cleared",
    "swap",
    "swap-rolled-back",
)
# Kinds that mean the host stopped a plugin from doing something, or the plugin failed: an
# operator scanning the log at WARNING should see them without the routine traffic.
_WARNING_KINDS = frozenset(
    {"deny", "refuse", "kill", "crash", "quarantine", "limit", "problem", "swap-rolled-back"}
)
MAX_QUERY_LIMIT = 10_000
FAILURE_KINDS = ("crash", "kill", "limit", "refuse", "quarantine")
"""Kinds that say a plugin failed or was stopped: what a status shows as its last error."""

logger = logging.getLogger("plugport.audit")


@dataclass(frozen=True)
class AuditEvent:
    """One decision about one plugin. ``at`` and ``id`` are left at 0 by the caller and filled
    in by :meth:`AuditLog.record`, so callers never need a clock or a counter."""

    plugin: str
    kind: str  # one of AUDIT_KINDS
    reason: str  # a sentence for a person
    capability: str = ""  # for "deny": the capability asked for, e.g. "net.fetch"
    at: float = 0.0  # epoch seconds
    id: int = 0


class AuditLog(Protocol):
    """Where audit events go. :class:`MemoryAuditLog` is the fake for tests and hosts without
    a database; :class:`SqliteAuditLog` keeps them in the host's runtime database."""

    def record(self, event: AuditEvent) -> AuditEvent:
        """Store ``event`` and return it as stored, with ``id`` and ``at`` filled in."""
        ...

    def record_many(self, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        """Store ``events`` in one write (all or none), in order; returns them as stored. For
        a busy path, such as one row per webhook attempt, where a commit per row would cost
        more than the work it records."""
        ...

    def query(
        self,
        *,
        plugin: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Matching events, newest (last recorded) first; ``since`` is inclusive, on ``at``."""
        ...


def _prepare(event: AuditEvent) -> AuditEvent:
    """Check ``event`` and stamp its time. An unknown kind is the host's own bug, never user
    input, so it is a ValueError rather than a :class:`~plugport.errors.PlugportError`."""
    if event.kind not in AUDIT_KINDS:
        raise ValueError(f"unknown audit kind {event.kind!r}; expected one of {AUDIT_KINDS}")
    return event if event.at else dataclasses.replace(event, at=time.time())


def _check_limit(limit: int) -> None:
    # ``limit`` reaches here from the CLI and the API, so a bad one is the user's to fix.
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_QUERY_LIMIT:
        raise InvalidInputError(
            f"limit must be an integer from 1 to {MAX_QUERY_LIMIT}, not {limit!r}"
        )


def _announce(event: AuditEvent) -> None:
    """Mirror a stored event to the ``plugport.audit`` logger, with its fields in
    ``extra["plugport_audit"]`` for structured handlers."""
    level = logging.WARNING if event.kind in _WARNING_KINDS else logging.INFO
    if not logger.isEnabledFor(level):
        return
    target = f"{event.plugin} {event.capability}" if event.capability else event.plugin
    logger.log(
        level,
        "audit %s %s: %s",
        event.kind,
        target,
        event.reason,
        # Its fields are flat values: a shallow copy (asdict deep-copies, at 20x the cost).
        extra={"plugport_audit": dict(vars(event))},
    )


def _matches(event: AuditEvent, plugin: str | None, kind: str | None, since: float | None) -> bool:
    return (
        (plugin is None or event.plugin == plugin)
        and (kind is None or event.kind == kind)
        and (since is None or event.at >= since)
    )


class MemoryAuditLog:
    """The in-memory :class:`AuditLog`: the last ``max_events`` events, oldest dropped first."""

    def __init__(self, *, max_events: int = 10_000) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, not {max_events}")
        self._events: collections.deque[AuditEvent] = collections.deque(maxlen=max_events)
        self._next_id = 1
        self._lock = threading.Lock()

    def record(self, event: AuditEvent) -> AuditEvent:
        event = _prepare(event)
        with self._lock:
            event = dataclasses.replace(event, id=self._next_id)
            self._next_id += 1
            self._events.append(event)
        _announce(event)
        return event

    def record_many(self, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        prepared = [_prepare(event) for event in events]  # an unknown kind stores none
        with self._lock:
            stored = [
                dataclasses.replace(event, id=self._next_id + i) for i, event in enumerate(prepared)
            ]
            self._next_id += len(stored)
            self._events.extend(stored)
        for event in stored:
            _announce(event)
        return stored

    def query(
        self,
        *,
        plugin: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        _check_limit(limit)
        with self._lock:
            newest_first = list(reversed(self._events))
        found = (e for e in newest_first if _matches(e, plugin, kind, since))
        return [e for _, e in zip(range(limit), found, strict=False)]


_SCHEMA = (
    # AUTOINCREMENT: ids are never reused after pruning, so they stay contiguous and the prune
    # below can cut by id alone.
    """CREATE TABLE IF NOT EXISTS audit_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        plugin TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT NOT NULL,
        capability TEXT NOT NULL DEFAULT '',
        at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_events_plugin_id ON audit_events (plugin, id)",
)


# In AuditEvent's field order, so a row unpacks straight into it.
_COLUMNS = "plugin, kind, reason, capability, at, id"
_Row = tuple[str, str, str, str, float, int]


class SqliteAuditLog:
    """The :class:`AuditLog` in the host's :class:`RuntimeDatabase`, kept to the newest
    ``max_events`` rows so a plugin that is denied in a loop cannot fill the disk."""

    def __init__(self, db: RuntimeDatabase, *, max_events: int = 100_000) -> None:
        if max_events < 1:
            raise ValueError(f"max_events must be at least 1, not {max_events}")
        self._db = db
        self._max_events = max_events
        with db.transaction() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)

    def record(self, event: AuditEvent) -> AuditEvent:
        event = _prepare(event)
        with self._db.transaction() as connection:
            (new_id,) = connection.execute(
                "INSERT INTO audit_events (plugin, kind, reason, capability, at)"
                " VALUES (?, ?, ?, ?, ?) RETURNING id",
                (event.plugin, event.kind, event.reason, event.capability, event.at),
            ).fetchone()
            # A range delete on the primary key: one index seek, usually finding nothing, so
            # pruning on every insert costs less than counting rows would.
            connection.execute(
                "DELETE FROM audit_events WHERE id <= ?", (new_id - self._max_events,)
            )
        event = dataclasses.replace(event, id=new_id)
        _announce(event)
        return event

    def record_many(self, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        prepared = [_prepare(event) for event in events]  # an unknown kind stores none
        if not prepared:
            return []
        stored: list[AuditEvent] = []
        with self._db.transaction() as connection:
            for event in prepared:
                (new_id,) = connection.execute(
                    "INSERT INTO audit_events (plugin, kind, reason, capability, at)"
                    " VALUES (?, ?, ?, ?, ?) RETURNING id",
                    (event.plugin, event.kind, event.reason, event.capability, event.at),
                ).fetchone()
                stored.append(dataclasses.replace(event, id=new_id))
            connection.execute(
                "DELETE FROM audit_events WHERE id <= ?", (stored[-1].id - self._max_events,)
            )
        for event in stored:
            _announce(event)
        return stored

    def query(
        self,
        *,
        plugin: str | None = None,
        kind: str | None = None,
        since: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        _check_limit(limit)
        clauses: list[str] = []
        parameters: list[object] = []
        for clause, value in (("plugin = ?", plugin), ("kind = ?", kind), ("at >= ?", since)):
            if value is not None:
                clauses.append(clause)
                parameters.append(value)
        # Only the fixed clauses above are joined into the SQL; every value is bound.
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = f"SELECT {_COLUMNS} FROM audit_events {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        rows = self._db.execute(sql, (*parameters, limit))
        return [AuditEvent(*cast(_Row, row)) for row in rows]


def last_failure(log: AuditLog, plugin: str, *, since: float | None = None) -> AuditEvent | None:
    """The newest crash, kill, limit, refusal or quarantine of ``plugin`` (at or after
    ``since``), read from the log rather than from a worker's record, so a process that never
    ran the plugin (``plugport status`` after ``plugport run``) sees it too."""
    found = [
        event
        for kind in FAILURE_KINDS
        for event in log.query(plugin=plugin, kind=kind, since=since, limit=1)
    ]
    return max(found, key=lambda e: (e.at, e.id), default=None)
