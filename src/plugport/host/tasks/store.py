"""Where tasks are recorded: every task's state, attempts, progress, result or error, and the
recurring schedules. One SQL schema on two engines: a SQLite file in the host home (the
embedded default, written only through :func:`plugport._sqlite.immediate`) or a PostgreSQL
database shared by several worker hosts.

Rule: a record changes state only by a conditional update (``WHERE state = ...``), so a second
copy of a queue message, a late result of a cancelled task or two nodes racing for one task
change nothing: the queue may deliver a task id twice, a record is claimed once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from plugport._sqlite import create_schema
from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.host.tasks._sql import Cursor, Sql, strip_comments

__all__ = [
    "ACTIVE_STATES",
    "FINAL_STATES",
    "STATES",
    "Attempt",
    "NewTask",
    "Schedule",
    "SqlTaskStore",
    "TaskRecord",
    "TaskState",
    "TaskStore",
    "open_task_store",
]

TaskState = Literal["queued", "running", "succeeded", "dead", "cancelled", "rejected"]
STATES: tuple[TaskState, ...] = ("queued", "running", "succeeded", "dead", "cancelled", "rejected")
ACTIVE_STATES: frozenset[str] = frozenset({"queued", "running"})
FINAL_STATES: frozenset[str] = frozenset({"succeeded", "dead", "cancelled", "rejected"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,                 -- JSON, checked against the type's schema
    state TEXT NOT NULL,                   -- queued, running, succeeded, dead, cancelled, rejected
    priority INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,   -- attempts started
    reruns INTEGER NOT NULL DEFAULT 0,     -- attempts cut off by a crash and run again
    max_attempts INTEGER NOT NULL,
    idempotency_key TEXT,
    submitted_at DOUBLE PRECISION NOT NULL,
    submitted_by TEXT NOT NULL DEFAULT '',
    parent TEXT,
    due_at DOUBLE PRECISION NOT NULL,      -- not before (scheduled, or a retry's backoff)
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    lease_until DOUBLE PRECISION,          -- a running task's node renews it, past it: re-run
    node TEXT,
    progress DOUBLE PRECISION,
    progress_message TEXT NOT NULL DEFAULT '',
    result TEXT,
    error TEXT NOT NULL DEFAULT '',
    error_kind TEXT NOT NULL DEFAULT '',
    workflow_run TEXT,
    workflow_step TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS ix_tasks_idempotency
    ON tasks (plugin, type, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS ix_tasks_state ON tasks (state, due_at);
CREATE INDEX IF NOT EXISTS ix_tasks_plugin ON tasks (plugin, state);
CREATE INDEX IF NOT EXISTS ix_tasks_run ON tasks (workflow_run);
CREATE TABLE IF NOT EXISTS task_attempts (
    task_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    node TEXT NOT NULL DEFAULT '',
    started_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    outcome TEXT NOT NULL DEFAULT 'running',  -- running, ok, error, timeout, crash, invalid,
                                              -- interrupted, cancelled, rejected
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (task_id, attempt, started_at)
);
CREATE TABLE IF NOT EXISTS task_schedules (
    name TEXT PRIMARY KEY,
    plugin TEXT NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    cron TEXT NOT NULL,
    priority INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at DOUBLE PRECISION NOT NULL,
    last_fired TEXT NOT NULL DEFAULT ''       -- the minute (YYYY-MM-DDTHH:MM) it last fired
)
"""

_COLUMNS = (
    "id, plugin, type, payload, state, priority, attempts, reruns, max_attempts, "
    "idempotency_key, submitted_at, submitted_by, parent, due_at, started_at, finished_at, "
    "lease_until, node, progress, progress_message, result, error, error_kind, workflow_run, "
    "workflow_step"
)


