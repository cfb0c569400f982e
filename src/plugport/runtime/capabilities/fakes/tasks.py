"""The ``tasks`` fake: run the plugin's ``@task`` handlers as the host's queue runs one
attempt (payload checked against the type's schema first, the result after, the same rules
as the host), and record what the plugin submits (``api.tasks.submit``, after the real
``tasks.submit`` permission check) and the progress it reports, without a queue."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plugport._task_rules import check_document, idempotency_key_for
from plugport.errors import InvalidInputError
from plugport.sdk._task import Task

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FakeTasks", "SubmittedTask"]


@dataclass(frozen=True)
class SubmittedTask:
    """One ``api.tasks.submit`` the plugin made (and the id it was given)."""

    id: str
    type: str
    payload: Any
    priority: int | None = None
    delay_s: float | None = None
    idempotency_key: str | None = None
    parent: str | None = None


@dataclass
class _Sink:
    """The runtime's task sink while fakes are bound: routes each call to its plugin's fake."""

    fakes: dict[str, FakeTasks] = field(default_factory=dict)

    def _fake(self, plugin: str) -> FakeTasks:
        fake = self.fakes.get(plugin)
        if fake is None:
            raise InvalidInputError(f"no tasks fake is bound to plugin {plugin!r}")
        return fake

    async def submit_from(self, plugin: str, task_type: str, payload: Any, **options: Any) -> str:
        return self._fake(plugin)._submitted_one(task_type, payload, **options)

    async def progress_from(self, plugin: str, task_id: str, percent: float, message: str) -> None:
        self._fake(plugin)._progressed(task_id, percent, message)

    def purge(self, plugin: str) -> int:
        return 0


class FakeTasks:
    """``handle.tasks``: ``run(type, payload)`` runs one attempt of the plugin's handler and
    returns its (checked) result; ``submitted`` lists the tasks the plugin queued,
    ``progress`` the ``(task id, percent, message)`` it reported."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        self._runtime = runtime
        sink = runtime.services.tasks
        if sink is None:
            sink = runtime.services.tasks = _Sink()
        if not isinstance(sink, _Sink):
            raise InvalidInputError("this runtime has a real task queue; use it instead")
        self._sink = sink
        sink.fakes[self.plugin] = self
        self._submitted: list[SubmittedTask] = []
        self._progress: list[tuple[str, float, str]] = []

    @property
    def submitted(self) -> list[SubmittedTask]:
        return list(self._submitted)

    @property
    def progress(self) -> list[tuple[str, float, str]]:
        return list(self._progress)

    async def run(
        self,
        task_type: str,
        payload: Any = None,
        *,
        attempt: int = 1,
        idempotency_key: str | None = None,
        task_id: str | None = None,
    ) -> Any:
        """One attempt, as the host makes it: :class:`~plugport.errors.TaskValidationError`
        for a payload or a result that breaks its schema, the handler's own error (a
        :class:`~plugport.errors.PluginCallError`) when it raises, a
        :class:`~plugport.errors.ResourceLimitExceededError` past its ``timeout-ms``."""
        declared = {
            t: (plugin, spec, limits)
            for t, found in self._runtime.task_types().items()
            for plugin, spec, limits in found
            if plugin == self.plugin
        }
        if task_type not in declared:
            raise InvalidInputError(
                f"plugin {self.plugin!r} declares no task type {task_type!r} "
                f"(it has: {', '.join(sorted(declared)) or 'none'})"
            )
        _, spec, limits = declared[task_type]
        check_document(task_type, "payload", spec.payload, payload)
        key = idempotency_key_for(task_type, spec, payload, idempotency_key)
        identifier = task_id or uuid.uuid4().hex
        timeout_ms = spec.timeout_ms or limits.timeout_ms
        task = Task(
            id=identifier,
            type=task_type,
            payload=payload,
            attempt=attempt,
            deadline=time.time() + timeout_ms / 1000,
            idempotency_key=key or identifier,
            priority=spec.priority,
            submitted_by="test",
        )
        result = await self._runtime.run_task(
            self.plugin, task_type, task.to_wire(), timeout_ms=timeout_ms
        )
        check_document(task_type, "result", spec.result, result)
        return result

    def _submitted_one(self, task_type: str, payload: Any, **options: Any) -> str:
        identifier = uuid.uuid4().hex
        self._submitted.append(SubmittedTask(identifier, task_type, payload, **options))
        return identifier

    def _progressed(self, task_id: str, percent: float, message: str) -> None:
        self._progress.append((task_id, percent, message))

    def close(self) -> None:
        self._sink.fakes.pop(self.plugin, None)
