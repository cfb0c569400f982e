"""The host service's side of task processing: what the tasks API, the tasks pages and the
workflow routes call. Each workspace's :class:`PluginHost` runs its own queue (its home's
``tasks.sqlite``); these methods read it, and every operator action (submit, cancel, retry,
schedules, workflow runs) is checked by the queue and written to the workspace's audit trail
with the actor, refusals included. Workflows come from ``host.workflows`` when the host has a
runner; without one their routes answer 404 naming what is missing."""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from plugport.errors import (
    InvalidInputError,
    NotFoundError,
    PlugportError,
    TaskValidationError,
)
from plugport.host.service._task_view_rules import task_stats
from plugport.host.service.store import FieldError, Principal
from plugport.host.tasks.cron import parse_cron

if TYPE_CHECKING:
    from plugport.host.host import PluginHost
    from plugport.host.service.workspaces import Workspace

__all__ = ["RECENT_LIMIT", "TaskPayloadError", "TaskService"]

_SCHEDULE_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")

T = TypeVar("T")

RECENT_LIMIT = 1000
"""The most records of the last hour the statistics read (newest first): beyond this many an
hour, the percentiles describe the newest ones."""


class Workspaces(Protocol):
    """What this needs of the :class:`HostService` (not imported: it imports this)."""

    def workspace(self, name: str) -> Workspace: ...


