"""Workflow runs: a DAG of task steps (:mod:`~plugport.host.tasks._workflow_rules`) run on the
host's task queue, with every run and step stored next to the tasks (SQLite in the home, or
the queue's PostgreSQL database), so a run resumes after a restart.

Rules: a step is claimed (``pending`` -> ``queued``, a conditional update) before its task is
submitted, and submitted with the idempotency key ``workflow:<run>:<step>``; a crash between
the two, a replayed finish or two nodes finishing steps at once therefore never queues a step
twice: the claim admits one submitter, and a resubmit after a crash returns the task already
stored. Every move of a run is an update conditional on the state it leaves, so a decision
taken twice changes nothing the second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugport._sqlite import create_schema
from plugport._task_rules import check_document
from plugport.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PlugportError,
    TaskValidationError,
    WorkflowError,
)
from plugport.host.tasks._sql import Cursor, Sql, strip_comments
from plugport.host.tasks._workflow_rules import (
    FINAL_RUN_STATES,
    RUN_STATES,
    WorkflowDefinition,
    advance,
    build_payload,
    check_input,
    parse_workflow,
)
from plugport.host.tasks.queue import TaskQueue
from plugport.host.tasks.store import TaskRecord
from plugport.runtime.audit import AuditEvent

__all__ = ["StepRun", "WorkflowRun", "WorkflowRunner"]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workflow_runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    definition TEXT NOT NULL,             -- the workflow document (JSON), parsed again on load
    input TEXT NOT NULL,                  -- JSON
    state TEXT NOT NULL,                  -- running, succeeded, failed, cancelled,
                                          -- compensating, compensated
    created_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION,
    error TEXT NOT NULL DEFAULT '',
    submitted_by TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS ix_workflow_runs_state ON workflow_runs (state, created_at);
CREATE TABLE IF NOT EXISTS workflow_steps (
    run_id TEXT NOT NULL,
    step TEXT NOT NULL,
    plugin TEXT NOT NULL DEFAULT '',      -- the plugin whose task type the step runs
    state TEXT NOT NULL,                  -- pending, queued, running, succeeded, failed,
                                          -- skipped, cancelled, compensating, compensated
    task_id TEXT,
    compensation_task_id TEXT,
    compensation_failed INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT '',
    result TEXT,                          -- JSON: the task's result
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    PRIMARY KEY (run_id, step)
)
"""

_TASK_TO_STEP = {"succeeded": "succeeded", "cancelled": "cancelled"}
"""A finished step task's state as the step's; dead and rejected tasks are failed steps."""


@dataclass(frozen=True)
class StepRun:
    """One step of one run."""

    step: str
    plugin: str
    state: str
    task_id: str | None
    compensation_task_id: str | None
    compensation_failed: bool
    error: str
    result: Any
    started_at: float | None
    finished_at: float | None


@dataclass(frozen=True)
class WorkflowRun:
    """A run and where each of its steps stands."""

    id: str
    workflow: str
    definition: WorkflowDefinition
    input: Any
    state: str
    created_at: float
    finished_at: float | None
    error: str
    submitted_by: str
    steps: Mapping[str, StepRun]

    @property
    def final(self) -> bool:
        return self.state in FINAL_RUN_STATES

    def states(self) -> dict[str, str]:
        return {name: step.state for name, step in self.steps.items()}

    def public(self) -> dict[str, Any]:
        """JSON for the API, the CLI and the UI's graph: each step with its ``needs``."""
        steps = []
        for name in self.definition.order:
            spec = self.definition.steps[name]
            step = self.steps[name]
            steps.append(
                {
                    **spec.public(),
                    "plugin": step.plugin or spec.plugin,
                    "state": step.state,
                    "task_id": step.task_id,
                    "compensation_task_id": step.compensation_task_id,
                    "error": step.error,
                    "result": step.result,
                    "started_at": step.started_at,
                    "finished_at": step.finished_at,
                }
            )
        return {
            "id": self.id,
            "workflow": self.workflow,
            "description": self.definition.description,
            "state": self.state,
            "input": self.input,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "submitted_by": self.submitted_by,
            "steps": steps,
        }


