"""The host's task queue: plugins' ``[tasks.TYPE]`` work, submitted by the application, the
operator, other plugins (``api.tasks.submit``), schedules and workflows, run in the plugins'
sandboxes with retries, timeouts, dead letters, cancel, priorities and concurrency limits.

The records are in a :class:`~plugport.host.tasks.store.SqlTaskStore`, the order in a
:class:`~plugport.host.tasks.engine.QueueEngine` (Huey). Rule: a record is written before its
message is pushed, and a message only names a record, so a crash between the two leaves a
queued record that :meth:`TaskQueue.reconcile` pushes again, and a message twice is claimed
once. Execution is at least once: a node killed mid-run leaves a ``running`` record whose
lease runs out (or, on the only node, is found at start) and the task runs again, counted in
``reruns``; handlers make their effects idempotent with ``task.idempotency_key``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import fcntl
import inspect
import logging
import os
import random as _random
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugport._task_rules import (
    check_document,
    encode_document,
    idempotency_key_for,
    next_attempt,
)
from plugport.errors import (
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PluginCallError,
    PluginCrashedError,
    PlugportError,
    ResourceLimitExceededError,
    TaskValidationError,
)
from plugport.host.tasks.cron import cron_matches, parse_cron
from plugport.host.tasks.engine import QueueEngine
from plugport.host.tasks.metrics import TaskMetrics
from plugport.host.tasks.store import FINAL_STATES, NewTask, Schedule, SqlTaskStore, TaskRecord
from plugport.manifest import Limits, TaskSpec
from plugport.runtime.audit import AuditEvent
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import Supervisor
from plugport.sdk._task import Task

__all__ = ["MIDDLEWARE_HOOKS", "GiveUp", "QueueOptions", "RetryAt", "SystemTask", "TaskQueue"]

log = logging.getLogger(__name__)

MIDDLEWARE_HOOKS = (
    HookSpec("before_task", ("task",)),
    HookSpec("after_task", ("task", "result")),
    HookSpec("on_task_error", ("task", "error", "final")),
)
"""Hooks the queue declares around every attempt: ``before_task`` may answer
``{"reject": "why"}`` to refuse the task (it ends ``rejected``); ``after_task`` sees each
result, ``on_task_error`` each failure (``final``: no attempt is left). Implemented by other
plugins (an audit trail, a rate limiter), in priority order."""

Finished = Callable[[TaskRecord], Awaitable[None] | None]
SYSTEM_PREFIX = "@"
"""Task types the host itself runs start so; a manifest's types start with a letter."""


class RetryAt(Exception):
    """Raised by a :class:`SystemTask`'s ``run``: try again at ``at`` (its own schedule, e.g.
    a receiver's ``Retry-After``); ``counted=False`` when no attempt was made (a rate limit)."""

    def __init__(self, at: float, error: str = "", *, counted: bool = True, result: Any = None):
        super().__init__(error)
        self.at = at
        self.error = error
        self.counted = counted
        self.result = result


class GiveUp(Exception):
    """Raised by a :class:`SystemTask`'s ``run``: the task is dead now, for ``error``."""

    def __init__(self, error: str, *, result: Any = None):
        super().__init__(error)
        self.error = error
        self.result = result


@dataclass(frozen=True)
class SystemTask:
    """Work the host does itself on the same durable queue, for a plugin (a received
    webhook's hand-over to its handler): ``run`` is awaited with the record and raising
    retries it on ``spec``'s schedule. Its records carry the plugin they are for, so a purge
    takes them too; middleware hooks do not see them."""

    kind: str
    run: Callable[[TaskRecord], Awaitable[Any]]
    spec: TaskSpec
    concurrency: int = 4
    max_payload_bytes: int = 16 * 1024 * 1024
    on_failure: Callable[[TaskRecord, str, str], None] | None = None
    """Told ``(record, "retry" | "dead", error)`` after each failed attempt."""
    retention_s: float | None = None
    """Succeeded records older than this (by finish and by submit) are forgotten."""

    def __post_init__(self) -> None:
        if not self.kind.startswith(SYSTEM_PREFIX):
            raise ValueError(f"a system task kind starts with {SYSTEM_PREFIX!r}: {self.kind!r}")