class TaskService:
    def __init__(self, service: Workspaces) -> None:
        self.service = service

    async def _host(self, ws: str) -> PluginHost:
        return await self.service.workspace(ws).started()

    async def _acting(
        self,
        host: PluginHost,
        who: Principal,
        outcome: str,
        subject: str,
        action: Callable[[], Any],
        **detail: Any,
    ) -> Any:
        """Run ``action`` (sync or async) and audit it as ``who``: ``outcome`` when it worked,
        ``refused`` with the error's message when it did not (then the error goes on)."""
        try:
            done = action()
            if inspect.isawaitable(done):
                done = await done
        except PlugportError as exc:
            host.state.audit(
                "task", subject, "refused", actor=who.actor, attempted=outcome,
                message=str(exc)[:500], **detail,
            )  # fmt: skip
            raise
        host.state.audit("task", subject, outcome, actor=who.actor, **detail)
        return done

    # --- tasks ---------------------------------------------------------------------------------

    async def submit(
        self,
        ws: str,
        who: Principal,
        task_type: str,
        payload: Any,
        *,
        plugin: str | None = None,
        priority: int | None = None,
        delay_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """``(the record, whether it is new)``: a key that matched returns the task stored
        before, unchanged (``False``). A payload that fails the type's schema is a
        :class:`FieldError` on ``payload`` + its JSON pointer (nothing stored)."""
        host = await self._host(ws)
        try:
            record, created = await host.tasks.submit_new(
                task_type,
                payload,
                plugin=plugin,
                priority=priority,
                delay_s=delay_s,
                idempotency_key=idempotency_key,
                submitted_by=who.actor,
            )
        except TaskValidationError as exc:
            raise _payload_error(exc) from None
        if created:
            host.state.audit(
                "task", record.plugin, "submitted", actor=who.actor, task=record.id,
                type=record.type,
            )  # fmt: skip
        return record.public(), created

    async def tasks(
        self,
        ws: str,
        *,
        state: str | None = None,
        plugin: str | None = None,
        task_type: str | None = None,
        limit: int = 100,
        before: float | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, without payloads (a task's page and ``GET tasks/{id}`` show it)."""
        host = await self._host(ws)
        found = host.tasks.find(
            state=state, plugin=plugin, type=task_type, limit=limit, before=before
        )
        return [r.public(payload=False) for r in found]

    async def task(self, ws: str, task_id: str) -> dict[str, Any]:
        """The record with its payload and every attempt, oldest first."""
        host = await self._host(ws)
        record = host.tasks.get(task_id)
        attempts = host.tasks.store.attempts_of(task_id)
        return record.public() | {"attempts_list": [a.public() for a in attempts]}

    async def cancel(self, ws: str, who: Principal, task_id: str) -> dict[str, Any]:
        host = await self._host(ws)
        record = host.tasks.store.get(task_id)
        subject = record.plugin if record is not None else "-"
        reason = f"cancelled by {who.actor}"
        done = await self._acting(
            host, who, "cancelled", subject,
            lambda: host.tasks.cancel(task_id, reason=reason), task=task_id,
        )  # fmt: skip
        return dict(done.public())

    async def retry(self, ws: str, who: Principal, task_id: str) -> dict[str, Any]:
        host = await self._host(ws)
        record = host.tasks.store.get(task_id)
        subject = record.plugin if record is not None else "-"
        done = await self._acting(
            host, who, "retried", subject, lambda: host.tasks.retry(task_id), task=task_id
        )
        return dict(done.public())

    async def stats(self, ws: str) -> list[dict[str, Any]]:
        """Per (plugin, type): counts by state, queue depth, dead letters, and the last hour's
        throughput, wait and run percentiles, attempts and failures by kind."""
        host = await self._host(ws)
        now = time.time()
        recent = [
            r
            for r in host.tasks.find(limit=RECENT_LIMIT)
            if r.submitted_at >= now - 3600  # newest first: the rest are older still
        ]
        return task_stats(host.tasks.store.counts(), recent, now)

    # --- schedules -----------------------------------------------------------------------------

    async def schedules(self, ws: str) -> list[dict[str, Any]]:
        host = await self._host(ws)
        return [s.public() for s in host.tasks.store.schedules()]

    async def add_schedule(
        self,
        ws: str,
        who: Principal,
        name: str,
        task_type: str,
        payload: Any,
        *,
        cron: str,
        plugin: str | None = None,
        priority: int | None = None,
    ) -> dict[str, Any]:
        host = await self._host(ws)

        def add() -> Any:
            # The queue checks these too; checked first here so the answer names the field.
            try:
                parse_cron(cron)
            except InvalidInputError as exc:
                raise FieldError("cron", str(exc)) from None
            if not _SCHEDULE_NAME.fullmatch(name):
                raise FieldError("name", f"{name!r}: use 1-100 letters, digits, '-' and '_'")
            try:
                return host.tasks.add_schedule(
                    name, task_type, payload, cron=cron, plugin=plugin, priority=priority
                )
            except TaskValidationError as exc:
                raise _payload_error(exc) from None

        try:  # the plugin the audit line is about, when the type is known
            subject = host.tasks.spec_of(task_type, plugin)[0]
        except PlugportError:
            subject = plugin or "-"
        done = await self._acting(
            host, who, "schedule_added", subject, add, schedule=name, cron=cron
        )
        return dict(done.public())

    async def delete_schedule(self, ws: str, who: Principal, name: str) -> None:
        host = await self._host(ws)
        found = next((s for s in host.tasks.store.schedules() if s.name == name), None)
        subject = found.plugin if found is not None else "-"
        await self._acting(
            host,
            who,
            "schedule_removed",
            subject,
            lambda: host.tasks.store.delete_schedule(name),
            schedule=name,
        )

    # --- workflows -----------------------------------------------------------------------------

    async def runner(self, ws: str) -> Any:
        """The workspace host's workflow runner (``host.workflows``)."""
        host = await self._host(ws)
        runner = getattr(host, "workflows", None)
        if runner is None:
            raise NotFoundError(
                "workflow runner", ws, "this host service runs no workflows (its version has none)"
            )
        return runner

    async def start_workflow(
        self, ws: str, who: Principal, workflow: str, given: Any
    ) -> dict[str, Any]:
        runner = await self.runner(ws)
        host = await self._host(ws)
        run = await self._acting(
            host, who, "workflow_started", "workflow",
            lambda: runner.start(workflow, given, submitted_by=who.actor),
        )  # fmt: skip
        return _public(run)

    async def workflow_runs(
        self, ws: str, *, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        runner = await self.runner(ws)
        found = await _maybe(runner.runs(state=state, limit=limit))
        return [_public(r) for r in found]

    async def workflow_run(self, ws: str, run_id: str) -> dict[str, Any]:
        runner = await self.runner(ws)
        run = await _maybe(runner.status(run_id))
        if run is None:
            raise NotFoundError("workflow run", run_id)
        return _public(run)

    async def cancel_workflow(self, ws: str, who: Principal, run_id: str) -> dict[str, Any]:
        runner = await self.runner(ws)
        host = await self._host(ws)
        run = await self._acting(
            host, who, "workflow_cancelled", "workflow", lambda: runner.cancel(run_id), run=run_id
        )
        if run is None:  # a runner whose cancel answers nothing: read it back
            run = await _maybe(runner.status(run_id))
        return _public(run)


async def _maybe(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _public(run: Any) -> dict[str, Any]:
    return dict(run.public() if hasattr(run, "public") else run)


class TaskPayloadError(FieldError):
    """A payload its type's schema refuses: ``field`` is ``payload`` or ``payload/pointer``
    (the API's ``details.field``), ``task_type`` the type, ``pointer`` the JSON pointer."""

    def __init__(self, task_type: str, pointer: str, reason: str) -> None:
        self.task_type = task_type
        self.pointer = pointer
        super().__init__(f"payload{pointer}", f"{reason} (task type {task_type})")


def _payload_error(exc: TaskValidationError) -> TaskPayloadError:
    return TaskPayloadError(exc.task_type, exc.field, exc.reason)
