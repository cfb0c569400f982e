"""Long operations (install, update) as resources a client polls: queued, running, then
succeeded with a result or failed with an error in the API's error shape; downloads report
their bytes as they go. Each is an ``@operation`` task on its workspace's durable queue (the
host's one runner): accepted once committed, run one at a time, and run again if the service
died under it (installs and updates are all or nothing). And how each error an operation or a
request can end with is told to a client: the status, a code, the message and the data
attached to the error."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from starlette.requests import Request

from plugport._api_errors import BadJsonError, BodyTooLargeError, describe_error
from plugport.errors import ConsentError, PlugportError
from plugport.host.consent import ConsentRequest
from plugport.host.host import InstallReport
from plugport.host.tasks.store import TaskRecord

__all__ = [
    "OPERATION_TASK",
    "BadJsonError",
    "BodyTooLargeError",
    "Operation",
    "describe",
    "operation_of",
    "read_capped",
    "report",
]

OPERATION_TASK = "@operation"
"""The task type of a workspace's install and update operations."""

OperationState = Literal["queued", "running", "succeeded", "failed"]


async def read_capped(request: Request, limit: int) -> bytes:
    """The request's body, read no further than ``limit`` bytes (413 beyond it, whatever the
    client declared)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    return bytes(body)


def describe(
    error: PlugportError, refused: ConsentRequest | None = None
) -> tuple[int, dict[str, Any]]:
    """``(status, {"code", "message", "details"})`` for ``error``, from the table the registry
    uses too (:data:`plugport._api_errors.RULES`); a consent an operation asked for and did not
    get adds the request it refused (what a client shows before granting)."""
    status, body = describe_error(error)
    if refused is not None and isinstance(error, ConsentError):
        body["details"] |= {
            "name": refused.name,
            "version": refused.version,
            "lines": refused.lines,
            "verified_domain": refused.verified_domain,
        }
    return status, body


@dataclass
class Operation:
    kind: Literal["install", "update"]
    workspace: str
    target: str
    actor: str
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    state: OperationState = "queued"
    progress: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.state in ("succeeded", "failed")

    def step(self, what: str, done: int | None = None, total: int | None = None) -> None:
        """A step reached, or bytes done of a step already running (the last one with the
        same name is updated rather than repeated)."""
        if self.progress and self.progress[-1]["step"] == what:
            self.progress[-1].update(done=done, total=total)
            return
        self.progress.append({"step": what, "done": done, "total": total, "at": time.time()})

    @classmethod
    def from_public(cls, body: dict[str, Any]) -> Operation:
        """Back from :meth:`public` (as the service's store keeps it)."""
        return cls(**{k: body[k] for k in _FIELDS})

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "workspace": self.workspace,
            "target": self.target,
            "actor": self.actor,
            "state": self.state,
            "progress": [dict(p) for p in self.progress],
            "result": self.result,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


_FIELDS = tuple(f.name for f in fields(Operation))


def report(done: InstallReport) -> dict[str, Any]:
    """An install's or update's result, as an operation shows it."""
    return {
        "installed": [{"name": n, "version": v, "previous": p} for n, v, p in done.installed],
        "unchanged": [{"name": n, "version": v} for n, v in done.unchanged],
    }


_STATE_OF: dict[str, OperationState] = {
    "queued": "queued",
    "running": "running",
    "succeeded": "succeeded",
    "dead": "failed",
    "cancelled": "failed",
    "rejected": "failed",
}


def operation_of(record: TaskRecord) -> Operation:
    """The operation an ``@operation`` task is: as it ended (its result holds the whole
    operation), or as it was queued (a service that started since shows it queued or running
    again, from the start)."""
    if isinstance(record.result, dict) and "kind" in record.result:
        return Operation.from_public(record.result)
    payload = record.payload
    operation = Operation(
        payload["kind"],
        payload["workspace"],
        payload["target"],
        payload["actor"],
        id=record.id,
        state=_STATE_OF[record.state],
        created_at=record.submitted_at,
        started_at=record.started_at,
        finished_at=record.finished_at,
    )
    if operation.state == "failed":
        operation.error = {"code": "failed", "message": record.error, "details": {}}
    return operation
