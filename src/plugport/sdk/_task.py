"""What a plugin's ``@task`` handler receives: one attempt at one queued task, as the host
validated it, and the context that lets ``api.tasks.progress`` name the task it reports on."""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CURRENT_TASK", "Task"]


@dataclass(frozen=True, slots=True)
class Task:
    """One attempt at a task. ``payload`` matched the type's schema on the host; ``attempt``
    counts from 1 (a task cut off by a crash is tried again with the next number);
    ``deadline`` is the Unix time the attempt is stopped at. A task may run more than once
    (at least once): make its effects idempotent with ``idempotency_key`` (the payload's
    value at the type's ``idempotency-key``, or the task id)."""

    id: str
    type: str
    payload: Any
    attempt: int = 1
    deadline: float = 0.0
    idempotency_key: str = ""
    priority: int = 0
    submitted_by: str = ""
    workflow_run: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "payload": self.payload,
            "attempt": self.attempt,
            "deadline": self.deadline,
            "idempotency_key": self.idempotency_key,
            "priority": self.priority,
            "submitted_by": self.submitted_by,
            "workflow_run": self.workflow_run,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Task:
        return cls(
            id=str(data["id"]),
            type=str(data["type"]),
            payload=data.get("payload"),
            attempt=int(data.get("attempt") or 1),
            deadline=float(data.get("deadline") or 0.0),
            idempotency_key=str(data.get("idempotency_key") or data["id"]),
            priority=int(data.get("priority") or 0),
            submitted_by=str(data.get("submitted_by") or ""),
            workflow_run=data.get("workflow_run"),
        )


CURRENT_TASK: contextvars.ContextVar[Task | None] = contextvars.ContextVar(
    "plugport_current_task", default=None
)
"""The task the running handler is processing (set by the worker around each ``@task``
call; copied into the thread a plain handler runs in)."""