@dataclass(frozen=True)
class NewTask:
    """A task as submitted, checked, before it is stored."""

    plugin: str
    type: str
    payload: Any
    max_attempts: int
    priority: int = 0
    due_at: float = 0.0
    idempotency_key: str | None = None
    submitted_by: str = ""
    parent: str | None = None
    workflow_run: str | None = None
    workflow_step: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class TaskRecord:
    """A stored task and where it stands."""

    id: str
    plugin: str
    type: str
    payload: Any
    state: TaskState
    priority: int
    attempts: int
    reruns: int
    max_attempts: int
    idempotency_key: str | None
    submitted_at: float
    submitted_by: str
    parent: str | None
    due_at: float
    started_at: float | None
    finished_at: float | None
    lease_until: float | None
    node: str | None
    progress: float | None
    progress_message: str
    result: Any
    error: str
    error_kind: str
    workflow_run: str | None
    workflow_step: str | None

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def public(self, *, payload: bool = True) -> dict[str, Any]:
        """What the operator is shown (API, CLI, pages)."""
        data = {
            "id": self.id,
            "plugin": self.plugin,
            "type": self.type,
            "state": self.state,
            "priority": self.priority,
            "attempts": self.attempts,
            "reruns": self.reruns,
            "max_attempts": self.max_attempts,
            "idempotency_key": self.idempotency_key,
            "submitted_at": self.submitted_at,
            "submitted_by": self.submitted_by,
            "parent": self.parent,
            "due_at": self.due_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "node": self.node,
            "progress": self.progress,
            "progress_message": self.progress_message,
            "result": self.result,
            "error": self.error,
            "error_kind": self.error_kind,
            "workflow_run": self.workflow_run,
            "workflow_step": self.workflow_step,
        }
        if payload:
            data["payload"] = self.payload
        return data


