"""The inbox: every verified webhook delivery is a ``@webhook`` task on the host's one durable
queue (:mod:`plugport.host.tasks`), committed before the sender gets its 202, and stays until
the plugin's handler took it (``done``) or every attempt failed (``dead``); the queue's runner
hands it over, retries it on the inbox's schedule and survives restarts and ``kill -9``.

Replay protection is the task's idempotency key, ``ENDPOINT:DELIVERY_ID`` per plugin: a
delivery the sender sends again (GitHub does after a timeout) is answered as a duplicate and
never queued twice, while the handled one is kept (its retention plus the replay window).
"""

from __future__ import annotations

import base64
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from plugport.errors import InvalidInputError, NotFoundError
from plugport.host.inbound._inbox_rules import (
    BASE_DELAY_S,
    DEFAULT_RETENTION_S,
    MAX_ATTEMPTS,
    MAX_DELAY_S,
    REPLAY_GUARD_S,
)
from plugport.host.tasks.queue import SystemTask, TaskQueue
from plugport.host.tasks.store import TaskRecord
from plugport.manifest import MAX_WEBHOOK_BODY_BYTES, TaskSpec

__all__ = ["WEBHOOK_TASK", "Accepted", "Delivery", "State", "TaskInbox", "legacy_inbox_path"]

log = logging.getLogger(__name__)

State = Literal["pending", "running", "done", "dead"]
WEBHOOK_TASK = "@webhook"
"""The queue's task type for a received delivery."""
_STATE_OF: Mapping[str, State] = {
    "queued": "pending",
    "running": "running",
    "succeeded": "done",
    "dead": "dead",
    "cancelled": "dead",
    "rejected": "dead",
}
_TASK_STATES: Mapping[State, str] = {"pending": "queued", "running": "running", "done": "succeeded"}
HANDLER_TIMEOUT_MS = 660_000
"""An attempt's own limit: past the longest call timeout a plugin may have (600 s)."""


def legacy_inbox_path(home: Path) -> Path:
    """Where Plugport 0.2 kept the inbox (its pending deliveries are moved onto the queue)."""
    return home / "inbox.sqlite"


@dataclass(frozen=True, slots=True)
class Accepted:
    """The delivery's id (its task's); ``duplicate`` when it was there already (not queued
    again)."""

    id: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    plugin: str
    endpoint: str
    delivery_id: str | None
    received_at: float
    headers: Mapping[str, str]
    body: bytes
    attempts: int
    state: State
    next_at: float
    last_error: str
    finished_at: float | None = None

    def public(self) -> dict[str, Any]:
        """What the operator is shown (API, pages): never the body or the headers, which may
        carry what the sender sent the plugin, not the operator."""
        return {
            "id": self.id,
            "plugin": self.plugin,
            "endpoint": self.endpoint,
            "delivery_id": self.delivery_id,
            "received_at": self.received_at,
            "state": self.state,
            "attempts": self.attempts,
            "next_at": self.next_at,
            "last_error": self.last_error,
            "finished_at": self.finished_at,
        }


def delivery_of(record: TaskRecord) -> Delivery:
    payload = record.payload
    return Delivery(
        id=record.id,
        plugin=record.plugin,
        endpoint=str(payload["endpoint"]),
        delivery_id=payload.get("delivery_id"),
        received_at=float(payload["received_at"]),
        headers=dict(payload.get("headers") or {}),
        body=base64.b64decode(payload["body"]),
        attempts=record.attempts,
        state=_STATE_OF[record.state],
        next_at=record.due_at,
        last_error=record.error,
        finished_at=record.finished_at,
    )


Deliver = Callable[[Delivery], Awaitable[None]]
"""Runs the plugin's handler for one delivery; raising means "try again later"."""
Outcome = Callable[[Delivery, str, str], None]
"""Told ``(delivery, "pending" | "dead", error)`` after each failed attempt."""