class WorkflowRunner:
    """Starts, advances, cancels and resumes workflow runs on ``queue``. ``sql_url``: the
    task store's database (a SQLite path, ``":memory:"``, or a PostgreSQL URL)."""

    def __init__(
        self,
        queue: TaskQueue,
        sql_url: str | Path,
        *,
        clock: Callable[[], float] = time.time,
        sweep_every_s: float = 30.0,
    ) -> None:
        self.queue = queue
        self._sql = Sql(sql_url)
        self._clock = clock
        self._sweep_every_s = sweep_every_s
        self._lock = asyncio.Lock()
        self._definitions: dict[str, WorkflowDefinition] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._sweeper: asyncio.Task[None] | None = None
        with self._sql.write() as db:
            if self._sql.postgres:  # two nodes creating the schema at once: one waits
                db.execute("SELECT pg_advisory_xact_lock(727002)")
                for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
                    db.execute(strip_comments(statement))
            else:
                create_schema(db._target, _SCHEMA)
        self._unsubscribe: Callable[[], None] | None = queue.on_finished(self._task_finished)

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """The host's start-up: resume what a stopped host left running, then look again
        every ``sweep_every_s`` (a step another node finished while its process died before
        advancing the run)."""
        await self.resume()
        if self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep(), name="plugport-workflows")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._sql.close()

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_every_s)
            try:
                await self.resume()
            except Exception:
                log.exception("resuming workflow runs")

    # --- the application's calls --------------------------------------------------------------

    async def start(
        self,
        workflow: WorkflowDefinition | Mapping[str, Any] | str | Path,
        input: Any = None,
        *,
        submitted_by: str = "host",
    ) -> WorkflowRun:
        """With ``workflow``: start a run of it (a :class:`WorkflowDefinition`, a dict, TOML
        text, or the ``Path`` of a ``.toml`` file; a ``str`` without a newline or ``=`` is a
        path too) on ``input``. Checked before anything is stored: the document, ``input``
        against its ``[input]`` schema, every step's task type declared by one enabled plugin,
        and the payloads without references against their types' schemas; a refusal is a
        :class:`WorkflowError` naming the step and field, and is audited."""
        try:
            definition = self._definition_from(workflow)
            check_input(definition, input)
            plugins = self._resolve(definition)
        except WorkflowError as exc:
            self._audit([""], f"workflow {exc.workflow or '?'} refused: {exc}")
            raise
        run_id = uuid.uuid4().hex
        now = self._clock()
        with self._sql.write() as db:
            db.execute(
                "INSERT INTO workflow_runs (id, workflow, definition, input, state, created_at, "
                "submitted_by) VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (
                    run_id,
                    definition.name,
                    json.dumps(definition.document),
                    json.dumps(input),
                    now,
                    submitted_by[:200],
                ),
            )
            for name in definition.order:
                db.execute(
                    "INSERT INTO workflow_steps (run_id, step, plugin, state) "
                    "VALUES (?, ?, ?, 'pending')",
                    (run_id, name, plugins[name]),
                )
        self._definitions[run_id] = definition
        self._audit(
            sorted(set(plugins.values())),
            f"workflow run {run_id} ({definition.name}) started by {submitted_by}",
        )
        await self.advance(run_id)
        return self.status(run_id)

    def status(self, run_id: str) -> WorkflowRun:
        """The run with its steps; a step whose task is running shows ``running``."""
        with self._sql.read() as db:
            row = db.one("SELECT * FROM workflow_runs WHERE id = ?", (run_id,))
            if row is None:
                raise NotFoundError("workflow run", run_id, "list runs with host.workflows.runs()")
            steps = db.rows("SELECT * FROM workflow_steps WHERE run_id = ?", (run_id,))
        queued = [s["task_id"] for s in steps if s["state"] == "queued" and s["task_id"]]
        running = {t for t, state in self.queue.store.states(queued).items() if state == "running"}
        return self._run(row, steps, running)

    def runs(self, state: str | None = None, limit: int = 100) -> list[WorkflowRun]:
        """Newest first."""
        if state is not None and state not in RUN_STATES:
            raise InvalidInputError(f"state must be one of {', '.join(RUN_STATES)}, not {state!r}")
        where, params = ("WHERE state = ?", (state,)) if state else ("", ())
        with self._sql.read() as db:
            rows = db.rows(
                f"SELECT id FROM workflow_runs {where} "  # noqa: S608 fixed text
                "ORDER BY created_at DESC, id LIMIT ?",
                (*params, max(1, min(limit, 1000))),
            )
        return [self.status(r["id"]) for r in rows]

    async def cancel(self, run_id: str, *, reason: str = "cancelled") -> WorkflowRun:
        """Cancel a running (or compensating) run: its pending steps are cancelled, its
        queued and running step tasks are cancelled through the queue (a running attempt's
        result is dropped when it comes). A run that ended is refused, naming its state."""
        now = self._clock()
        with self._sql.write() as db:
            changed = db.count(
                "UPDATE workflow_runs SET state = 'cancelled', finished_at = ?, error = ? "
                "WHERE id = ? AND state IN ('running', 'compensating')",
                (now, reason[:2000], run_id),
            )
            if not changed:
                row = db.one("SELECT state FROM workflow_runs WHERE id = ?", (run_id,))
                if row is None:
                    raise NotFoundError("workflow run", run_id)
                raise ConflictError(
                    "workflow run", run_id, f"is {row['state']}: it cannot be cancelled"
                )
            db.execute(
                "UPDATE workflow_steps SET state = 'cancelled', finished_at = ? "
                "WHERE run_id = ? AND state = 'pending'",
                (now, run_id),
            )
            tasks = db.rows(
                "SELECT step, task_id, compensation_task_id, state FROM workflow_steps "
                "WHERE run_id = ? AND state IN ('queued', 'running', 'compensating')",
                (run_id,),
            )
        for row in tasks:
            task_id = row["compensation_task_id"] if row["state"] == "compensating" else None
            task_id = task_id or row["task_id"]
            if task_id is None:
                continue
            with contextlib.suppress(ConflictError, NotFoundError):  # it ended meanwhile
                await self.queue.cancel(task_id, reason=f"workflow run {run_id} {reason}")
        run = self.status(run_id)
        self._audit(self._plugins_of(run), f"workflow run {run_id} ({run.workflow}) {reason}")
        self._notify(run_id)
        return run

    async def await_run(self, run_id: str, timeout_s: float | None = None) -> WorkflowRun:
        """Wait until the run ended (succeeded, failed, cancelled or compensated); a
        ``TimeoutError`` after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        event = self._done.setdefault(run_id, asyncio.Event())
        try:
            while True:
                run = self.status(run_id)
                if run.final:
                    return run
                wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(f"workflow run {run_id} is still {run.state}")
                event.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # another node may advance it: look again
                        await event.wait()
        finally:
            self._done.pop(run_id, None)

    async def resume(self) -> int:
        """Advance every running or compensating run from its step tasks' records: finishes
        that happened while this host was down, or between a task's commit and its listener.
        How many runs were looked at."""
        with self._sql.read() as db:
            rows = db.rows(
                "SELECT id FROM workflow_runs WHERE state IN ('running', 'compensating')"
            )
        for row in rows:
            try:
                await self._catch_up(row["id"])
                await self.advance(row["id"])
            except Exception:
                log.exception("resuming workflow run %s", row["id"])
        return len(rows)

    def purge(self, plugin: str) -> int:
        """Forget the runs whose every step ran a task type of ``plugin`` (uninstall
        --purge); runs that also used other plugins' tasks are kept, as their record.
        How many."""
        with self._sql.write() as db:
            doomed = [
                r["id"]
                for r in db.rows(
                    "SELECT id FROM workflow_runs r WHERE NOT EXISTS (SELECT 1 FROM "
                    "workflow_steps s WHERE s.run_id = r.id AND s.plugin <> ?)",
                    (plugin,),
                )
            ]
            for run_id in doomed:
                db.execute("DELETE FROM workflow_steps WHERE run_id = ?", (run_id,))
                db.execute("DELETE FROM workflow_runs WHERE id = ?", (run_id,))
        for run_id in doomed:
            self._definitions.pop(run_id, None)
        return len(doomed)

    # --- advancing ----------------------------------------------------------------------------

    async def advance(self, run_id: str) -> None:
        """Take the run's next moves until none is left (a submit that fails at once is a
        failed step, which may decide more)."""
        async with self._lock:
            for _ in range(1000):
                if not await self._advance_once(run_id):
                    break
        if self.status(run_id).final:
            self._notify(run_id)

    async def _advance_once(self, run_id: str) -> bool:
        run = self.status(run_id)
        if run.state not in ("running", "compensating"):
            return False
        states = {n: ("queued" if s == "running" else s) for n, s in run.states().items()}
        failed_compensations = frozenset(n for n, s in run.steps.items() if s.compensation_failed)
        decided = advance(run.definition, states, compensation_failed=failed_compensations)
        now = self._clock()
        moved = False
        with self._sql.write() as db:
            for name in decided.skip:
                moved |= self._step_to(db, run_id, name, before="pending", after="skipped", now=now)
            if decided.run_state != run.state:
                moved |= bool(
                    db.count(
                        "UPDATE workflow_runs SET state = ?, error = ?, finished_at = ? "
                        "WHERE id = ? AND state = ?",
                        (
                            decided.run_state,
                            decided.error[:2000],
                            now if decided.final else None,
                            run_id,
                            run.state,
                        ),
                    )
                )
        if decided.final and moved:
            self._audit(
                self._plugins_of(run),
                f"workflow run {run_id} ({run.workflow}) {decided.run_state}"
                + (f": {decided.error}" if decided.error else ""),
            )
            return False
        for name in decided.submit:
            moved |= await self._submit_step(run, name)
        for name in decided.compensate:
            moved |= await self._submit_compensation(run, name)
        return moved

    def _step_to(
        self, db: Cursor, run_id: str, step: str, *, before: str, after: str, now: float
    ) -> bool:
        return bool(
            db.count(
                "UPDATE workflow_steps SET state = ?, finished_at = ? "
                "WHERE run_id = ? AND step = ? AND state = ?",
                (after, now, run_id, step, before),
            )
        )

    async def _submit_step(self, run: WorkflowRun, name: str) -> bool:
        now = self._clock()
        with self._sql.write() as db:
            claimed = db.count(
                "UPDATE workflow_steps SET state = 'queued', started_at = ? "
                "WHERE run_id = ? AND step = ? AND state = 'pending'",
                (now, run.id, name),
            )
        if not claimed:
            return False  # another node (or an earlier pass) submitted it
        await self._submit_claimed(run, name)
        return True

    async def _submit_claimed(self, run: WorkflowRun, name: str) -> None:
        """Submit a claimed (``queued``) step's task, or fail the step with the reason; the
        idempotency key makes a second call after a crash return the same task."""
        spec = run.definition.steps[name]
        results = {n: s.result for n, s in run.steps.items() if s.state == "succeeded"}
        try:
            payload = build_payload(run.definition, name, run.input, results)
            record = await self.queue.submit(
                spec.task,
                payload,
                plugin=run.steps[name].plugin or spec.plugin,
                idempotency_key=f"workflow:{run.id}:{name}",
                submitted_by=f"workflow:{run.id}",
                max_attempts=spec.max_attempts,
                workflow_run=run.id,
                workflow_step=name,
            )
        except PlugportError as exc:
            self._finish_step(run.id, name, "failed", error=str(exc))
            return
        with self._sql.write() as db:
            db.execute(
                "UPDATE workflow_steps SET task_id = ? WHERE run_id = ? AND step = ?",
                (record.id, run.id, name),
            )
        if record.final:  # a resubmit after a crash: the task had ended already
            self._record_task(record)

    async def _submit_compensation(self, run: WorkflowRun, name: str) -> bool:
        now = self._clock()
        with self._sql.write() as db:
            claimed = db.count(
                "UPDATE workflow_steps SET state = 'compensating', started_at = ? "
                "WHERE run_id = ? AND step = ? AND state = 'succeeded'",
                (now, run.id, name),
            )
        if not claimed:
            return False
        await self._submit_compensation_claimed(run, name)
        return True

    async def _submit_compensation_claimed(self, run: WorkflowRun, name: str) -> None:
        compensate = run.definition.steps[name].compensate
        assert compensate is not None  # noqa: S101 compensation_order chose it
        results = {n: s.result for n, s in run.steps.items() if s.result is not None}
        try:
            payload = build_payload(run.definition, name, run.input, results, compensation=True)
            record = await self.queue.submit(
                compensate.task,
                payload,
                plugin=compensate.plugin,
                idempotency_key=f"workflow:{run.id}:{name}:compensate",
                submitted_by=f"workflow:{run.id}",
                workflow_run=run.id,
                workflow_step=f"{name}/compensate",
            )
        except PlugportError as exc:
            self._finish_compensation(run.id, name, ok=False, error=str(exc))
            return
        with self._sql.write() as db:
            db.execute(
                "UPDATE workflow_steps SET compensation_task_id = ? WHERE run_id = ? AND step = ?",
                (record.id, run.id, name),
            )
        if record.final:
            self._record_task(record)

    async def _catch_up(self, run_id: str) -> None:
        """Bring the steps in line with their tasks' records (after a restart)."""
        run = self.status(run_id)
        by_step = {t.workflow_step: t for t in self.queue.find(workflow_run=run_id, limit=1000)}
        for name, step in run.steps.items():
            if step.state in ("queued", "running"):
                task = by_step.get(name)
                if task is None or step.task_id is None:
                    await self._submit_claimed(run, name)  # crashed between claim and submit
                elif task.final:
                    self._record_task(task)
            elif step.state == "compensating":
                task = by_step.get(f"{name}/compensate")
                if task is None or step.compensation_task_id is None:
                    await self._submit_compensation_claimed(run, name)
                elif task.final:
                    self._record_task(task)

    # --- tasks ending -------------------------------------------------------------------------

    async def _task_finished(self, record: TaskRecord) -> None:
        if record.workflow_run is None or record.workflow_step is None:
            return
        if self._record_task(record):
            await self.advance(record.workflow_run)

    def _record_task(self, record: TaskRecord) -> bool:
        """Store a step task's end on its step; whether it was news."""
        run_id, step = record.workflow_run, record.workflow_step
        if run_id is None or step is None:
            return False
        if step.endswith("/compensate"):
            return self._finish_compensation(
                run_id,
                step.removesuffix("/compensate"),
                ok=record.state == "succeeded",
                error=record.error,
            )
        state = _TASK_TO_STEP.get(record.state, "failed")
        error = "" if state == "succeeded" else f"task {record.id} {record.state}: {record.error}"
        return self._finish_step(
            run_id, step, state, error=error, result=record.result, task_id=record.id
        )

    def _finish_step(
        self,
        run_id: str,
        step: str,
        state: str,
        *,
        error: str = "",
        result: Any = None,
        task_id: str | None = None,
    ) -> bool:
        with self._sql.write() as db:
            return bool(
                db.count(
                    "UPDATE workflow_steps SET state = ?, error = ?, result = ?, "
                    "finished_at = ?, task_id = COALESCE(task_id, ?) "
                    "WHERE run_id = ? AND step = ? AND state IN ('queued', 'running')",
                    (
                        state,
                        error[:2000],
                        json.dumps(result) if state == "succeeded" else None,
                        self._clock(),
                        task_id,
                        run_id,
                        step,
                    ),
                )
            )

    def _finish_compensation(self, run_id: str, step: str, *, ok: bool, error: str) -> bool:
        with self._sql.write() as db:
            return bool(
                db.count(
                    "UPDATE workflow_steps SET state = ?, compensation_failed = ?, error = ?, "
                    "finished_at = ? WHERE run_id = ? AND step = ? AND state = 'compensating'",
                    (
                        "compensated" if ok else "failed",
                        0 if ok else 1,
                        "" if ok else f"compensation failed: {error}"[:2000],
                        self._clock(),
                        run_id,
                        step,
                    ),
                )
            )

    # --- helpers ------------------------------------------------------------------------------

    def _definition_from(
        self, workflow: WorkflowDefinition | Mapping[str, Any] | str | Path
    ) -> WorkflowDefinition:
        if isinstance(workflow, WorkflowDefinition):
            return workflow
        if isinstance(workflow, str) and ("\n" in workflow or "=" in workflow):
            return parse_workflow(workflow)
        if isinstance(workflow, str | Path):
            path = Path(workflow)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise WorkflowError("", None, "", f"cannot read {path}: {exc}") from None
            try:
                return parse_workflow(text)
            except WorkflowError as exc:
                raise WorkflowError(
                    exc.workflow, exc.step, exc.field, f"{exc.reason} (in {path})"
                ) from None
        return parse_workflow(workflow)

    def _resolve(self, definition: WorkflowDefinition) -> dict[str, str]:
        """Step -> the plugin that runs its task type (and its compensation's), each declared
        by an enabled plugin; static payloads checked against their schemas."""
        plugins: dict[str, str] = {}
        for name in definition.order:
            step = definition.steps[name]
            checks = [("task", step.task, step.plugin, step.payload, step.references)]
            if step.compensate is not None:
                c = step.compensate
                checks.append(("compensate.task", c.task, c.plugin, c.payload, c.references))
            for field, task_type, plugin, payload, references in checks:
                try:
                    owner, spec, _ = self.queue.spec_of(task_type, plugin)
                    if not references:
                        check_document(task_type, "payload", spec.payload, payload)
                except TaskValidationError as exc:
                    prefix = "payload" if field == "task" else "compensate.payload"
                    raise WorkflowError(
                        definition.name, name, f"{prefix}{exc.field}", exc.reason
                    ) from None
                except (NotFoundError, InvalidInputError) as exc:
                    raise WorkflowError(definition.name, name, field, str(exc)) from None
                plugins.setdefault(name, owner)
        return plugins

    def _load(self, run_id: str, document: str) -> WorkflowDefinition:
        found = self._definitions.get(run_id)
        if found is None:
            found = self._definitions[run_id] = parse_workflow(json.loads(document))
        return found

    def _run(
        self, row: Mapping[str, Any], steps: Sequence[Mapping[str, Any]], running: set[str]
    ) -> WorkflowRun:
        definition = self._load(row["id"], row["definition"])
        by_name = {
            s["step"]: StepRun(
                step=s["step"],
                plugin=s["plugin"],
                state="running" if s["task_id"] in running else s["state"],
                task_id=s["task_id"],
                compensation_task_id=s["compensation_task_id"],
                compensation_failed=bool(s["compensation_failed"]),
                error=s["error"],
                result=None if s["result"] is None else json.loads(s["result"]),
                started_at=_number(s["started_at"]),
                finished_at=_number(s["finished_at"]),
            )
            for s in steps
        }
        return WorkflowRun(
            id=row["id"],
            workflow=row["workflow"],
            definition=definition,
            input=json.loads(row["input"]),
            state=row["state"],
            created_at=float(row["created_at"]),
            finished_at=_number(row["finished_at"]),
            error=row["error"],
            submitted_by=row["submitted_by"],
            steps=by_name,
        )

    def _plugins_of(self, run: WorkflowRun) -> list[str]:
        return sorted({s.plugin for s in run.steps.values()}) or [""]

    def _audit(self, plugins: Sequence[str], reason: str) -> None:
        """Each start, end, failure, cancel and refusal, under every plugin whose tasks the
        run uses (the kind is ``task``: a run is a group of tasks)."""
        for plugin in plugins or [""]:
            self.queue.supervisor.audit.record(AuditEvent(plugin, "task", reason[:2000]))

    def _notify(self, run_id: str) -> None:
        event = self._done.get(run_id)
        if event is not None:
            event.set()


def _number(value: Any) -> float | None:
    return None if value is None else float(value)