@dataclass(frozen=True)
class Attempt:
    task_id: str
    attempt: int
    node: str
    started_at: float
    finished_at: float | None
    outcome: str
    error: str

    def public(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "node": self.node,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclass(frozen=True)
class Schedule:
    """A recurring task: ``cron`` (five fields, the host's local time) submits ``type`` with
    ``payload`` once per matching minute, whichever node sees it first."""

    name: str
    plugin: str
    type: str
    payload: Any
    cron: str
    priority: int | None
    enabled: bool
    created_at: float
    last_fired: str

    def public(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin": self.plugin,
            "type": self.type,
            "payload": self.payload,
            "cron": self.cron,
            "priority": self.priority,
            "enabled": self.enabled,
            "created_at": self.created_at,
            "last_fired": self.last_fired,
        }


class TaskStore(Protocol):
    """What the queue needs of the records (each method one transaction)."""

    def insert(self, task: NewTask, now: float) -> tuple[TaskRecord, bool]: ...

    def claim(self, task_id: str, node: str, now: float, lease_s: float) -> TaskRecord | None: ...

    def finish(
        self,
        task_id: str,
        node: str,
        state: TaskState,
        now: float,
        *,
        result: Any = None,
        error: str = "",
        error_kind: str = "",
        outcome: str,
    ) -> TaskRecord | None: ...

    def retry_later(
        self,
        task_id: str,
        node: str,
        due_at: float,
        now: float,
        *,
        error: str,
        error_kind: str,
        outcome: str,
    ) -> TaskRecord | None: ...

    def get(self, task_id: str) -> TaskRecord | None: ...


class SqlTaskStore:
    """The :class:`TaskStore` on SQLite (a path, or ``":memory:"``) or PostgreSQL (a
    ``postgresql://`` URL)."""

    def __init__(self, url: str | Path) -> None:
        self._sql = Sql(url)
        self.postgres = self._sql.postgres
        with self._sql.write() as db:
            if self.postgres:  # two nodes creating the schema at once: one waits
                db.execute("SELECT pg_advisory_xact_lock(727001)")
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    db.execute(strip_comments(statement))
            else:
                create_schema(db._target, _SCHEMA)

    def close(self) -> None:
        self._sql.close()

    # --- writing ------------------------------------------------------------------------------

    def insert(self, task: NewTask, now: float) -> tuple[TaskRecord, bool]:
        """Store ``task`` as queued; ``(record, True)``. A task with the same plugin, type and
        idempotency key already stored is returned instead, ``(existing, False)``."""
        with self._sql.write() as db:
            if task.idempotency_key is not None:
                found = db.one(
                    f"SELECT {_COLUMNS} FROM tasks WHERE plugin = ? AND type = ? "  # noqa: S608
                    "AND idempotency_key = ?",
                    (task.plugin, task.type, task.idempotency_key),
                )
                if found is not None:
                    return _record(found), False
            db.execute(
                "INSERT INTO tasks (id, plugin, type, payload, state, priority, max_attempts, "
                "idempotency_key, submitted_at, submitted_by, parent, due_at, workflow_run, "
                "workflow_step) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task.id,
                    task.plugin,
                    task.type,
                    json.dumps(task.payload),
                    task.priority,
                    task.max_attempts,
                    task.idempotency_key,
                    now,
                    task.submitted_by,
                    task.parent,
                    max(task.due_at, now),
                    task.workflow_run,
                    task.workflow_step,
                ),
            )
            row = db.one(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task.id,))  # noqa: S608
        assert row is not None  # noqa: S101
        return _record(row), True

    def claim(self, task_id: str, node: str, now: float, lease_s: float) -> TaskRecord | None:
        """Mark a queued, due task running on ``node`` with its attempt counted; ``None`` when
        it is not queued (a duplicate message, cancelled, done) or not due yet."""
        with self._sql.write() as db:
            row = db.one(
                "UPDATE tasks SET state = 'running', attempts = attempts + 1, started_at = ?, "  # noqa: S608
                "lease_until = ?, node = ?, progress = NULL, progress_message = '' "
                f"WHERE id = ? AND state = 'queued' AND due_at <= ? RETURNING {_COLUMNS}",
                (now, now + lease_s, node, task_id, now + 0.001),
            )
        # The attempt's row is written when it ends (one write per attempt, not two);
        # attempts_of shows a running one from the task itself.
        return None if row is None else _record(row)

    def finish(
        self,
        task_id: str,
        node: str,
        state: TaskState,
        now: float,
        *,
        result: Any = None,
        error: str = "",
        error_kind: str = "",
        outcome: str,
    ) -> TaskRecord | None:
        """Record the end of ``node``'s running attempt; ``None`` when the task is no longer
        running there (cancelled meanwhile, or re-run elsewhere after its lease ran out): the
        late outcome changes nothing."""
        with self._sql.write() as db:
            row = db.one(
                "UPDATE tasks SET state = ?, finished_at = ?, result = ?, error = ?, "  # noqa: S608
                "error_kind = ?, lease_until = NULL, progress = CASE WHEN ? = 'succeeded' "
                "THEN 100 ELSE progress END "
                f"WHERE id = ? AND state = 'running' AND node = ? RETURNING {_COLUMNS}",
                (
                    state,
                    now,
                    None if result is None else json.dumps(result),
                    error[:2000],
                    error_kind,
                    state,
                    task_id,
                    node,
                ),
            )
            if row is not None:
                self._end_attempt(db, row, node, now, outcome, error)
        return None if row is None else _record(row)

    def retry_later(
        self,
        task_id: str,
        node: str,
        due_at: float,
        now: float,
        *,
        error: str,
        error_kind: str,
        outcome: str,
        result: Any = None,
    ) -> TaskRecord | None:
        """A failed attempt that will be tried again at ``due_at`` (``result``: what the
        attempt left to show, e.g. the status a receiver answered)."""
        with self._sql.write() as db:
            row = db.one(
                "UPDATE tasks SET state = 'queued', due_at = ?, error = ?, error_kind = ?, "  # noqa: S608
                "lease_until = NULL, node = NULL, result = ? "
                f"WHERE id = ? AND state = 'running' AND node = ? RETURNING {_COLUMNS}",
                (
                    due_at,
                    error[:2000],
                    error_kind,
                    None if result is None else json.dumps(result),
                    task_id,
                    node,
                ),
            )
            if row is not None:
                self._end_attempt(db, row, node, now, outcome, error)
        return None if row is None else _record(row)

    def postpone(self, task_id: str, node: str, due_at: float) -> TaskRecord | None:
        """Hand a claimed task back to run at ``due_at``, its attempt not counted (it was
        not made: a rate limit said to wait)."""
        with self._sql.write() as db:
            row = db.one(
                "UPDATE tasks SET state = 'queued', attempts = attempts - 1, due_at = ?, "  # noqa: S608
                "lease_until = NULL, node = NULL "
                f"WHERE id = ? AND state = 'running' AND node = ? RETURNING {_COLUMNS}",
                (due_at, task_id, node),
            )
        return None if row is None else _record(row)

    @staticmethod
    def _end_attempt(  # noqa: PLR0917
        db: Cursor, row: Mapping[str, Any], node: str, now: float, outcome: str, error: str
    ) -> None:
        """The row of the attempt that just ended (``row``: the task as it ran)."""
        db.execute(
            "INSERT INTO task_attempts (task_id, attempt, node, started_at, finished_at, "
            "outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                row["id"],
                row["attempts"],
                node,
                row["started_at"] if row["started_at"] is not None else now,
                now,
                outcome,
                error[:2000],
            ),
        )

    def renew(self, node: str, task_ids: Sequence[str], until: float) -> None:
        """Extend the lease of ``node``'s running tasks (its heartbeat)."""
        if not task_ids:
            return
        marks = ",".join("?" * len(task_ids))
        with self._sql.write() as db:
            db.execute(
                f"UPDATE tasks SET lease_until = ? WHERE node = ? AND state = 'running' "  # noqa: S608
                f"AND id IN ({marks})",
                (until, node, *task_ids),
            )

    def requeue_interrupted(self, now: float, *, everyone: bool = False) -> list[TaskRecord]:
        """Running tasks whose node stopped renewing their lease (it was killed), or every
        running task when ``everyone`` (the only node on this store is starting): queued again
        to run at once, each counted as a re-run. Returns them."""
        condition = "state = 'running'" + ("" if everyone else " AND lease_until < ?")
        params: tuple[Any, ...] = () if everyone else (now,)
        with self._sql.write() as db:
            rows = db.rows(
                "UPDATE tasks SET state = 'queued', reruns = reruns + 1, due_at = ?, "  # noqa: S608
                f"lease_until = NULL WHERE {condition} RETURNING {_COLUMNS}",
                (now, *params),
            )
            for row in rows:
                self._end_attempt(
                    db,
                    row,
                    row["node"] or "",
                    now,
                    "interrupted",
                    "the node running it stopped (killed or lost) before it finished",
                )
        return [_record(r) for r in rows]

    def progress(self, task_id: str, plugin: str, percent: float, message: str) -> bool:
        """Record progress of ``plugin``'s running task; ``False`` when it is not one."""
        with self._sql.write() as db:
            return (
                db.count(
                    "UPDATE tasks SET progress = ?, progress_message = ? "
                    "WHERE id = ? AND plugin = ? AND state = 'running'",
                    (percent, message, task_id, plugin),
                )
                == 1
            )

    def cancel(self, task_id: str, now: float, reason: str) -> TaskRecord:
        """Cancel a queued or running task (a running one's result, when it comes, is
        dropped). A task that already ended is refused, naming its state."""
        with self._sql.write() as db:
            before = db.one("SELECT state, node FROM tasks WHERE id = ?", (task_id,))
            row = db.one(
                "UPDATE tasks SET state = 'cancelled', finished_at = ?, error = ?, "  # noqa: S608
                "error_kind = 'cancelled', lease_until = NULL "
                f"WHERE id = ? AND state IN ('queued', 'running') RETURNING {_COLUMNS}",
                (now, reason[:2000], task_id),
            )
            if row is None:
                current = db.one("SELECT state FROM tasks WHERE id = ?", (task_id,))
                if current is None:
                    raise NotFoundError("task", task_id, "list tasks with plugport task list")
                raise ConflictError(
                    "task", task_id, f"is {current['state']}: it cannot be cancelled"
                )
            if before is not None and before["state"] == "running":
                self._end_attempt(db, row, before["node"] or "", now, "cancelled", reason)
        return _record(row)

    def retry(self, task_id: str, now: float) -> TaskRecord:
        """A dead (or cancelled, or rejected) task queued again with a fresh count of
        attempts."""
        with self._sql.write() as db:
            row = db.one(
                "UPDATE tasks SET state = 'queued', attempts = 0, due_at = ?, finished_at = NULL, "  # noqa: S608
                "result = NULL "
                f"WHERE id = ? AND state IN ('dead', 'cancelled', 'rejected') RETURNING {_COLUMNS}",
                (now, task_id),
            )
            if row is None:
                current = db.one("SELECT state FROM tasks WHERE id = ?", (task_id,))
                if current is None:
                    raise NotFoundError("task", task_id, "list tasks with plugport task list")
                raise ConflictError(
                    "task",
                    task_id,
                    f"is {current['state']}: only a dead, cancelled or rejected task is retried",
                )
        return _record(row)

    def purge(self, plugin: str) -> int:
        """Forget every task and schedule of ``plugin`` (uninstall --purge); how many tasks."""
        with self._sql.write() as db:
            db.execute(
                "DELETE FROM task_attempts WHERE task_id IN "
                "(SELECT id FROM tasks WHERE plugin = ?)",
                (plugin,),
            )
            db.execute("DELETE FROM task_schedules WHERE plugin = ?", (plugin,))
            return db.count("DELETE FROM tasks WHERE plugin = ?", (plugin,))

    def prune(self, task_type: str, before: float) -> int:
        """Forget succeeded tasks of ``task_type`` submitted and finished before ``before``."""
        with self._sql.write() as db:
            db.execute(
                "DELETE FROM task_attempts WHERE task_id IN (SELECT id FROM tasks WHERE "
                "type = ? AND state = 'succeeded' AND finished_at < ? AND submitted_at < ?)",
                (task_type, before, before),
            )
            return db.count(
                "DELETE FROM tasks WHERE type = ? AND state = 'succeeded' AND finished_at < ? "
                "AND submitted_at < ?",
                (task_type, before, before),
            )

    # --- schedules ----------------------------------------------------------------------------

    def put_schedule(self, schedule: Schedule) -> None:
        with self._sql.write() as db:
            if db.one("SELECT name FROM task_schedules WHERE name = ?", (schedule.name,)):
                raise ConflictError(
                    "schedule", schedule.name, "exists; remove it first to change it"
                )
            db.execute(
                "INSERT INTO task_schedules (name, plugin, type, payload, cron, priority, "
                "enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule.name,
                    schedule.plugin,
                    schedule.type,
                    json.dumps(schedule.payload),
                    schedule.cron,
                    schedule.priority,
                    1 if schedule.enabled else 0,
                    schedule.created_at,
                ),
            )

    def delete_schedule(self, name: str) -> None:
        with self._sql.write() as db:
            if db.count("DELETE FROM task_schedules WHERE name = ?", (name,)) != 1:
                raise NotFoundError("schedule", name)

    def schedules(self) -> list[Schedule]:
        with self._sql.read() as db:
            rows = db.rows("SELECT * FROM task_schedules ORDER BY name")
        return [_schedule(r) for r in rows]

    def mark_fired(self, name: str, minute: str) -> bool:
        """Claim ``minute`` for schedule ``name``: ``True`` once, for the node that fires it."""
        with self._sql.write() as db:
            return (
                db.count(
                    "UPDATE task_schedules SET last_fired = ? WHERE name = ? AND last_fired < ?",
                    (minute, name, minute),
                )
                == 1
            )

    # --- reading ------------------------------------------------------------------------------

    def get(self, task_id: str) -> TaskRecord | None:
        with self._sql.read() as db:
            row = db.one(f"SELECT {_COLUMNS} FROM tasks WHERE id = ?", (task_id,))  # noqa: S608
        return None if row is None else _record(row)

    def states(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        marks = ",".join("?" * len(task_ids))
        with self._sql.read() as db:
            rows = db.rows(
                f"SELECT id, state FROM tasks WHERE id IN ({marks})",  # noqa: S608
                tuple(task_ids),
            )
        return {r["id"]: r["state"] for r in rows}

    def find(
        self,
        *,
        plugin: str | None = None,
        type: str | None = None,
        state: str | None = None,
        workflow_run: str | None = None,
        limit: int = 100,
        before: float | None = None,
    ) -> list[TaskRecord]:
        """Newest first, filtered."""
        if state is not None and state not in STATES:
            raise InvalidInputError(f"state must be one of {', '.join(STATES)}, not {state!r}")
        where: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("plugin", plugin),
            ("type", type),
            ("state", state),
            ("workflow_run", workflow_run),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before is not None:
            where.append("submitted_at < ?")
            params.append(before)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._sql.read() as db:
            rows = db.rows(
                f"SELECT {_COLUMNS} FROM tasks {clause} "  # noqa: S608 fixed text
                "ORDER BY submitted_at DESC, id LIMIT ?",
                (*params, max(1, min(limit, 1000))),
            )
        return [_record(r) for r in rows]

    def has_work(self) -> bool:
        """Whether any task is queued or running (a node should be started to take it)."""
        with self._sql.read() as db:
            row = db.one(
                "SELECT 1 AS found FROM tasks WHERE state IN ('queued', 'running') LIMIT 1"
            )
        return row is not None

    def queued_ids(self, *, due_by: float | None = None) -> list[tuple[str, int, float]]:
        """``(id, priority, due_at)`` of every queued task (reconciling with the queue)."""
        with self._sql.read() as db:
            rows = db.rows("SELECT id, priority, due_at FROM tasks WHERE state = 'queued'")
        return [
            (r["id"], int(r["priority"]), float(r["due_at"]))
            for r in rows
            if due_by is None or r["due_at"] <= due_by
        ]

    def attempts_of(self, task_id: str) -> list[Attempt]:
        """Every ended attempt, then the running one (from the task) if it runs."""
        record = self.get(task_id)
        with self._sql.read() as db:
            rows = db.rows(
                "SELECT * FROM task_attempts WHERE task_id = ? ORDER BY started_at, attempt",
                (task_id,),
            )
        attempts = [
            Attempt(
                r["task_id"],
                int(r["attempt"]),
                r["node"],
                float(r["started_at"]),
                None if r["finished_at"] is None else float(r["finished_at"]),
                r["outcome"],
                r["error"],
            )
            for r in rows
        ]
        if record is not None and record.state == "running":
            attempts.append(
                Attempt(
                    record.id,
                    record.attempts,
                    record.node or "",
                    record.started_at or 0.0,
                    None,
                    "running",
                    "",
                )
            )
        return attempts

    def counts(self) -> dict[tuple[str, str, str], int]:
        """``(plugin, type, state) -> tasks`` (queue depth and totals for the monitor)."""
        with self._sql.read() as db:
            rows = db.rows(
                "SELECT plugin, type, state, count(*) AS n FROM tasks GROUP BY plugin, type, state"
            )
        return {(r["plugin"], r["type"], r["state"]): int(r["n"]) for r in rows}


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _record(row: Mapping[str, Any]) -> TaskRecord:
    def number(name: str) -> float | None:
        return None if row[name] is None else float(row[name])

    return TaskRecord(
        id=row["id"],
        plugin=row["plugin"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        state=row["state"],
        priority=int(row["priority"]),
        attempts=int(row["attempts"]),
        reruns=int(row["reruns"]),
        max_attempts=int(row["max_attempts"]),
        idempotency_key=row["idempotency_key"],
        submitted_at=float(row["submitted_at"]),
        submitted_by=row["submitted_by"],
        parent=row["parent"],
        due_at=float(row["due_at"]),
        started_at=number("started_at"),
        finished_at=number("finished_at"),
        lease_until=number("lease_until"),
        node=row["node"],
        progress=number("progress"),
        progress_message=row["progress_message"],
        result=_loads(row["result"]),
        error=row["error"],
        error_kind=row["error_kind"],
        workflow_run=row["workflow_run"],
        workflow_step=row["workflow_step"],
    )


def _schedule(row: Mapping[str, Any]) -> Schedule:
    return Schedule(
        name=row["name"],
        plugin=row["plugin"],
        type=row["type"],
        payload=json.loads(row["payload"]),
        cron=row["cron"],
        priority=None if row["priority"] is None else int(row["priority"]),
        enabled=bool(row["enabled"]),
        created_at=float(row["created_at"]),
        last_fired=row["last_fired"],
    )


def open_task_store(url: str | Path) -> SqlTaskStore:
    return SqlTaskStore(url)