@dataclass(frozen=True)
class QueueOptions:
    """How one node runs the queue."""

    concurrency: int = 8
    """Attempts running at once on this node (each plugin and type also has its own limit)."""
    lease_s: float = 15.0
    """How long a running task stays claimed without its node renewing it."""
    exclusive: bool = True
    """This node is the only one on its store (embedded): at start, every task left running
    was cut off and runs again at once, without waiting for its lease."""
    poll_s: float = 0.1
    """How soon a node looks again for work another process queued, right after it had work;
    each idle look doubles the wait up to ``idle_poll_s`` (its own submits wake it at once)."""
    idle_poll_s: float = 1.0
    """The longest an idle node waits before looking for work another process queued."""
    reconcile_every_s: float = 30.0
    max_blocked: int = 1000
    """Task ids taken from the queue while their type is at its limit, held at most."""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.lease_s <= 0 or self.poll_s <= 0:
            raise InvalidInputError("QueueOptions: concurrency >= 1, lease_s > 0, poll_s > 0")


class TaskQueue:
    """One node's view of the queue: submits, and (once :meth:`start` ran) takes and runs
    tasks. ``store`` and ``engine`` may be shared with other nodes (PostgreSQL)."""

    def __init__(
        self,
        supervisor: Supervisor,
        store: SqlTaskStore,
        engine: QueueEngine,
        *,
        options: QueueOptions | None = None,
        metrics: TaskMetrics | None = None,
        clock: Callable[[], float] = time.time,
        random: Callable[[], float] = _random.random,
        node: str | None = None,
        lock_file: Path | None = None,
    ) -> None:
        """``lock_file``: held (``flock``) while this node runs tasks, so a second process on
        the same embedded home (a CLI next to the host service) only submits."""
        self.supervisor = supervisor
        self._lock_file = lock_file
        self._lock_fd: int | None = None
        self.runner_elsewhere = False
        """Another process holds the lock file and runs this home's tasks."""
        self.store = store
        self.engine = engine
        self.options = options or QueueOptions()
        self.metrics = metrics or TaskMetrics(supervisor.metrics.registry)
        self.node = node or f"node-{uuid.uuid4().hex[:12]}"
        self._clock = clock
        self._random = random
        self._listeners: list[Finished] = []
        self._system: dict[str, SystemTask] = {}
        self._running_kind: dict[str, int] = {}
        self._pruned_at = 0.0
        self._running: dict[str, asyncio.Task[None]] = {}
        self._running_by: dict[tuple[str, str], int] = {}
        self._running_plugin: dict[str, int] = {}
        self._blocked: dict[tuple[str, str], deque[str]] = {}
        self._done: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._loops: list[asyncio.Task[None]] = []
        self._closing = False
        supervisor.services.tasks = self
        for spec in MIDDLEWARE_HOOKS:
            if spec.name not in supervisor.hooks.specs:
                supervisor.declare_hook(spec)

    # --- submitting ---------------------------------------------------------------------------

    def register(self, system: SystemTask) -> None:
        """Run ``system.kind`` tasks with ``system.run`` (before :meth:`start`, so none
        already queued is taken without it)."""
        self._system[system.kind] = system

    def submit_system(
        self,
        kind: str,
        plugin: str,
        payload: Any,
        *,
        idempotency_key: str | None = None,
        submitted_by: str = "host",
        task_id: str | None = None,
        due_at: float | None = None,
    ) -> tuple[TaskRecord, bool]:
        """Queue host work for ``plugin``, to run now or at ``due_at`` (a host's own recurring
        work queues its next run so); ``(record, False)`` when the idempotency key was queued
        already (a resend). Committed when this returns."""
        system = self._system.get(kind)
        if system is None:
            raise NotFoundError("system task kind", kind, f"registered: {sorted(self._system)}")
        text = encode_document(kind, "payload", payload, limit=system.max_payload_bytes)
        del text
        now = self._clock()
        record, new = self.store.insert(
            NewTask(
                plugin=plugin,
                type=kind,
                payload=payload,
                max_attempts=system.spec.max_attempts,
                priority=system.spec.priority,
                due_at=now if due_at is None else due_at,
                idempotency_key=idempotency_key,
                submitted_by=submitted_by,
                **({"id": task_id} if task_id is not None else {}),
            ),
            now,
        )
        if new:
            later = record.due_at if record.due_at > now else None
            self.engine.push(record.id, priority=record.priority, eta=later)
            self.metrics.submitted(plugin, kind)
            self._wake.set()
        return record, new

    def spec_of(self, task_type: str, plugin: str | None = None) -> tuple[str, TaskSpec, Limits]:
        """``(plugin, spec, limits)`` of the plugin that processes ``task_type``."""
        declared = self.supervisor.task_types().get(task_type, [])
        if plugin is not None:
            declared = [d for d in declared if d[0] == plugin]
        if not declared:
            known = ", ".join(sorted(self.supervisor.task_types())) or "none"
            where = f" by plugin {plugin!r}" if plugin else ""
            raise NotFoundError(
                "task type",
                task_type,
                f"none is declared{where}; the enabled plugins declare: {known}",
            )
        if len(declared) > 1:
            names = ", ".join(d[0] for d in declared)
            raise InvalidInputError(
                f"task type {task_type!r} is declared by {names}: name the plugin to run it"
            )
        return declared[0]

    async def submit(
        self,
        task_type: str,
        payload: Any = None,
        **options: Any,
    ) -> TaskRecord:
        """Queue a task, stored (committed) when this returns; options as
        :meth:`submit_new`. The payload is checked against the type's schema
        (:class:`TaskValidationError` names the field); the same idempotency key again
        returns the task already stored, queued or not."""
        record, _ = await self.submit_new(task_type, payload, **options)
        return record

    async def submit_new(
        self,
        task_type: str,
        payload: Any = None,
        *,
        plugin: str | None = None,
        priority: int | None = None,
        delay_s: float | None = None,
        at: float | None = None,
        idempotency_key: str | None = None,
        submitted_by: str = "host",
        parent: str | None = None,
        max_attempts: int | None = None,
        workflow_run: str | None = None,
        workflow_step: str | None = None,
    ) -> tuple[TaskRecord, bool]:
        """:meth:`submit`, saying whether the task is new (``False``: its idempotency key
        was queued already, and that task is returned unchanged). Queue a task, stored
        (committed) when this returns. The payload is checked against
        the type's schema (:class:`TaskValidationError` names the field); the same idempotency
        key again returns the task already stored, queued or not."""
        owner, spec, _ = self.spec_of(task_type, plugin)
        check_document(task_type, "payload", spec.payload, payload)
        key = idempotency_key_for(task_type, spec, payload, idempotency_key)
        now = self._clock()
        if delay_s is not None and not 0 <= delay_s <= 366 * 86400:
            raise InvalidInputError(f"delay_s must be 0 to a year in seconds, not {delay_s}")
        due = at if at is not None else now + (delay_s or 0.0)
        chosen = spec.priority if priority is None else priority
        if not -100 <= chosen <= 100:
            raise InvalidInputError(f"priority must be -100 to 100, not {chosen}")
        attempts = spec.max_attempts if max_attempts is None else max_attempts
        if not 1 <= attempts <= 100:
            raise InvalidInputError(f"max_attempts must be 1 to 100, not {attempts}")
        record, new = self.store.insert(
            NewTask(
                plugin=owner,
                type=task_type,
                payload=payload,
                max_attempts=attempts,
                priority=chosen,
                due_at=due,
                idempotency_key=key,
                submitted_by=submitted_by,
                parent=parent,
                workflow_run=workflow_run,
                workflow_step=workflow_step,
            ),
            now,
        )
        if new:
            self.engine.push(
                record.id, priority=record.priority, eta=record.due_at if due > now else None
            )
            self.metrics.submitted(owner, task_type)
            self._audit(record, "submitted", by=submitted_by)
            self._wake.set()
        return record, new

    async def submit_from(
        self,
        plugin: str,
        task_type: str,
        payload: Any,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        idempotency_key: str | None = None,
        parent: str | None = None,
    ) -> str:
        """``api.tasks.submit`` (the broker checked ``tasks.submit``): the parent must be a
        task of the submitting plugin's."""
        if parent is not None:
            found = self.store.get(parent)
            if found is None or found.plugin != plugin:
                parent = None
        record = await self.submit(
            task_type,
            payload,
            priority=priority,
            delay_s=delay_s,
            idempotency_key=idempotency_key,
            submitted_by=f"plugin:{plugin}",
            parent=parent,
        )
        return record.id

    async def progress_from(self, plugin: str, task_id: str, percent: float, message: str) -> None:
        if not self.store.progress(task_id, plugin, percent, message):
            raise PermissionDeniedError(
                plugin, "tasks", f"task {task_id!r} is not one of its running tasks"
            )

    # --- the operator's and the application's calls -------------------------------------------

    def get(self, task_id: str) -> TaskRecord:
        record = self.store.get(task_id)
        if record is None:
            raise NotFoundError("task", task_id, "list tasks with plugport task list")
        return record

    def find(self, **filters: Any) -> list[TaskRecord]:
        return self.store.find(**filters)

    async def cancel(
        self, task_id: str, *, reason: str = "cancelled by the operator"
    ) -> TaskRecord:
        """Cancel a queued or running task; a running attempt's result is dropped when it
        comes (its worker is not interrupted)."""
        record = self.store.cancel(task_id, self._clock(), reason)
        self._audit(record, "cancelled", reason=reason)
        await self._finished(record)
        return record

    async def retry(self, task_id: str) -> TaskRecord:
        """Queue a dead, cancelled or rejected task again with a fresh count of attempts."""
        record = self.store.retry(task_id, self._clock())
        self.engine.push(record.id, priority=record.priority)
        self._audit(record, "retried")
        self._wake.set()
        return record

    async def await_result(self, task_id: str, timeout_s: float | None = None) -> TaskRecord:
        """Wait until the task ended (succeeded, dead, cancelled or rejected) and return its
        record: ``record.result`` or ``record.error``. ``TimeoutError`` after ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        event = self._done.setdefault(task_id, asyncio.Event())
        try:
            while True:
                record = self.get(task_id)
                if record.final:
                    return record
                wait = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
                if wait <= 0:
                    raise TimeoutError(f"task {task_id} is still {record.state}")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):  # another node may finish it: look again
                        await event.wait()
        finally:
            self._done.pop(task_id, None)

    def add_schedule(
        self,
        name: str,
        task_type: str,
        payload: Any = None,
        *,
        cron: str,
        plugin: str | None = None,
        priority: int | None = None,
    ) -> Schedule:
        """A recurring task: ``cron`` is five fields (minute hour day month weekday, the
        host's local time); each matching minute submits one task, once across nodes."""
        parse_cron(cron)
        owner, spec, _ = self.spec_of(task_type, plugin)
        check_document(task_type, "payload", spec.payload, payload)
        if not name or len(name) > 100 or not name.replace("-", "").replace("_", "").isalnum():
            raise InvalidInputError(
                f"schedule name {name!r}: use 1-100 letters, digits, '-' and '_'"
            )
        schedule = Schedule(
            name, owner, task_type, payload, cron, priority, True, self._clock(), ""
        )
        self.store.put_schedule(schedule)
        return schedule

    def on_finished(self, listener: Finished) -> Callable[[], None]:
        """Call ``listener`` with each task this node sees end; returns the unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def purge(self, plugin: str) -> int:
        """Forget ``plugin``'s tasks, attempts and schedules (uninstall --purge)."""
        for task_id in [t for t, task in self._running.items() if task.get_name() == plugin]:
            self._running[task_id].cancel()
        return self.store.purge(plugin)

    # --- running ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Hand back what a killed node left running, push what the queue lost, and start
        taking tasks."""
        if self._loops or self.runner_elsewhere:
            return
        if self._lock_file is not None and not self._take_lock(self._lock_file):
            self.runner_elsewhere = True
            log.info("another process runs the tasks of %s", self._lock_file.parent)
            return
        self.reconcile(starting=True)
        self._loops = [
            asyncio.create_task(self._dispatch(), name="plugport-tasks"),
            asyncio.create_task(self._heartbeat(), name="plugport-task-leases"),
            asyncio.create_task(self._cron(), name="plugport-task-schedules"),
        ]

    @property
    def started(self) -> bool:
        return bool(self._loops)

    async def close(self) -> None:
        """Stop taking tasks; attempts in flight are cut off and run again when a node
        starts (or their lease runs out)."""
        self._closing = True
        for loop in self._loops:
            loop.cancel()
        for task in list(self._running.values()):
            task.cancel()
        await asyncio.gather(*self._loops, *self._running.values(), return_exceptions=True)
        self._loops = []
        self.engine.close()
        self.store.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    def _take_lock(self, path: Path) -> bool:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def reconcile(self, *, starting: bool = False) -> int:
        """Queue again what was cut off and push queued records the queue does not hold;
        how many."""
        now = self._clock()
        everyone = starting and self.options.exclusive
        interrupted = self.store.requeue_interrupted(now, everyone=everyone)
        for record in interrupted:
            self._audit(record, "interrupted", reruns=record.reruns)
        held = self.engine.waiting() | {t for ids in self._blocked.values() for t in ids}
        pushed = 0
        for task_id, priority, due_at in self.store.queued_ids():
            if task_id not in held:
                self.engine.push(task_id, priority=priority, eta=due_at if due_at > now else None)
                pushed += 1
        if pushed:
            self._wake.set()
        return pushed

    def wake(self) -> None:
        self._wake.set()

    def prune(self, *, every_s: float = 3600.0) -> int:
        """Forget succeeded host tasks past their kind's retention (at most every
        ``every_s``); how many."""
        now = self._clock()
        if now < self._pruned_at + every_s:
            return 0
        self._pruned_at = now
        forgotten = 0
        for system in self._system.values():
            if system.retention_s is not None:
                forgotten += self.store.prune(system.kind, now - system.retention_s)
        return forgotten

    async def _dispatch(self) -> None:
        next_reconcile = time.monotonic() + self.options.reconcile_every_s
        wait = self.options.poll_s
        while True:
            self._wake.clear()
            busy = bool(self._running)
            self._take()
            if busy or self._running:
                wait = self.options.poll_s
            else:  # idle: look less often, as a process beside it rarely queues work
                wait = min(max(self.options.idle_poll_s, self.options.poll_s), wait * 2)
            if time.monotonic() >= next_reconcile:
                try:
                    self.reconcile()
                    self.prune()
                except Exception:
                    log.exception("reconciling the task queue")
                next_reconcile = time.monotonic() + self.options.reconcile_every_s
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            if self._wake.is_set():
                wait = self.options.poll_s

    def _take(self) -> None:
        """Start as many due tasks as the limits allow: first those held back while their
        type was at its limit (oldest first, per type), then from the queue."""
        types = self.supervisor.task_types()  # once per pass, not per task
        for key in [k for k, held in self._blocked.items() if held]:
            held = self._blocked[key]
            while held and len(self._running) < self.options.concurrency:
                found = self._declared(types, key[1], key[0])
                if found is None:  # uninstalled or disabled while held
                    break
                _, spec, limits = found
                if not self._room(key, spec, limits):
                    break
                self._claim_and_start(held.popleft(), spec, limits)
        while (
            len(self._running) < self.options.concurrency and self._held < self.options.max_blocked
        ):
            try:
                task_id = self.engine.pop(self._clock())
            except Exception:
                log.exception("taking a task from the queue")
                return
            if task_id is None:
                return
            record = self.store.get(task_id)
            if record is None or record.state != "queued":
                continue  # a second message for a task already taken, cancelled or purged
            if record.due_at > self._clock() + 0.001:
                self.engine.push(task_id, priority=record.priority, eta=record.due_at)
                continue  # a retried one whose old message came first
            found = self._declared(types, record.type, record.plugin)
            if found is None:
                self._fail_now(record, f"no enabled plugin declares task type {record.type!r}")
                continue
            _, spec, limits = found
            key = (record.plugin, record.type)
            if self._blocked.get(key) or not self._room(key, spec, limits):
                self._blocked.setdefault(key, deque()).append(task_id)
                continue
            self._claim_and_start(task_id, spec, limits)

    @property
    def _held(self) -> int:
        return sum(len(held) for held in self._blocked.values())

    def _declared(
        self,
        types: Mapping[str, list[tuple[str, TaskSpec, Limits]]],
        task_type: str,
        plugin: str,
    ) -> tuple[str, TaskSpec, Limits] | None:
        system = self._system.get(task_type)
        if system is not None:
            return plugin, system.spec, Limits(max_concurrency=system.concurrency)
        return next((d for d in types.get(task_type, []) if d[0] == plugin), None)

    def _room(self, key: tuple[str, str], spec: TaskSpec, limits: Limits) -> bool:
        if key[1] in self._system:  # host work: its own limit, across plugins
            return self._running_kind.get(key[1], 0) < limits.max_concurrency
        by_type = self._running_by.get(key, 0)
        by_plugin = self._running_plugin.get(key[0], 0)
        type_limit = spec.concurrency or limits.max_concurrency
        return by_type < type_limit and by_plugin < limits.max_concurrency

    def _claim_and_start(self, task_id: str, spec: TaskSpec, limits: Limits) -> None:
        claimed = self.store.claim(task_id, self.node, self._clock(), self.options.lease_s)
        if claimed is not None:
            self._started(claimed, spec, limits)

    def _started(self, record: TaskRecord, spec: TaskSpec, limits: Limits) -> None:
        key = (record.plugin, record.type)
        system = record.type in self._system
        counter = self._running_kind if system else self._running_plugin
        slot = record.type if system else record.plugin
        self._running_by[key] = self._running_by.get(key, 0) + 1
        counter[slot] = counter.get(slot, 0) + 1
        attempt = self._system_attempt if system else self._attempt
        task = asyncio.create_task(attempt(record, spec, limits), name=record.plugin)
        self._running[record.id] = task

        def done(_: asyncio.Task[None]) -> None:
            self._running.pop(record.id, None)
            self._running_by[key] -= 1
            counter[slot] -= 1
            self._wake.set()

        task.add_done_callback(done)

    def _fail_now(self, record: TaskRecord, reason: str) -> None:
        claimed = self.store.claim(record.id, self.node, self._clock(), self.options.lease_s)
        if claimed is None:
            return
        finished = self.store.finish(
            record.id,
            self.node,
            "dead",
            self._clock(),
            error=reason,
            error_kind="unknown_type",
            outcome="error",
        )
        if finished is not None:
            self._audit(finished, "dead", reason=reason)
            self._spawn_finished(finished)

    async def _attempt(self, record: TaskRecord, spec: TaskSpec, limits: Limits) -> None:
        started = self._clock()
        self.metrics.started(record, started)
        timeout_ms = spec.timeout_ms or limits.timeout_ms
        wire = Task(
            id=record.id,
            type=record.type,
            payload=record.payload,
            attempt=record.attempts,
            deadline=started + timeout_ms / 1000,
            idempotency_key=record.idempotency_key or record.id,
            priority=record.priority,
            submitted_by=record.submitted_by,
            workflow_run=record.workflow_run,
        ).to_wire()
        rejection = await self._before(record, wire)
        if rejection:
            await self._end(
                record, "rejected", error=rejection, kind="rejected", outcome="rejected"
            )
            return
        try:
            result = await self.supervisor.run_task(
                record.plugin, record.type, wire, timeout_ms=timeout_ms
            )
            encode_document(record.type, "result", result)
            check_document(record.type, "result", spec.result, result)
        except asyncio.CancelledError:
            raise  # the node is closing: the lease, or the next start, brings it back
        except TaskValidationError as exc:
            await self._failed(record, spec, wire, str(exc), "invalid_result", retryable=False)
        except ResourceLimitExceededError as exc:
            kind = "timeout" if exc.limit == "timeout_ms" else "limit"
            await self._failed(record, spec, wire, str(exc), kind)
        except PluginCrashedError as exc:
            await self._failed(record, spec, wire, str(exc), "crash")
        except PluginCallError as exc:
            await self._failed(record, spec, wire, str(exc), "raised")
        except PlugportError as exc:
            await self._failed(record, spec, wire, str(exc), "error")
        except Exception as exc:  # a bug of ours must not lose the task: it is retried
            log.exception("running task %s", record.id)
            await self._failed(record, spec, wire, f"{type(exc).__name__}: {exc}", "error")
        else:
            finished = await self._end(record, "succeeded", result=result, outcome="ok")
            if finished is not None:
                await self._middleware("after_task", task=wire, result=result)

    async def _system_attempt(self, record: TaskRecord, spec: TaskSpec, limits: Limits) -> None:
        system = self._system[record.type]
        self.metrics.started(record, self._clock())
        timeout_s = (spec.timeout_ms or limits.timeout_ms) / 1000
        try:
            async with asyncio.timeout(timeout_s):
                result = await system.run(record)
            encode_document(record.type, "result", result, limit=system.max_payload_bytes)
        except asyncio.CancelledError:
            raise  # closing (or purged): the lease, or the next start, brings it back
        except RetryAt as later:
            await self._later(record, later)
        except GiveUp as given_up:
            await self._end(
                record,
                "dead",
                error=given_up.error,
                kind="gave_up",
                outcome="error",
                result=given_up.result,
            )
        except TimeoutError:
            await self._failed(record, spec, None, f"no answer within {timeout_s:g} s", "timeout")
        except PluginCallError as exc:
            await self._failed(record, spec, None, str(exc), "raised")
        except PlugportError as exc:
            await self._failed(record, spec, None, str(exc), "error")
        except Exception as exc:
            log.exception("running host task %s", record.id)
            await self._failed(record, spec, None, f"{type(exc).__name__}: {exc}", "error")
        else:
            await self._end(record, "succeeded", result=result, outcome="ok")

    async def _later(self, record: TaskRecord, later: RetryAt) -> None:
        now = self._clock()
        if later.counted:
            self.metrics.attempt(record, "error", now)
            updated = self.store.retry_later(
                record.id,
                self.node,
                later.at,
                now,
                error=later.error,
                error_kind="retry",
                outcome="error",
                result=later.result,
            )
        else:
            updated = self.store.postpone(record.id, self.node, later.at)
        if updated is None:
            self._late(record, later.error or "a retry")
            return
        self.engine.push(record.id, priority=record.priority, eta=later.at)

    async def _failed(
        self,
        record: TaskRecord,
        spec: TaskSpec,
        wire: dict[str, Any] | None,
        error: str,
        kind: str,
        *,
        retryable: bool = True,
    ) -> None:
        now = self._clock()
        verdict, due = next_attempt(
            record.attempts,
            now,
            max_attempts=record.max_attempts,
            base_s=spec.backoff_s,
            cap_s=spec.max_backoff_s,
            random=self._random,
            retryable=retryable,
        )
        outcome = {"raised": "error", "invalid_result": "invalid"}.get(kind, kind)
        if wire is not None:
            await self._middleware("on_task_error", task=wire, error=error, final=verdict == "dead")
        system = self._system.get(record.type)
        if system is not None and system.on_failure is not None:
            try:
                system.on_failure(record, verdict, error)
            except Exception:  # an audit that failed must not lose the task
                log.exception("recording a failed host task")
        self.metrics.attempt(record, outcome, now)
        if verdict == "retry":
            later = self.store.retry_later(
                record.id, self.node, due, now, error=error, error_kind=kind, outcome=outcome
            )
            if later is None:
                self._late(record, error)
                return
            self.engine.push(record.id, priority=record.priority, eta=due)
            self._audit(later, "attempt failed", error=error, retry_in_s=round(due - now, 3))
            return
        await self._end(record, "dead", error=error, kind=kind, outcome=outcome, counted=True)

    async def _end(
        self,
        record: TaskRecord,
        state: str,
        *,
        result: Any = None,
        error: str = "",
        kind: str = "",
        outcome: str,
        counted: bool = False,
    ) -> TaskRecord | None:
        now = self._clock()
        finished = self.store.finish(
            record.id,
            self.node,
            state,  # type: ignore[arg-type]
            now,
            result=result,
            error=error,
            error_kind=kind,
            outcome=outcome,
        )
        if not counted:
            self.metrics.attempt(record, outcome, now)
        if finished is None:
            self._late(record, error or "a result")
            return None
        self.metrics.finished(finished)
        self._audit(finished, state, **({"error": error} if error else {}))
        await self._finished(finished)
        return finished

    def _late(self, record: TaskRecord, what: str) -> None:
        """An attempt ended after the task was cancelled (or re-run elsewhere): dropped."""
        current = self.store.get(record.id)
        state = current.state if current is not None else "purged"
        self._audit(
            record,
            "late result dropped",
            reason=f"the task is {state}; this attempt's outcome ({what[:200]}) is not kept",
        )

    async def _before(self, record: TaskRecord, wire: dict[str, Any]) -> str:
        """The first middleware's rejection reason, or ``""``."""
        if not self.supervisor.hooks.ordered("before_task"):
            return ""
        outcomes = await self.supervisor.call_hook("before_task", task=wire)
        for outcome in outcomes:
            value = outcome.value
            if outcome.ok and isinstance(value, Mapping) and value.get("reject"):
                return f"rejected by {outcome.plugin}: {str(value['reject'])[:500]}"
            if not outcome.ok:
                self._audit(
                    record, "middleware failed", plugin=outcome.plugin, error=str(outcome.error)
                )
        return ""

    async def _middleware(self, hook: str, **kwargs: Any) -> None:
        if not self.supervisor.hooks.ordered(hook):
            return
        try:
            await self.supervisor.call_hook(hook, **kwargs)
        except Exception:  # middleware must not decide a task's fate after the fact
            log.exception("task middleware %s", hook)

    async def _finished(self, record: TaskRecord) -> None:
        event = self._done.get(record.id)
        if event is not None:
            event.set()
        for listener in list(self._listeners):
            try:
                outcome = listener(record)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                log.exception("a task listener failed on %s", record.id)

    def _spawn_finished(self, record: TaskRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._finished(record))
        self._running.setdefault(f"finished:{record.id}", task)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.options.lease_s / 3)
            ids = [t for t in self._running if not t.startswith("finished:")]
            try:
                self.store.renew(self.node, ids, self._clock() + self.options.lease_s)
                if not self.options.exclusive:
                    self._sweep_expired()
            except Exception:
                log.exception("renewing task leases")

    def _sweep_expired(self) -> None:
        """Other nodes' tasks whose lease ran out (the node died): queued again at once, so
        a dead node's work waits about one lease, not until the next reconcile."""
        for record in self.store.requeue_interrupted(self._clock()):
            self._audit(record, "interrupted", reruns=record.reruns)
            self.engine.push(record.id, priority=record.priority)
            self._wake.set()

    async def _cron(self) -> None:
        while True:
            now = self._clock()
            minute = datetime.datetime.fromtimestamp(now).replace(second=0, microsecond=0)
            try:
                await self._fire(minute)
            except Exception:
                log.exception("firing task schedules")
            await asyncio.sleep(max(0.2, 60 - (now % 60)))

    async def _fire(self, minute: datetime.datetime) -> None:
        stamp = minute.strftime("%Y-%m-%dT%H:%M")
        for schedule in self.store.schedules():
            if not schedule.enabled or not cron_matches(schedule.cron, minute):
                continue
            if not self.store.mark_fired(schedule.name, stamp):
                continue  # another node fired it
            try:
                await self.submit(
                    schedule.type,
                    schedule.payload,
                    plugin=schedule.plugin,
                    priority=schedule.priority,
                    idempotency_key=f"schedule:{schedule.name}:{stamp}",
                    submitted_by=f"schedule:{schedule.name}",
                )
            except PlugportError as exc:
                log.warning("schedule %s could not submit: %s", schedule.name, exc)

    def _audit(self, record: TaskRecord, outcome: str, **details: Any) -> None:
        """Every decision an operator may ask about (not each success: the records and
        metrics count those)."""
        if outcome in ("submitted", "succeeded"):
            return
        extra = "; ".join(f"{k}: {v}" for k, v in details.items())
        reason = f"task {record.id} ({record.type}) {outcome}" + (f"; {extra}" if extra else "")
        self.supervisor.audit.record(AuditEvent(record.plugin, "task", reason[:2000]))

    @property
    def running(self) -> list[str]:
        return [t for t in self._running if not t.startswith("finished:")]

    def final(self, record: TaskRecord) -> bool:
        return record.state in FINAL_STATES
