"""Long operations (install, update) as resources a client polls: queued, running, then
succeeded with a result or failed with an error in the API's error shape; downloads report
their bytes as they go. And how each error an operation or a request can end with is told to
a client: the status, a code, the message and the data attached to the error."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from starlette.requests import Request

from plugport._api_errors import error_details, status_for
from plugport.errors import (
    ConsentError,
    InvalidInputError,
    OfflineError,
    PluginCallError,
    PluginQuarantinedError,
    PluginRuntimeError,
    PlugportError,
    RegistryResponseError,
    ResolutionError,
    SandboxUnavailableError,
)
from plugport.host.consent import ConsentRequest

__all__ = ["BadJsonError", "BodyTooLargeError", "Operation", "describe"]

OperationState = Literal["queued", "running", "succeeded", "failed"]


class BodyTooLargeError(InvalidInputError):
    def __init__(self, limit: int) -> None:
        self.limit_bytes = limit
        super().__init__(f"the request body is more than {limit} bytes (the limit)")


class BadJsonError(InvalidInputError):
    """The request body is not JSON at all."""


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
    """``(status, {"code", "message", "details"})`` for ``error``: the host's own errors first
    (the registry never raises them), then the table the registry uses."""
    details = error_details(error)
    message = str(error)
    if isinstance(error, BodyTooLargeError):
        status, code = 413, "too_large"
    elif isinstance(error, BadJsonError):
        status, code = 400, "invalid_json"
    elif isinstance(error, ConsentError):
        status, code = 409, "consent_required"
        details = {"plugin": error.plugin, "added": list(error.added)}
        if refused is not None:
            details |= {"name": refused.name, "version": refused.version, "lines": refused.lines}
        # The host's own message speaks to a terminal (--yes, the policy file); an API client
        # grants by naming the permissions.
        message = (
            f"{error.plugin} needs consent for: {'; '.join(error.added)}; "
            "send exactly these in 'consent' to grant them"
        )
    elif isinstance(error, ResolutionError):
        status, code = 422, "unresolvable"
        details["conflicts"] = list(error.conflicts)
    elif isinstance(error, OfflineError):
        status, code = 503, "offline"
    elif isinstance(error, RegistryResponseError):
        status, code = 502, "registry_error"
        details = {"status": error.status, "code": error.code, "details": error.details}
    elif isinstance(error, PluginQuarantinedError):
        status, code = 409, "quarantined"
    elif isinstance(error, SandboxUnavailableError):
        status, code = 503, "sandbox_unavailable"
    elif isinstance(error, PluginCallError):
        status, code = 422, "plugin_error"
    elif isinstance(error, PluginRuntimeError):
        status, code = 422, "plugin_failed"
    else:
        status, code = status_for(error)
    return status, {"code": code, "message": message, "details": details}


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