class TaskInbox:
    """A workspace's received webhooks, on its host's task queue."""

    def __init__(
        self,
        queue: TaskQueue,
        deliver: Deliver,
        *,
        max_attempts: int = MAX_ATTEMPTS,
        base_delay_s: float = BASE_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        retention_s: float = DEFAULT_RETENTION_S,
        on_failure: Outcome | None = None,
        concurrency: int = 4,
    ) -> None:
        self.queue = queue
        self._deliver = deliver
        self._on_failure = on_failure
        spec = TaskSpec.model_validate(
            {
                "max-attempts": max_attempts,
                "backoff-seconds": base_delay_s,
                "max-backoff-seconds": max(max_delay_s, base_delay_s),
                "timeout-ms": HANDLER_TIMEOUT_MS,
            }
        )
        queue.register(
            SystemTask(
                WEBHOOK_TASK,
                self._run,
                spec,
                concurrency=concurrency,
                max_payload_bytes=MAX_WEBHOOK_BODY_BYTES * 2,  # base64 and the headers
                on_failure=self._failed,
                retention_s=retention_s + REPLAY_GUARD_S,
            )
        )

    async def accept(
        self,
        plugin: str,
        endpoint: str,
        delivery_id: str | None,
        *,
        headers: Mapping[str, str],
        body: bytes,
        now: float,
    ) -> Accepted:
        """Store a verified delivery, committed when this returns."""
        payload = {
            "endpoint": endpoint,
            "delivery_id": delivery_id,
            "headers": dict(headers),
            "body": base64.b64encode(body).decode("ascii"),
            "received_at": now,
        }
        key = None if delivery_id is None else f"{endpoint}:{delivery_id}"
        record, new = self.queue.submit_system(
            WEBHOOK_TASK, plugin, payload, idempotency_key=key, submitted_by="webhook"
        )
        return Accepted(record.id, duplicate=not new)

    def get(self, delivery: str) -> Delivery | None:
        record = self.queue.store.get(delivery)
        if record is None or record.type != WEBHOOK_TASK:
            return None
        return delivery_of(record)

    def list(
        self, plugin: str | None = None, *, state: State | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Newest first; ``plugin`` keeps one plugin's, ``state`` those in that state (dead
        ones include any an operator cancelled)."""
        if state == "dead":
            found = [
                r
                for s in ("dead", "cancelled", "rejected")
                for r in self.queue.store.find(plugin=plugin, type=WEBHOOK_TASK, state=s)
            ]
            found.sort(key=lambda r: r.submitted_at, reverse=True)
            return [delivery_of(r) for r in found[:limit]]
        task_state = None if state is None else _TASK_STATES[state]
        records = self.queue.store.find(
            plugin=plugin, type=WEBHOOK_TASK, state=task_state, limit=limit
        )
        return [delivery_of(r) for r in records]

    async def retry(self, delivery: str) -> Delivery:
        """A dead delivery made due again with a fresh count of attempts (its last error
        stays until an attempt succeeds)."""
        found = self.get(delivery)
        if found is None:
            raise NotFoundError(
                "inbox delivery", delivery, "list dead ones with GET .../inbox?state=dead"
            )
        if found.state != "dead":
            raise InvalidInputError(
                f"inbox delivery {delivery} is {found.state}, not dead; only a dead "
                "delivery is retried"
            )
        return delivery_of(await self.queue.retry(delivery))

    def pending(self) -> bool:
        """Whether a delivery waits to be handed over (the service starts such a workspace)."""
        return bool(self.queue.store.find(type=WEBHOOK_TASK, state="queued", limit=1))

    async def import_legacy(self, path: Path) -> int:
        """Move what a Plugport 0.2 inbox file still had to hand over onto the queue, then
        rename the file (``.migrated``); how many deliveries. Handled and dead ones stay in
        the renamed file for the operator."""
        if not path.is_file():
            return 0
        db = sqlite3.connect(path)
        db.row_factory = sqlite3.Row
        try:
            rows = db.execute(
                "SELECT * FROM deliveries WHERE state IN ('pending', 'running') ORDER BY id"
            ).fetchall()
        finally:
            db.close()
        moved = 0
        for row in rows:
            import json

            await self.accept(
                row["plugin"],
                row["endpoint"],
                row["delivery_id"],
                headers=json.loads(row["headers"]),
                body=bytes(row["body"]),
                now=float(row["received_at"]),
            )
            moved += 1
        path.rename(path.with_name(path.name + ".migrated"))
        if moved:
            log.info("moved %d pending webhook deliveries from %s onto the task queue", moved, path)
        return moved

    async def _run(self, record: TaskRecord) -> None:
        await self._deliver(delivery_of(record))

    def _failed(self, record: TaskRecord, verdict: str, error: str) -> None:
        if self._on_failure is not None:
            delivery = delivery_of(record)
            self._on_failure(delivery, "dead" if verdict == "dead" else "pending", error)
