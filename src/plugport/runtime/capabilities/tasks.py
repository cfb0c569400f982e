"""``api.tasks``: a plugin queues follow-up tasks (``submit``, as ``[permissions] tasks.submit``
allows) and reports progress on the task it is processing (``progress``). The queue itself is
the host's (:mod:`plugport.host.tasks`), reached through the small
:class:`~plugport.runtime.capabilities._record.TaskSink` interface, so the runtime never
imports the host."""

from __future__ import annotations

import math
from typing import Any

from plugport._permissions import RULES
from plugport.errors import InvalidInputError
from plugport.runtime.capabilities._record import Calls, Capability, Services, TaskSink
from plugport.sdk._api import TasksProxy

__all__ = ["RECORD", "TasksCalls"]

MAX_PROGRESS_MESSAGE = 500


class TasksCalls(Calls):
    """``api.tasks.*`` for one plugin."""

    def _sink(self) -> TaskSink:
        if self.services.tasks is None:
            raise InvalidInputError("this host runs no task queue")
        return self.services.tasks

    async def submit(
        self,
        task_type: str,
        payload: Any = None,
        *,
        priority: int | None = None,
        delay_s: float | None = None,
        idempotency_key: str | None = None,
        parent: str | None = None,
    ) -> str:
        return await self._sink().submit_from(
            self.plugin,
            task_type,
            payload,
            priority=priority,
            delay_s=delay_s,
            idempotency_key=idempotency_key,
            parent=parent,
        )

    async def progress(
        self, percent: float, message: str = "", *, task_id: str | None = None
    ) -> None:
        if not isinstance(task_id, str):
            raise InvalidInputError("tasks.progress: task_id must name the running task")
        if not isinstance(percent, int | float) or not math.isfinite(percent):
            raise InvalidInputError(f"tasks.progress: percent must be a number, not {percent!r}")
        if not 0 <= percent <= 100:
            raise InvalidInputError(f"tasks.progress: percent must be 0-100, not {percent}")
        if not isinstance(message, str) or len(message) > MAX_PROGRESS_MESSAGE:
            raise InvalidInputError(
                f"tasks.progress: message must be text of at most {MAX_PROGRESS_MESSAGE} characters"
            )
        if self.services.tasks is None:
            return  # a bare runtime (no queue) runs one attempt: there is no record to update
        await self.services.tasks.progress_from(self.plugin, task_id, float(percent), message)


def _purge(services: Services, plugin: str) -> None:
    if services.tasks is not None:
        services.tasks.purge(plugin)


RECORD = Capability("tasks", RULES["tasks"], TasksCalls, TasksProxy, _purge)
